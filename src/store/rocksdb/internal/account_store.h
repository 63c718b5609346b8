// AccountStore and KeyStore on RocksDB (column families accounts, handles, noise_keys,
// contacts, device_keys, one_time_prekeys; docs/store.md).
//
// Thread-safety: thread-safe. An account Put holds the striped locks of its account id,
// its handle and its devices' Noise keys across the revision check, the conflict checks
// and the synced write, so compare-and-set and the index checks are one atomic step,
// while Puts of unrelated accounts proceed (and share fsyncs) in parallel. That is
// correct because one process alone opens a data directory (RocksDB's LOCK file), so
// these locks see every writer. Claims of one-time prekeys are serialized per device
// (striped mutexes), so no prekey is handed out twice.
#pragma once

#include <array>
#include <mutex>
#include <vector>

#include "store/rocksdb/internal/db.h"
#include "store/store.h"

namespace sotto::store::internal {

class RocksDbAccountStore final : public AccountStore {
 public:
  // `db` must outlive this object.
  explicit RocksDbAccountStore(const Db& db) : db_(db) {}

  Result<std::optional<AccountRecord>> Get(const AccountId& id) override;
  Result<std::optional<AccountId>> FindByHandle(std::string_view handle) override;
  Result<std::optional<DeviceAddress>> FindByNoiseKey(const StaticKey& key) override;
  Result<uint64_t> Put(const AccountRecord& account) override;
  Status AddContact(const AccountId& owner, const AccountId& contact) override;
  Status RemoveContact(const AccountId& owner, const AccountId& contact) override;
  Result<bool> HasContact(const AccountId& owner, const AccountId& contact) override;

 private:
  static constexpr size_t kPutLockStripes = 64;
  // The stripes a Put of `account` holds, ascending and unique (the lock order).
  static std::vector<size_t> PutStripes(const AccountRecord& account);

  const Db& db_;
  std::array<std::mutex, kPutLockStripes> put_mu_;
};

class RocksDbKeyStore final : public KeyStore {
 public:
  // `db` must outlive this object.
  explicit RocksDbKeyStore(const Db& db) : db_(db) {}

  Status PutDeviceKeys(const DeviceAddress& device, const DeviceKeys& keys) override;
  Result<std::optional<DeviceKeys>> GetDeviceKeys(const DeviceAddress& device) override;
  Status AddOneTimePreKeys(const DeviceAddress& device,
                           std::span<const OneTimePreKey> keys) override;
  Result<std::optional<OneTimePreKey>> ClaimOneTimePreKey(const DeviceAddress& device) override;
  Result<uint32_t> CountOneTimePreKeys(const DeviceAddress& device) override;
  Status DeleteDevice(const DeviceAddress& device) override;

 private:
  // Claims of different devices proceed in parallel (each waits for its own fsync).
  static constexpr size_t kClaimLockStripes = 64;
  std::mutex& StripeFor(const DeviceAddress& device);

  const Db& db_;
  std::array<std::mutex, kClaimLockStripes> claim_mu_;
};

}  // namespace sotto::store::internal
