// Groups with Sender Keys: membership through the server, our sender key handed pairwise
// to every member device, one ciphertext per group message fanned out by the server,
// rotation after a member leaves or is removed, per-member receipts. docs/client.md
// "Groups".
#include <algorithm>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "client/internal/client_impl.h"
#include "crypto/hash.h"
#include "signal/error.h"
#include "signal/group.h"

namespace sotto::client {
namespace {

std::string_view ActionName(wire::GroupAction action) {
  switch (action) {
    case wire::GROUP_CREATE:
      return "create";
    case wire::GROUP_ADD:
      return "add";
    case wire::GROUP_REMOVE:
      return "remove";
    case wire::GROUP_LEAVE:
      return "leave";
    case wire::GROUP_PROMOTE:
      return "promote";
    case wire::GROUP_DEMOTE:
      return "demote";
    case wire::GROUP_LEAVE_REFUSE:
      return "leave";
    case wire::GROUP_ALLOW_READD:
      return "allow-readd";
    default:
      return "update";
  }
}

constexpr size_t kAccountIdBytes = 16;

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

const StoredGroupMember* FindMember(const StoredGroup& group, std::string_view account) {
  for (const StoredGroupMember& m : group.members) {
    if (m.account == account) return &m;
  }
  return nullptr;
}

void PutBe32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

// wire GroupSendRequest.devices_digest over our sorted device list.
std::string DevicesDigest(const std::vector<GroupKeyHolder>& devices) {
  std::string input;
  input.reserve(devices.size() * 24);
  for (const GroupKeyHolder& d : devices) {
    const Bytes account = FromHex(d.account);
    input.append(AsString(account));
    PutBe32(input, d.device_id);
    PutBe32(input, d.registration_id);
  }
  const crypto::Sha256Digest digest = crypto::Sha256(AsBytes(input));
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

tl::unexpected<Error> GroupStatusError(wire::StatusCode status) {
  switch (status) {
    case wire::STATUS_NOT_MEMBER:
      return SdkError(Code::kPermissionDenied, SdkErr::kNotMember,
                      "this account is not a member of the group");
    case wire::STATUS_PERMISSION_DENIED:
      return SdkError(Code::kPermissionDenied, SdkErr::kNotAdmin,
                      "only admins may change the group's membership");
    case wire::STATUS_NOT_FOUND:
      return SdkError(Code::kNotFound, SdkErr::kUnknownGroup,
                      "the server knows no such group or account");
    case wire::STATUS_RATE_LIMITED:
      return SdkError(Code::kResourceExhausted, SdkErr::kRateLimited,
                      "too many group changes; the server's limit "
                      "(groups.account_change_rate_per_s / group_change_rate_per_s) "
                      "lets more through later");
    case wire::STATUS_CONFLICT:
      return SdkError(Code::kFailedPrecondition, SdkErr::kServerRefused,
                      "the change changes nothing (or would leave no admin)");
    default:
      return SdkError(Code::kUnavailable, SdkErr::kServerRefused,
                      "the server refused the group request");
  }
}

}  // namespace

bool Client::Impl::IsGroupRecipient(std::string_view recipient) {
  return recipient.starts_with(kGroupRecipientPrefix);
}

signal::SenderKeyName Client::Impl::OwnSenderKeyName(const std::string& group_id) const {
  return signal::SenderKeyName{group_id, {Hex(AsString(account->account_id)), account->device_id}};
}

Result<bool> Client::Impl::ApplyGroupInfo(const wire::GroupInfo& info, wire::GroupAction action,
                                          const std::string& actor,
                                          const std::vector<std::string>& accounts,
                                          std::vector<Event>& events) {
  if (info.group_id().size() != kGroupIdBytes) return false;
  const std::string group_id = Hex(info.group_id());
  SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> existing, store->GetGroup(group_id));
  if (existing && info.version() <= existing->version) return false;  // older or seen
  StoredGroup next;
  if (existing) {
    next = *existing;
  } else {
    next.group_id = group_id;
    next.created_ms = WallMs();
  }
  next.version = info.version();
  next.members.clear();
  const std::string self = Hex(AsString(account->account_id));
  for (const wire::GroupMember& m : info.members()) {
    next.members.push_back({Hex(m.account_id()), m.admin()});
  }
  next.member = FindMember(next, self) != nullptr;
  LocalStore::Transaction tx(*store);
  if (!next.member) {
    // Out of the group: nobody we send to holds a key we would use again.
    next.rotate = true;
    SOTTO_RETURN_IF_ERROR(store->ClearGroupKeyHolders(group_id));
  } else if (action == wire::GROUP_REMOVE || action == wire::GROUP_LEAVE ||
             action == wire::GROUP_LEAVE_REFUSE) {
    // Someone left: our next message uses a fresh key that only the members get.
    next.rotate = true;
  } else if (existing) {
    // A version we skipped (we learned a later one first) may have removed someone: any
    // earlier member missing now means rotating, whatever this change was.
    for (const StoredGroupMember& m : existing->members) {
      if (FindMember(next, m.account) == nullptr) next.rotate = true;
    }
  }
  if (existing && !existing->member && next.member) {
    // Back in the group: messages held while we were out go out again.
    SOTTO_ASSIGN_OR_RETURN(std::vector<OutboxItem> items,
                           store->ListOutbox(100000, LocalStore::OutboxFilter::kIncludeBlocked));
    const std::string recipient = std::string(kGroupRecipientPrefix) + group_id;
    for (const OutboxItem& item : items) {
      if (item.recipient != recipient || !item.blocked) continue;
      SOTTO_RETURN_IF_ERROR(store->AdvanceTick(group_id, item.message_id, Tick::kPending));
    }
    SOTTO_RETURN_IF_ERROR(store->UnblockOutbox(recipient));
    next_outbox_at = std::chrono::steady_clock::now();
  }
  SOTTO_RETURN_IF_ERROR(store->PutGroup(next));
  SOTTO_RETURN_IF_ERROR(tx.Commit());
  group_devices.erase(group_id);
  events.emplace_back(NewGroupEvent(group_id, std::string(ActionName(action)), actor, accounts,
                                    next.version, next.member));
  return true;
}

GroupEvent Client::Impl::NewGroupEvent(const std::string& group_id, std::string action,
                                       const std::string& actor,
                                       const std::vector<std::string>& accounts, uint64_t version,
                                       bool member) {
  const std::string self = OwnAccount();
  auto person = [&](const std::string& id) {
    GroupPerson p;
    p.account = id;
    p.self = !id.empty() && id == self;
    if (p.self) {
      p.handle = account->handle;
      return p;
    }
    auto contact = store->ContactByAccount(id);
    if (contact && *contact) {
      p.handle = (*contact)->handle;
      p.name = (*contact)->name;
    }
    return p;
  };
  GroupEvent e;
  e.group_id = group_id;
  e.action = std::move(action);
  e.actor = actor;
  e.accounts = accounts;
  e.version = version;
  e.member = member;
  if (!actor.empty()) e.by = person(actor);
  for (const std::string& a : accounts) e.people.push_back(person(a));
  return e;
}

namespace {

// The accounts an announced delta concerned, as the event names them.
std::vector<std::string> DeltaAccounts(const wire::GroupUpdate& update) {
  const wire::GroupDelta& d = update.delta();
  const google::protobuf::RepeatedPtrField<std::string>* list = &d.added();
  switch (update.action()) {
    case wire::GROUP_REMOVE:
    case wire::GROUP_LEAVE:
    case wire::GROUP_LEAVE_REFUSE:
      list = &d.removed();
      break;
    case wire::GROUP_PROMOTE:
      list = &d.promoted();
      break;
    case wire::GROUP_DEMOTE:
      list = &d.demoted();
      break;
    default:
      break;
  }
  std::vector<std::string> out;
  for (const std::string& a : *list) out.push_back(Hex(a));
  return out;
}

bool Names(const google::protobuf::RepeatedPtrField<std::string>& list, const std::string& id) {
  return std::find(list.begin(), list.end(), id) != list.end();
}

}  // namespace

Status Client::Impl::HandleGroupUpdate(const wire::Envelope& env, std::vector<Event>& events) {
  const wire::GroupUpdate& update = env.group_update();
  if (!update.has_delta()) {  // a server from before issue 12: the whole membership
    std::vector<std::string> accounts;
    for (const std::string& a : update.accounts()) accounts.push_back(Hex(a));
    return ApplyGroupInfo(update.group(), update.action(), Hex(update.actor()), accounts, events)
        .map([](bool) {});
  }
  const wire::GroupDelta& delta = update.delta();
  if (delta.group_id().size() != kGroupIdBytes) return Ok();
  const std::string group_id = Hex(delta.group_id());
  SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> existing, store->GetGroup(group_id));
  const std::vector<std::string> accounts = DeltaAccounts(update);
  if (existing && delta.version() <= existing->version) {  // older or seen
    if (applied_prefetched.contains(group_id)) {
      // Covered by the group fetched for this batch: still report the change.
      events.emplace_back(NewGroupEvent(group_id, std::string(ActionName(update.action())),
                                        Hex(update.actor()), accounts, delta.version(),
                                        existing->member));
    }
    return Ok();
  }
  const std::string self_id(AsString(account->account_id));
  const bool out = Names(delta.removed(), self_id);
  if (!out && (!existing || delta.version() != existing->version + 1)) {
    if (auto it = prefetched_groups.find(group_id);
        it != prefetched_groups.end() && it->second.version() >= delta.version()) {
      std::vector<std::string> named = accounts;
      if (update.action() == wire::GROUP_CREATE && named.empty()) {
        for (const wire::GroupMember& m : it->second.members()) {
          if (m.account_id() != update.actor()) named.push_back(Hex(m.account_id()));
        }
      }
      SOTTO_ASSIGN_OR_RETURN(
          const bool applied,
          ApplyGroupInfo(it->second, update.action(), Hex(update.actor()), named, events));
      if (applied) applied_prefetched.insert(group_id);
      return Ok();
    }
    // Unknown, or a version missed: the group itself is fetched after the commit.
    stale_groups.push_back(
        {group_id, update.action(), Hex(update.actor()), accounts, delta.version()});
    return Ok();
  }
  // The next version, or our own removal (which needs no more: we are out, even of a
  // group this device never saw): apply the delta.
  wire::GroupInfo info;
  info.set_group_id(delta.group_id());
  info.set_version(delta.version());
  std::vector<std::pair<std::string, bool>> members;  // account bytes, admin
  const std::vector<StoredGroupMember> before =
      existing ? existing->members : std::vector<StoredGroupMember>{};
  for (const StoredGroupMember& m : before) {
    const std::string id(AsString(FromHex(m.account)));
    if (Names(delta.removed(), id) || Names(delta.added(), id)) continue;
    bool admin = m.admin;
    if (Names(delta.promoted(), id)) admin = true;
    if (Names(delta.demoted(), id)) admin = false;
    members.emplace_back(id, admin);
  }
  for (const std::string& id : delta.added()) {
    if (id.size() == kAccountIdBytes && !Names(delta.removed(), id)) {
      members.emplace_back(id, Names(delta.promoted(), id));
    }
  }
  std::sort(members.begin(), members.end());
  for (const auto& [id, admin] : members) {
    wire::GroupMember* m = info.add_members();
    m->set_account_id(id);
    m->set_admin(admin);
  }
  return ApplyGroupInfo(info, update.action(), Hex(update.actor()), accounts, events).map([](bool) {
  });
}

