#include "apps/sotto/json_rpc.h"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <utility>

#include "client/content.h"
#include "client/local_store.h"

namespace sotto::cli {
namespace {

using nlohmann::json;

constexpr std::string_view kJsonRpcVersion = "2.0";

tl::unexpected<RpcError> InvalidParams(std::string message) {
  return tl::unexpected(MakeRpcError(RpcCode::kInvalidParams, std::move(message)));
}

// Every parameter must be one the method knows: a misspelt optional one would otherwise
// be silently ignored (e.g. "markread": false marking a conversation read).
RpcResult<void> OnlyKnown(const json& params, std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : params.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return InvalidParams("unknown parameter \"" + key + "\"");
    }
  }
  return {};
}

RpcResult<std::string> RequiredString(const json& params, const char* name) {
  const auto it = params.find(name);
  if (it == params.end()) return InvalidParams(std::string("missing parameter \"") + name + "\"");
  if (!it->is_string()) return InvalidParams(std::string("\"") + name + "\" must be a string");
  std::string value = it->get<std::string>();
  if (value.empty()) return InvalidParams(std::string("\"") + name + "\" must not be empty");
  return value;
}

// "text" of send and groupSend: a string MessageTextProblem finds nothing wrong with.
RpcResult<std::string> TextParam(const json& params) {
  auto text = RequiredString(params, "text");
  if (!text) return text;
  if (auto problem = MessageTextProblem(*text)) return InvalidParams("\"text\": " + *problem);
  return text;
}

