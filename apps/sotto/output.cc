#include "apps/sotto/output.h"

#include <ctime>
#include <type_traits>

#include "base/bytes.h"

namespace sotto::cli {
namespace {

using nlohmann::json;

constexpr size_t kSafetyGroup = 5;
constexpr size_t kSafetyGroupsPerLine = 4;
constexpr uint32_t kPrimaryDevice = 1;  // device 1 of every account (docs/devices.md)

// A JSON null when the handle is not known (a sender that is not a contact yet).
json HandleOrNull(std::string_view handle) { return handle.empty() ? json(nullptr) : json(handle); }
// A contact's display name, or null when the user gave it none.
json TextOrNull(std::string_view text) { return text.empty() ? json(nullptr) : json(text); }

std::string_view DirectionName(client::MessageDirection direction) {
  switch (direction) {
    case client::MessageDirection::kIncoming:
      return "incoming";
    case client::MessageDirection::kOutgoing:
      return "outgoing";
  }
  return "incoming";
}

std::string SafeName(std::string_view handle, std::string_view peer) {
  return SanitizeForTerminal(DisplayName(handle, peer));
}

// A contact as a person reads it: "Bob (+4915187654321)", or SafeName without a name.
std::string SafeLabel(std::string_view name, std::string_view handle, std::string_view peer) {
  return SanitizeForTerminal(ContactLabel(name, handle, peer));
}

void AppendHex(std::string& out, unsigned value, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4) out += kHex[(value >> shift) & 0xf];
}

// --- Group events: people by number and contact name, ids kept in JSON ------------------

// Digits of an account id shown when neither a number nor a name is known.
constexpr size_t kShortAccountId = 8;

json GroupPersonJson(const client::GroupPerson& p) {
  return {{"peer", p.account},
          {"number", HandleOrNull(p.handle)},
          {"name", p.name.empty() ? json(nullptr) : json(p.name)},
          {"you", p.self}};
}

// "you", "Name (+E164)", "+E164", or "account 1a2b3c4d" (sanitized).
std::string GroupPersonText(const client::GroupPerson& p) {
  if (p.self) return "you";
  if (!p.name.empty() && !p.handle.empty()) {
    return SanitizeForTerminal(p.name) + " (" + SanitizeForTerminal(p.handle) + ")";
  }
  if (!p.name.empty()) return SanitizeForTerminal(p.name);
  if (!p.handle.empty()) return SanitizeForTerminal(p.handle);
  return "account " + SanitizeForTerminal(p.account.substr(0, kShortAccountId));
}

json GroupEventJson(const client::GroupEvent& e) {
  json people = json::array();
  for (const client::GroupPerson& p : e.people) people.push_back(GroupPersonJson(p));
  return {{"group", e.group_id},
          {"action", e.action},
          {"actor", e.actor},
          {"accounts", e.accounts},
          {"version", e.version},
          {"member", e.member},
          {"by", e.actor.empty() ? json(nullptr) : GroupPersonJson(e.by)},
          {"people", std::move(people)}};
}

// "group 3f9c0a1b: Alice (+4915...) added Bob (+4915...), +4915..."
std::string GroupEventText(const client::GroupEvent& e) {
  std::string people;
  for (const client::GroupPerson& p : e.people) {
    if (!people.empty()) people += ", ";
    people += GroupPersonText(p);
  }
  const std::string by = e.actor.empty() ? "someone" : GroupPersonText(e.by);
  std::string what;
  if (e.action == "create") {
    what = "created the group" + (people.empty() ? "" : " with " + people);
  } else if (e.action == "add") {
    what = "added " + people;
  } else if (e.action == "remove") {
    what = "removed " + people;
  } else if (e.action == "leave") {
    what = "left";
  } else if (e.action == "promote") {
    what = "made " + people + " admin";
  } else if (e.action == "demote") {
    what = "took admin from " + people;
  } else if (e.action == "rename") {
    what = "renamed the group";
  } else {
    what = "changed the group";
  }
  std::string line = "group " + SanitizeForTerminal(e.group_id.substr(0, kShortAccountId)) + ": " +
                     by + " " + what;
  if (!e.member) line += " (you are not a member)";
  return line;
}

}  // namespace

std::string FormatTime(uint64_t unix_ms, TimeZoneChoice zone) {
  const auto seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm parts{};
  const bool ok = zone == TimeZoneChoice::kUtc ? gmtime_r(&seconds, &parts) != nullptr
                                               : localtime_r(&seconds, &parts) != nullptr;
  if (!ok) return "?";
  char text[32];
  if (std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &parts) == 0) return "?";
  return text;
}