Status Client::Impl::PrefetchGroups(const std::vector<wire::Envelope>& envelopes) {
  prefetched_groups.clear();
  applied_prefetched.clear();
  const std::string self_id(AsString(account->account_id));
  std::map<std::string, uint64_t> versions;  // as the batch will leave them, in order
  for (const wire::Envelope& env : envelopes) {
    if (env.type() != wire::ENVELOPE_GROUP_UPDATE || !env.group_update().has_delta()) continue;
    const wire::GroupDelta& delta = env.group_update().delta();
    if (delta.group_id().size() != kGroupIdBytes) continue;
    const std::string group_id = Hex(delta.group_id());
    if (prefetched_groups.contains(group_id)) continue;
    auto known = versions.find(group_id);
    if (known == versions.end()) {
      SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> stored, store->GetGroup(group_id));
      // 0: unknown here (versions start at 1), which no delta applies to.
      known = versions.emplace(group_id, stored ? stored->version : 0).first;
    }
    const bool applies = Names(delta.removed(), self_id) ||
                         (known->second > 0 && (delta.version() <= known->second ||
                                                delta.version() == known->second + 1));
    if (applies) {
      known->second = std::max(known->second, delta.version());
      continue;
    }
    const Bytes gid = FromHex(group_id);
    wire::Request request;
    request.mutable_get_group()->set_group_id(gid.data(), gid.size());
    auto response = Call(std::move(request));
    if (!response) {
      if (IsStoreError(response.error())) return tl::unexpected(response.error());
      continue;  // offline: FetchStaleGroups tries after the commit
    }
    if (response->status() == wire::STATUS_OK) {
      prefetched_groups.emplace(group_id, response->group().group());
    }
  }
  return Ok();
}

