// How `sotto` shows SDK events and stored data: one line of text for a person, or one
// JSON object for scripts (`--json`, and the daemon's notification params). Shared by
// the commands and the daemon so that both print the same fields. The JSON field names
// are an interface: docs/cli.md lists them.
//
// Text output passes every peer-controlled string through SanitizeForTerminal, so a
// message cannot carry terminal escape sequences to the user's screen.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/client.h"
#include "client/local_store.h"

namespace sotto::cli {

enum class TimeZoneChoice : uint8_t { kLocal, kUtc };

// "YYYY-MM-DD HH:MM:SS" for a Unix time in milliseconds.
std::string FormatTime(uint64_t unix_ms, TimeZoneChoice zone);

// What a person sees next to an outgoing message: "…", "✓", "✓✓", "✓✓ read", "held".
std::string_view TickMark(client::Tick tick);

// Escapes C0/C1 control characters except newline and tab as \xNN (or \u00NN).
std::string SanitizeForTerminal(std::string_view text);

// The handle when known, else "account " and the account id.
std::string DisplayName(std::string_view handle, std::string_view peer);
// A contact for a person to read: "NAME (DisplayName)" when the user gave it a name
// (`contacts add --name`), else DisplayName. Not sanitized.
std::string ContactLabel(std::string_view name, std::string_view handle, std::string_view peer);

// --- Events (EventSink) ----------------------------------------------------------------
// "message", "receipt", "typing", "presence", "identityChanged", "connection": the
// JSON "type" field and the daemon's notification method.
std::string_view EventType(const client::Event& event);
nlohmann::json EventJson(const client::Event& event);
// One line without '\n'.
std::string EventText(const client::Event& event, TimeZoneChoice zone);
// The "message" event: an incoming message has "from" (the sender's number) and "device";
// one this account sent from another of its devices has "outgoing": true and "to" (the
// recipient's number; none for a group). Both: "direction", "name" (the contact's display
// name or null), "peer", "id", "body", "sentAt", "untrusted", "attachment", and "group" and
// "sender" for group messages. Text: "NAME (device N) at TIME: BODY" or "me → NAME at ...".
nlohmann::json MessageEventJson(const client::MessageEvent& event);
std::string MessageEventText(const client::MessageEvent& event, TimeZoneChoice zone);

// --- Stored data -------------------------------------------------------------------------
// A message of the conversation with `handle`, whose display name is `name` (empty: none;
// JSON "name" is then null).
nlohmann::json MessageJson(const client::StoredMessage& message, std::string_view handle,
                           std::string_view name = {});
std::string MessageText(const client::StoredMessage& message, std::string_view handle,
                        TimeZoneChoice zone, std::string_view contact_name = {});
nlohmann::json SearchHitJson(const client::SearchHit& hit, std::string_view handle,
                             std::string_view name = {});
std::string SearchHitText(const client::SearchHit& hit, std::string_view handle,
                          TimeZoneChoice zone, std::string_view contact_name = {});
nlohmann::json ContactJson(const client::Contact& contact);
std::string ContactText(const client::Contact& contact);

// One device of this account, the same object in `devices --json` and the daemon's
// "devices": {"device", "state", "primary", "thisDevice", "createdAt"}.
nlohmann::json DeviceJson(const client::LinkedDevice& device);
std::string_view DeviceState(const client::LinkedDevice& device);  // pending|linked|unverified
// "device N (primary)  linked  (this device)".
std::string DeviceText(const client::LinkedDevice& device);

// The 60 digits as Signal shows them: 12 groups of 5, 4 groups per line, 3 lines, each
// ending in '\n'. Other lengths are grouped the same way.
std::string FormatSafetyDigits(std::string_view digits);
nlohmann::json SafetyNumberJson(const client::SafetyNumber& number);
std::string SafetyNumberText(const client::SafetyNumber& number, std::string_view handle);

nlohmann::json PresenceJson(const client::Presence& presence, std::string_view handle);
std::string PresenceText(const client::Presence& presence, TimeZoneChoice zone);

// --- Groups ------------------------------------------------------------------------------
// One of our group messages with its per-member receipts (for `group info`).
struct GroupMessageReceipts {
  client::StoredMessage message;
  std::vector<client::GroupReceipt> receipts;
};
// {"id", "name", "description", "version", "member", "admin", "members": [{"peer",
// "number", "admin", "identityChanged"}]}
nlohmann::json GroupJson(const client::GroupDetails& group);
// "ID  NAME  (N members[, admin][, left])" for `group list`.
std::string GroupLine(const client::GroupDetails& group);
// GroupJson plus "messages": [{"id", "body", "status", "delivered", "read", "recipients"}].
nlohmann::json GroupInfoJson(const client::GroupDetails& group,
                             const std::vector<GroupMessageReceipts>& recent);
// Several lines, each ending in '\n'.
std::string GroupInfoText(const client::GroupDetails& group,
                          const std::vector<GroupMessageReceipts>& recent, TimeZoneChoice zone);

}  // namespace sotto::cli
