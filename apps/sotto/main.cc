// sotto: the Sotto messenger on the command line (docs/cli.md). This file only declares
// the command line; commands.h does the work and daemon.h serves JSON-RPC.
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "apps/sotto/commands.h"
#include "apps/sotto/commands_devices.h"
#include "apps/sotto/daemon.h"
#include "apps/sotto/exit_code.h"
#include "apps/sotto/group_commands.h"
#include "apps/sotto/paths.h"
#include "apps/sotto/suggest.h"
#include "base/version.h"
#include "client/local_store.h"
#include "wire/protobuf_log.h"
#include "wire/wire.h"

namespace {

using namespace sotto::cli;  // NOLINT(google-build-using-namespace): one file of wiring

using Action = std::function<ExitCode(const GlobalOptions&)>;

// --json, shared by the commands that have it.
void AddJsonFlag(CLI::App& command, OutputFormat& format) {
  command.add_flag_callback(
      "--json", [&format] { format = OutputFormat::kJson; }, "one JSON object per line");
}

// The option `name` ("--home", "-v"; without "=VALUE") of `command` or of a command above
// it (options fall through to subcommands), or null.
const CLI::Option* FindOption(const CLI::App* command, const std::string& name) {
  for (; command != nullptr; command = command->get_parent()) {
    if (const CLI::Option* option = command->get_option_no_throw(name)) return option;
  }
  return nullptr;
}

// A word in a command's place that names no command. CLI11 would only say "A subcommand
// is required"; this says "sotto: unknown command 'sendd'; did you mean 'send'?". It walks
// the words as CLI11 will: options are skipped (with the value of one that takes a
// value), and each command that needs a subcommand takes the next word as its name.
std::optional<std::string> UnknownCommandMessage(const CLI::App& app, int argc, char** argv) {
  const CLI::App* command = &app;
  std::string path;  // the commands so far, "contacts "
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") return std::nullopt;
    if (word.size() > 1 && word[0] == '-') {
      const std::string name = word.substr(0, word.find('='));
      const CLI::Option* option = FindOption(command, name);
      if (option == nullptr) return std::nullopt;                          // CLI11 reports it
      if (option->get_type_size() > 0 && name.size() == word.size()) ++i;  // its value
      continue;
    }
    if (command->get_require_subcommand_min() == 0) return std::nullopt;  // a positional
    const CLI::App* next = nullptr;
    std::vector<std::string> names;
    for (const CLI::App* sub : command->get_subcommands({})) {
      if (sub->check_name(word)) next = sub;
      names.push_back(sub->get_name());
    }
    if (next == nullptr) {
      std::string message = "sotto: unknown command '";
      message += path;
      message += word;
      message += "'";
      if (auto nearest = NearestCommand(word, names)) {
        message += "; did you mean '";
        message += path;
        message += *nearest;
        message += "'?";
      }
      message += " (`sotto ";
      message += path;
      message += "--help` lists the commands)";
      return message;
    }
    path += next->get_name() + " ";
    command = next;
  }
  return std::nullopt;
}

