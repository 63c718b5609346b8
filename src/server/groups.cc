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
  // The miss's store read happens under cache_mu_: a change publishes after its store
  // write, so a reader can never insert a snapshot older than one already published.
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (auto it = cache_.find(id); it != cache_.end()) return it->second;
  SOTTO_ASSIGN_OR_RETURN(auto record, store_.Get(id));
  if (!record) return GroupPtr();
  auto shared = std::make_shared<const store::GroupRecord>(std::move(*record));
  if (cache_.size() >= kMaxCachedGroups) cache_.clear();
  cache_.emplace(id, shared);
  return GroupPtr(shared);
}

void Groups::Publish(const GroupId& id, GroupPtr group) {
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (cache_.size() >= kMaxCachedGroups) cache_.clear();
  cache_[id] = std::move(group);
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

  store::GroupRecord group;
  random.Fill(MutableByteSpan(group.id.data(), group.id.size()));
  group.version = 1;
  group.created_ms = now_ms;
  named.push_back(creator);
  std::sort(named.begin(), named.end());
  for (const AccountId& a : named) group.members.push_back({a, a == creator, group.version});
  {
    std::lock_guard<std::mutex> lock(StripeFor(group.id));
    SOTTO_RETURN_IF_ERROR(store_.Put(group));
    Publish(group.id, std::make_shared<const store::GroupRecord>(group));
  }
  GroupChange change;
  change.op = GroupOp::kCreate;
  change.actor = creator;
  change.notify = named;
  named.erase(std::find(named.begin(), named.end(), creator));
  change.accounts = std::move(named);
  change.after = std::move(group);
  return change;
}

Result<GroupChange> Groups::Modify(const AccountId& actor, const GroupId& id, GroupOp op,
                                   std::span<const AccountId> accounts) {
  if (op == GroupOp::kCreate) return GroupError(GroupErr::kBadRequest, "unknown group action");
  if (op == GroupOp::kLeave && !accounts.empty()) {
    return GroupError(GroupErr::kBadRequest, "leave names no accounts");
  }
  if (op != GroupOp::kLeave && accounts.empty()) {
    return GroupError(GroupErr::kBadRequest, "the action names no accounts");
  }
  SOTTO_ASSIGN_OR_RETURN(std::vector<AccountId> named, Named(accounts));

  std::lock_guard<std::mutex> lock(StripeFor(id));
  SOTTO_ASSIGN_OR_RETURN(GroupPtr current, Get(id));
  if (current == nullptr) return GroupError(GroupErr::kNoGroup, "no such group");
  const store::GroupMemberRecord* me = current->FindMember(actor);
  if (me == nullptr) return GroupError(GroupErr::kNotMember, "not a member of this group");
  if (op != GroupOp::kLeave && !me->admin) {
    return GroupError(GroupErr::kNotAdmin, "only admins change the membership");
  }

  store::GroupRecord g = *current;
  const uint64_t version = g.version + 1;
  std::vector<AccountId> notify = MemberIds(g);
  switch (op) {
    case GroupOp::kAdd: {
      for (const AccountId& a : named) {
        if (g.FindMember(a) != nullptr) {
          return GroupError(GroupErr::kConflict, "an account to add is a member already");
        }
      }
      if (g.members.size() + named.size() > config_.max_members) {
        return GroupError(GroupErr::kTooManyMembers, "more members than groups.max_members");
      }
      SOTTO_RETURN_IF_ERROR(AllExist(named));
      for (const AccountId& a : named) {
        auto at = std::lower_bound(g.members.begin(), g.members.end(), a, ByAccount);
        g.members.insert(at, store::GroupMemberRecord{a, false, version});
      }
      notify.insert(notify.end(), named.begin(), named.end());
      break;
    }
    case GroupOp::kRemove: {
      for (const AccountId& a : named) {
        if (a == actor) return GroupError(GroupErr::kBadRequest, "to remove yourself, leave");
        if (g.FindMember(a) == nullptr) {
          return GroupError(GroupErr::kBadRequest, "an account to remove is not a member");
        }
      }
      std::erase_if(g.members, [&](const store::GroupMemberRecord& m) {
        return std::binary_search(named.begin(), named.end(), m.account);
      });
      break;
    }
    case GroupOp::kLeave: {
      named = {actor};
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
      }
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
      break;
    }
    case GroupOp::kCreate:
      break;
  }
  g.version = version;
  if (g.members.empty()) {
    SOTTO_RETURN_IF_ERROR(store_.Delete(id));
    Publish(id, nullptr);
  } else {
    SOTTO_RETURN_IF_ERROR(store_.Put(g));
    Publish(id, std::make_shared<const store::GroupRecord>(g));
  }
  GroupChange change;
  change.op = op;
  change.actor = actor;
  change.accounts = std::move(named);
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
