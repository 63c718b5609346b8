// The `sotto daemon` protocol without its I/O: JSON-RPC 2.0, one JSON text per line
// ('\n'-terminated, a trailing '\r' is ignored) in both directions. This file splits a
// byte stream into bounded lines, parses and validates requests into typed calls, and
// builds response and notification lines. The socket loop is daemon.h; the methods and
// their parameters are documented in docs/cli.md ("JSON-RPC").
//
// Untrusted input: every byte a socket client sends goes through LineFramer and
// ParseRequest/ParseCall, which never throw and bound line length and nesting depth
// (fuzz/json_rpc_fuzz.cc). Batch requests (arrays) are refused with -32600.
//
// Thread-safety: LineFramer is externally synchronized; the functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "apps/sotto/exit_code.h"

namespace sotto::cli {

inline constexpr size_t kMaxRpcLineBytes = size_t{64} * 1024;  // one request line, without '\n'
inline constexpr size_t kMaxRpcClients = 64;                   // socket clients at once
inline constexpr size_t kMaxRpcPendingBytes = size_t{4} * 1024 * 1024;  // unread output per client
// Notifications kept while no client is connected, replayed to the next one to connect
// (the oldest are dropped past it; every message is also in the local store).
inline constexpr size_t kMaxHeldNotifications = 10'000;
inline constexpr int kMaxRpcDepth = 32;                                 // arrays/objects nested
inline constexpr size_t kDefaultConversationLimit = 50;
inline constexpr size_t kMaxConversationLimit = 10'000;
inline constexpr size_t kDefaultSearchLimit = 20;

// What is wrong with `text` as a message's text, for a usage error (exit 2, -32602):
// empty, longer than client::kMaxBodyBytes (the message names the limit in bytes), or
// not UTF-8. nullopt if it can be sent. Shared by `send`, `group send` and the daemon.
std::optional<std::string> MessageTextProblem(std::string_view text);

// JSON-RPC 2.0 error codes. Application errors are kAppErrorBase - exit code (so
// -32004 is "server unreachable") with data {"code": <exit code>}.
enum class RpcCode : int {
  kParseError = -32700,
  kInvalidRequest = -32600,
  kMethodNotFound = -32601,
  kInvalidParams = -32602,
  kInternalError = -32603,
};
inline constexpr int kAppErrorBase = -32000;

struct RpcError {
  int code = static_cast<int>(RpcCode::kInternalError);
  std::string message;
  std::optional<ExitCode> exit_code;  // application errors only: data {"code": ...}
};
RpcError MakeRpcError(RpcCode code, std::string message);
RpcError MakeAppError(ExitCode exit_code, std::string message);

template <typename T>
using RpcResult = tl::expected<T, RpcError>;

// Splits a byte stream into lines of at most kMaxRpcLineBytes.
class LineFramer {
 public:
  enum class Outcome : uint8_t { kOk, kLineTooLong };
  // Appends `bytes` and moves every complete line (without "\n" or "\r\n") to `lines`.
  // kLineTooLong once a line passes the limit; the lines before it are still returned,
  // and the framer stays in that state (the connection is to be closed).
  Outcome Feed(std::string_view bytes, std::vector<std::string>& lines);
  size_t buffered() const { return partial_.size(); }

