// Server-side groups: membership kept for fan-out only (names, avatars and the like
// travel end to end). Membership rules and the cache group sends read on every message;
// the wire handlers are in core_groups.cc. Rules (docs/server.md "Groups"):
// - the creator is the first admin; only admins add, remove, promote and demote;
// - any member leaves; when the last admin leaves, the longest-standing remaining member
//   (lowest joined_version, then lowest account id) becomes admin; when the last member
//   leaves, the group is deleted;
// - members are existing accounts; a group has at most GroupsConfig::max_members members
//   and a request names at most GroupsConfig::max_request_accounts accounts;
// - every change bumps the version by one;
// - consent: a member who leaves with kLeaveRefuse cannot be added to that group again
//   until it lifts that (kAllowReadd); an account's GroupAdds choice says who else may add
//   it to any group. A create or add skips such accounts and names them in
//   GroupChange::refused; the rest of the change goes ahead;
// - rate limits: GroupsConfig::account_change_rate per acting account and
//   group_change_rate per group (leaving and lifting a refusal only take the account's).
//
// Thread-safety: thread-safe. Changes to one group within this process are serialized
// (striped mutexes held across the read-modify-write); the store write is a
// compare-and-set, so a change that raced another process (kStale) re-reads the group
// from the store and is applied again, up to kMaxCasAttempts times, then reports kStale
// (Code::kAborted). Reads are served from a cache of immutable snapshots that never
// replaces a group with an older revision; no cache lock is held across store I/O.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "server/accounts.h"
#include "server/config.h"
#include "server/rate_limiter.h"
#include "store/store.h"
#include "wire/sotto_wire.pb.h"

namespace sotto::server {

using store::GroupId;

struct GroupIdHash {
  size_t operator()(const GroupId& id) const noexcept;
};

// Why a group request was refused. Error::message is static text naming the rule or
// limit; core_groups.cc sends it as the response reason.
enum class GroupErr : uint16_t {
  kNoGroup = 7060,          // no group with this id
  kNotMember = 7061,        // the actor is not a member
  kNotAdmin = 7062,         // the change needs an admin
  kBadRequest = 7063,       // malformed or contradictory (e.g. an account named twice)
  kTooManyMembers = 7064,   // past groups.max_members
  kTooManyAccounts = 7065,  // past groups.max_request_accounts
  kNoAccount = 7066,        // a named account does not exist
  kConflict = 7067,         // the change would change nothing or leave no admin
  kRateLimited = 7068,      // past groups.account_change_rate or groups.group_change_rate
  kTooManyRefusals = 7069,  // the group holds store::kMaxStoredGroupRefusals refusals
};

enum class GroupOp : uint8_t {
  kCreate,
  kAdd,
  kRemove,
  kLeave,
  kPromote,
  kDemote,
  kLeaveRefuse,  // leave, and refuse being added to this group again
  kAllowReadd,   // lift one's own kLeaveRefuse (a non-member; changes no membership)
};

// A group snapshot shared with readers; never changed after it is published.
using GroupPtr = std::shared_ptr<const store::GroupRecord>;

// Entries the group cache holds before it starts over (a crude but bounded policy).
inline constexpr size_t kMaxCachedGroups = 100'000;
// Rate-limit buckets (per account, and per group) held before starting over.
inline constexpr size_t kMaxGroupChangeBuckets = 100'000;

// The outcome of a successful change, for the announcement.
struct GroupChange {
  store::GroupRecord after;  // the group after it (no members: deleted)
  GroupOp op = GroupOp::kCreate;
  AccountId actor{};
  std::vector<AccountId> accounts;  // whom it concerned (sorted), as the request named them
  std::vector<AccountId> notify;    // members before or after (sorted, unique)
  // The delta announced (each sorted): who joined, who is out, whose admin flag changed.
  std::vector<AccountId> added;
  std::vector<AccountId> removed;
  std::vector<AccountId> promoted;
  std::vector<AccountId> demoted;
  std::vector<AccountId> refused;  // named to create/add, not added: they refuse (sorted)
  // False if the membership did not change (everyone named refused, or kAllowReadd): no
  // new version, nothing to announce.
  bool changed = true;
};

class Groups {
 public:
  // `store` and `accounts` must outlive this object.
  Groups(store::GroupStore& store, Accounts& accounts, GroupsConfig config);

  // The group, or nullptr if there is none. Cached: no store read or parse on a hit.
  Result<GroupPtr> Get(const GroupId& id);