RpcResult<std::optional<std::string>> OptionalString(const json& params, const char* name) {
  const auto it = params.find(name);
  if (it == params.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return InvalidParams(std::string("\"") + name + "\" must be a string");
  return std::optional<std::string>(it->get<std::string>());
}

RpcResult<size_t> Limit(const json& params, size_t default_value, size_t max_value) {
  const auto it = params.find("limit");
  if (it == params.end() || it->is_null()) return default_value;
  // Integers past uint64 parse as floats: refused like fractions.
  if (!it->is_number_integer()) return InvalidParams("\"limit\" must be a positive integer");
  const bool negative = !it->is_number_unsigned() && it->get<int64_t>() < 0;
  const uint64_t value = negative ? 0 : it->get<uint64_t>();
  if (value == 0 || value > max_value) {
    return InvalidParams("\"limit\" must be between 1 and " + std::to_string(max_value));
  }
  return static_cast<size_t>(value);
}

RpcResult<bool> Flag(const json& params, const char* name, bool default_value) {
  const auto it = params.find(name);
  if (it == params.end() || it->is_null()) return default_value;
  if (!it->is_boolean())
    return InvalidParams(std::string("\"") + name + "\" must be true or false");
  return it->get<bool>();
}

// Each parser checks the parameter names first, then reads them.
RpcResult<RpcCall> ParseSend(const json& p) {
  if (auto ok = OnlyKnown(p, {"to", "text"}); !ok) return tl::unexpected(ok.error());
  auto to = RequiredString(p, "to");
  if (!to) return tl::unexpected(to.error());
  auto text = TextParam(p);
  if (!text) return tl::unexpected(text.error());
  return SendCall{*std::move(to), *std::move(text)};
}

RpcResult<RpcCall> ParseSendFile(const json& p) {
  if (auto ok = OnlyKnown(p, {"to", "path", "caption", "mime"}); !ok) return tl::unexpected(ok.error());
  auto to = RequiredString(p, "to");
  if (!to) return tl::unexpected(to.error());
  auto path = RequiredString(p, "path");
  if (!path) return tl::unexpected(path.error());
  auto caption = OptionalString(p, "caption");
  if (!caption) return tl::unexpected(caption.error());
  auto mime = OptionalString(p, "mime");
  if (!mime) return tl::unexpected(mime.error());
  return SendFileCall{*std::move(to), *std::move(path), caption->value_or(""), mime->value_or("")};
}

RpcResult<RpcCall> ParseMessages(const json& p) {
  if (auto ok = OnlyKnown(p, {"with", "limit", "markRead"}); !ok) return tl::unexpected(ok.error());
  auto with = RequiredString(p, "with");
  if (!with) return tl::unexpected(with.error());
  auto limit = Limit(p, kDefaultConversationLimit, kMaxConversationLimit);
  if (!limit) return tl::unexpected(limit.error());
  auto mark = Flag(p, "markRead", true);
  if (!mark) return tl::unexpected(mark.error());
  return MessagesCall{*std::move(with), *limit,
                      *mark ? MarkReadPolicy::kMarkRead : MarkReadPolicy::kLeaveUnread};
}

RpcResult<RpcCall> ParseSearch(const json& p) {
  if (auto ok = OnlyKnown(p, {"query", "limit"}); !ok) return tl::unexpected(ok.error());
  auto query = RequiredString(p, "query");
  if (!query) return tl::unexpected(query.error());
  auto limit = Limit(p, kDefaultSearchLimit, client::kMaxSearchResults);
  if (!limit) return tl::unexpected(limit.error());
  return SearchCall{*std::move(query), *limit};
}

// The methods whose only parameter is the contact, "with".
template <typename Call>
RpcResult<RpcCall> ParseWith(const json& p) {
  if (auto ok = OnlyKnown(p, {"with"}); !ok) return tl::unexpected(ok.error());
  auto with = RequiredString(p, "with");
  if (!with) return tl::unexpected(with.error());
  return Call{*std::move(with)};
}

RpcResult<RpcCall> ParseVerifyContact(const json& p) {
  if (auto ok = OnlyKnown(p, {"with", "safetyNumber"}); !ok) return tl::unexpected(ok.error());
  auto with = RequiredString(p, "with");
  if (!with) return tl::unexpected(with.error());
  auto digits = OptionalString(p, "safetyNumber");
  if (!digits) return tl::unexpected(digits.error());
  return VerifyContactCall{*std::move(with), *std::move(digits)};
}

RpcResult<RpcCall> ParseContactsAdd(const json& p) {
  if (auto ok = OnlyKnown(p, {"number", "name"}); !ok) return tl::unexpected(ok.error());
  auto number = RequiredString(p, "number");
  if (!number) return tl::unexpected(number.error());
  auto name = OptionalString(p, "name");
  if (!name) return tl::unexpected(name.error());
  return ContactsAddCall{*std::move(number), name->value_or("")};
}

RpcResult<RpcCall> ParseVisibility(const json& p) {
  if (auto ok = OnlyKnown(p, {"visibility"}); !ok) return tl::unexpected(ok.error());
  auto visibility = RequiredString(p, "visibility");
  if (!visibility) return tl::unexpected(visibility.error());
  if (!IsPresenceVisibility(*visibility)) {
    return InvalidParams("\"visibility\" must be everyone, contacts or nobody");
  }
  return SetPresenceVisibilityCall{*std::move(visibility)};
}

RpcResult<RpcCall> ParseTyping(const json& p) {
  if (auto ok = OnlyKnown(p, {"with", "typing"}); !ok) return tl::unexpected(ok.error());
  auto with = RequiredString(p, "with");
  if (!with) return tl::unexpected(with.error());
  auto typing = Flag(p, "typing", true);
  if (!typing) return tl::unexpected(typing.error());
  return TypingCall{*std::move(with), *typing ? TypingState::kStarted : TypingState::kStopped};
}

// An integer parameter in [min, max]; `fallback` when absent (nullopt: required).
RpcResult<uint32_t> Integer(const json& params, const char* name, std::optional<uint32_t> fallback,
                            uint32_t min, uint32_t max) {
  const auto it = params.find(name);
  if (it == params.end() || it->is_null()) {
    if (fallback) return *fallback;
    return InvalidParams(std::string("missing parameter \"") + name + "\"");
  }
  // Integers past uint64 parse as floats: refused like fractions and negatives.
  const bool integer =
      it->is_number_integer() && (it->is_number_unsigned() || it->get<int64_t>() >= 0);
  const uint64_t value = integer ? it->get<uint64_t>() : 0;
  const bool ok = integer && value >= min && value <= max;
  if (!ok) {
    return InvalidParams(std::string("\"") + name + "\" must be an integer from " +
                         std::to_string(min) + " to " + std::to_string(max));
  }
  return static_cast<uint32_t>(value);
}

RpcResult<RpcCall> ParseLinkApprove(const json& p) {
  if (auto ok = OnlyKnown(p, {"code", "timeoutS"}); !ok) return tl::unexpected(ok.error());
  auto code = RequiredString(p, "code");
  if (!code) return tl::unexpected(code.error());
  auto timeout = Integer(p, "timeoutS", 120u, 1, kMaxRpcLinkTimeoutS);
  if (!timeout) return tl::unexpected(timeout.error());
  return LinkApproveCall{*std::move(code), *timeout};
}

RpcResult<RpcCall> ParseUnlink(const json& p) {
  if (auto ok = OnlyKnown(p, {"device"}); !ok) return tl::unexpected(ok.error());
  auto device = Integer(p, "device", std::nullopt, 2, 1'000'000);
  if (!device) return tl::unexpected(device.error());
  return UnlinkCall{*device};
}

template <typename Call>
RpcResult<RpcCall> ParseNoParams(const json& p) {
  if (auto ok = OnlyKnown(p, {}); !ok) return tl::unexpected(ok.error());
  return Call{};
}

// --- Groups ---
RpcResult<std::vector<std::string>> Members(const json& params) {
  const auto it = params.find("members");
  if (it == params.end()) return InvalidParams("missing parameter \"members\"");
  if (!it->is_array() || it->empty() || it->size() > kMaxRpcGroupMembers) {
    return InvalidParams("\"members\" must be an array of 1 to kMaxRpcGroupMembers (" +
                         std::to_string(kMaxRpcGroupMembers) + ") numbers");
  }
  std::vector<std::string> members;
  for (const json& m : *it) {
    if (!m.is_string()) return InvalidParams("\"members\" must hold strings");
    members.push_back(m.get<std::string>());
  }
  return members;
}

RpcResult<RpcCall> ParseGroupCreate(const json& p) {
  if (auto ok = OnlyKnown(p, {"name", "members"}); !ok) return tl::unexpected(ok.error());
  auto name = RequiredString(p, "name");
  if (!name) return tl::unexpected(name.error());
  auto members = Members(p);
  if (!members) return tl::unexpected(members.error());
  return GroupCreateCall{*std::move(name), *std::move(members)};
}

template <GroupMembersOp kOp>
RpcResult<RpcCall> ParseGroupMembers(const json& p) {
  if (auto ok = OnlyKnown(p, {"group", "members"}); !ok) return tl::unexpected(ok.error());
  auto group = RequiredString(p, "group");
  if (!group) return tl::unexpected(group.error());
  auto members = Members(p);
  if (!members) return tl::unexpected(members.error());
  return GroupMembersCall{kOp, *std::move(group), *std::move(members)};
}

template <typename Call>
RpcResult<RpcCall> ParseGroupOnly(const json& p) {
  if (auto ok = OnlyKnown(p, {"group"}); !ok) return tl::unexpected(ok.error());
  auto group = RequiredString(p, "group");
  if (!group) return tl::unexpected(group.error());
  return Call{*std::move(group)};
}

RpcResult<RpcCall> ParseGroupLeave(const json& p) {
  if (auto ok = OnlyKnown(p, {"group", "refuseReadd"}); !ok) return tl::unexpected(ok.error());
  auto group = RequiredString(p, "group");
  if (!group) return tl::unexpected(group.error());
  auto refuse = Flag(p, "refuseReadd", false);
  if (!refuse) return tl::unexpected(refuse.error());
  return GroupLeaveCall{*std::move(group), *refuse};
}

RpcResult<RpcCall> ParseGroupAdds(const json& p) {
  if (auto ok = OnlyKnown(p, {"who"}); !ok) return tl::unexpected(ok.error());
  auto who = RequiredString(p, "who");
  if (!who) return tl::unexpected(who.error());
  if (*who != "everyone" && *who != "contacts" && *who != "nobody") {
    return InvalidParams("\"who\" must be everyone, contacts or nobody");
  }
  return GroupAddsCall{*std::move(who)};
}

RpcResult<RpcCall> ParseGroupAdmin(const json& p) {
  if (auto ok = OnlyKnown(p, {"group", "member", "admin"}); !ok) return tl::unexpected(ok.error());
  auto group = RequiredString(p, "group");
  if (!group) return tl::unexpected(group.error());
  auto member = RequiredString(p, "member");
  if (!member) return tl::unexpected(member.error());
  auto admin = Flag(p, "admin", true);
  if (!admin) return tl::unexpected(admin.error());
  return GroupAdminCall{*std::move(group), *std::move(member), *admin};
}

RpcResult<RpcCall> ParseGroupRename(const json& p) {
  if (auto ok = OnlyKnown(p, {"group", "name", "description"}); !ok) {
    return tl::unexpected(ok.error());
  }
  auto group = RequiredString(p, "group");
  if (!group) return tl::unexpected(group.error());
  auto name = RequiredString(p, "name");
  if (!name) return tl::unexpected(name.error());
  auto description = OptionalString(p, "description");
  if (!description) return tl::unexpected(description.error());
  return GroupRenameCall{*std::move(group), *std::move(name), description->value_or("")};
}

RpcResult<RpcCall> ParseGroupSend(const json& p) {
  if (auto ok = OnlyKnown(p, {"group", "text"}); !ok) return tl::unexpected(ok.error());
  auto group = RequiredString(p, "group");
  if (!group) return tl::unexpected(group.error());
  auto text = TextParam(p);
  if (!text) return tl::unexpected(text.error());
  return GroupSendCall{*std::move(group), *std::move(text)};
}

RpcResult<RpcCall> ParseGroupMessages(const json& p) {
  if (auto ok = OnlyKnown(p, {"group", "limit", "markRead"}); !ok) {
    return tl::unexpected(ok.error());
  }
  auto group = RequiredString(p, "group");
  if (!group) return tl::unexpected(group.error());
  auto limit = Limit(p, kDefaultConversationLimit, kMaxConversationLimit);
  if (!limit) return tl::unexpected(limit.error());
  auto mark = Flag(p, "markRead", true);
  if (!mark) return tl::unexpected(mark.error());
  return GroupMessagesCall{*std::move(group), *limit,
                           *mark ? MarkReadPolicy::kMarkRead : MarkReadPolicy::kLeaveUnread};
}

struct MethodEntry {
  std::string_view name;
  RpcResult<RpcCall> (*parse)(const json&);
};

constexpr std::array<MethodEntry, 30> kMethods = {{
    {"send", ParseSend},
    {"sendFile", ParseSendFile},
    {"messages", ParseMessages},
    {"search", ParseSearch},
    {"safetyNumber", ParseWith<SafetyNumberCall>},
    {"verifyContact", ParseVerifyContact},
    {"trust", ParseWith<TrustCall>},
    {"contactsAdd", ParseContactsAdd},
    {"contactsList", ParseNoParams<ContactsListCall>},
    {"presence", ParseWith<PresenceCall>},
    {"setPresenceVisibility", ParseVisibility},
    {"markRead", ParseWith<MarkReadCall>},
    {"typing", ParseTyping},
    {"status", ParseNoParams<StatusCall>},
    {"version", ParseNoParams<VersionCall>},
    {"groupCreate", ParseGroupCreate},
    {"groupAdd", ParseGroupMembers<GroupMembersOp::kAdd>},
    {"groupRemove", ParseGroupMembers<GroupMembersOp::kRemove>},
    {"groupLeave", ParseGroupLeave},
    {"groupAllowReadd", ParseGroupOnly<GroupAllowReaddCall>},
    {"groupAdds", ParseGroupAdds},
    {"groupAdmin", ParseGroupAdmin},
    {"groupRename", ParseGroupRename},
    {"groupSend", ParseGroupSend},
    {"groupList", ParseNoParams<GroupListCall>},
    {"groupInfo", ParseGroupOnly<GroupInfoCall>},
    {"groupMessages", ParseGroupMessages},
    {"linkApprove", ParseLinkApprove},
    {"devices", ParseNoParams<DevicesCall>},
    {"unlink", ParseUnlink},
}};

json ErrorObject(const RpcError& error) {
  json object = {{"code", error.code}, {"message", error.message}};
  if (error.exit_code) object["data"] = {{"code", ToInt(*error.exit_code)}};
  return object;
}

}  // namespace

