// The daemon's JSON-RPC methods on top of the SDK: each typed call (json_rpc.h) becomes
// one Client call and a JSON result, or an application error (-32000 - exit code, with
// data {"code": exit code}). Result shapes are documented in docs/cli.md.
//
// Thread-safety: loop-affine, like the Client it drives (the daemon's thread).
#pragma once

#include <nlohmann/json.hpp>

#include "apps/sotto/json_rpc.h"
#include "client/client.h"

namespace sotto::cli {

// Our recent group messages groupInfo reports with their per-member receipts.
inline constexpr size_t kRpcGroupInfoMessages = 10;

class RpcMethods {
 public:
  // `client` must outlive this object.
  explicit RpcMethods(client::Client& client) : client_(client) {}

  // Runs `call`. Blocks while the SDK waits for the server (e.g. a send's ack).
  RpcResult<nlohmann::json> Call(const RpcCall& call);

 private:
  RpcResult<nlohmann::json> Run(const SendCall& call);
  RpcResult<nlohmann::json> Run(const SendFileCall& call);
  RpcResult<nlohmann::json> Run(const MessagesCall& call);
  RpcResult<nlohmann::json> Run(const SearchCall& call);
  RpcResult<nlohmann::json> Run(const SafetyNumberCall& call);
  RpcResult<nlohmann::json> Run(const VerifyContactCall& call);
  RpcResult<nlohmann::json> Run(const TrustCall& call);
  RpcResult<nlohmann::json> Run(const ContactsAddCall& call);
  RpcResult<nlohmann::json> Run(const ContactsListCall& call);
  RpcResult<nlohmann::json> Run(const PresenceCall& call);
  RpcResult<nlohmann::json> Run(const SetPresenceVisibilityCall& call);
  RpcResult<nlohmann::json> Run(const MarkReadCall& call);
  RpcResult<nlohmann::json> Run(const TypingCall& call);
  RpcResult<nlohmann::json> Run(const StatusCall& call);
  RpcResult<nlohmann::json> Run(const VersionCall& call);
  RpcResult<nlohmann::json> Run(const LinkApproveCall& call);
  RpcResult<nlohmann::json> Run(const DevicesCall& call);
  RpcResult<nlohmann::json> Run(const UnlinkCall& call);
  RpcResult<nlohmann::json> Run(const GroupCreateCall& call);
  RpcResult<nlohmann::json> Run(const GroupMembersCall& call);
  RpcResult<nlohmann::json> Run(const GroupLeaveCall& call);
  RpcResult<nlohmann::json> Run(const GroupAllowReaddCall& call);
  RpcResult<nlohmann::json> Run(const GroupAddsCall& call);
  RpcResult<nlohmann::json> Run(const GroupAdminCall& call);
  RpcResult<nlohmann::json> Run(const GroupRenameCall& call);
  RpcResult<nlohmann::json> Run(const GroupSendCall& call);
  RpcResult<nlohmann::json> Run(const GroupListCall& call);
  RpcResult<nlohmann::json> Run(const GroupInfoCall& call);
  RpcResult<nlohmann::json> Run(const GroupMessagesCall& call);

  client::Client& client_;
};

}  // namespace sotto::cli