 private:
  std::string partial_;
  bool overflowed_ = false;
};

// True if `text` nests arrays/objects (outside strings) at most `max_depth` deep. Run
// before parsing so that a deeply nested line costs one linear scan.
bool NestingWithin(std::string_view text, int max_depth);

struct RpcRequest {
  std::optional<nlohmann::json> id;  // absent: a notification, which gets no response
  std::string method;
  nlohmann::json params = nlohmann::json::object();  // always an object
};
// A request that could not be parsed; `id` is null unless it could be read.
struct RpcFailure {
  nlohmann::json id;
  RpcError error;
};
// Parses one line: -32700 for bad JSON, -32600 for anything not a single request object
// with "jsonrpc":"2.0", a string "method", a string/number/null "id" if present and an
// object "params" if present (by-position params are -32602).
tl::expected<RpcRequest, RpcFailure> ParseRequest(std::string_view line);

// --- Typed calls: one struct per method, parameters validated -----------------------
enum class MarkReadPolicy : uint8_t { kMarkRead, kLeaveUnread };
enum class TypingState : uint8_t { kStarted, kStopped };

struct SendCall {
  std::string to;
  std::string text;
};
struct SendFileCall {
  std::string to;
  std::string path;
  std::string caption;
  std::string mime;
};
struct MessagesCall {
  std::string with;
  size_t limit = kDefaultConversationLimit;
  MarkReadPolicy mark_read = MarkReadPolicy::kMarkRead;
};
struct SearchCall {
  std::string query;
  size_t limit = kDefaultSearchLimit;
};
struct SafetyNumberCall {
  std::string with;
};
struct VerifyContactCall {
  std::string with;
  std::optional<std::string> safety_number;
};
struct TrustCall {
  std::string with;
};
struct ContactsAddCall {
  std::string number;
  std::string name;
};
struct ContactsListCall {};
struct PresenceCall {
  std::string with;
};
struct SetPresenceVisibilityCall {
  std::string visibility;  // everyone|contacts|nobody
};
struct MarkReadCall {
  std::string with;
};
struct TypingCall {
  std::string with;
  TypingState typing = TypingState::kStarted;
};
struct StatusCall {};
struct VersionCall {};
// Linked devices (docs/devices.md). linkApprove blocks the daemon while it waits.
inline constexpr uint32_t kMaxRpcLinkTimeoutS = 600;
struct LinkApproveCall {
  std::string code;
  uint32_t timeout_s = 120;  // 1..kMaxRpcLinkTimeoutS
};
struct DevicesCall {};
struct UnlinkCall {
  uint32_t device = 0;  // >= 2
};

// Groups: "group" is a group id, a unique id prefix or a unique exact name; member lists
// hold at most kMaxRpcGroupMembers +E164 numbers.
inline constexpr size_t kMaxRpcGroupMembers = 1024;
struct GroupCreateCall {
  std::string name;
  std::vector<std::string> members;
};
enum class GroupMembersOp : uint8_t { kAdd, kRemove };
struct GroupMembersCall {
  GroupMembersOp op = GroupMembersOp::kAdd;
  std::string group;
  std::vector<std::string> members;
};
struct GroupLeaveCall {
  std::string group;
  bool refuse_readd = false;  // "refuseReadd": the group's admins cannot add us again
};
struct GroupAllowReaddCall {
  std::string group;
};
struct GroupAddsCall {
  std::string who;  // everyone, contacts, nobody
};
struct GroupAdminCall {
  std::string group;
  std::string member;
  bool admin = true;
};
struct GroupRenameCall {
  std::string group;
  std::string name;
  std::string description;
};
struct GroupSendCall {
  std::string group;
  std::string text;
};
struct GroupListCall {};
struct GroupInfoCall {
  std::string group;
};
struct GroupMessagesCall {
  std::string group;
  size_t limit = kDefaultConversationLimit;
  MarkReadPolicy mark_read = MarkReadPolicy::kMarkRead;
};

using RpcCall =
    std::variant<SendCall, MessagesCall, SearchCall, SafetyNumberCall, VerifyContactCall, TrustCall,
                 ContactsAddCall, ContactsListCall, PresenceCall, SetPresenceVisibilityCall,
                 MarkReadCall, TypingCall, StatusCall, VersionCall, GroupCreateCall,
                 GroupMembersCall, GroupLeaveCall, GroupAdminCall, GroupRenameCall, GroupSendCall,
                 GroupListCall, GroupInfoCall, GroupMessagesCall, LinkApproveCall, DevicesCall,
                 UnlinkCall, SendFileCall, GroupAllowReaddCall, GroupAddsCall>;

// The typed call for `request`: -32601 for an unknown method, -32602 for a missing,
// mistyped, out-of-range or unknown parameter.
RpcResult<RpcCall> ParseCall(const RpcRequest& request);

// True for the values presence visibility accepts: everyone, contacts, nobody.
bool IsPresenceVisibility(std::string_view visibility);

// --- Output lines (each ends with '\n') ----------------------------------------------
std::string ResultLine(const nlohmann::json& id, const nlohmann::json& result);
std::string ErrorLine(const nlohmann::json& id, const RpcError& error);
std::string NotificationLine(std::string_view method, const nlohmann::json& params);

// Compact JSON plus '\n'. Invalid UTF-8 in strings (a peer's message body) is replaced
// by U+FFFD instead of throwing.
std::string JsonLine(const nlohmann::json& value);

}  // namespace sotto::cli