std::optional<std::string> MessageTextProblem(std::string_view text) {
  if (text.empty()) return "the text is empty (a message needs at least one character)";
  if (text.size() > client::kMaxBodyBytes) {
    return "the text is " + std::to_string(text.size()) + " bytes; a message holds at most " +
           std::to_string(client::kMaxBodyBytes) +
           " bytes (send a longer text as a file with `sotto send-file`)";
  }
  if (!client::IsUtf8(text)) return std::string("the text is not valid UTF-8");
  return std::nullopt;
}

RpcError MakeRpcError(RpcCode code, std::string message) {
  return RpcError{static_cast<int>(code), std::move(message), std::nullopt};
}

RpcError MakeAppError(ExitCode exit_code, std::string message) {
  return RpcError{kAppErrorBase - ToInt(exit_code), std::move(message), exit_code};
}

LineFramer::Outcome LineFramer::Feed(std::string_view bytes, std::vector<std::string>& lines) {
  if (overflowed_) return Outcome::kLineTooLong;
  while (!bytes.empty()) {
    const size_t newline = bytes.find('\n');
    const std::string_view piece = bytes.substr(0, newline);
    if (partial_.size() + piece.size() > kMaxRpcLineBytes + 1) {
      // One byte of slack for a '\r' that the "\r\n" ending will remove.
      overflowed_ = true;
      partial_.clear();
      return Outcome::kLineTooLong;
    }
    partial_.append(piece);
    if (newline == std::string_view::npos) break;
    if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
    if (partial_.size() > kMaxRpcLineBytes) {
      overflowed_ = true;
      partial_.clear();
      return Outcome::kLineTooLong;
    }
    lines.push_back(std::move(partial_));
    partial_.clear();
    bytes.remove_prefix(newline + 1);
  }
  return Outcome::kOk;
}

