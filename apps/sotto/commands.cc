#include "apps/sotto/commands.h"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <string_view>

#include "apps/sotto/command_util.h"
#include "apps/sotto/group_commands.h"
#include "apps/sotto/output.h"
#include "apps/sotto/paths.h"
#include "base/bytes.h"
#include "client/client.h"

namespace sotto::cli {
namespace {

using client::Client;
using std::chrono::milliseconds;

// `receive` (without --timeout or --follow) drains the queue; this bounds it against a
// server that never says QueueEmpty.
constexpr milliseconds kDrainLimit{5 * 60 * 1000};
// `receive --follow` polls in slices of this (the loop itself never ends).
constexpr milliseconds kFollowSlice{60'000};
// How long `trust` waits for the released messages to be acked.
constexpr milliseconds kFlushLimit{10'000};

std::string HomeArgument(const GlobalOptions& global) {
  return "--home " + ShellQuote(global.home.string());
}

}  // namespace

ExitCode Register(const GlobalOptions& global, const RegisterArgs& args) {
  auto server_key = OptionalServerKey(args.server_key);
  if (!server_key) return Fail(server_key.error(), "--server-key");
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "");
  if (auto s = (*client)->StartRegistration(args.server, *server_key, args.number); !s) {
    return Fail(s.error(), "registration");
  }
  std::cout << "verification code requested for " << args.number << "; run: sotto "
            << HomeArgument(global) << " verify CODE\n";
  return ExitCode::kOk;
}

ExitCode Verify(const GlobalOptions& global, const std::string& code) {
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "");
  if (auto s = (*client)->FinishRegistration(code); !s) return Fail(s.error(), "verification");
  const auto& account = (*client)->account();
  if (!account) {
    std::cerr << "sotto: registered, but the account could not be read back\n";
    return ExitCode::kStore;
  }
  std::cout << "registered " << account->handle << ", device " << account->device_id << " (account "
            << ToHex(account->account_id) << ")\n";
  return ExitCode::kOk;
}

ExitCode Send(const GlobalOptions& global, const SendArgs& args) {
  std::string text = args.text;
  if (args.source == TextSource::kStdin) {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (!text.empty() && text.back() == '\n') text.pop_back();
  }
  if (auto problem = MessageTextProblem(text)) {
    std::cerr << "sotto: send: " << *problem << "; nothing was sent\n";
    return ExitCode::kUsage;
  }
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "");
  if (auto s = ConnectIfPossible(**client); !s) return Fail(s.error(), "send");
  auto outcome = (*client)->SendText(args.to, text);
  const bool held = !outcome && ExitCodeFor(outcome.error()) == ExitCode::kIdentityChanged;
  if (!outcome && !held) return Fail(outcome.error(), "send");
  const client::Tick tick = held ? client::Tick::kBlocked : outcome->tick;
  const std::string id = held ? std::string() : outcome->message_id;
  ExitCode code = ExitCode::kOk;
  std::string text_line;
  switch (tick) {
    case client::Tick::kSent:
    case client::Tick::kDelivered:
    case client::Tick::kRead:
      text_line = "message " + id + " sent " + std::string(TickMark(tick));
      break;
    case client::Tick::kPending:
      text_line = "message " + id + " queued: server unreachable, will retry";
      code = ExitCode::kOffline;
      break;
    case client::Tick::kBlocked:
      text_line = (id.empty() ? "message" : "message " + id) + " held: identity of " + args.to +
                  " changed; run `sotto trust " + args.to +
                  "` after comparing safety numbers (sotto safety-number " + args.to + ")";
      code = ExitCode::kIdentityChanged;
      break;
  }
  if (args.format == OutputFormat::kJson) {
    PrintJsonLine({{"id", id.empty() ? nlohmann::json(nullptr) : nlohmann::json(id)},
                   {"to", args.to},
                   {"status", client::TickName(tick)}});
  } else {
    // On stdout even when not sent: the message is stored and has an id either way; the
    // exit code tells scripts which case it was.
    std::cout << text_line << "\n";
  }
  return code;
}