int Run(int argc, char** argv) {
  CLI::App app{"sotto: end-to-end encrypted messaging from the command line"};
  app.footer(std::string(ExitCodeHelp()) + "\nManual: docs/cli.md");
  app.set_version_flag("--version", "sotto " + std::string(sotto::kVersion) + " (wire version " +
                                        std::to_string(sotto::wire::kWireVersion) + ")");
  app.require_subcommand(1);
  app.fallthrough();
  std::string home_flag;
  app.add_option("--home", home_flag,
                 "account directory (default: $SOTTO_HOME, else ~/.local/share/sotto)");
  Verbosity verbosity = Verbosity::kQuiet;
  app.add_flag_callback(
      "-v,--verbose", [&verbosity] { verbosity = Verbosity::kVerbose; },
      "also print connection changes and the SDK's debug log on stderr");
  Action action;

  RegisterArgs register_args;
  auto* reg = app.add_subcommand("register", "ask the server for a verification code");
  reg->add_option("--server", register_args.server, "server HOST:PORT")->required();
  reg->add_option("--server-key", register_args.server_key,
                  "the server's public key, 64 hex digits (default: trust on first use)");
  reg->add_option("--number", register_args.number, "your phone number, +E164")->required();
  reg->callback(
      [&] { action = [&](const GlobalOptions& g) { return Register(g, register_args); }; });

  std::string code;
  auto* verify = app.add_subcommand("verify", "finish registration with the code received");
  verify->add_option("code", code, "the verification code")->required();
  verify->callback([&] { action = [&](const GlobalOptions& g) { return Verify(g, code); }; });

  SendArgs send_args;
  auto* send = app.add_subcommand("send", "send a text message");
  send->add_option("to", send_args.to, "recipient, +E164")->required();
  auto* text =
      send->add_option("text", send_args.text, "the message (use -- before text starting with -)");
  send->add_flag_callback(
          "--message-stdin", [&] { send_args.source = TextSource::kStdin; },
          "read the message from standard input")
      ->excludes(text);
  AddJsonFlag(*send, send_args.format);
  send->callback([&] {
    // An empty text that was given ("") is refused by Send, naming what is wrong.
    if (send_args.source == TextSource::kArgument && text->count() == 0) {
      throw CLI::ValidationError("send", "give the message text or --message-stdin");
    }
    action = [&](const GlobalOptions& g) { return Send(g, send_args); };
  });

  SendFileArgs send_file_args;
  auto* send_file = app.add_subcommand("send-file", "send a file, end-to-end encrypted");
  send_file->add_option("to", send_file_args.to, "recipient: +E164 or a group")->required();
  send_file->add_option("path", send_file_args.path, "the file")->required()->check(CLI::ExistingFile);
  send_file->add_option("--caption", send_file_args.caption, "text sent with the file");
  send_file->add_option("--mime", send_file_args.mime, "MIME type (default: from the extension)");
  AddJsonFlag(*send_file, send_file_args.format);
  send_file->callback(
      [&] { action = [&](const GlobalOptions& g) { return SendFile(g, send_file_args); }; });

  ReceiveArgs receive_args;
  auto* receive = app.add_subcommand("receive", "print incoming messages, receipts and events");
  auto* receive_timeout =
      receive
          ->add_option_function<uint32_t>(
              "--timeout",
              [&](uint32_t seconds) {
                receive_args.timeout_s = seconds;
                receive_args.mode =
                    seconds == 0 ? ReceiveMode::kUntilDrained : ReceiveMode::kForTimeout;
              },
              "listen this many seconds (0, the default: until the server's queue is drained)")
          ->check(CLI::Range(0, 24 * 3600));
  receive
      ->add_flag_callback(
          "--follow", [&] { receive_args.mode = ReceiveMode::kFollow; },
          "keep listening until interrupted (Ctrl-C)")
      ->excludes(receive_timeout);
  AddJsonFlag(*receive, receive_args.format);
  receive->callback(
      [&] { action = [&](const GlobalOptions& g) { return Receive(g, receive_args); }; });

  MessagesArgs messages_args;
  auto* messages =
      app.add_subcommand("messages", "show a conversation, oldest first, and mark it read");
  messages->add_option("with", messages_args.with, "the contact (+E164) or a group (id, id prefix or name)")->required();
  messages->add_option("--limit", messages_args.limit, "newest messages to show")
      ->check(CLI::Range(size_t{1}, kMaxConversationLimit))
      ->default_str(std::to_string(kDefaultConversationLimit));
  messages->add_flag_callback(
      "--no-mark-read", [&] { messages_args.mark_read = MarkReadPolicy::kLeaveUnread; },
      "do not mark the conversation read (no read receipts)");
  AddJsonFlag(*messages, messages_args.format);
  messages->callback(
      [&] { action = [&](const GlobalOptions& g) { return Messages(g, messages_args); }; });

  SearchArgs search_args;
  auto* search = app.add_subcommand("search", "full-text search over all messages");
  search->add_option("words", search_args.words, "words to find (each as a prefix)")->required();
  search->add_option("--limit", search_args.limit, "hits to show, newest first")
      ->check(CLI::Range(size_t{1}, sotto::client::kMaxSearchResults))
      ->default_str(std::to_string(kDefaultSearchLimit));
  AddJsonFlag(*search, search_args.format);
  search->callback(
      [&] { action = [&](const GlobalOptions& g) { return Search(g, search_args); }; });

  SafetyNumberArgs safety_args;
  auto* safety = app.add_subcommand("safety-number", "show the safety number with a contact");
  safety->add_option("with", safety_args.with, "the contact, +E164")->required();
  safety->add_flag_callback(
      "--qr", [&] { safety_args.qr = QrDisplay::kShow; }, "also show it as a QR code to scan");
  safety->add_flag_callback(
      "--invert", [&] { safety_args.palette = QrPalette::kLightBackground; },
      "draw the QR code for a terminal with a light background");
  AddJsonFlag(*safety, safety_args.format);
  safety->callback(
      [&] { action = [&](const GlobalOptions& g) { return ShowSafetyNumber(g, safety_args); }; });

  VerifyContactArgs verify_contact_args;
  auto* verify_contact = app.add_subcommand(
      "verify-contact", "mark a contact verified after comparing safety numbers");
  verify_contact->add_option("with", verify_contact_args.with, "the contact, +E164")->required();
  verify_contact->add_option("--safety-number", verify_contact_args.safety_number,
                             "the digits the contact sees (spaces ignored): must match");
  verify_contact->callback([&] {
    action = [&](const GlobalOptions& g) { return VerifyContact(g, verify_contact_args); };
  });

  std::string trust_with;
  auto* trust = app.add_subcommand("trust", "accept a contact's changed identity key");
  trust->add_option("with", trust_with, "the contact, +E164")->required();
  trust->callback([&] { action = [&](const GlobalOptions& g) { return Trust(g, trust_with); }; });

  auto* contacts = app.add_subcommand("contacts", "manage contacts");
  contacts->require_subcommand(1);
  ContactsAddArgs add_args;
  auto* contacts_add = contacts->add_subcommand("add", "add a contact (looked up on the server)");
  contacts_add->add_option("number", add_args.number, "+E164")->required();
  contacts_add->add_option("--name", add_args.name, "display name");
  contacts_add->callback(
      [&] { action = [&](const GlobalOptions& g) { return ContactsAdd(g, add_args); }; });
  OutputFormat list_format = OutputFormat::kText;
  auto* contacts_list = contacts->add_subcommand("list", "list contacts");
  AddJsonFlag(*contacts_list, list_format);
  contacts_list->callback(
      [&] { action = [&](const GlobalOptions& g) { return ContactsList(g, list_format); }; });

  PresenceArgs presence_args;
  auto* presence = app.add_subcommand("presence", "show whether a contact is online");
  presence->add_option("with", presence_args.with, "the contact, +E164")->required();
  AddJsonFlag(*presence, presence_args.format);
  presence->callback(
      [&] { action = [&](const GlobalOptions& g) { return ShowPresence(g, presence_args); }; });

  std::string visibility;
  auto* privacy = app.add_subcommand("privacy", "privacy settings");
  privacy->add_option("--presence", visibility, "who sees your presence")
      ->required()
      ->check(CLI::IsMember({"everyone", "contacts", "nobody"}));
  privacy->callback([&] {
    action = [&](const GlobalOptions& g) { return SetPresenceVisibility(g, visibility); };
  });

  TypingArgs typing_args;
  auto* typing = app.add_subcommand("typing", "send a typing indicator");
  typing->add_option("with", typing_args.with, "the contact, +E164")->required();
  typing->add_flag_callback(
      "--stop", [&] { typing_args.typing = TypingState::kStopped; }, "stopped typing");
  typing->callback(
      [&] { action = [&](const GlobalOptions& g) { return SendTyping(g, typing_args); }; });

  OutputFormat status_format = OutputFormat::kText;
  auto* status = app.add_subcommand("status", "account, server reachability, queued messages");
  AddJsonFlag(*status, status_format);
  status->callback(
      [&] { action = [&](const GlobalOptions& g) { return ShowStatus(g, status_format); }; });

  // Linked devices (docs/devices.md).
  LinkArgs link_args;
  auto* link = app.add_subcommand("link", "make this home a companion device of an account");
  link->add_option("--server", link_args.server, "server HOST:PORT")->required();
  link->add_option("--server-key", link_args.server_key,
                   "the server's public key, 64 hex digits (default: trust on first use)");
  link->add_option("--timeout", link_args.timeout_s, "seconds to wait for link-approve")
      ->check(CLI::Range(1u, kMaxLinkTimeoutS))
      ->default_str(std::to_string(kDefaultLinkTimeoutS));
  link->add_flag_callback(
      "--invert", [&] { link_args.palette = QrPalette::kLightBackground; },
      "draw the QR code for a terminal with a light background");
  link->callback([&] { action = [&](const GlobalOptions& g) { return Link(g, link_args); }; });

  LinkApproveArgs approve_args;
  auto* approve = app.add_subcommand("link-approve", "on the primary: approve a new companion");
  approve->add_option("code", approve_args.code, "the code `sotto link` shows")->required();
  approve->add_option("--timeout", approve_args.timeout_s, "seconds to wait for the companion")
      ->check(CLI::Range(1u, kMaxLinkTimeoutS))
      ->default_str(std::to_string(kDefaultLinkTimeoutS));
  approve->callback(
      [&] { action = [&](const GlobalOptions& g) { return LinkApprove(g, approve_args); }; });

  OutputFormat devices_format = OutputFormat::kText;
  auto* devices = app.add_subcommand("devices", "list this account's devices");
  AddJsonFlag(*devices, devices_format);
  devices->callback(
      [&] { action = [&](const GlobalOptions& g) { return ListDevices(g, devices_format); }; });

  uint32_t unlink_id = 0;
  auto* unlink = app.add_subcommand(
      "unlink", "remove a device (the primary: any companion; a companion: itself)");
  unlink->add_option("device", unlink_id, "device id (see `sotto devices`)")
      ->required()
      ->check(CLI::Range(2u, 1'000'000u));
  unlink->callback(
      [&] { action = [&](const GlobalOptions& g) { return UnlinkDevice(g, unlink_id); }; });

  AddGroupCommands(app, action);

  DaemonArgs daemon_args;
  auto* daemon = app.add_subcommand("daemon", "serve JSON-RPC 2.0 on a Unix socket");
  daemon->add_option("--socket", daemon_args.socket, "socket path (default: HOME/daemon.sock)");
  daemon->callback(
      [&] { action = [&](const GlobalOptions& g) { return RunDaemon(g, daemon_args); }; });

  if (auto unknown = UnknownCommandMessage(app, argc, argv)) {
    std::cerr << *unknown << "\n";
    return ToInt(ExitCode::kUsage);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with exit code 0; everything else is usage.
    return app.exit(e) == 0 ? ToInt(ExitCode::kOk) : ToInt(ExitCode::kUsage);
  }
  // No other thread exists yet to race getenv.
  const char* sotto_home = std::getenv("SOTTO_HOME");  // NOLINT(concurrency-mt-unsafe)
  const char* user_home = std::getenv("HOME");         // NOLINT(concurrency-mt-unsafe)
  const auto home = ResolveHome(home_flag, sotto_home, user_home);
  if (!home) {
    std::cerr << "sotto: no home directory: give --home or set SOTTO_HOME or HOME\n";
    return ToInt(ExitCode::kUsage);
  }
  if (daemon_args.socket.empty()) daemon_args.socket = *home / "daemon.sock";
  // The SDK logs warnings (expected trouble) and errors; lifecycle only when asked.
  spdlog::set_level(verbosity == Verbosity::kVerbose ? spdlog::level::debug : spdlog::level::warn);
  return ToInt(action(GlobalOptions{*home, verbosity}));
}

}  // namespace

int main(int argc, char** argv) {
  // A peer's malformed content must not print a libprotobuf line per message.
  sotto::wire::InstallProtobufLogHandler();
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "sotto: internal error: " << e.what() << "\n";
    return ToInt(ExitCode::kError);
  }
}