Status Client::Impl::FetchStaleGroups() {
  std::vector<StaleGroup> pending;
  pending.swap(stale_groups);
  std::set<std::string> fetched;
  for (const StaleGroup& stale : pending) {
    SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> known, store->GetGroup(stale.group_id));
    if (known && known->version >= stale.version) {
      // A fetch for an earlier announcement of this batch caught up: report it still.
      if (fetched.contains(stale.group_id)) {
        Emit(NewGroupEvent(stale.group_id, std::string(ActionName(stale.action)), stale.actor,
                           stale.accounts, stale.version, known->member));
      }
      continue;
    }
    fetched.insert(stale.group_id);
    const Bytes gid = FromHex(stale.group_id);
    wire::Request request;
    request.mutable_get_group()->set_group_id(gid.data(), gid.size());
    auto response = Call(std::move(request));
    if (!response) {
      if (IsStoreError(response.error())) return tl::unexpected(response.error());
      continue;  // offline: the next group send or device fetch catches up
    }
    wire::GroupInfo info;
    if (response->status() == wire::STATUS_OK) {
      info = response->group().group();
    } else if (response->status() == wire::STATUS_NOT_MEMBER ||
               response->status() == wire::STATUS_NOT_FOUND) {
      // Out of it (or it is gone) in a version we did not see: no members.
      info.set_group_id(gid.data(), gid.size());
      info.set_version(known ? std::max(stale.version, known->version + 1) : stale.version);
    } else {
      continue;
    }
    std::vector<std::string> accounts = stale.accounts;
    if (stale.action == wire::GROUP_CREATE && accounts.empty()) {
      for (const wire::GroupMember& m : info.members()) {
        if (Hex(m.account_id()) != stale.actor) accounts.push_back(Hex(m.account_id()));
      }
    }
    std::vector<Event> events;
    SOTTO_RETURN_IF_ERROR(ApplyGroupInfo(info, stale.action, stale.actor, accounts, events));
    for (const Event& e : events) Emit(e);
  }
  return Ok();
}

Result<Client::Impl::GroupDevices> Client::Impl::FetchGroupDevices(const std::string& group_id,
                                                                   bool force) {
  SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> group, store->GetGroup(group_id));
  if (!group) return SdkError(Code::kNotFound, SdkErr::kUnknownGroup, "no such group");
  if (auto it = group_devices.find(group_id);
      !force && it != group_devices.end() && it->second.version == group->version) {
    return it->second;
  }
  const Bytes gid = FromHex(group_id);
  const std::string self = Hex(AsString(account->account_id));
  GroupDevices out;
  uint32_t offset = 0;
  for (int page = 0;; ++page) {
    if (page >= kMaxGroupDevicePages) {
      return SdkError(Code::kUnavailable, SdkErr::kServerRefused,
                      "the member device list has more than kMaxGroupDevicePages pages");
    }
    wire::Request request;
    request.mutable_get_group_devices()->set_group_id(gid.data(), gid.size());
    request.mutable_get_group_devices()->set_offset(offset);
    SOTTO_ASSIGN_OR_RETURN(wire::Response response, Call(std::move(request)));
    if (response.status() != wire::STATUS_OK) return GroupStatusError(response.status());
    const wire::GetGroupDevicesResponse& r = response.group_devices();
    if (page == 0) {
      out.version = r.version();
    } else if (r.version() != out.version) {
      // The membership changed between pages: start over.
      out = GroupDevices{};
      out.version = r.version();
      offset = 0;
      continue;
    }
    for (const wire::MemberDevices& m : r.members()) {
      if (m.device_ids_size() != m.registration_ids_size()) {
        return SdkError(Code::kDataLoss, SdkErr::kServerRefused,
                        "the member device list is malformed");
      }
      const std::string account_hex = Hex(m.account_id());
      for (int i = 0; i < m.device_ids_size(); ++i) {
        if (account_hex == self && m.device_ids(i) == account->device_id) continue;
        out.devices.push_back({account_hex, m.device_ids(i), m.registration_ids(i)});
      }
    }
    out.digest = r.devices_digest();
    if (r.next_offset() == 0) break;
    if (r.next_offset() <= offset) {
      return SdkError(Code::kDataLoss, SdkErr::kServerRefused,
                      "the member device list pages do not advance");
    }
    offset = r.next_offset();
  }
  std::sort(out.devices.begin(), out.devices.end(), [](const auto& a, const auto& b) {
    return std::tie(a.account, a.device_id) < std::tie(b.account, b.device_id);
  });
  // The digest we will send must be the one we computed over what we were told.
  if (DevicesDigest(out.devices) != out.digest) {
    return SdkError(Code::kDataLoss, SdkErr::kServerRefused,
                    "the member device list does not match the server's digest");
  }
  if (out.version > group->version) {
    // We have not seen the announcement yet: ask for the membership itself.
    wire::Request request;
    request.mutable_get_group()->set_group_id(gid.data(), gid.size());
    SOTTO_ASSIGN_OR_RETURN(wire::Response response, Call(std::move(request)));
    if (response.status() != wire::STATUS_OK) return GroupStatusError(response.status());
    std::vector<Event> events;
    SOTTO_RETURN_IF_ERROR(
        ApplyGroupInfo(response.group().group(), wire::GROUP_ADD, "", {}, events));
    for (const Event& e : events) Emit(e);
    SOTTO_ASSIGN_OR_RETURN(group, store->GetGroup(group_id));
  }
  // Our sender key goes only to accounts we know as members.
  for (const GroupKeyHolder& d : out.devices) {
    if (FindMember(*group, d.account) == nullptr) {
      return SdkError(Code::kDataLoss, SdkErr::kServerRefused,
                      "the member device list names an account that is not a member");
    }
  }
  group_devices[group_id] = out;
  return out;
}