std::string_view TickMark(client::Tick tick) {
  switch (tick) {
    case client::Tick::kPending:
      return "\u2026";
    case client::Tick::kSent:
      return "\u2713";
    case client::Tick::kDelivered:
      return "\u2713\u2713";
    case client::Tick::kRead:
      return "\u2713\u2713 read";
    case client::Tick::kBlocked:
      return "held";
  }
  return "?";
}

std::string SanitizeForTerminal(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if ((byte < 0x20 && byte != '\n' && byte != '\t') || byte == 0x7f) {
      out += "\\x";
      AppendHex(out, byte, 2);
    } else if (byte == 0xc2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      // U+0080..U+009F: C1 controls such as CSI, which terminals also obey.
      out += "\\u00";
      AppendHex(out, static_cast<unsigned char>(text[i + 1]), 2);
      ++i;
    } else {
      out += static_cast<char>(byte);
    }
  }
  return out;
}

std::string DisplayName(std::string_view handle, std::string_view peer) {
  if (!handle.empty()) return std::string(handle);
  return "account " + std::string(peer);
}

std::string ContactLabel(std::string_view name, std::string_view handle, std::string_view peer) {
  if (name.empty()) return DisplayName(handle, peer);
  return std::string(name) + " (" + DisplayName(handle, peer) + ")";
}

std::string_view EventType(const client::Event& event) {
  return std::visit(
      [](const auto& e) -> std::string_view {
        using E = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<E, client::MessageEvent>) return "message";
        if constexpr (std::is_same_v<E, client::ReceiptEvent>) return "receipt";
        if constexpr (std::is_same_v<E, client::TypingEvent>) return "typing";
        if constexpr (std::is_same_v<E, client::PresenceEvent>) return "presence";
        if constexpr (std::is_same_v<E, client::IdentityChangedEvent>) return "identityChanged";
        if constexpr (std::is_same_v<E, client::ConnectionEvent>) return "connection";
        if constexpr (std::is_same_v<E, client::DecryptionFailedEvent>) return "decryptionFailed";
        if constexpr (std::is_same_v<E, client::GroupEvent>) return "group";
      },
      event);
}

// The attachment of a message, or null.
json AttachmentJson(const std::optional<client::AttachmentInfo>& a) {
  if (!a) return nullptr;
  return {{"path", a->local_path.empty() ? json(nullptr) : json(a->local_path)},
          {"size", a->size},
          {"type", a->content_type},
          {"name", a->file_name},
          {"state", client::AttachmentStateName(a->state)}};
}

// " [file NAME, SIZE bytes, TYPE: saved at PATH]", or "" without an attachment.
std::string AttachmentText(const std::optional<client::AttachmentInfo>& a) {
  if (!a) return "";
  std::string out = " [file " + SanitizeForTerminal(a->file_name) + ", " + std::to_string(a->size) +
                    " bytes, " + SanitizeForTerminal(a->content_type) + ": ";
  switch (a->state) {
    case client::AttachmentState::kSaved: out += "saved at " + SanitizeForTerminal(a->local_path); break;
    case client::AttachmentState::kSent: out += "sent from " + SanitizeForTerminal(a->local_path); break;
    case client::AttachmentState::kPending: out += "not downloaded yet"; break;
    case client::AttachmentState::kRejected: out += "REJECTED (failed verification)"; break;
  }
  return out + "]";
}

json MessageEventJson(const client::MessageEvent& event) {
  const client::StoredMessage& message = event.message;
  const bool outgoing = message.direction == client::MessageDirection::kOutgoing;
  const bool group = !message.group_id.empty();
  json out = {{"peer", message.peer},
              {"name", TextOrNull(event.name)},
              {"id", message.message_id},
              {"direction", DirectionName(message.direction)},
              {"outgoing", outgoing},
              {"body", message.body},
              {"sentAt", message.sent_ms},
              {"untrusted", message.untrusted_identity},
              {"attachment", AttachmentJson(message.attachment)}};
  if (!outgoing) {
    out["from"] = HandleOrNull(event.handle);
    out["device"] = message.peer_device;
  } else if (!group) {
    out["to"] = HandleOrNull(event.handle);
  }
  if (group) {
    out["group"] = message.group_id;
    out["sender"] = message.group_sender;
  }
  return out;
}