ExitCode SendFile(const GlobalOptions& global, const SendFileArgs& args) {
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "");
  if (auto s = ConnectIfPossible(**client); !s) return Fail(s.error(), "send-file");
  // +E164: a contact; anything else names a group (as `group send` takes it).
  auto outcome = wire::IsE164(args.to)
                     ? (*client)->SendFile(args.to, args.path, args.caption, args.mime)
                     : (*client)->SendGroupFile(args.to, args.path, args.caption, args.mime);
  if (!outcome) return Fail(outcome.error(), "send-file");
  ExitCode code = ExitCode::kOk;
  std::string line = "file " + outcome->message_id + " uploaded; message ";
  switch (outcome->tick) {
    case client::Tick::kSent:
    case client::Tick::kDelivered:
    case client::Tick::kRead:
      line += "sent " + std::string(TickMark(outcome->tick));
      break;
    case client::Tick::kPending:
      line += "queued: server unreachable, will retry";
      code = ExitCode::kOffline;
      break;
    case client::Tick::kBlocked:
      line += "held: identity of " + args.to + " changed; run `sotto trust " + args.to + "`";
      code = ExitCode::kIdentityChanged;
      break;
  }
  if (args.format == OutputFormat::kJson) {
    PrintJsonLine({{"id", outcome->message_id},
                   {"to", args.to},
                   {"status", client::TickName(outcome->tick)}});
  } else {
    std::cout << line << "\n";
  }
  return code;
}

ExitCode Receive(const GlobalOptions& global, const ReceiveArgs& args) {
  auto opened = OpenClient(global);
  if (!opened) return Fail(opened.error(), "");
  Client& client = **opened;
  bool ever_connected = false;
  client.SetEventSink([&](const client::Event& event) {
    if (const auto* connection = std::get_if<client::ConnectionEvent>(&event)) {
      ever_connected = ever_connected || connection->connected;
      // Lifecycle, not a result: only when asked for.
      if (global.verbosity != Verbosity::kVerbose) return;
      if (args.format == OutputFormat::kText) {
        std::cerr << "sotto: " << EventText(event, TimeZoneChoice::kLocal) << "\n";
        return;
      }
    }
    if (args.format == OutputFormat::kJson) {
      PrintJsonLine(EventJson(event));
    } else {
      std::cout << EventText(event, TimeZoneChoice::kLocal) << "\n" << std::flush;
    }
  });
  if (args.mode == ReceiveMode::kUntilDrained) {
    // Sync connects by itself (one connection) and returns at the server's QueueEmpty.
    if (auto s = client.Sync(kDrainLimit); !s) return Fail(s.error(), "receive");
    return ExitCode::kOk;
  }
  auto connected = client.Connect();
  if (!connected && ExitCodeFor(connected.error()) != ExitCode::kOffline) {
    return Fail(connected.error(), "receive");
  }
  ever_connected = ever_connected || client.connected();
  // Poll reconnects with backoff when the server goes away, so keep polling until the
  // time is up (or for ever with --follow) even if the first connect failed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(args.timeout_s);
  for (auto now = std::chrono::steady_clock::now();
       args.mode == ReceiveMode::kFollow || now < deadline;
       now = std::chrono::steady_clock::now()) {
    const auto left = args.mode == ReceiveMode::kFollow
                          ? kFollowSlice
                          : std::chrono::duration_cast<milliseconds>(deadline - now);
    if (auto s = client.Poll(left); !s) return Fail(s.error(), "receive");
    ever_connected = ever_connected || client.connected();
  }
  if (!ever_connected) {
    std::cerr << "sotto: receive: server unreachable\n";
    return ExitCode::kOffline;
  }
  return ExitCode::kOk;
}

ExitCode Messages(const GlobalOptions& global, const MessagesArgs& args) {
  if (!client::IsE164(args.with)) return GroupMessages(global, args);  // a group
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "");
  auto messages = (*client)->Conversation(args.with, args.limit);
  if (!messages) return Fail(messages.error(), "messages");
  const std::string name = ContactName(**client, args.with);
  for (const client::StoredMessage& message : *messages) {
    if (args.format == OutputFormat::kJson) {
      PrintJsonLine(MessageJson(message, args.with, name));
    } else {
      std::cout << MessageText(message, args.with, TimeZoneChoice::kLocal, name) << "\n";
    }
  }
  std::cout << std::flush;
  if (args.mark_read == MarkReadPolicy::kLeaveUnread) return ExitCode::kOk;
  // Offline, the read receipts stay in the outbox: that is not a failure of this command.
  if (auto read = (*client)->MarkRead(args.with);
      !read && ExitCodeFor(read.error()) != ExitCode::kOffline) {
    return Fail(read.error(), "marking read");
  }
  return ExitCode::kOk;
}

