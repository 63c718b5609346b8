#include "server/groups.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace sotto::server {
namespace {

tl::unexpected<Error> GroupError(GroupErr detail, const char* message) {
  Code code = Code::kInvalidArgument;
  switch (detail) {
    case GroupErr::kNoGroup:
    case GroupErr::kNoAccount:
      code = Code::kNotFound;
      break;
    case GroupErr::kNotMember:
    case GroupErr::kNotAdmin:
      code = Code::kPermissionDenied;
      break;
    case GroupErr::kTooManyMembers:
    case GroupErr::kTooManyAccounts:
    case GroupErr::kRateLimited:
    case GroupErr::kTooManyRefusals:
      code = Code::kResourceExhausted;
      break;
    case GroupErr::kConflict:
      code = Code::kFailedPrecondition;
      break;
    case GroupErr::kBadRequest:
      break;
  }
  return MakeError(code, Module::kServer, static_cast<uint16_t>(detail), message);
}

bool ByAccount(const store::GroupMemberRecord& m, const AccountId& a) { return m.account < a; }

store::GroupMemberRecord* Find(store::GroupRecord& g, const AccountId& a) {
  auto it = std::lower_bound(g.members.begin(), g.members.end(), a, ByAccount);
  return it == g.members.end() || it->account != a ? nullptr : &*it;
}

size_t AdminCount(const store::GroupRecord& g) {
  return static_cast<size_t>(
      std::count_if(g.members.begin(), g.members.end(),
                    [](const store::GroupMemberRecord& m) { return m.admin; }));
}

std::vector<AccountId> MemberIds(const store::GroupRecord& g) {
  std::vector<AccountId> out;
  out.reserve(g.members.size());
  for (const store::GroupMemberRecord& m : g.members) out.push_back(m.account);
  return out;
}

bool IsStale(const Error& e) {
  return e.module == Module::kStore && e.detail == static_cast<uint16_t>(store::StoreErr::kStale);
}

void PutU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

}  // namespace

size_t GroupIdHash::operator()(const GroupId& id) const noexcept {
  uint64_t h = 0;
  std::memcpy(&h, id.data(), sizeof h);  // group ids are random
  return static_cast<size_t>(h);
}

Groups::Groups(store::GroupStore& store, Accounts& accounts, GroupsConfig config)
    : store_(store), accounts_(accounts), config_(config) {}

std::mutex& Groups::StripeFor(const GroupId& id) {
  return change_mu_[GroupIdHash()(id) % kChangeStripes];
}

Result<GroupPtr> Groups::Get(const GroupId& id) {
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (auto it = cache_.find(id); it != cache_.end()) return it->second;
  }
  // The store read runs without the lock; Publish keeps whichever revision is newer.
  SOTTO_ASSIGN_OR_RETURN(auto record, store_.Get(id));
  if (!record) return GroupPtr();
  return Publish(id, std::make_shared<const store::GroupRecord>(std::move(*record)));
}

Result<GroupPtr> Groups::Load(const GroupId& id) {
  SOTTO_ASSIGN_OR_RETURN(auto record, store_.Get(id));
  if (!record) return Publish(id, nullptr);  // it existed: deleted meanwhile
  return Publish(id, std::make_shared<const store::GroupRecord>(std::move(*record)));
}

GroupPtr Groups::Publish(const GroupId& id, GroupPtr group) {
  std::lock_guard<std::mutex> lock(cache_mu_);
  auto it = cache_.find(id);
  if (it != cache_.end()) {
    // Deleted stays deleted (group ids are random, never reused); otherwise the newer
    // revision wins, so a slow reader cannot replace a change with what it read before.
    if (it->second == nullptr) return nullptr;
    if (group != nullptr && it->second->revision >= group->revision) return it->second;
    it->second = group;
    return group;
  }
  if (cache_.size() >= kMaxCachedGroups) cache_.clear();
  cache_.emplace(id, group);
  return group;
}

Result<std::vector<AccountId>> Groups::Named(std::span<const AccountId> accounts) const {
  if (accounts.size() > config_.max_request_accounts) {
    return GroupError(GroupErr::kTooManyAccounts,
                      "a request names more accounts than groups.max_request_accounts");
  }
  std::vector<AccountId> sorted(accounts.begin(), accounts.end());
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return GroupError(GroupErr::kBadRequest, "an account is named twice");
  }
  return sorted;
}

Status Groups::AllExist(std::span<const AccountId> accounts) {
  for (const AccountId& a : accounts) {
    SOTTO_ASSIGN_OR_RETURN(auto record, accounts_.Get(a));
    if (record == nullptr) return GroupError(GroupErr::kNoAccount, "no such account");
  }
  return Ok();
}