Result<Tick> Client::Impl::DistributeSenderKey(const std::string& group_id,
                                               const GroupDevices& devices) {
  SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> group, store->GetGroup(group_id));
  if (!group) return SdkError(Code::kNotFound, SdkErr::kUnknownGroup, "no such group");
  const signal::SenderKeyName own = OwnSenderKeyName(group_id);
  if (group->rotate) {
    LocalStore::Transaction tx(*store);
    SOTTO_RETURN_IF_ERROR(signal::RotateSenderKey(*store, own, random));
    SOTTO_RETURN_IF_ERROR(store->ClearGroupKeyHolders(group_id));
    SOTTO_RETURN_IF_ERROR(store->SetGroupRotate(group_id, false));
    SOTTO_RETURN_IF_ERROR(tx.Commit());
  }
  SOTTO_ASSIGN_OR_RETURN(std::vector<GroupKeyHolder> holders, store->GroupKeyHolders(group_id));
  std::map<std::string, std::vector<GroupKeyHolder>> missing;  // by account
  for (const GroupKeyHolder& d : devices.devices) {
    if (std::find(holders.begin(), holders.end(), d) == holders.end()) {
      missing[d.account].push_back(d);
    }
  }
  if (missing.empty()) return Tick::kSent;
  content::Content content = NewContent();
  {
    LocalStore::Transaction tx(*store);  // creating our key, if new, is durable first
    SOTTO_ASSIGN_OR_RETURN(signal::SenderKeyDistributionMessage skdm,
                           signal::CreateSenderKeyDistribution(*store, own, random));
    SOTTO_RETURN_IF_ERROR(tx.Commit());
    const Bytes serialized = skdm.Serialize();
    const Bytes gid = FromHex(group_id);
    content::SenderKeyDistribution* skd = content.mutable_sender_key();
    skd->set_group_id(gid.data(), gid.size());
    skd->set_distribution(serialized.data(), serialized.size());
    skd->set_name(group->name);
    skd->set_description(group->description);
  }
  const Bytes encoded = EncodeContent(content);
  Tick result = Tick::kSent;
  for (auto& [member, member_devices] : missing) {
    // A member whose identity key changed and was not accepted gets no key from us (it
    // cannot read what we send until the user accepts the new key and we send again).
    SOTTO_ASSIGN_OR_RETURN(std::vector<signal::ProtocolAddress> pending,
                           store->PendingIdentities(member));
    if (!pending.empty()) {
      Emit(IdentityChangedEvent{member, HandleOf(member)});
      continue;
    }
    OutboxItem item;  // not in the outbox (rowid 0): a group send retries it as a whole
    item.message_id = NewMessageId();
    item.recipient = member;
    item.content = encoded;
    SOTTO_ASSIGN_OR_RETURN(Tick tick, SendItem(item));
    if (tick == Tick::kSent) {
      // Relaxed: if power loss undoes it, the member just gets the same key again.
      LocalStore::Transaction tx(*store, LocalStore::Durability::kRelaxed);
      SOTTO_RETURN_IF_ERROR(store->AddGroupKeyHolders(group_id, member_devices));
      SOTTO_RETURN_IF_ERROR(tx.Commit());
    } else if (tick == Tick::kPending) {
      result = Tick::kPending;  // queue full or rate limited: the group send waits
    }
  }
  return result;
}

Result<OutboxItem> Client::Impl::QueueGroupContent(const std::string& group_id,
                                                   const content::Content& content,
                                                   StoredMessage* message) {
  SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> group, store->GetGroup(group_id));
  if (!group) return SdkError(Code::kNotFound, SdkErr::kUnknownGroup, "no such group");
  if (!group->member) {
    return SdkError(Code::kPermissionDenied, SdkErr::kNotMember,
                    "this account is no longer a member of the group");
  }
  OutboxItem item;
  item.message_id = message ? message->message_id : NewMessageId();
  item.recipient = std::string(kGroupRecipientPrefix) + group_id;
  item.content = EncodeContent(content);
  const std::string self = Hex(AsString(account->account_id));
  LocalStore::Transaction tx(*store);
  if (message) {
    SOTTO_ASSIGN_OR_RETURN(message->rowid, store->AddGroupMessage(*message));
    std::vector<std::string> members;
    for (const StoredGroupMember& m : group->members) {
      if (m.account != self) members.push_back(m.account);
    }
    SOTTO_RETURN_IF_ERROR(store->AddGroupReceipts(group_id, item.message_id, members));
  }
  SOTTO_ASSIGN_OR_RETURN(item.rowid, store->AddOutbox(item));
  SOTTO_RETURN_IF_ERROR(tx.Commit());
  next_outbox_at = std::chrono::steady_clock::now();
  return item;
}

Result<Tick> Client::Impl::SendGroupItem(OutboxItem& item) {
  const std::string group_id(std::string_view(item.recipient).substr(kGroupRecipientPrefix.size()));
  auto hold = [&]() -> Result<Tick> {
    // Not a member (any more): held until we are added again.
    item.blocked = true;
    LocalStore::Transaction tx(*store);
    SOTTO_RETURN_IF_ERROR(store->UpdateOutbox(item));
    SOTTO_RETURN_IF_ERROR(store->AdvanceTick(group_id, item.message_id, Tick::kBlocked));
    SOTTO_RETURN_IF_ERROR(tx.Commit());
    return Tick::kBlocked;
  };
  auto retry_later = [&]() -> Result<Tick> {
    const uint64_t delay = std::min<uint64_t>(
        static_cast<uint64_t>(config.outbox_retry_max.count()),
        static_cast<uint64_t>(config.outbox_retry_initial.count()) << std::min(item.attempts, 16u));
    ++item.attempts;
    item.next_attempt_ms = WallMs() + delay;
    SOTTO_RETURN_IF_ERROR(store->UpdateOutbox(item));
    return Tick::kPending;
  };
  for (int attempt = 0; attempt <= kMaxGroupStaleRetries; ++attempt) {
    SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> group, store->GetGroup(group_id));
    if (!group || !group->member) return hold();
    auto devices = FetchGroupDevices(group_id, attempt > 0);
    if (!devices && (devices.error().detail == static_cast<uint16_t>(SdkErr::kNotMember) ||
                     devices.error().detail == static_cast<uint16_t>(SdkErr::kUnknownGroup))) {
      return hold();  // removed, or the group is gone (its last member left)
    }
    SOTTO_RETURN_IF_ERROR(devices);
    SOTTO_ASSIGN_OR_RETURN(Tick distributed, DistributeSenderKey(group_id, *devices));
    if (distributed == Tick::kPending) return retry_later();
    // The advanced chain is committed before the ciphertext leaves: a message key is never
    // used twice, even if this process dies now.
    Bytes ciphertext;
    {
      LocalStore::Transaction tx(*store);
      signal::GroupCipher cipher(*store, OwnSenderKeyName(group_id), random);
      SOTTO_ASSIGN_OR_RETURN(ciphertext, cipher.Encrypt(item.content));
      SOTTO_RETURN_IF_ERROR(tx.Commit());
    }
    const Bytes gid = FromHex(group_id);
    const Bytes mid = FromHex(item.message_id);
    wire::Request request;
    wire::GroupSendRequest* send = request.mutable_group_send();
    send->set_message_id(mid.data(), mid.size());
    send->set_group_id(gid.data(), gid.size());
    send->set_ciphertext(ciphertext.data(), ciphertext.size());
    send->set_devices_digest(devices->digest);
    send->set_online_only(item.online_only);
    SOTTO_ASSIGN_OR_RETURN(wire::Response response, Call(std::move(request)));
    if (response.status() == wire::STATUS_OK) {
      LocalStore::Transaction tx(*store, LocalStore::Durability::kRelaxed);
      SOTTO_RETURN_IF_ERROR(store->RemoveOutbox(item.message_id));
      SOTTO_ASSIGN_OR_RETURN(bool advanced,
                             store->AdvanceTick(group_id, item.message_id, Tick::kSent));
      SOTTO_RETURN_IF_ERROR(tx.Commit());
      ++stats.sent;
      if (advanced) {
        Emit(ReceiptEvent{group_id, "", item.message_id, Tick::kSent, group_id, true});
      }
      return Tick::kSent;
    }
    if (response.status() == wire::STATUS_NOT_MEMBER) {
      // Removed while this was queued; the announcement updates the group.
      return hold();
    }
    if (response.status() != wire::STATUS_STALE_DEVICES) return retry_later();
    group_devices.erase(group_id);  // a member's devices changed: refetch, distribute, retry
  }
  return SdkError(Code::kUnavailable, SdkErr::kServerRefused,
                  "the group's device list kept changing (kMaxGroupStaleRetries)");
}

