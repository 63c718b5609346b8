// The server core's group requests: create_group, modify_group, get_group,
// get_group_devices, group_send and set_group_adds (docs/wire.md "Groups", docs/server.md
// "Groups"). Membership rules live in groups.cc; this file turns them into frames and queue writes.
#include <algorithm>
#include <string>

#include <spdlog/spdlog.h>

#include "server/core.h"
#include "server/internal/core_util.h"
#include "server/internal/session.h"

namespace sotto::server {
namespace {

using internal::AppendDevice;
using internal::Fail;
using internal::SessionContext;
using internal::ToAccountId;

// The largest group_send ciphertext: its envelope (ciphertext plus ~150 bytes of ids, seq
// and times) must fit in one frame to each member device.
constexpr size_t kMaxGroupCiphertextBytes = 64'000;
constexpr size_t kDigestBytes = 32;

bool ToGroupId(const std::string& bytes, GroupId& out) {
  if (bytes.size() != out.size()) return false;
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return true;
}

std::string Bytes(const std::array<uint8_t, 16>& id) {
  return {reinterpret_cast<const char*>(id.data()), id.size()};
}

void PutU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

void ToWire(const store::GroupRecord& g, wire::GroupInfo* out) {
  out->set_group_id(Bytes(g.id));
  out->set_version(g.version);
  for (const store::GroupMemberRecord& m : g.members) {
    wire::GroupMember* w = out->add_members();
    w->set_account_id(Bytes(m.account));
    w->set_admin(m.admin);
  }
}

wire::GroupAction ToWire(GroupOp op) {
  switch (op) {
    case GroupOp::kCreate:
      return wire::GROUP_CREATE;
    case GroupOp::kAdd:
      return wire::GROUP_ADD;
    case GroupOp::kRemove:
      return wire::GROUP_REMOVE;
    case GroupOp::kLeave:
      return wire::GROUP_LEAVE;
    case GroupOp::kPromote:
      return wire::GROUP_PROMOTE;
    case GroupOp::kDemote:
      return wire::GROUP_DEMOTE;
    case GroupOp::kLeaveRefuse:
      return wire::GROUP_LEAVE;  // the refusal is the leaver's business, not the group's
    case GroupOp::kAllowReadd:
      return wire::GROUP_ALLOW_READD;
  }
  return wire::GROUP_CREATE;
}

bool FromWire(int action, GroupOp& op) {
  switch (action) {
    case wire::GROUP_ADD:
      op = GroupOp::kAdd;
      return true;
    case wire::GROUP_REMOVE:
      op = GroupOp::kRemove;
      return true;
    case wire::GROUP_LEAVE:
      op = GroupOp::kLeave;
      return true;
    case wire::GROUP_PROMOTE:
      op = GroupOp::kPromote;
      return true;
    case wire::GROUP_DEMOTE:
      op = GroupOp::kDemote;
      return true;
    case wire::GROUP_LEAVE_REFUSE:
      op = GroupOp::kLeaveRefuse;
      return true;
    case wire::GROUP_ALLOW_READD:
      op = GroupOp::kAllowReadd;
      return true;
    default:
      return false;  // GROUP_CREATE is create_group's; unknown values
  }
}

// A refused group request: the rule's static text, or the store's error as every handler
// maps it.
void FailWith(wire::Response& response, const Error& e) {
  if (e.module != Module::kServer) {
    internal::FailFromError(response, e);
    return;
  }
  wire::StatusCode status = wire::STATUS_INTERNAL;
  switch (static_cast<GroupErr>(e.detail)) {
    case GroupErr::kNoGroup:
    case GroupErr::kNoAccount:
      status = wire::STATUS_NOT_FOUND;
      break;
    case GroupErr::kNotMember:
      status = wire::STATUS_NOT_MEMBER;
      break;
    case GroupErr::kNotAdmin:
      status = wire::STATUS_PERMISSION_DENIED;
      break;
    case GroupErr::kBadRequest:
      status = wire::STATUS_BAD_REQUEST;
      break;
    case GroupErr::kTooManyMembers:
    case GroupErr::kTooManyAccounts:
    case GroupErr::kTooManyRefusals:
      status = wire::STATUS_TOO_LARGE;
      break;
    case GroupErr::kRateLimited:
      status = wire::STATUS_RATE_LIMITED;
      break;
    case GroupErr::kConflict:
      status = wire::STATUS_CONFLICT;
      break;
  }
  Fail(response, status, e.message);
}

bool ParseAccounts(const google::protobuf::RepeatedPtrField<std::string>& in,
                   std::vector<AccountId>& out) {
  out.resize(static_cast<size_t>(in.size()));
  for (int i = 0; i < in.size(); ++i) {
    if (!ToAccountId(in[i], out[static_cast<size_t>(i)])) return false;
  }
  return true;
}

void PostResponse(const std::shared_ptr<internal::SessionLink>& link, wire::Frame frame) {
  link->Post([frame = std::move(frame)](SessionContext& c) {
    c.protocol.SendFrame(c.state, frame, c.out);
  });
}

}  // namespace

bool ServerCore::HandleGroupRequest(SessionContext& ctx, const wire::Request& request,
                                    wire::Response& response) {
  const internal::SessionState& s = ctx.state;
  if (request.has_create_group() || request.has_modify_group()) {
    return HandleGroupChange(ctx, request, response);
  }
  if (request.has_get_group_devices()) {
    HandleGetGroupDevices(ctx, request.get_group_devices(), response);
    return true;
  }
  if (request.has_group_send()) return HandleGroupSend(ctx, request, response);
  if (request.has_set_group_adds()) return HandleSetGroupAdds(ctx, request, response);
  if (!request.has_get_group()) {
    Fail(response, wire::STATUS_BAD_REQUEST, "not a group request");
    return true;
  }
  GroupId id{};
  if (!ToGroupId(request.get_group().group_id(), id)) {
    Fail(response, wire::STATUS_BAD_REQUEST, "group_id must be 16 bytes");
    return true;
  }
  auto group = groups_.Get(id);
  if (!group) {
    FailWith(response, group.error());
  } else if (*group == nullptr) {
    Fail(response, wire::STATUS_NOT_FOUND, "no such group");
  } else if ((*group)->FindMember(s.device.account) == nullptr) {
    Fail(response, wire::STATUS_NOT_MEMBER, "not a member of this group");
  } else {
    ToWire(**group, response.mutable_group()->mutable_group());
  }
  return true;
}

// The request is parsed on the loop; the change (a store write under the group's lock) and
// its announcement's queue write run on the blocking-work pool (core_blocking.cc).
bool ServerCore::HandleGroupChange(SessionContext& ctx, const wire::Request& request,
                                   wire::Response& response) {
  internal::SessionState& s = ctx.state;
  std::vector<AccountId> accounts;
  const bool create = request.has_create_group();
  GroupId id{};
  GroupOp op = GroupOp::kAdd;
  if (create) {
    if (!ParseAccounts(request.create_group().members(), accounts)) {
      Fail(response, wire::STATUS_BAD_REQUEST, "members must be 16-byte account ids");
      return true;
    }
  } else {
    const wire::ModifyGroupRequest& m = request.modify_group();
    if (!ToGroupId(m.group_id(), id)) {
      Fail(response, wire::STATUS_BAD_REQUEST, "group_id must be 16 bytes");
      return true;
    }
    if (!FromWire(m.action(), op)) {
      Fail(response, wire::STATUS_BAD_REQUEST,
           "action must be add, remove, leave, promote, demote, leave_refuse or allow_readd");
      return true;
    }
    if (!ParseAccounts(m.accounts(), accounts)) {
      Fail(response, wire::STATUS_BAD_REQUEST, "accounts must be 16-byte account ids");
      return true;
    }
  }
  auto job = [this, device = s.device, link = s.messaging->link, create, id, op,
              accounts = std::move(accounts)](wire::Response& out, BlockingFinish&) {
    return ChangeGroup(device, link, create, id, op, accounts, out);
  };
  return RunBlocking(ctx, request, response, std::move(job));
}

bool ServerCore::ChangeGroup(const DeviceAddress& device,
                             const std::shared_ptr<internal::SessionLink>& link, bool create,
                             const GroupId& id, GroupOp op, const std::vector<AccountId>& accounts,
                             wire::Response& response) {
  const uint64_t now = store::SystemClockMs();
  Result<GroupChange> change =
      create ? groups_.Create(device.account, accounts, now, crypto::SystemRandom())
             : groups_.Modify(device.account, id, op, accounts, now);
  if (!change) {
    if (change.error().module == Module::kServer &&
        change.error().detail == static_cast<uint16_t>(GroupErr::kRateLimited)) {
      metrics_.group_changes_rate_limited.fetch_add(1, std::memory_order_relaxed);
    }
    FailWith(response, change.error());
    return true;
  }
  metrics_.group_adds_refused.fetch_add(change->refused.size(), std::memory_order_relaxed);
  if (!change->changed) {
    // Nothing to announce: everyone named refused, or a refusal was lifted (the answer
    // then names no members: the account is not one).
    if (change->op == GroupOp::kAllowReadd) {
      response.mutable_group()->mutable_group()->set_group_id(Bytes(change->after.id));
      response.mutable_group()->mutable_group()->set_version(change->after.version);
    } else {
      ToWire(change->after, response.mutable_group()->mutable_group());
    }
    for (const AccountId& a : change->refused) response.mutable_group()->add_refused(Bytes(a));
    return true;
  }
  metrics_.group_changes.fetch_add(1, std::memory_order_relaxed);

  // The announcement, to every device of every member before or after the change.
  wire::Envelope envelope;
  envelope.set_type(wire::ENVELOPE_GROUP_UPDATE);
  envelope.set_source_account(Bytes(device.account));
  envelope.set_source_device(device.device_id);
  std::string message_id = Bytes(change->after.id);  // group id || version: unique
  PutU64(message_id, change->after.version);
  envelope.set_message_id(message_id);
  envelope.set_group_id(Bytes(change->after.id));
  envelope.set_server_time_ms(now);
  // A delta, not the membership: its size does not grow with the group (docs/wire.md).
  wire::GroupUpdate* update = envelope.mutable_group_update();
  update->set_action(ToWire(change->op));
  update->set_actor(Bytes(change->actor));
  wire::GroupDelta* delta = update->mutable_delta();
  delta->set_group_id(Bytes(change->after.id));
  delta->set_version(change->after.version);
  if (change->op != GroupOp::kCreate) {  // at a create, every member fetches the group
    for (const AccountId& a : change->added) delta->add_added(Bytes(a));
  }
  for (const AccountId& a : change->removed) delta->add_removed(Bytes(a));
  for (const AccountId& a : change->promoted) delta->add_promoted(Bytes(a));
  for (const AccountId& a : change->demoted) delta->add_demoted(Bytes(a));
  const std::string payload = envelope.SerializeAsString();

  store::WriteRequest write;
  write.max_depth = options_.store.max_queue_depth;
  write.on_full = store::OnFullQueue::kSkipAppend;
  auto endpoints = std::make_shared<std::vector<std::string>>();
  const std::string dedupe = "U" + message_id;
  for (const AccountId& member : change->notify) {
    auto record = accounts_.Get(member);
    if (!record || *record == nullptr) continue;
    for (const store::DeviceRecord& d : (*record)->devices) {
      if (d.pending) continue;  // linked, not yet listed: AccountRecord::ActiveDevices
      store::Append a;
      a.recipient = {member, d.device_id};
      a.dedupe_id = dedupe;
      a.expires_ms = now + uint64_t{options_.store.message_ttl_s} * 1000;
      a.payload = payload;
      write.appends.push_back(std::move(a));
      endpoints->push_back(d.push_endpoint);
    }
  }
  wire::Frame answer;
  wire::Response* r = answer.mutable_response();
  r->set_id(response.id());
  ToWire(change->after, r->mutable_group()->mutable_group());
  for (const AccountId& a : change->refused) r->mutable_group()->add_refused(Bytes(a));
  queue_.Write(
      std::move(write), [this, link, endpoints, answer = std::move(answer)](
                            store::WriteRequest&& req, store::WriteResult&& result) mutable {
        if (!result.status) {
          spdlog::warn("queueing a group update failed: {}", result.status.error().ToString());
          wire::Response* resp = answer.mutable_response();
          resp->clear_group();
          resp->set_status(wire::STATUS_INTERNAL);
          resp->set_reason("the group changed but its announcement could not be stored");
        } else {
          const auto skipped = static_cast<uint64_t>(std::count(
              result.outcomes.begin(), result.outcomes.end(), store::AppendOutcome::kSkippedFull));
          metrics_.group_copies_skipped_full.fetch_add(skipped, std::memory_order_relaxed);
          const auto stored = static_cast<uint64_t>(std::count(
              result.outcomes.begin(), result.outcomes.end(), store::AppendOutcome::kStored));
          const uint64_t bytes = req.appends.empty() ? 0 : req.appends.front().payload.size();
          metrics_.group_update_bytes_queued.fetch_add(stored * bytes, std::memory_order_relaxed);
        }
        PostResponse(link, std::move(answer));
        if (result.status) Fanout(req, result, endpoints.get());
      });
  return false;
}

bool ServerCore::HandleSetGroupAdds(SessionContext& ctx, const wire::Request& request,
                                    wire::Response& response) {
  store::GroupAdds adds = store::GroupAdds::kEveryone;
  switch (request.set_group_adds().adds()) {
    case wire::GROUP_ADDS_EVERYONE:
      adds = store::GroupAdds::kEveryone;
      break;
    case wire::GROUP_ADDS_CONTACTS:
      adds = store::GroupAdds::kContacts;
      break;
    case wire::GROUP_ADDS_NOBODY:
      adds = store::GroupAdds::kNobody;
      break;
    default:
      Fail(response, wire::STATUS_BAD_REQUEST,
           "adds must be GROUP_ADDS_EVERYONE, GROUP_ADDS_CONTACTS or GROUP_ADDS_NOBODY");
      return true;
  }
  auto job = [this, account = ctx.state.device.account, adds](wire::Response& out,
                                                              BlockingFinish&) {
    if (!accounts_.SetGroupAdds(account, adds)) {
      Fail(out, wire::STATUS_INTERNAL, "store failure");
    } else {
      out.mutable_empty();
    }
    return true;
  };
  return RunBlocking(ctx, request, response, std::move(job));
}

void ServerCore::HandleGetGroupDevices(SessionContext& ctx, const wire::GetGroupDevicesRequest& r,
                                       wire::Response& response) {
  const internal::SessionState& s = ctx.state;
  GroupId id{};
  if (!ToGroupId(r.group_id(), id)) {
    Fail(response, wire::STATUS_BAD_REQUEST, "group_id must be 16 bytes");
    return;
  }
  auto group = groups_.Get(id);
  if (!group) return FailWith(response, group.error());
  if (*group == nullptr) return Fail(response, wire::STATUS_NOT_FOUND, "no such group");
  const store::GroupRecord& g = **group;
  if (g.FindMember(s.device.account) == nullptr) {
    return Fail(response, wire::STATUS_NOT_MEMBER, "not a member of this group");
  }
  if (r.offset() > g.members.size()) {
    return Fail(response, wire::STATUS_BAD_REQUEST, "offset past the last member");
  }
  auto accounts = groups_.MemberAccounts(g);
  if (!accounts) return FailWith(response, accounts.error());
  wire::GetGroupDevicesResponse* out = response.mutable_group_devices();
  out->set_version(g.version);
  const crypto::Sha256Digest digest = GroupDevicesDigest(*accounts, s.device);
  out->set_devices_digest(reinterpret_cast<const char*>(digest.data()), digest.size());
  FillGroupDevicesPage(*accounts, r.offset(), *out);
}

bool ServerCore::HandleGroupSend(SessionContext& ctx, const wire::Request& request,
                                 wire::Response& response) {
  const internal::SessionState& s = ctx.state;
  const wire::GroupSendRequest& send = request.group_send();
  metrics_.group_sends.fetch_add(1, std::memory_order_relaxed);
  GroupId id{};
  if (send.message_id().empty() || send.message_id().size() > kMaxMessageIdBytes) {
    Fail(response, wire::STATUS_BAD_REQUEST, "message_id must be 1..32 bytes (kMaxMessageIdBytes)");
    return true;
  }
  if (!ToGroupId(send.group_id(), id)) {
    Fail(response, wire::STATUS_BAD_REQUEST, "group_id must be 16 bytes");
    return true;
  }
  if (send.ciphertext().empty()) {
    Fail(response, wire::STATUS_BAD_REQUEST, "empty ciphertext");
    return true;
  }
  if (send.ciphertext().size() > kMaxGroupCiphertextBytes) {
    Fail(response, wire::STATUS_TOO_LARGE, "ciphertext longer than kMaxGroupCiphertextBytes");
    return true;
  }
  if (send.devices_digest().size() != kDigestBytes) {
    Fail(response, wire::STATUS_BAD_REQUEST, "devices_digest must be 32 bytes (SHA-256)");
    return true;
  }
  auto group = groups_.Get(id);
  if (!group) {
    FailWith(response, group.error());
    return true;
  }
  if (*group == nullptr) {
    Fail(response, wire::STATUS_NOT_FOUND, "no such group");
    return true;
  }
  if ((*group)->FindMember(s.device.account) == nullptr) {
    Fail(response, wire::STATUS_NOT_MEMBER, "not a member of this group");
    return true;
  }
  auto accounts = groups_.MemberAccounts(**group);
  if (!accounts) {
    FailWith(response, accounts.error());
    return true;
  }
  const crypto::Sha256Digest digest = GroupDevicesDigest(*accounts, s.device);
  if (!std::equal(digest.begin(), digest.end(), send.devices_digest().begin(),
                  [](uint8_t a, char b) { return a == static_cast<uint8_t>(b); })) {
    metrics_.group_sends_stale.fetch_add(1, std::memory_order_relaxed);
    Fail(response, wire::STATUS_STALE_DEVICES,
         "the group's devices changed (get_group_devices); nothing was queued");
    return true;
  }

  const uint64_t now = store::SystemClockMs();
  wire::Envelope envelope;
  envelope.set_type(wire::ENVELOPE_MESSAGE);
  envelope.set_source_account(Bytes(s.device.account));
  envelope.set_source_device(s.device.device_id);
  envelope.set_message_id(send.message_id());
  envelope.set_ciphertext_type(wire::CIPHERTEXT_SENDER_KEY);
  envelope.set_ciphertext(send.ciphertext());
  envelope.set_server_time_ms(now);
  envelope.set_group_id(send.group_id());

  if (send.online_only()) {
    envelope.set_online_only(true);
    wire::Frame frame;
    *frame.mutable_envelope() = std::move(envelope);
    uint32_t sent = 0;
    for (const auto& account : *accounts) {
      for (const store::DeviceRecord& d : account->devices) {
        if (d.pending) continue;  // linked, not yet listed: AccountRecord::ActiveDevices
        const DeviceAddress to{account->id, d.device_id};
        if (to == s.device) continue;
        auto link = router_.Find(to);
        if (!link) continue;
        link->Post([this, frame](SessionContext& c) { SendOnlineOnly(c, frame); });
        ++sent;
      }
    }
    response.mutable_group_send()->set_devices(sent);
    return true;
  }

  const std::string payload = envelope.SerializeAsString();
  std::string dedupe = "G";
  AppendDevice(dedupe, s.device);
  dedupe += send.message_id();
  store::WriteRequest write;
  write.max_depth = options_.store.max_queue_depth;
  write.on_full = store::OnFullQueue::kSkipAppend;
  write.max_per_sender = options_.store.max_queued_per_sender;
  auto endpoints = std::make_shared<std::vector<std::string>>();
  for (const auto& account : *accounts) {
    for (const store::DeviceRecord& d : account->devices) {
      if (d.pending) continue;  // linked, not yet listed: AccountRecord::ActiveDevices
      const DeviceAddress to{account->id, d.device_id};
      if (to == s.device) continue;
      store::Append a;
      a.recipient = to;
      a.dedupe_id = dedupe;
      a.expires_ms = now + uint64_t{options_.store.message_ttl_s} * 1000;
      a.payload = payload;
      if (account->id != s.device.account) a.sender = s.device.account;  // as in Send
      write.appends.push_back(std::move(a));
      endpoints->push_back(d.push_endpoint);
    }
  }
  queue_.Write(std::move(write),
               [this, link = s.messaging->link, request_id = request.id(), endpoints](
                   store::WriteRequest&& req, store::WriteResult&& result) {
                 wire::Frame frame;
                 wire::Response* r = frame.mutable_response();
                 r->set_id(request_id);
                 if (!result.status) {
                   r->set_status(wire::STATUS_INTERNAL);
                   r->set_reason("the message could not be stored");
                 } else {
                   uint32_t held = 0;
                   uint32_t full = 0;
                   uint64_t at_quota = 0;
                   uint64_t stored = 0;
                   for (store::AppendOutcome o : result.outcomes) {
                     switch (o) {
                       case store::AppendOutcome::kStored:
                         ++stored;
                         ++held;
                         break;
                       case store::AppendOutcome::kDuplicate:
                         ++held;
                         break;
                       case store::AppendOutcome::kSkippedFull:
                         ++full;
                         break;
                       case store::AppendOutcome::kSkippedSenderQuota:
                         ++full;  // reported like a full queue: that device is not reached
                         ++at_quota;
                         break;
                     }
                   }
                   metrics_.group_copies_skipped_sender_quota.fetch_add(at_quota,
                                                                        std::memory_order_relaxed);
                   metrics_.group_copies_queued.fetch_add(stored, std::memory_order_relaxed);
                   metrics_.group_copies_skipped_full.fetch_add(full - at_quota,
                                                                std::memory_order_relaxed);
                   r->mutable_group_send()->set_devices(held);
                   r->mutable_group_send()->set_queue_full(full);
                 }
                 PostResponse(link, std::move(frame));
                 if (result.status) Fanout(req, result, endpoints.get());
               });
  return false;
}

void ServerCore::AppendGroupPrometheus(std::string& out) const {
  auto counter = [&](const char* name, const char* help, const std::atomic<uint64_t>& c) {
    AppendPrometheusSeries(out, name, "counter", help, c.load(std::memory_order_relaxed));
  };
  counter("sotto_group_sends_total", "group_send requests", metrics_.group_sends);
  counter("sotto_group_sends_stale_total", "group sends refused for a stale devices digest",
          metrics_.group_sends_stale);
  counter("sotto_group_copies_queued_total", "group message copies queued",
          metrics_.group_copies_queued);
  counter("sotto_group_copies_skipped_full_total",
          "group copies dropped at a full device queue (store.max_queue_depth)",
          metrics_.group_copies_skipped_full);
  counter("sotto_group_copies_skipped_sender_quota_total",
          "group copies dropped at the sender's quota in a device queue "
          "(store.max_queued_per_sender)",
          metrics_.group_copies_skipped_sender_quota);
  counter("sotto_group_changes_total", "group creations and membership changes",
          metrics_.group_changes);
  counter("sotto_group_changes_rate_limited_total",
          "group changes refused by groups.account_change_rate / group_change_rate",
          metrics_.group_changes_rate_limited);
  counter("sotto_group_adds_refused_total",
          "accounts not added to a group because they refuse it (consent)",
          metrics_.group_adds_refused);
  counter("sotto_group_update_bytes_queued_total",
          "bytes of group change announcements queued, over every member device",
          metrics_.group_update_bytes_queued);
}

}  // namespace sotto::server
