#include "apps/sotto/rpc_methods.h"

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "apps/sotto/command_util.h"
#include "apps/sotto/output.h"
#include "base/bytes.h"
#include "base/version.h"
#include "wire/wire.h"

namespace sotto::cli {
namespace {

using nlohmann::json;

tl::unexpected<RpcError> AppError(const Error& error) {
  return tl::unexpected(MakeAppError(ExitCodeFor(error), UserMessage(error)));
}

bool IsOffline(const Error& error) { return ExitCodeFor(error) == ExitCode::kOffline; }

}  // namespace

RpcResult<json> RpcMethods::Call(const RpcCall& call) {
  return std::visit([this](const auto& c) { return Run(c); }, call);
}

RpcResult<json> RpcMethods::Run(const SendCall& call) {
  auto outcome = client_.SendText(call.to, call.text);
  if (!outcome) return AppError(outcome.error());
  return json{{"id", outcome->message_id}, {"status", client::TickName(outcome->tick)}};
}

RpcResult<json> RpcMethods::Run(const SendFileCall& call) {
  auto outcome = client_.SendFile(call.to, call.path, call.caption, call.mime);
  if (!outcome) return AppError(outcome.error());
  return json{{"id", outcome->message_id}, {"status", client::TickName(outcome->tick)}};
}

RpcResult<json> RpcMethods::Run(const MessagesCall& call) {
  auto messages = client_.Conversation(call.with, call.limit);
  if (!messages) return AppError(messages.error());
  const std::string name = ContactName(client_, call.with);
  json list = json::array();
  for (const client::StoredMessage& message : *messages) {
    list.push_back(MessageJson(message, call.with, name));
  }
  if (call.mark_read == MarkReadPolicy::kMarkRead) {
    // Offline, the read receipts wait in the outbox: the listing still succeeded.
    if (auto read = client_.MarkRead(call.with); !read && !IsOffline(read.error())) {
      return AppError(read.error());
    }
  }
  return json{{"messages", std::move(list)}};
}

RpcResult<json> RpcMethods::Run(const SearchCall& call) {
  auto hits = client_.Search(call.query, call.limit);
  if (!hits) return AppError(hits.error());
  auto contacts = client_.Contacts();
  if (!contacts) return AppError(contacts.error());
  std::map<std::string, client::Contact, std::less<>> by_account;
  for (const client::Contact& contact : *contacts) by_account[contact.account_id] = contact;
  json list = json::array();
  for (const client::SearchHit& hit : *hits) {
    const auto it = by_account.find(hit.message.peer);
    list.push_back(it == by_account.end() ? SearchHitJson(hit, "")
                                          : SearchHitJson(hit, it->second.handle, it->second.name));
  }
  return json{{"hits", std::move(list)}};
}

RpcResult<json> RpcMethods::Run(const SafetyNumberCall& call) {
  auto number = client_.GetSafetyNumber(call.with);
  if (!number) return AppError(number.error());
  return SafetyNumberJson(*number);
}

RpcResult<json> RpcMethods::Run(const VerifyContactCall& call) {
  std::optional<std::string_view> expected;
  if (call.safety_number) expected = *call.safety_number;
  if (auto s = client_.VerifyContact(call.with, expected); !s) return AppError(s.error());
  return json{{"verified", true}};
}

RpcResult<json> RpcMethods::Run(const TrustCall& call) {
  if (auto s = client_.TrustIdentity(call.with); !s) return AppError(s.error());
  return json{{"trusted", true}};
}

RpcResult<json> RpcMethods::Run(const ContactsAddCall& call) {
  auto contact = client_.AddContact(call.number, call.name);
  if (!contact) return AppError(contact.error());
  return ContactJson(*contact);
}

RpcResult<json> RpcMethods::Run(const ContactsListCall& /*call*/) {
  auto contacts = client_.Contacts();
  if (!contacts) return AppError(contacts.error());
  json list = json::array();
  for (const client::Contact& contact : *contacts) list.push_back(ContactJson(contact));
  return json{{"contacts", std::move(list)}};
}

RpcResult<json> RpcMethods::Run(const PresenceCall& call) {
  auto presence = client_.GetPresence(call.with);
  if (!presence) return AppError(presence.error());
  return PresenceJson(*presence, call.with);
}

RpcResult<json> RpcMethods::Run(const SetPresenceVisibilityCall& call) {
  if (auto s = client_.SetPresenceVisibility(call.visibility); !s) return AppError(s.error());
  return json{{"visibility", call.visibility}};
}

RpcResult<json> RpcMethods::Run(const MarkReadCall& call) {
  auto read = client_.MarkRead(call.with);
  if (!read) return AppError(read.error());
  return json{{"read", *read}};
}

RpcResult<json> RpcMethods::Run(const TypingCall& call) {
  const auto typing = call.typing == TypingState::kStarted ? client::Client::Typing::kStarted
                                                           : client::Client::Typing::kStopped;
  if (auto s = client_.SendTyping(call.with, typing); !s) return AppError(s.error());
  return json{{"typing", call.typing == TypingState::kStarted}};
}

RpcResult<json> RpcMethods::Run(const StatusCall& /*call*/) {
  const auto& account = client_.account();
  auto pending = client_.PendingCount();
  if (!pending) return AppError(pending.error());
  json status = {{"registered", client_.registered()},
                 {"connected", client_.connected()},
                 {"pending", *pending}};
  if (account) {
    status["number"] = account->handle;
    status["peer"] = ToHex(account->account_id);
    status["device"] = account->device_id;
    status["server"] = account->server;
  }
  const client::ClientStats& stats = client_.stats();
  status["stats"] = {{"sent", stats.sent},
                     {"received", stats.received},
                     {"duplicates", stats.duplicates},
                     {"decryptFailures", stats.decrypt_failures},
                     {"reconnects", stats.reconnects},
                     {"bundlesFetched", stats.bundles_fetched}};
  return status;
}

RpcResult<json> RpcMethods::Run(const VersionCall& /*call*/) {
  return json{{"version", kVersion}, {"wire", wire::kWireVersion}, {"jsonrpc", "2.0"}};
}

RpcResult<json> RpcMethods::Run(const LinkApproveCall& call) {
  auto device =
      client_.ApproveLink(call.code, std::chrono::milliseconds(uint64_t{call.timeout_s} * 1000));
  if (!device) return AppError(device.error());
  return json{{"device", *device}};
}

RpcResult<json> RpcMethods::Run(const DevicesCall& /*call*/) {
  auto devices = client_.Devices();
  if (!devices) return AppError(devices.error());
  json list = json::array();
  for (const client::LinkedDevice& d : *devices) list.push_back(DeviceJson(d));
  return json{{"devices", std::move(list)}};
}

RpcResult<json> RpcMethods::Run(const UnlinkCall& call) {
  if (auto s = client_.Unlink(call.device); !s) return AppError(s.error());
  return json{{"unlinked", call.device}};
}

// --- Groups ------------------------------------------------------------------------------

RpcResult<json> RpcMethods::Run(const GroupCreateCall& call) {
  auto group = client_.CreateGroup(call.name, call.members);
  if (!group) return AppError(group.error());
  json out = GroupJson(*group);
  out["refused"] = group->refused;
  return out;
}

RpcResult<json> RpcMethods::Run(const GroupMembersCall& call) {
  std::vector<std::string> refused;
  if (call.op == GroupMembersOp::kAdd) {
    auto added = client_.AddMembers(call.group, call.members);
    if (!added) return AppError(added.error());
    refused = *std::move(added);
  } else if (auto s = client_.RemoveMembers(call.group, call.members); !s) {
    return AppError(s.error());
  }
  auto group = client_.GroupInfo(call.group);
  if (!group) return AppError(group.error());
  json out = GroupJson(*group);
  if (call.op == GroupMembersOp::kAdd) out["refused"] = std::move(refused);
  return out;
}

RpcResult<json> RpcMethods::Run(const GroupLeaveCall& call) {
  const client::ReAdds re_adds =
      call.refuse_readd ? client::ReAdds::kRefuse : client::ReAdds::kAllow;
  if (auto s = client_.LeaveGroup(call.group, re_adds); !s) return AppError(s.error());
  return json{{"left", true}, {"refuseReadd", call.refuse_readd}};
}

RpcResult<json> RpcMethods::Run(const GroupAllowReaddCall& call) {
  if (auto s = client_.AllowGroupReadd(call.group); !s) return AppError(s.error());
  return json{{"refuseReadd", false}};
}

RpcResult<json> RpcMethods::Run(const GroupAddsCall& call) {
  if (auto s = client_.SetGroupAdds(call.who); !s) return AppError(s.error());
  return json{{"who", call.who}};
}

RpcResult<json> RpcMethods::Run(const GroupAdminCall& call) {
  if (auto s = client_.SetAdmin(call.group, call.member, call.admin); !s) {
    return AppError(s.error());
  }
  return json{{"admin", call.admin}};
}

RpcResult<json> RpcMethods::Run(const GroupRenameCall& call) {
  if (auto s = client_.RenameGroup(call.group, call.name, call.description); !s) {
    return AppError(s.error());
  }
  return json{{"name", call.name}, {"description", call.description}};
}

RpcResult<json> RpcMethods::Run(const GroupSendCall& call) {
  auto outcome = client_.SendGroupText(call.group, call.text);
  if (!outcome) return AppError(outcome.error());
  return json{{"id", outcome->message_id}, {"status", client::TickName(outcome->tick)}};
}

RpcResult<json> RpcMethods::Run(const GroupListCall& /*call*/) {
  auto groups = client_.Groups();
  if (!groups) return AppError(groups.error());
  json list = json::array();
  for (const client::GroupDetails& g : *groups) list.push_back(GroupJson(g));
  return json{{"groups", std::move(list)}};
}

RpcResult<json> RpcMethods::Run(const GroupInfoCall& call) {
  auto group = client_.GroupInfo(call.group);
  if (!group) return AppError(group.error());
  auto conversation = client_.GroupConversation(group->id, kMaxConversationLimit);
  if (!conversation) return AppError(conversation.error());
  std::vector<GroupMessageReceipts> recent;
  for (auto it = conversation->rbegin();
       it != conversation->rend() && recent.size() < kRpcGroupInfoMessages; ++it) {
    if (it->direction != client::MessageDirection::kOutgoing) continue;
    auto receipts = client_.GroupReceipts(group->id, it->message_id);
    if (!receipts) return AppError(receipts.error());
    recent.insert(recent.begin(), GroupMessageReceipts{*it, *std::move(receipts)});
  }
  return GroupInfoJson(*group, recent);
}

RpcResult<json> RpcMethods::Run(const GroupMessagesCall& call) {
  auto messages = client_.GroupConversation(call.group, call.limit);
  if (!messages) return AppError(messages.error());
  json list = json::array();
  for (const client::StoredMessage& message : *messages) list.push_back(MessageJson(message, ""));
  if (call.mark_read == MarkReadPolicy::kMarkRead) {
    if (auto read = client_.MarkGroupRead(call.group); !read && !IsOffline(read.error())) {
      return AppError(read.error());
    }
  }
  return json{{"messages", std::move(list)}};
}

}  // namespace sotto::cli