std::string MessageEventText(const client::MessageEvent& event, TimeZoneChoice zone) {
  const client::StoredMessage& message = event.message;
  const bool group = !message.group_id.empty();
  std::string line = message.untrusted_identity ? "[UNTRUSTED IDENTITY] " : "";
  if (group) line += "[group " + message.group_id.substr(0, 8) + "] ";
  switch (message.direction) {
    case client::MessageDirection::kIncoming:
      line += SafeLabel(event.name, event.handle, group ? message.group_sender : message.peer) +
              " (device " + std::to_string(message.peer_device) + ")";
      break;
    case client::MessageDirection::kOutgoing:
      // Sent from another device of this account: ours, not the contact's.
      line += group ? "me (device " + std::to_string(message.peer_device) + ")"
                    : "me \u2192 " + SafeLabel(event.name, event.handle, message.peer);
      break;
  }
  return line + " at " + FormatTime(message.sent_ms, zone) + ": " +
         SanitizeForTerminal(message.body) + AttachmentText(message.attachment);
}

json EventJson(const client::Event& event) {
  json out = std::visit(
      [](const auto& e) -> json {
        using E = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<E, client::MessageEvent>) {
          return MessageEventJson(e);
        } else if constexpr (std::is_same_v<E, client::ReceiptEvent>) {
          json r = {{"from", HandleOrNull(e.handle)},
                    {"name", TextOrNull(e.name)},
                    {"peer", e.peer},
                    {"id", e.message_id},
                    {"status", client::TickName(e.tick)}};
          if (!e.group_id.empty()) {
            r["group"] = e.group_id;
            r["all"] = e.all;
          }
          return r;
        } else if constexpr (std::is_same_v<E, client::TypingEvent>) {
          return {{"from", HandleOrNull(e.handle)},
                  {"name", TextOrNull(e.name)},
                  {"peer", e.peer},
                  {"typing", e.typing}};
        } else if constexpr (std::is_same_v<E, client::PresenceEvent>) {
          return {{"from", HandleOrNull(e.handle)},
                  {"name", TextOrNull(e.name)},
                  {"peer", e.peer},
                  {"online", e.online},
                  {"lastSeen", e.last_seen_ms}};
        } else if constexpr (std::is_same_v<E, client::IdentityChangedEvent>) {
          return {{"from", HandleOrNull(e.handle)}, {"name", TextOrNull(e.name)}, {"peer", e.peer}};
        } else if constexpr (std::is_same_v<E, client::DecryptionFailedEvent>) {
          return {{"from", HandleOrNull(e.handle)},
                  {"name", TextOrNull(e.name)},
                  {"peer", e.peer},
                  {"device", e.device}};
        } else if constexpr (std::is_same_v<E, client::GroupEvent>) {
          return GroupEventJson(e);
        } else {
          static_assert(std::is_same_v<E, client::ConnectionEvent>);
          return {{"connected", e.connected}};
        }
      },
      event);
  out["type"] = EventType(event);
  return out;
}

std::string EventText(const client::Event& event, TimeZoneChoice zone) {
  return std::visit(
      [zone](const auto& e) -> std::string {
        using E = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<E, client::MessageEvent>) {
          return MessageEventText(e, zone);
        } else if constexpr (std::is_same_v<E, client::ReceiptEvent>) {
          return "receipt: message " + SanitizeForTerminal(e.message_id) + " to " +
                 SafeLabel(e.name, e.handle, e.peer) + " " + std::string(client::TickName(e.tick));
        } else if constexpr (std::is_same_v<E, client::TypingEvent>) {
          return SafeLabel(e.name, e.handle, e.peer) +
                 (e.typing ? " is typing" : " stopped typing");
        } else if constexpr (std::is_same_v<E, client::PresenceEvent>) {
          if (e.online) return SafeLabel(e.name, e.handle, e.peer) + " is online";
          return SafeLabel(e.name, e.handle, e.peer) + " is offline, last seen " +
                 FormatTime(e.last_seen_ms, zone);
        } else if constexpr (std::is_same_v<E, client::IdentityChangedEvent>) {
          // The commands take the number; the label is for the person reading.
          const std::string number = SafeName(e.handle, e.peer);
          return "SAFETY NUMBER CHANGED for " + SafeLabel(e.name, e.handle, e.peer) +
                 ": messages to it are held; compare safety numbers (sotto safety-number " +
                 number + "), then run `sotto trust " + number + "`";
        } else if constexpr (std::is_same_v<E, client::DecryptionFailedEvent>) {
          return "a message from " + SafeLabel(e.name, e.handle, e.peer) + " (device " +
                 std::to_string(e.device) + ") could not be decrypted; ask them to send it again";
        } else if constexpr (std::is_same_v<E, client::GroupEvent>) {
          return GroupEventText(e);
        } else {
          static_assert(std::is_same_v<E, client::ConnectionEvent>);
          return e.connected ? "connected to the server" : "disconnected from the server";
        }
      },
      event);
}