// --- Receiving ------------------------------------------------------------------------

Status Client::Impl::HandleSenderKeyDistribution(const signal::ProtocolAddress& from,
                                                 const content::Content& content) {
  const content::SenderKeyDistribution& skd = content.sender_key();
  const std::string group_id = Hex(skd.group_id());
  SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> group, store->GetGroup(group_id));
  // Only a member's device may give us a key for the group (pairwise-authenticated: it
  // arrived in that device's Signal session). Our own membership is not checked: a key
  // sent while we were a member still opens what was sent to us then (the server sends
  // us nothing after we left). A group we do not know (this device was registered after
  // the group's announcements) is looked up after the commit; until then its messages
  // are refused anyway, since the sender's membership cannot be checked.
  if (group && FindMember(*group, from.name) == nullptr) {
    spdlog::info("ignored a sender key for a group the sender is not in");
    return Ok();
  }
  auto message = signal::SenderKeyDistributionMessage::Parse(AsBytes(skd.distribution()));
  if (!message) {
    spdlog::warn("ignored a malformed sender key distribution");
    return Ok();
  }
  SOTTO_RETURN_IF_ERROR(signal::ProcessSenderKeyDistribution(*store, {group_id, from}, *message));
  if (!group) {
    unknown_groups.push_back({group_id, skd.name(), skd.description()});
    return Ok();
  }
  if (group->name.empty() && group->description.empty() &&
      (!skd.name().empty() || !skd.description().empty())) {
    group->name = skd.name();
    group->description = skd.description();
    SOTTO_RETURN_IF_ERROR(store->PutGroup(*group));
  }
  return Ok();
}

Status Client::Impl::ReceiveGroupMessage(
    const wire::Envelope& env, uint64_t now, std::vector<Event>& events,
    std::vector<std::pair<std::string, std::string>>& to_verify) {
  const std::string source = Hex(env.source_account());
  const std::string message_id = Hex(env.message_id());
  auto failed = [&](const char* why) -> Status {
    ++stats.decrypt_failures;
    events.emplace_back(DecryptionFailedEvent{source, "", env.source_device()});
    spdlog::warn("dropped a group message: {}", why);
    return store->MarkReceived(source, message_id, now);
  };
  if (env.group_id().size() != kGroupIdBytes) return failed("bad group id");
  const std::string group_id = Hex(env.group_id());
  SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> group, store->GetGroup(group_id));
  // A group we do not know yet (this device came after its announcements) can still be
  // read if its sender gave us its key pairwise; the server only fans out a member's
  // messages. The group itself is looked up after the commit.
  if (group && FindMember(*group, source) == nullptr) return failed("sender is not a member");
  const signal::ProtocolAddress address{source, env.source_device()};
  signal::GroupCipher cipher(*store, {group_id, address}, random);
  auto plaintext = cipher.Decrypt(AsBytes(env.ciphertext()));
  if (!plaintext) {
    if (plaintext.error().module == Module::kSignal &&
        plaintext.error().detail == static_cast<uint16_t>(signal::Err::kDuplicateMessage)) {
      ++stats.duplicates;
      return store->MarkReceived(source, message_id, now);
    }
    return failed("does not decrypt (no sender key for it)");
  }
  SOTTO_RETURN_IF_ERROR(store->MarkReceived(source, message_id, now));
  if (!group) unknown_groups.push_back({group_id, "", ""});
  auto content = DecodeContent(*plaintext);
  if (!content) {
    ++stats.decrypt_failures;
    events.emplace_back(DecryptionFailedEvent{source, "", env.source_device()});
    return Ok();
  }
  std::string handle = HandleOf(source);
  if (handle.empty() && IsE164(content->sender_handle())) {
    to_verify.emplace_back(source, content->sender_handle());
  }
  SOTTO_ASSIGN_OR_RETURN(std::optional<IdentityInfo> identity, store->GetIdentityInfo(address));
  const bool untrusted = identity && identity->pending.has_value();
  if (content->body_case() == content::Content::kData) {
    if (content->data().group().group_id() != env.group_id()) {
      ++stats.decrypt_failures;
      events.emplace_back(DecryptionFailedEvent{source, "", env.source_device()});
      return Ok();
    }
    StoredMessage message;
    message.message_id = message_id;
    message.peer = group_id;
    message.group_id = group_id;
    message.group_sender = source;
    // The server fans a group message out to the sender's own other devices too: there
    // it is ours, sent from another device (the sending device keeps its receipts).
    const bool ours = source == OwnAccount();
    message.direction = ours ? MessageDirection::kOutgoing : MessageDirection::kIncoming;
    message.peer_device = env.source_device();
    message.body = content->data().body();
    message.sent_ms = content->data().timestamp_ms();
    message.stored_ms = now;
    message.tick = ours ? Tick::kSent : Tick::kDelivered;
    message.untrusted_identity = untrusted;
    auto rowid = store->AddGroupMessage(message);
    if (!rowid && rowid.error().code == Code::kAlreadyExists) return Ok();
    SOTTO_RETURN_IF_ERROR(rowid);
    message.rowid = *rowid;
    if (content->data().has_attachment()) {
      SOTTO_RETURN_IF_ERROR(StoreIncomingAttachment(message, content->data().attachment()));
    }
    ++stats.received;
    events.emplace_back(MessageEvent{std::move(message), handle});
    return Ok();
  }
  if (content->body_case() == content::Content::kGroupMetadata) {
    const content::GroupMetadata& meta = content->group_metadata();
    const StoredGroupMember* author = group ? FindMember(*group, source) : nullptr;
    if (meta.group_id() != env.group_id() || author == nullptr || !author->admin) {
      spdlog::info("ignored a group rename from a non-admin");
      return Ok();
    }
    group->name = meta.name();
    group->description = meta.description();
    SOTTO_RETURN_IF_ERROR(store->PutGroup(*group));
    events.emplace_back(
        NewGroupEvent(group_id, "rename", source, {}, group->version, group->member));
  }
  return Ok();
}