Status Groups::SplitRefused(const AccountId& actor, const store::GroupRecord* g,
                            std::vector<AccountId>& named, std::vector<AccountId>& refused) {
  std::vector<AccountId> kept;
  kept.reserve(named.size());
  for (const AccountId& a : named) {
    bool refuses = g != nullptr && g->Refuses(a);
    if (!refuses) {
      SOTTO_ASSIGN_OR_RETURN(auto record, accounts_.Get(a));
      if (record == nullptr) return GroupError(GroupErr::kNoAccount, "no such account");
      switch (record->group_adds) {
        case store::GroupAdds::kEveryone:
          break;
        case store::GroupAdds::kContacts: {
          SOTTO_ASSIGN_OR_RETURN(const bool contact, accounts_.HasContact(a, actor));
          refuses = !contact;
          break;
        }
        case store::GroupAdds::kNobody:
          refuses = true;
          break;
      }
    }
    (refuses ? refused : kept).push_back(a);
  }
  named = std::move(kept);
  return Ok();
}

Status Groups::ChargeOnce(const AccountId& actor, const GroupId* group, uint64_t now_ms,
                          bool& charged) {
  if (charged) return Ok();  // an earlier attempt of the same change took the tokens
  SOTTO_RETURN_IF_ERROR(AllowChange(actor, group, now_ms));
  charged = true;
  return Ok();
}

Status Groups::AllowChange(const AccountId& actor, const GroupId* group, uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(rate_mu_);
  if (account_buckets_.size() >= kMaxGroupChangeBuckets) account_buckets_.clear();
  if (group_buckets_.size() >= kMaxGroupChangeBuckets) group_buckets_.clear();
  TokenBucket& mine = account_buckets_[actor];
  // The group's bucket is checked on a copy first: a refusal takes no token from either.
  if (group != nullptr) {
    TokenBucket& theirs = group_buckets_[*group];
    TokenBucket probe = theirs;
    if (!probe.Allow(now_ms, config_.group_change_rate)) {
      theirs = probe;
      return GroupError(GroupErr::kRateLimited,
                        "too many changes to this group (groups.group_change_rate_per_s)");
    }
    if (!mine.Allow(now_ms, config_.account_change_rate)) {
      return GroupError(
          GroupErr::kRateLimited,
          "too many group changes by this account (groups.account_change_rate_per_s)");
    }
    theirs = probe;
    return Ok();
  }
  if (!mine.Allow(now_ms, config_.account_change_rate)) {
    return GroupError(GroupErr::kRateLimited,
                      "too many group changes by this account (groups.account_change_rate_per_s)");
  }
  return Ok();
}

Result<GroupChange> Groups::Create(const AccountId& creator, std::span<const AccountId> members,
                                   uint64_t now_ms, crypto::Random& random) {
  SOTTO_ASSIGN_OR_RETURN(std::vector<AccountId> named, Named(members));
  if (std::binary_search(named.begin(), named.end(), creator)) {
    return GroupError(GroupErr::kBadRequest, "the creator is a member already; name the others");
  }
  if (named.size() + 1 > config_.max_members) {
    return GroupError(GroupErr::kTooManyMembers, "more members than groups.max_members");
  }
  SOTTO_RETURN_IF_ERROR(AllExist(named));
  SOTTO_RETURN_IF_ERROR(AllowChange(creator, nullptr, now_ms));
  GroupChange change;
  SOTTO_RETURN_IF_ERROR(SplitRefused(creator, nullptr, named, change.refused));

  store::GroupRecord group;
  random.Fill(MutableByteSpan(group.id.data(), group.id.size()));
  group.version = 1;
  group.created_ms = now_ms;
  change.added = named;  // the creator is not "added": it is the actor
  named.push_back(creator);
  std::sort(named.begin(), named.end());
  for (const AccountId& a : named) group.members.push_back({a, a == creator, group.version});
  {
    std::lock_guard<std::mutex> lock(StripeFor(group.id));
    // Revision 0: a fresh random id that no record may have (kStale would be a collision).
    SOTTO_ASSIGN_OR_RETURN(group.revision, store_.Put(group));
    Publish(group.id, std::make_shared<const store::GroupRecord>(group));
  }
  change.op = GroupOp::kCreate;
  change.actor = creator;
  change.notify = named;
  change.accounts = change.added;
  change.after = std::move(group);
  return change;
}