bool NestingWithin(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) return false;
        break;
      case ']':
      case '}':
        // Unbalanced closers are the parser's business; never go below zero here.
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return true;
}

tl::expected<RpcRequest, RpcFailure> ParseRequest(std::string_view line) {
  auto fail = [](RpcCode code, std::string message, json id = nullptr) {
    return tl::unexpected(RpcFailure{std::move(id), MakeRpcError(code, std::move(message))});
  };
  if (!NestingWithin(line, kMaxRpcDepth)) {
    return fail(RpcCode::kInvalidRequest,
                "nesting deeper than " + std::to_string(kMaxRpcDepth) + " levels");
  }
  const json doc = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return fail(RpcCode::kParseError, "parse error: not valid JSON");
  if (doc.is_array()) return fail(RpcCode::kInvalidRequest, "batch requests are not supported");
  if (!doc.is_object()) return fail(RpcCode::kInvalidRequest, "a request must be a JSON object");

  RpcRequest request;
  const auto id = doc.find("id");
  if (id != doc.end()) {
    if (!id->is_string() && !id->is_number() && !id->is_null()) {
      return fail(RpcCode::kInvalidRequest, "\"id\" must be a string, a number or null");
    }
    request.id = *id;
  }
  const json reply_id = request.id.value_or(nullptr);
  const auto version = doc.find("jsonrpc");
  if (version == doc.end() || !version->is_string() ||
      version->get_ref<const std::string&>() != kJsonRpcVersion) {
    return fail(RpcCode::kInvalidRequest, "\"jsonrpc\" must be \"2.0\"", reply_id);
  }
  const auto method = doc.find("method");
  if (method == doc.end() || !method->is_string()) {
    return fail(RpcCode::kInvalidRequest, "\"method\" must be a string", reply_id);
  }
  request.method = method->get<std::string>();
  const auto params = doc.find("params");
  if (params != doc.end()) {
    if (params->is_array()) {
      return fail(RpcCode::kInvalidParams, "\"params\" must be an object (by-name parameters)",
                  reply_id);
    }
    if (!params->is_object()) {
      return fail(RpcCode::kInvalidRequest, "\"params\" must be an object", reply_id);
    }
    request.params = *params;
  }
  return request;
}

RpcResult<RpcCall> ParseCall(const RpcRequest& request) {
  for (const MethodEntry& entry : kMethods) {
    if (entry.name == request.method) return entry.parse(request.params);
  }
  return tl::unexpected(MakeRpcError(RpcCode::kMethodNotFound, "method not found"));
}

bool IsPresenceVisibility(std::string_view visibility) {
  return visibility == "everyone" || visibility == "contacts" || visibility == "nobody";
}

std::string ResultLine(const json& id, const json& result) {
  return JsonLine({{"jsonrpc", kJsonRpcVersion}, {"id", id}, {"result", result}});
}

std::string ErrorLine(const json& id, const RpcError& error) {
  return JsonLine({{"jsonrpc", kJsonRpcVersion}, {"id", id}, {"error", ErrorObject(error)}});
}

std::string NotificationLine(std::string_view method, const json& params) {
  return JsonLine({{"jsonrpc", kJsonRpcVersion}, {"method", method}, {"params", params}});
}

std::string JsonLine(const json& value) {
  std::string line = value.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
  line.push_back('\n');
  return line;
}

}  // namespace sotto::cli