ExitCode Search(const GlobalOptions& global, const SearchArgs& args) {
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "");
  auto hits = (*client)->Search(args.words, args.limit);
  if (!hits) return Fail(hits.error(), "search");
  auto contacts = (*client)->Contacts();
  if (!contacts) return Fail(contacts.error(), "search");
  std::map<std::string, client::Contact, std::less<>> by_account;
  for (const client::Contact& contact : *contacts) by_account[contact.account_id] = contact;
  for (const client::SearchHit& hit : *hits) {
    const auto it = by_account.find(hit.message.peer);
    const client::Contact none;
    const client::Contact& contact = it == by_account.end() ? none : it->second;
    if (args.format == OutputFormat::kJson) {
      PrintJsonLine(SearchHitJson(hit, contact.handle, contact.name));
    } else {
      std::cout << SearchHitText(hit, contact.handle, TimeZoneChoice::kLocal, contact.name) << "\n";
    }
  }
  return ExitCode::kOk;
}

ExitCode ShowSafetyNumber(const GlobalOptions& global, const SafetyNumberArgs& args) {
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "");
  // Only needed when no key of the contact is known yet.
  if (auto s = ConnectIfPossible(**client); !s) return Fail(s.error(), "safety number");
  auto number = (*client)->GetSafetyNumber(args.with);
  if (!number) return Fail(number.error(), "safety number");
  if (args.format == OutputFormat::kJson) {
    PrintJsonLine(SafetyNumberJson(*number));
  } else {
    std::cout << SafetyNumberText(*number, args.with);
  }
  if (args.qr == QrDisplay::kShow) {
    const auto matrix = EncodeQr(number->scannable);
    if (!matrix) {
      std::cerr << "sotto: cannot encode the safety number as a QR code\n";
      return ExitCode::kError;
    }
    std::cout << "\n" << RenderQr(*matrix, kQrQuietZone, args.palette);
  }
  return ExitCode::kOk;
}

ExitCode VerifyContact(const GlobalOptions& global, const VerifyContactArgs& args) {
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "");
  std::optional<std::string_view> expected;
  if (args.safety_number) expected = *args.safety_number;
  if (auto s = (*client)->VerifyContact(args.with, expected); !s) {
    if (ExitCodeFor(s.error()) == ExitCode::kMismatch) {
      std::cerr << "sotto: the safety number does NOT match the one for " << args.with
                << "; not marked verified. Someone may be intercepting your messages.\n";
      return ExitCode::kMismatch;
    }
    return Fail(s.error(), "verify-contact");
  }
  std::cout << args.with << " marked verified\n";
  return ExitCode::kOk;
}

ExitCode Trust(const GlobalOptions& global, const std::string& with) {
  auto opened = OpenClient(global);
  if (!opened) return Fail(opened.error(), "");
  Client& client = **opened;
  if (auto s = client.TrustIdentity(with); !s) return Fail(s.error(), "trust");
  std::cout << "accepted the new identity key of " << with << "\n";
  // The released messages go out now if the server is reachable, else on a later run.
  if (auto s = ConnectIfPossible(client); !s) return Fail(s.error(), "trust");
  size_t pending = 0;
  if (client.connected()) {
    auto drained = [&client, &pending] {
      auto count = client.PendingCount();
      pending = count ? *count : 0;
      return count && *count == 0;
    };
    if (!drained()) {
      if (auto s = client.Poll(kFlushLimit, drained); !s) return Fail(s.error(), "trust");
    }
  } else if (auto count = client.PendingCount(); count) {
    pending = *count;
  }
  if (pending > 0) std::cout << pending << " message(s) still queued; they will be retried\n";
  return ExitCode::kOk;
}