Result<GroupChange> Groups::Modify(const AccountId& actor, const GroupId& id, GroupOp op,
                                   std::span<const AccountId> accounts, uint64_t now_ms) {
  if (op == GroupOp::kCreate) return GroupError(GroupErr::kBadRequest, "unknown group action");
  const bool names_nobody =
      op == GroupOp::kLeave || op == GroupOp::kLeaveRefuse || op == GroupOp::kAllowReadd;
  if (names_nobody && !accounts.empty()) {
    return GroupError(GroupErr::kBadRequest, "leave and allow-readd name no accounts");
  }
  if (!names_nobody && accounts.empty()) {
    return GroupError(GroupErr::kBadRequest, "the action names no accounts");
  }
  SOTTO_ASSIGN_OR_RETURN(std::vector<AccountId> named, Named(accounts));

  // The stripe keeps this process's changes of one group from racing each other; the
  // store's compare-and-set catches other processes: a lost one re-reads the group from
  // the store and applies the change again (its checks included), kMaxCasAttempts times.
  std::lock_guard<std::mutex> lock(StripeFor(id));
  SOTTO_ASSIGN_OR_RETURN(GroupPtr current, Get(id));
  bool charged = false;
  for (int attempt = 1;; ++attempt) {
    if (current == nullptr) return GroupError(GroupErr::kNoGroup, "no such group");
    auto result = TryModify(actor, *current, op, named, now_ms, charged);
    if (result || !IsStale(result.error()) || attempt >= kMaxCasAttempts) return result;
    SOTTO_ASSIGN_OR_RETURN(current, Load(id));
  }
}

Result<GroupChange> Groups::TryModify(const AccountId& actor, const store::GroupRecord& current,
                                      GroupOp op, std::vector<AccountId> named, uint64_t now_ms,
                                      bool& charged) {
  const GroupId& id = current.id;
  GroupChange change;
  change.op = op;
  change.actor = actor;
  if (op == GroupOp::kAllowReadd) {
    if (!current.Refuses(actor)) {
      return GroupError(GroupErr::kConflict, "this account does not refuse this group");
    }
    SOTTO_RETURN_IF_ERROR(ChargeOnce(actor, nullptr, now_ms, charged));
    store::GroupRecord g = current;
    std::erase(g.refused, actor);
    SOTTO_ASSIGN_OR_RETURN(g.revision, store_.Put(g));
    Publish(id, std::make_shared<const store::GroupRecord>(g));
    change.changed = false;
    change.accounts = {actor};
    change.after = std::move(g);
    return change;
  }
  const store::GroupMemberRecord* me = current.FindMember(actor);
  if (me == nullptr) return GroupError(GroupErr::kNotMember, "not a member of this group");
  const bool leaving = op == GroupOp::kLeave || op == GroupOp::kLeaveRefuse;
  if (!leaving && !me->admin) {
    return GroupError(GroupErr::kNotAdmin, "only admins change the membership");
  }
  if (op == GroupOp::kLeaveRefuse && current.refused.size() >= store::kMaxStoredGroupRefusals) {
    return GroupError(GroupErr::kTooManyRefusals,
                      "the group holds the most refusals it may (kMaxStoredGroupRefusals)");
  }

  store::GroupRecord g = current;
  const uint64_t version = g.version + 1;
  std::vector<AccountId> notify = MemberIds(g);
  switch (op) {
    case GroupOp::kAdd: {
      for (const AccountId& a : named) {
        if (g.FindMember(a) != nullptr) {
          return GroupError(GroupErr::kConflict, "an account to add is a member already");
        }
      }
      SOTTO_RETURN_IF_ERROR(AllExist(named));
      change.accounts = named;
      SOTTO_RETURN_IF_ERROR(SplitRefused(actor, &g, named, change.refused));
      if (g.members.size() + named.size() > config_.max_members) {
        return GroupError(GroupErr::kTooManyMembers, "more members than groups.max_members");
      }
      SOTTO_RETURN_IF_ERROR(ChargeOnce(actor, &id, now_ms, charged));
      if (named.empty()) {  // everyone named refuses: nothing changes
        change.changed = false;
        change.after = std::move(g);
        return change;
      }
      for (const AccountId& a : named) {
        auto at = std::lower_bound(g.members.begin(), g.members.end(), a, ByAccount);
        g.members.insert(at, store::GroupMemberRecord{a, false, version});
      }
      notify.insert(notify.end(), named.begin(), named.end());
      change.added = named;
      change.accounts = named;
      break;
    }
    case GroupOp::kRemove: {
      for (const AccountId& a : named) {
        if (a == actor) return GroupError(GroupErr::kBadRequest, "to remove yourself, leave");
        if (g.FindMember(a) == nullptr) {
          return GroupError(GroupErr::kBadRequest, "an account to remove is not a member");
        }
      }
      SOTTO_RETURN_IF_ERROR(ChargeOnce(actor, &id, now_ms, charged));
      std::erase_if(g.members, [&](const store::GroupMemberRecord& m) {
        return std::binary_search(named.begin(), named.end(), m.account);
      });
      change.removed = named;
      change.accounts = named;
      break;
    }
    case GroupOp::kLeave:
    case GroupOp::kLeaveRefuse: {
      // Only the actor's own bucket: a group kept busy by others never traps a member.
      SOTTO_RETURN_IF_ERROR(ChargeOnce(actor, nullptr, now_ms, charged));
      const bool was_admin = me->admin;
      std::erase_if(g.members,
                    [&](const store::GroupMemberRecord& m) { return m.account == actor; });
      if (was_admin && !g.members.empty() && AdminCount(g) == 0) {
        auto heir = std::min_element(
            g.members.begin(), g.members.end(),
            [](const store::GroupMemberRecord& x, const store::GroupMemberRecord& y) {
              return x.joined_version != y.joined_version ? x.joined_version < y.joined_version
                                                          : x.account < y.account;
            });
        heir->admin = true;
        change.promoted = {heir->account};
      }
      if (op == GroupOp::kLeaveRefuse) {
        g.refused.insert(std::lower_bound(g.refused.begin(), g.refused.end(), actor), actor);
      }
      change.removed = {actor};
      change.accounts = {actor};
      break;
    }
    case GroupOp::kPromote:
    case GroupOp::kDemote: {
      const bool promote = op == GroupOp::kPromote;
      for (const AccountId& a : named) {
        store::GroupMemberRecord* m = Find(g, a);
        if (m == nullptr)
          return GroupError(GroupErr::kBadRequest, "an account named is not a member");
        if (m->admin == promote) {
          return GroupError(GroupErr::kConflict, promote
                                                     ? "an account to promote is an admin already"
                                                     : "an account to demote is not an admin");
        }
        m->admin = promote;
      }
      if (AdminCount(g) == 0) {
        return GroupError(GroupErr::kConflict, "a group keeps at least one admin");
      }
      SOTTO_RETURN_IF_ERROR(ChargeOnce(actor, &id, now_ms, charged));
      (promote ? change.promoted : change.demoted) = named;
      change.accounts = named;
      break;
    }
    case GroupOp::kCreate:
    case GroupOp::kAllowReadd:
      break;
  }
  g.version = version;
  if (g.members.empty()) {
    SOTTO_RETURN_IF_ERROR(store_.Delete(id, g.revision));
    Publish(id, nullptr);
  } else {
    SOTTO_ASSIGN_OR_RETURN(g.revision, store_.Put(g));
    Publish(id, std::make_shared<const store::GroupRecord>(g));
  }
  std::sort(notify.begin(), notify.end());
  change.notify = std::move(notify);
  change.after = std::move(g);
  return change;
}