Status Client::Impl::FetchUnknownGroups() {
  std::vector<UnknownGroup> pending;
  pending.swap(unknown_groups);
  for (const UnknownGroup& unknown : pending) {
    SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> known, store->GetGroup(unknown.group_id));
    if (known) {
      // Fetched meanwhile (FetchStaleGroups): the name came with the key.
      if (known->name.empty() && known->description.empty() &&
          CheckGroupText(unknown.name, unknown.description)) {
        known->name = unknown.name;
        known->description = unknown.description;
        SOTTO_RETURN_IF_ERROR(store->PutGroup(*known));
      }
      continue;
    }
    const Bytes gid = FromHex(unknown.group_id);
    wire::Request request;
    request.mutable_get_group()->set_group_id(gid.data(), gid.size());
    auto response = Call(std::move(request));
    if (!response) {
      if (IsStoreError(response.error())) return tl::unexpected(response.error());
      continue;  // offline: the next distribution from a member tries again
    }
    if (response->status() != wire::STATUS_OK) continue;  // not a member: nothing to learn
    std::vector<Event> events;
    SOTTO_ASSIGN_OR_RETURN(const bool applied, ApplyGroupInfo(response->group().group(),
                                                              wire::GROUP_ADD, "", {}, events));
    if (!applied) continue;
    SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> group, store->GetGroup(unknown.group_id));
    if (group && group->name.empty() && group->description.empty() &&
        CheckGroupText(unknown.name, unknown.description)) {
      group->name = unknown.name;
      group->description = unknown.description;
      SOTTO_RETURN_IF_ERROR(store->PutGroup(*group));
    }
    for (const Event& e : events) Emit(e);
  }
  return Ok();
}

Status Client::Impl::HandleGroupReceipt(const std::string& member, const std::string& message_id,
                                        Tick tick, uint64_t now, std::vector<Event>& events) {
  SOTTO_ASSIGN_OR_RETURN(
      GroupReceiptUpdate update,
      store->MarkGroupReceipt(message_id, member,
                              tick == Tick::kRead ? LocalStore::GroupReceiptKind::kRead
                                                  : LocalStore::GroupReceiptKind::kDelivered,
                              now));
  if (!update.changed) return Ok();
  if (update.all) SOTTO_RETURN_IF_ERROR(store->AdvanceTick(update.group_id, message_id, tick));
  events.emplace_back(ReceiptEvent{member, "", message_id, tick, update.group_id, update.all});
  return Ok();
}

// --- Public API -------------------------------------------------------------------------

Result<std::string> Client::ResolveGroup(std::string_view ref) {
  return impl_->ResolveGroupId(ref);
}

Result<std::string> Client::Impl::ResolveGroupId(std::string_view ref) {
  Impl& d = *this;
  if (ref.empty()) return SdkError(Code::kNotFound, SdkErr::kUnknownGroup, "no group named");
  SOTTO_ASSIGN_OR_RETURN(std::vector<StoredGroup> groups, d.store->ListGroups());
  std::vector<std::string> by_name;
  std::vector<std::string> by_prefix;
  for (const StoredGroup& g : groups) {
    if (g.group_id == ref) return g.group_id;
    if (g.name == ref) by_name.push_back(g.group_id);
    if (IsHex(ref) && g.group_id.starts_with(ref)) by_prefix.push_back(g.group_id);
  }
  for (const auto* matches : {&by_name, &by_prefix}) {
    if (matches->size() == 1) return matches->front();
    if (matches->size() > 1) {
      return SdkError(Code::kInvalidArgument, SdkErr::kAmbiguousGroup,
                      "more than one group matches; give more of the group id");
    }
  }
  return SdkError(Code::kNotFound, SdkErr::kUnknownGroup,
                  "no group has this id, id prefix or name");
}

Result<GroupDetails> Client::GroupInfo(std::string_view ref) {
  Impl& d = *impl_;
  SOTTO_ASSIGN_OR_RETURN(const std::string group_id, ResolveGroup(ref));
  SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> group, d.store->GetGroup(group_id));
  if (!group) return SdkError(Code::kNotFound, SdkErr::kUnknownGroup, "no such group");
  GroupDetails details;
  details.id = group->group_id;
  details.name = group->name;
  details.description = group->description;
  details.version = group->version;
  details.member = group->member;
  const std::string self = d.account ? Hex(AsString(d.account->account_id)) : "";
  SOTTO_ASSIGN_OR_RETURN(std::vector<GroupKeyHolder> holders, d.store->GroupKeyHolders(group_id));
  for (const StoredGroupMember& m : group->members) {
    GroupMemberInfo info;
    info.account_id = m.account;
    info.admin = m.admin;
    const auto holds = [&](const GroupKeyHolder& device) {
      return std::find(holders.begin(), holders.end(), device) != holders.end();
    };
    if (auto cached = d.group_devices.find(group_id); cached != d.group_devices.end()) {
      // Against the devices the server listed last: every one of them must hold it.
      bool any = false;
      bool all = true;
      for (const GroupKeyHolder& device : cached->second.devices) {
        if (device.account != m.account) continue;
        any = true;
        all = all && holds(device);
      }
      info.has_our_key = any && all;
    } else {
      info.has_our_key = std::any_of(holders.begin(), holders.end(), [&](const GroupKeyHolder& h) {
        return h.account == m.account;
      });
    }
    if (m.account == self) {
      info.handle = d.account->handle;
      details.admin = m.admin;
    } else {
      info.handle = d.HandleOf(m.account);
      SOTTO_ASSIGN_OR_RETURN(std::vector<signal::ProtocolAddress> pending,
                             d.store->PendingIdentities(m.account));
      info.identity_changed = !pending.empty();
    }
    details.members.push_back(std::move(info));
  }
  return details;
}

Result<std::vector<GroupDetails>> Client::Groups() {
  SOTTO_ASSIGN_OR_RETURN(std::vector<StoredGroup> groups, impl_->store->ListGroups());
  std::vector<GroupDetails> out;
  for (const StoredGroup& g : groups) {
    SOTTO_ASSIGN_OR_RETURN(GroupDetails details, GroupInfo(g.group_id));
    out.push_back(std::move(details));
  }
  return out;
}

