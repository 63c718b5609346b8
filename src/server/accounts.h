// Accounts and their devices, over store::AccountStore with a read cache: the router
// looks an account's device list up on every Send, so it must not cost a store read
// and a parse each time. Changes are read-modify-write cycles ended by the store's
// compare-and-set: a cycle that loses a race (StoreErr::kStale, another thread or another
// sottod sharing the store won) re-reads the record from the store, reapplies the change
// and tries again, at most kMaxCasAttempts times, then reports kStale (docs/store.md,
// "Compare-and-set"). No lock is held across store I/O: the cache's lock covers map
// operations only, so a Send's Get never waits for another account's fsync, and the
// cache never replaces a record with one of an older revision.
//
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "crypto/random.h"
#include "store/store.h"

namespace sotto::server {

using store::AccountId;
using store::DeviceAddress;
using store::StaticKey;

struct AccountIdHash {
  size_t operator()(const AccountId& id) const noexcept;
};

// Entries the account cache holds before it starts over (a crude but bounded policy).
inline constexpr size_t kMaxCachedAccounts = 1'000'000;
// Compare-and-set attempts of one change before it reports the conflict (kStale).
inline constexpr int kMaxCasAttempts = 8;

struct Registration {
  DeviceAddress device;
  bool reregistered = false;                // the handle had an account with other keys
  std::vector<DeviceAddress> removed;       // that account's former devices
};

class Accounts {
 public:
  explicit Accounts(store::AccountStore& store) : store_(store) {}

  // nullptr if there is no such account.
  Result<std::shared_ptr<const store::AccountRecord>> Get(const AccountId& id);
  Result<std::optional<AccountId>> FindByHandle(const std::string& handle);
  Result<std::optional<DeviceAddress>> FindByNoiseKey(const StaticKey& key);

  // Makes `key` the primary device of `handle`'s account: a new account, or, if the
  // handle has one already with other keys, the same account id with this key as its
  // only device (re-registration; Registration::removed lists the old devices). A key
  // already registered to this handle's primary is returned as it is; a key registered
  // to any other device is kConflict. A race with another registration of the handle or
  // key is re-checked (up to kMaxCasAttempts) and ends as one of these outcomes.
  Result<Registration> RegisterPrimary(const std::string& handle, const StaticKey& key,
                                       uint64_t now_ms, crypto::Random& random);
  // The setters below and LinkDevice, RemoveDevice and PublishDeviceList may also fail
  // with kStale (Code::kAborted) after kMaxCasAttempts lost compare-and-sets.
  Status SetRegistrationId(const DeviceAddress& device, uint32_t registration_id);
  Status SetPushEndpoint(const DeviceAddress& device, const std::string& endpoint);
  Status SetPresenceVisibility(const AccountId& account, store::PresenceVisibility visibility);
  // Groups consent (docs/server.md "Groups"): who may add `account` to a group, and
  // whether `owner` has `contact` as a contact (the store's contact list, not cached).
  Status SetGroupAdds(const AccountId& account, store::GroupAdds adds);
  Result<bool> HasContact(const AccountId& owner, const AccountId& contact);

  // --- Linked devices (docs/devices.md) ---
  // Adds `key` to `account` as a pending device with the next device id (ids are never
  // reused). nullopt if the account already has `max_devices` devices. kConflict if the
  // key belongs to any device; kNotFound if there is no such account.
  Result<std::optional<DeviceAddress>> LinkDevice(const AccountId& account, const StaticKey& key,
                                                  uint32_t max_devices, uint64_t now_ms);
  // Removes a companion (never the primary). kNotFound if it does not exist.
  Status RemoveDevice(const DeviceAddress& device);
  enum class Published : uint8_t { kPublished, kStale, kMismatch, kTooFar };
  // Stores `signed_list` (wire bytes) as the account's published device list if `version`
  // is above the stored one (else kStale) by at most wire::kMaxDeviceListVersionStep (else
  // kTooFar, so no list can leave the version where nothing is above it) and `listed`
  // (ascending) names only existing devices and every active one (else kMismatch); listed
  // pending devices become active.
  Result<Published> PublishDeviceList(const AccountId& account, std::string signed_list,
                                      uint64_t version, const std::vector<uint32_t>& listed);

 private:
  using RecordPtr = std::shared_ptr<const store::AccountRecord>;
  // Applies `change` (which must be safe to run again on a fresh copy) to the account and
  // stores it by compare-and-set, retrying on kStale.
  template <typename Fn>
  Status Update(const AccountId& id, Fn&& change);
  // Reads the account from the store (never the cache) and caches it.
  Result<RecordPtr> Load(const AccountId& id);
  // Caches `record` unless the cache holds the same or a newer revision; returns the
  // record the cache then holds.
  RecordPtr Cache(RecordPtr record);

  store::AccountStore& store_;
  std::shared_mutex mu_;  // held for map operations only, never across store I/O
  std::unordered_map<AccountId, RecordPtr, AccountIdHash>
      cache_;  // GUARDED_BY(mu_); shared with readers holding a snapshot
};

}  // namespace sotto::server