Result<std::vector<std::shared_ptr<const store::AccountRecord>>> Groups::MemberAccounts(
    const store::GroupRecord& group) {
  std::vector<std::shared_ptr<const store::AccountRecord>> out;
  out.reserve(group.members.size());
  for (const store::GroupMemberRecord& m : group.members) {
    SOTTO_ASSIGN_OR_RETURN(auto record, accounts_.Get(m.account));
    if (record != nullptr) out.push_back(std::move(record));
  }
  return out;
}

crypto::Sha256Digest GroupDevicesDigest(
    std::span<const std::shared_ptr<const store::AccountRecord>> members,
    const store::DeviceAddress& exclude) {
  // Reused per thread: a 1024-member group with 5 devices each is ~120 KiB of input.
  thread_local std::string input;
  input.clear();
  for (const auto& account : members) {
    for (const store::DeviceRecord& d : account->devices) {
      if (d.pending) continue;  // linked, not yet listed: AccountRecord::ActiveDevices
      if (account->id == exclude.account && d.device_id == exclude.device_id) continue;
      input.append(reinterpret_cast<const char*>(account->id.data()), account->id.size());
      PutU32(input, d.device_id);
      PutU32(input, d.registration_id);
    }
  }
  return crypto::Sha256(AsBytes(input));
}

void FillGroupDevicesPage(std::span<const std::shared_ptr<const store::AccountRecord>> members,
                          uint32_t offset, wire::GetGroupDevicesResponse& out) {
  size_t bytes = 0;
  out.set_next_offset(0);
  for (size_t i = offset; i < members.size(); ++i) {
    const store::AccountRecord& account = *members[i];
    wire::MemberDevices md;
    md.set_account_id(reinterpret_cast<const char*>(account.id.data()), account.id.size());
    for (const store::DeviceRecord& d : account.devices) {
      if (d.pending) continue;  // linked, not yet listed: AccountRecord::ActiveDevices
      md.add_device_ids(d.device_id);
      md.add_registration_ids(d.registration_id);
    }
    const size_t size = md.ByteSizeLong() + 4;  // + field tag and length
    if (bytes + size > kGroupDevicesPageBytes && bytes > 0) {
      out.set_next_offset(static_cast<uint32_t>(i));
      break;
    }
    bytes += size;
    *out.add_members() = std::move(md);
  }
}

}  // namespace sotto::server