Result<GroupDetails> Client::CreateGroup(std::string_view name,
                                         const std::vector<std::string>& handles) {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  if (!CheckGroupText(name, "")) {
    return SdkError(Code::kInvalidArgument, SdkErr::kTooLarge,
                    "the group name is longer than kMaxGroupNameBytes or not UTF-8");
  }
  std::vector<std::string> accounts;
  for (const std::string& handle : handles) {
    SOTTO_ASSIGN_OR_RETURN(Contact contact, d.ResolveContact(handle));
    if (std::find(accounts.begin(), accounts.end(), contact.account_id) == accounts.end()) {
      accounts.push_back(contact.account_id);
    }
  }
  if (!d.conn) SOTTO_RETURN_IF_ERROR(d.TryConnect());
  wire::Request request;
  for (const std::string& a : accounts) {
    const Bytes id = FromHex(a);
    request.mutable_create_group()->add_members(id.data(), id.size());
  }
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, d.Call(std::move(request)));
  if (response.status() != wire::STATUS_OK) return GroupStatusError(response.status());
  const wire::GroupInfo& info = response.group().group();
  if (info.group_id().size() != kGroupIdBytes) {
    return SdkError(Code::kDataLoss, SdkErr::kServerRefused, "the server's group id is malformed");
  }
  const std::string group_id = Hex(info.group_id());
  std::vector<std::string> refused;
  for (const std::string& a : response.group().refused()) {
    const std::string id = Hex(a);
    std::string handle = d.HandleOf(id);
    refused.push_back(handle.empty() ? id : handle);
    std::erase(accounts, id);
  }
  std::vector<Event> events;
  SOTTO_RETURN_IF_ERROR(d.ApplyGroupInfo(info, wire::GROUP_CREATE,
                                         Hex(AsString(d.account->account_id)), accounts, events));
  {
    SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> group, d.store->GetGroup(group_id));
    if (group) {
      group->name = std::string(name);
      group->rotate = false;  // a new group: our first key is created, not rotated
      SOTTO_RETURN_IF_ERROR(d.store->PutGroup(*group));
    }
  }
  for (const Event& e : events) d.Emit(e);
  // Hand our key (and with it the name) to every member now; if that fails it goes with
  // the first message.
  auto devices = d.FetchGroupDevices(group_id, true);
  if (devices) {
    auto distributed = d.DistributeSenderKey(group_id, *devices);
    if (!distributed && IsStoreError(distributed.error()))
      return tl::unexpected(distributed.error());
  } else if (IsStoreError(devices.error())) {
    return tl::unexpected(devices.error());
  }
  SOTTO_ASSIGN_OR_RETURN(GroupDetails details, GroupInfo(group_id));
  details.refused = std::move(refused);
  return details;
}

Result<std::vector<std::string>> Client::Impl::ModifyGroup(
    std::string_view ref, wire::GroupAction action, const std::vector<std::string>& handles) {
  Impl& d = *this;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  SOTTO_ASSIGN_OR_RETURN(const std::string group_id, d.ResolveGroupId(ref));
  std::vector<std::string> accounts;
  for (const std::string& handle : handles) {
    SOTTO_ASSIGN_OR_RETURN(Contact contact, d.ResolveContact(handle));
    accounts.push_back(contact.account_id);
  }
  if (!d.conn) SOTTO_RETURN_IF_ERROR(d.TryConnect());
  wire::Request request;
  const Bytes gid = FromHex(group_id);
  request.mutable_modify_group()->set_group_id(gid.data(), gid.size());
  request.mutable_modify_group()->set_action(action);
  for (const std::string& a : accounts) {
    const Bytes id = FromHex(a);
    request.mutable_modify_group()->add_accounts(id.data(), id.size());
  }
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, d.Call(std::move(request)));
  if (response.status() != wire::STATUS_OK) {
    if (action == wire::GROUP_ALLOW_READD && response.status() == wire::STATUS_CONFLICT) {
      return SdkError(Code::kFailedPrecondition, SdkErr::kNotRefused,
                      "this account does not refuse being added to this group");
    }
    return GroupStatusError(response.status());
  }
  std::vector<std::string> refused;
  for (const std::string& a : response.group().refused()) {
    const std::string id = Hex(a);
    std::string handle = d.HandleOf(id);
    refused.push_back(handle.empty() ? id : handle);
    std::erase(accounts, id);
  }
  if (action == wire::GROUP_ALLOW_READD) return refused;  // no membership in the answer
  std::vector<Event> events;
  SOTTO_RETURN_IF_ERROR(d.ApplyGroupInfo(response.group().group(), action,
                                         Hex(AsString(d.account->account_id)), accounts, events));
  for (const Event& e : events) d.Emit(e);
  if (action == wire::GROUP_ADD && !accounts.empty()) {
    // New members learn the name with our key now (best effort; else with our next message).
    auto devices = d.FetchGroupDevices(group_id, true);
    if (devices) {
      auto distributed = d.DistributeSenderKey(group_id, *devices);
      if (!distributed && IsStoreError(distributed.error())) {
        return tl::unexpected(distributed.error());
      }
    }
  }
  return refused;
}

Result<std::vector<std::string>> Client::AddMembers(std::string_view group,
                                                    const std::vector<std::string>& handles) {
  return impl_->ModifyGroup(group, wire::GROUP_ADD, handles);
}

Status Client::RemoveMembers(std::string_view group, const std::vector<std::string>& handles) {
  return impl_->ModifyGroup(group, wire::GROUP_REMOVE, handles).map([](auto&&) {});
}

Status Client::LeaveGroup(std::string_view group, ReAdds re_adds) {
  return impl_
      ->ModifyGroup(group,
                    re_adds == ReAdds::kRefuse ? wire::GROUP_LEAVE_REFUSE : wire::GROUP_LEAVE, {})
      .map([](auto&&) {});
}

Status Client::AllowGroupReadd(std::string_view group) {
  return impl_->ModifyGroup(group, wire::GROUP_ALLOW_READD, {}).map([](auto&&) {});
}

Status Client::SetGroupAdds(std::string_view who) {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  wire::GroupAdds value = wire::GROUP_ADDS_EVERYONE;
  if (who == "contacts") {
    value = wire::GROUP_ADDS_CONTACTS;
  } else if (who == "nobody") {
    value = wire::GROUP_ADDS_NOBODY;
  } else if (who != "everyone") {
    return SdkError(Code::kInvalidArgument, SdkErr::kServerRefused,
                    "who may add you must be everyone, contacts or nobody");
  }
  if (!d.conn) SOTTO_RETURN_IF_ERROR(d.TryConnect());
  wire::Request request;
  request.mutable_set_group_adds()->set_adds(value);
  SOTTO_ASSIGN_OR_RETURN(wire::Response response, d.Call(std::move(request)));
  if (response.status() != wire::STATUS_OK) {
    return SdkError(Code::kUnavailable, SdkErr::kServerRefused,
                    "the server refused the group-adds choice");
  }
  return d.store->PutSetting("group_adds", who);
}

Status Client::SetAdmin(std::string_view group, std::string_view handle, bool admin) {
  return impl_
      ->ModifyGroup(group, admin ? wire::GROUP_PROMOTE : wire::GROUP_DEMOTE, {std::string(handle)})
      .map([](auto&&) {});
}