  // Creates a group with a fresh random id: `creator` (admin) and those of `members` that
  // do not refuse it (the others are in `refused`). `now_ms` drives the rate limits.
  // Errors: kRateLimited, kBadRequest (the creator or an account named twice),
  // kTooManyAccounts, kTooManyMembers, kNoAccount, store errors.
  Result<GroupChange> Create(const AccountId& creator, std::span<const AccountId> members,
                             uint64_t now_ms, crypto::Random& random);
  // Applies `op` (not kCreate) by `actor`; `accounts` is empty for kLeave, kLeaveRefuse
  // and kAllowReadd. Errors: kRateLimited, kNoGroup, kNotMember (the actor; not for
  // kAllowReadd), kNotAdmin, kBadRequest (e.g. removing a non-member, removing oneself),
  // kTooManyAccounts, kTooManyMembers, kNoAccount (add), kConflict (adding a member,
  // promoting an admin, demoting a non-admin, demoting the last admin, lifting a refusal
  // that was not made), kTooManyRefusals, store errors.
  Result<GroupChange> Modify(const AccountId& actor, const GroupId& id, GroupOp op,
                             std::span<const AccountId> accounts, uint64_t now_ms);

  // The current account record of every member, in member order (a member whose account
  // is gone is skipped). From the accounts cache.
  Result<std::vector<std::shared_ptr<const store::AccountRecord>>> MemberAccounts(
      const store::GroupRecord& group);

  const GroupsConfig& config() const { return config_; }

 private:
  static constexpr size_t kChangeStripes = 64;
  std::mutex& StripeFor(const GroupId& id);
  // Checks `accounts` (count, duplicates) and copies them sorted.
  Result<std::vector<AccountId>> Named(std::span<const AccountId> accounts) const;
  Status AllExist(std::span<const AccountId> accounts);
  // Moves the accounts of `named` that refuse being added by `actor` to group `g` (nullptr:
  // a new group) into `refused`.
  Status SplitRefused(const AccountId& actor, const store::GroupRecord* g,
                      std::vector<AccountId>& named, std::vector<AccountId>& refused);
  // Takes a token from the actor's bucket and, unless `group` is null, the group's.
  Status AllowChange(const AccountId& actor, const GroupId* group, uint64_t now_ms);
  // AllowChange once per change, however many compare-and-set attempts it takes.
  Status ChargeOnce(const AccountId& actor, const GroupId* group, uint64_t now_ms, bool& charged);
  // One attempt of Modify on `current` (its checks and its store write, by
  // compare-and-set against current.revision).
  Result<GroupChange> TryModify(const AccountId& actor, const store::GroupRecord& current,
                                GroupOp op, std::vector<AccountId> named, uint64_t now_ms,
                                bool& charged);
  // Reads the group from the store (never the cache) and publishes it (nullptr: deleted).
  Result<GroupPtr> Load(const GroupId& id);
  // Caches `group` unless the cache holds the same or a newer revision, or a deletion;
  // returns what the cache then holds.
  GroupPtr Publish(const GroupId& id, GroupPtr group);

  store::GroupStore& store_;
  Accounts& accounts_;
  const GroupsConfig config_;
  std::array<std::mutex, kChangeStripes> change_mu_;
  std::mutex cache_mu_;  // map operations only
  // GUARDED_BY(cache_mu_); nullptr = deleted (so a stale read cannot resurrect it)
  std::unordered_map<GroupId, GroupPtr, GroupIdHash> cache_;
  std::mutex rate_mu_;
  std::unordered_map<AccountId, TokenBucket, AccountIdHash>
      account_buckets_;                                                  // GUARDED_BY(rate_mu_)
  std::unordered_map<GroupId, TokenBucket, GroupIdHash> group_buckets_;  // GUARDED_BY(rate_mu_)
};

// devices_digest of docs/wire.md / sotto_wire.proto: SHA-256 over, for each member
// account in order and each of its devices in device-id order except `exclude`:
// account_id(16) || device_id(4, BE) || registration_id(4, BE). `members` must be in
// account order (as MemberAccounts returns them).
crypto::Sha256Digest GroupDevicesDigest(
    std::span<const std::shared_ptr<const store::AccountRecord>> members,
    const store::DeviceAddress& exclude);

// get_group_devices pages hold members until their encoding reaches this many bytes, so a
// response frame stays well under the 65535-byte Noise message (a member with 5 devices
// is ~45 bytes: 1024 of them take two pages; with one device each, also two).
inline constexpr size_t kGroupDevicesPageBytes = size_t{24} * 1024;

// Fills one get_group_devices page: `members` (as MemberAccounts returns them) from
// `offset` on, as many as fit in kGroupDevicesPageBytes (at least one), and next_offset
// (0 after the last). Requires offset <= members.size(). Does not set version or digest.
void FillGroupDevicesPage(std::span<const std::shared_ptr<const store::AccountRecord>> members,
                          uint32_t offset, wire::GetGroupDevicesResponse& out);

}  // namespace sotto::server