ExitCode ContactsAdd(const GlobalOptions& global, const ContactsAddArgs& args) {
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "");
  if (auto s = ConnectIfPossible(**client); !s) return Fail(s.error(), "contacts add");
  auto contact = (*client)->AddContact(args.number, args.name);
  if (!contact) return Fail(contact.error(), "contacts add");
  std::cout << "added " << ContactText(*contact) << "\n";
  return ExitCode::kOk;
}

ExitCode ContactsList(const GlobalOptions& global, OutputFormat format) {
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "");
  auto contacts = (*client)->Contacts();
  if (!contacts) return Fail(contacts.error(), "contacts");
  for (const client::Contact& contact : *contacts) {
    if (format == OutputFormat::kJson) {
      PrintJsonLine(ContactJson(contact));
    } else {
      std::cout << ContactText(contact) << "\n";
    }
  }
  return ExitCode::kOk;
}

ExitCode ShowPresence(const GlobalOptions& global, const PresenceArgs& args) {
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "");
  if (auto s = ConnectIfPossible(**client); !s) return Fail(s.error(), "presence");
  auto presence = (*client)->GetPresence(args.with);
  if (!presence) {
    if (ExitCodeFor(presence.error()) == ExitCode::kServerRefused) {
      std::cerr << "sotto: presence: the server refused; " << args.with
                << " may not share presence with you\n";
      return ExitCode::kServerRefused;
    }
    return Fail(presence.error(), "presence");
  }
  if (args.format == OutputFormat::kJson) {
    PrintJsonLine(PresenceJson(*presence, args.with));
  } else {
    std::cout << PresenceText(*presence, TimeZoneChoice::kLocal) << "\n";
  }
  return ExitCode::kOk;
}

ExitCode SetPresenceVisibility(const GlobalOptions& global, const std::string& visibility) {
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "");
  if (auto s = ConnectIfPossible(**client); !s) return Fail(s.error(), "privacy");
  if (auto s = (*client)->SetPresenceVisibility(visibility); !s) return Fail(s.error(), "privacy");
  std::cout << "presence visible to: " << visibility << "\n";
  return ExitCode::kOk;
}

ExitCode SendTyping(const GlobalOptions& global, const TypingArgs& args) {
  auto client = OpenClient(global);
  if (!client) return Fail(client.error(), "");
  if (auto s = (*client)->Connect(); !s) return Fail(s.error(), "typing");
  const Client::Typing typing =
      args.typing == TypingState::kStarted ? Client::Typing::kStarted : Client::Typing::kStopped;
  if (auto s = (*client)->SendTyping(args.with, typing); !s) return Fail(s.error(), "typing");
  return ExitCode::kOk;
}

ExitCode ShowStatus(const GlobalOptions& global, OutputFormat format) {
  auto opened = OpenClient(global);
  if (!opened) return Fail(opened.error(), "");
  Client& client = **opened;
  const auto& account = client.account();
  if (!account || !client.registered()) {
    if (format == OutputFormat::kJson) {
      PrintJsonLine({{"home", global.home.string()},
                     {"registered", false},
                     {"number", account ? nlohmann::json(account->handle) : nullptr}});
    } else {
      std::cout << "home: " << global.home.string() << "\nnot registered"
                << (account ? " (verification pending for " + account->handle + ")" : "") << "\n";
    }
    return ExitCode::kStore;
  }
  auto pending = client.PendingCount();
  if (!pending) return Fail(pending.error(), "status");
  if (auto s = ConnectIfPossible(client); !s) return Fail(s.error(), "status");
  if (format == OutputFormat::kJson) {
    PrintJsonLine({{"home", global.home.string()},
                   {"registered", true},
                   {"number", account->handle},
                   {"peer", ToHex(account->account_id)},
                   {"device", account->device_id},
                   {"server", account->server},
                   {"pending", *pending},
                   {"connected", client.connected()}});
  } else {
    std::cout << "home: " << global.home.string() << "\naccount: " << account->handle << " (device "
              << account->device_id << ", account " << ToHex(account->account_id)
              << ")\nserver: " << account->server << " ("
              << (client.connected() ? "reachable" : "unreachable") << ")\noutbox: " << *pending
              << " message(s) waiting\n";
  }
  return ExitCode::kOk;
}

}  // namespace sotto::cli