json MessageJson(const client::StoredMessage& message, std::string_view handle,
                 std::string_view name) {
  json out = {{"id", message.message_id},
              {"with", HandleOrNull(handle)},
              {"name", TextOrNull(name)},
              {"peer", message.peer},
              {"direction", DirectionName(message.direction)},
              {"body", message.body},
              {"sentAt", message.sent_ms},
              {"storedAt", message.stored_ms},
              {"status", client::TickName(message.tick)},
              {"untrusted", message.untrusted_identity},
              {"attachment", AttachmentJson(message.attachment)}};
  if (message.direction == client::MessageDirection::kIncoming) {
    out["device"] = message.peer_device;
  }
  if (!message.group_id.empty()) {
    out["group"] = message.group_id;
    out["sender"] = message.group_sender;
  }
  return out;
}

std::string MessageText(const client::StoredMessage& message, std::string_view handle,
                        TimeZoneChoice zone, std::string_view contact_name) {
  std::string line = "[" + FormatTime(message.sent_ms, zone) + "] ";
  const std::string name = SafeLabel(
      contact_name, handle, message.group_id.empty() ? message.peer : message.group_sender);
  switch (message.direction) {
    case client::MessageDirection::kOutgoing:
      line += "me \u2192 " + name + ": " + SanitizeForTerminal(message.body) +
              AttachmentText(message.attachment) + "  " + std::string(TickMark(message.tick));
      break;
    case client::MessageDirection::kIncoming:
      line += name + " (device " + std::to_string(message.peer_device) + ")";
      if (message.untrusted_identity) line += " [UNTRUSTED IDENTITY]";
      line += ": " + SanitizeForTerminal(message.body) + AttachmentText(message.attachment);
      break;
  }
  return line;
}

json SearchHitJson(const client::SearchHit& hit, std::string_view handle, std::string_view name) {
  json out = MessageJson(hit.message, handle, name);
  out["snippet"] = hit.snippet;
  return out;
}

std::string SearchHitText(const client::SearchHit& hit, std::string_view handle,
                          TimeZoneChoice zone, std::string_view contact_name) {
  const std::string name = SafeLabel(contact_name, handle, hit.message.peer);
  const bool outgoing = hit.message.direction == client::MessageDirection::kOutgoing;
  return "[" + FormatTime(hit.message.sent_ms, zone) + "] " + (outgoing ? "me \u2192 " : "") +
         name + (outgoing ? "" : " \u2192 me") + ": " + SanitizeForTerminal(hit.snippet);
}

json ContactJson(const client::Contact& contact) {
  return {{"number", contact.handle},
          {"name", contact.name},
          {"peer", contact.account_id},
          {"addedAt", contact.added_ms}};
}

std::string ContactText(const client::Contact& contact) {
  std::string line = SanitizeForTerminal(contact.handle);
  if (!contact.name.empty()) line += "  " + SanitizeForTerminal(contact.name);
  return line;
}

json DeviceJson(const client::LinkedDevice& device) {
  return {{"device", device.device_id},
          {"state", DeviceState(device)},
          {"primary", device.device_id == kPrimaryDevice},
          {"thisDevice", device.this_device},
          {"createdAt", device.created_ms}};
}

std::string_view DeviceState(const client::LinkedDevice& device) {
  if (device.pending) return "pending";
  return device.listed ? "linked" : "unverified";
}

std::string DeviceText(const client::LinkedDevice& device) {
  return "device " + std::to_string(device.device_id) +
         (device.device_id == kPrimaryDevice ? " (primary)" : "") + "  " +
         std::string(DeviceState(device)) + (device.this_device ? "  (this device)" : "");
}

std::string FormatSafetyDigits(std::string_view digits) {
  std::string out;
  size_t group = 0;
  for (size_t i = 0; i < digits.size(); i += kSafetyGroup, ++group) {
    if (group > 0) out += group % kSafetyGroupsPerLine == 0 ? '\n' : ' ';
    out += SanitizeForTerminal(digits.substr(i, kSafetyGroup));
  }
  if (!out.empty()) out += '\n';
  return out;
}