Status Client::RenameGroup(std::string_view ref, std::string_view name,
                           std::string_view description) {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  if (!CheckGroupText(name, description)) {
    return SdkError(Code::kInvalidArgument, SdkErr::kTooLarge,
                    "the group name or description is past kMaxGroupNameBytes / "
                    "kMaxGroupDescriptionBytes or not UTF-8");
  }
  SOTTO_ASSIGN_OR_RETURN(const std::string group_id, ResolveGroup(ref));
  SOTTO_ASSIGN_OR_RETURN(GroupDetails details, GroupInfo(group_id));
  if (!details.member) {
    return SdkError(Code::kPermissionDenied, SdkErr::kNotMember,
                    "this account is not a member of the group");
  }
  if (!details.admin) {
    return SdkError(Code::kPermissionDenied, SdkErr::kNotAdmin, "only admins may rename the group");
  }
  content::Content content = d.NewContent();
  const Bytes gid = FromHex(group_id);
  content.mutable_group_metadata()->set_group_id(gid.data(), gid.size());
  content.mutable_group_metadata()->set_name(std::string(name));
  content.mutable_group_metadata()->set_description(std::string(description));
  {
    LocalStore::Transaction tx(*d.store);
    SOTTO_ASSIGN_OR_RETURN(std::optional<StoredGroup> group, d.store->GetGroup(group_id));
    group->name = std::string(name);
    group->description = std::string(description);
    SOTTO_RETURN_IF_ERROR(d.store->PutGroup(*group));
    SOTTO_RETURN_IF_ERROR(d.QueueGroupContent(group_id, content, nullptr));
    SOTTO_RETURN_IF_ERROR(tx.Commit());
  }
  if (!d.conn) (void)d.TryConnect();
  if (d.conn) SOTTO_RETURN_IF_ERROR(d.FlushOutbox(Impl::Due::kAll));
  return Ok();
}

Result<SendOutcome> Client::SendGroupText(std::string_view ref, std::string_view text) {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  if (text.size() > kMaxBodyBytes) {
    return SdkError(Code::kInvalidArgument, SdkErr::kTooLarge, kTextTooLong);
  }
  if (!IsUtf8(text)) {
    return SdkError(Code::kInvalidArgument, SdkErr::kTooLarge, "the text is not UTF-8");
  }
  SOTTO_ASSIGN_OR_RETURN(const std::string group_id, ResolveGroup(ref));
  content::DataMessage data;
  data.set_body(std::string(text));
  data.set_timestamp_ms(WallMs());
  return d.SendGroupData(group_id, std::move(data), std::nullopt);
}

Result<SendOutcome> Client::Impl::SendGroupData(const std::string& group_id,
                                                content::DataMessage data,
                                                std::optional<AttachmentInfo> attachment) {
  content::Content content = NewContent();
  const Bytes gid = FromHex(group_id);
  *content.mutable_data() = std::move(data);
  content.mutable_data()->mutable_group()->set_group_id(gid.data(), gid.size());
  StoredMessage message;
  message.message_id = NewMessageId();
  message.peer = group_id;
  message.group_id = group_id;
  message.group_sender = Hex(AsString(account->account_id));
  message.direction = MessageDirection::kOutgoing;
  message.body = content.data().body();
  message.sent_ms = content.data().timestamp_ms();
  message.stored_ms = message.sent_ms;
  message.tick = Tick::kPending;
  message.attachment = std::move(attachment);
  OutboxItem item;
  {
    LocalStore::Transaction tx(*store);
    SOTTO_ASSIGN_OR_RETURN(item, QueueGroupContent(group_id, content, &message));
    if (message.attachment) {
      const std::string serialized = content.data().attachment().SerializeAsString();
      SOTTO_RETURN_IF_ERROR(
          store->PutAttachment(message.rowid, AsBytes(serialized), *message.attachment));
    }
    SOTTO_RETURN_IF_ERROR(tx.Commit());
  }
  SendOutcome outcome{item.message_id, Tick::kPending};
  if (!conn) (void)TryConnect();
  // Oldest first: anything queued earlier for this group goes before this message.
  if (conn) SOTTO_RETURN_IF_ERROR(FlushOutbox(Due::kAll));
  SOTTO_ASSIGN_OR_RETURN(std::optional<StoredMessage> stored,
                         store->GetMessage(group_id, MessageDirection::kOutgoing, item.message_id));
  if (stored) outcome.tick = stored->tick;
  return outcome;
}

Result<std::vector<StoredMessage>> Client::GroupConversation(std::string_view ref, size_t limit) {
  SOTTO_ASSIGN_OR_RETURN(const std::string group_id, ResolveGroup(ref));
  SOTTO_ASSIGN_OR_RETURN(std::vector<StoredMessage> messages,
                         impl_->store->GroupConversation(group_id, limit));
  for (StoredMessage& m : messages) {
    SOTTO_ASSIGN_OR_RETURN(std::optional<LocalStore::Attachment> a, impl_->store->GetAttachment(m.rowid));
    if (a) m.attachment = a->info;
  }
  return messages;
}

Result<std::vector<GroupReceipt>> Client::GroupReceipts(std::string_view ref,
                                                        std::string_view message_id) {
  SOTTO_ASSIGN_OR_RETURN(const std::string group_id, ResolveGroup(ref));
  std::vector<GroupReceipt> out;
  SOTTO_ASSIGN_OR_RETURN(
      std::optional<StoredMessage> message,
      impl_->store->GetMessage(group_id, MessageDirection::kOutgoing, message_id));
  if (!message) return out;  // not one of our messages in this group
  SOTTO_ASSIGN_OR_RETURN(std::vector<GroupReceiptRow> rows,
                         impl_->store->GroupReceipts(message_id));
  out.reserve(rows.size());
  for (const GroupReceiptRow& row : rows) {
    out.push_back({row.member, impl_->HandleOf(row.member), row.delivered_ms, row.read_ms});
  }
  return out;
}

Result<size_t> Client::MarkGroupRead(std::string_view ref) {
  Impl& d = *impl_;
  SOTTO_RETURN_IF_ERROR(d.RequireRegistered());
  SOTTO_ASSIGN_OR_RETURN(const std::string group_id, ResolveGroup(ref));
  const std::string self = Hex(AsString(d.account->account_id));
  std::vector<StoredMessage> read;
  {
    LocalStore::Transaction tx(*d.store);
    SOTTO_ASSIGN_OR_RETURN(read, d.store->MarkGroupRead(group_id));
    std::map<std::string, std::vector<std::string>> by_sender;
    for (const StoredMessage& m : read) {
      if (m.group_sender != self) by_sender[m.group_sender].push_back(m.message_id);
    }
    for (const auto& [sender, ids] : by_sender) {
      for (size_t i = 0; i < ids.size(); i += kMaxReceiptIds) {
        content::Content content = d.NewContent();
        content.mutable_receipt()->set_type(content::ReceiptMessage::READ);
        for (size_t k = i; k < std::min(ids.size(), i + kMaxReceiptIds); ++k) {
          const Bytes id = FromHex(ids[k]);
          content.mutable_receipt()->add_message_ids(id.data(), id.size());
        }
        SOTTO_RETURN_IF_ERROR(d.QueueContent(sender, content, false));
      }
    }
    SOTTO_RETURN_IF_ERROR(tx.Commit());
  }
  if (!read.empty() && !d.conn) (void)d.TryConnect();
  if (!read.empty() && d.conn) SOTTO_RETURN_IF_ERROR(d.FlushOutbox(Impl::Due::kAll));
  return read.size();
}

}  // namespace sotto::client