json SafetyNumberJson(const client::SafetyNumber& number) {
  return {{"digits", number.displayable},
          {"verified", number.verified},
          {"pendingChange", number.pending_change},
          {"scannable", ToHex(number.scannable)}};
}

std::string SafetyNumberText(const client::SafetyNumber& number, std::string_view handle) {
  std::string out = "Safety number with " + SanitizeForTerminal(handle) + ":\n";
  out += FormatSafetyDigits(number.displayable);
  out += number.verified ? "verified\n" : "not verified\n";
  if (number.pending_change) {
    out += "WARNING: this number uses a NEW identity key of " + SanitizeForTerminal(handle) +
           " that you have not accepted yet. Compare it in person or over a call, then run "
           "`sotto trust " +
           SanitizeForTerminal(handle) + "` (or `sotto verify-contact`).\n";
  }
  return out;
}

json PresenceJson(const client::Presence& presence, std::string_view handle) {
  return {{"from", HandleOrNull(handle)},
          {"online", presence.online},
          {"lastSeen", presence.last_seen_ms}};
}

std::string PresenceText(const client::Presence& presence, TimeZoneChoice zone) {
  if (presence.online) return "online";
  if (presence.last_seen_ms == 0) return "offline, never seen";
  return "last seen " + FormatTime(presence.last_seen_ms, zone);
}

// --- Groups ------------------------------------------------------------------------------

json GroupJson(const client::GroupDetails& group) {
  json members = json::array();
  for (const client::GroupMemberInfo& m : group.members) {
    members.push_back({{"peer", m.account_id},
                       {"number", HandleOrNull(m.handle)},
                       {"admin", m.admin},
                       {"identityChanged", m.identity_changed},
                       {"hasOurKey", m.has_our_key}});
  }
  return {{"id", group.id},         {"name", group.name},     {"description", group.description},
          {"version", group.version}, {"member", group.member}, {"admin", group.admin},
          {"members", std::move(members)}};
}

std::string GroupLine(const client::GroupDetails& group) {
  std::string line = group.id + "  " + SanitizeForTerminal(group.name) + "  (" +
                     std::to_string(group.members.size()) + " members";
  if (group.admin) line += ", admin";
  if (!group.member) line += ", left";
  return line + ")";
}

namespace {

size_t CountReceipts(const std::vector<client::GroupReceipt>& receipts, bool read) {
  size_t n = 0;
  for (const client::GroupReceipt& r : receipts) n += (read ? r.read_ms : r.delivered_ms) != 0 ? 1 : 0;
  return n;
}

}  // namespace

json GroupInfoJson(const client::GroupDetails& group,
                   const std::vector<GroupMessageReceipts>& recent) {
  json out = GroupJson(group);
  json messages = json::array();
  for (const GroupMessageReceipts& m : recent) {
    messages.push_back({{"id", m.message.message_id},
                        {"body", m.message.body},
                        {"status", client::TickName(m.message.tick)},
                        {"delivered", CountReceipts(m.receipts, false)},
                        {"read", CountReceipts(m.receipts, true)},
                        {"recipients", m.receipts.size()}});
  }
  out["messages"] = std::move(messages);
  return out;
}

std::string GroupInfoText(const client::GroupDetails& group,
                          const std::vector<GroupMessageReceipts>& recent, TimeZoneChoice zone) {
  std::string out = "group " + group.id + "\nname: " + SanitizeForTerminal(group.name) + "\n";
  if (!group.description.empty()) {
    out += "description: " + SanitizeForTerminal(group.description) + "\n";
  }
  out += "version " + std::to_string(group.version) +
         (group.member ? "" : " (you are no longer a member)") + "\nmembers:\n";
  for (const client::GroupMemberInfo& m : group.members) {
    out += "  " + SafeName(m.handle, m.account_id) + (m.admin ? "  admin" : "") +
           (m.identity_changed ? "  SAFETY NUMBER CHANGED (gets no key until `sotto trust`)" : "") +
           "\n";
  }
  if (!recent.empty()) out += "your recent messages:\n";
  for (const GroupMessageReceipts& m : recent) {
    out += "  [" + FormatTime(m.message.sent_ms, zone) + "] " + m.message.message_id + " " +
           std::string(TickMark(m.message.tick)) + "  delivered " +
           std::to_string(CountReceipts(m.receipts, false)) + "/" +
           std::to_string(m.receipts.size()) + ", read " +
           std::to_string(CountReceipts(m.receipts, true)) + "/" +
           std::to_string(m.receipts.size()) + "\n";
  }
  return out;
}

}  // namespace sotto::cli
