#include "store/rocksdb/internal/account_store.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <string>

#include "store/internal/checks.h"

namespace sotto::store::internal {
namespace {

tl::unexpected<Error> ConflictError(const char* message) {
  return StoreError(Code::kAlreadyExists, StoreErr::kConflict, message);
}

bool ListsNoiseKey(const AccountRecord& account, const StaticKey& key) {
  return std::any_of(account.devices.begin(), account.devices.end(),
                     [&](const DeviceRecord& d) { return d.noise_key == key; });
}

std::string_view KeyView(const StaticKey& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}

// One stripe per (kind, key bytes); the kind keeps an account id and a handle that
// happen to share bytes apart (a shared stripe would only cost parallelism).
size_t StripeHash(char kind, std::string_view bytes) {
  std::string key(1, kind);
  key.append(bytes);
  return std::hash<std::string>()(key);
}

}  // namespace

// ---- RocksDbAccountStore

Result<std::optional<AccountRecord>> RocksDbAccountStore::Get(const AccountId& id) {
  SOTTO_ASSIGN_OR_RETURN(auto value, db_.Get(Cf::kAccounts, AccountKey(id)));
  if (!value) return std::optional<AccountRecord>();
  SOTTO_ASSIGN_OR_RETURN(AccountRecord account, DecodeAccount(id, *value));
  return std::optional<AccountRecord>(std::move(account));
}

Result<std::optional<AccountId>> RocksDbAccountStore::FindByHandle(std::string_view handle) {
  if (handle.empty()) return std::optional<AccountId>();
  SOTTO_ASSIGN_OR_RETURN(auto value, db_.Get(Cf::kHandles, handle));
  if (!value) return std::optional<AccountId>();
  SOTTO_ASSIGN_OR_RETURN(AccountId id, DecodeAccountId(*value));
  return std::optional<AccountId>(id);
}

Result<std::optional<DeviceAddress>> RocksDbAccountStore::FindByNoiseKey(const StaticKey& key) {
  SOTTO_ASSIGN_OR_RETURN(auto value, db_.Get(Cf::kNoiseKeys, KeyView(key)));
  if (!value) return std::optional<DeviceAddress>();
  SOTTO_ASSIGN_OR_RETURN(DeviceAddress device, DecodeDeviceAddress(*value));
  return std::optional<DeviceAddress>(device);
}

std::vector<size_t> RocksDbAccountStore::PutStripes(const AccountRecord& account) {
  // The old handle and Noise keys a Put deletes need no lock: another account's Put
  // sees them still owned (kConflict) until this write lands, and nothing else writes
  // them (docs/store.md, "Compare-and-set").
  std::vector<size_t> stripes;
  stripes.push_back(StripeHash('a', AccountKey(account.id)) % kPutLockStripes);
  if (!account.handle.empty()) {
    stripes.push_back(StripeHash('h', account.handle) % kPutLockStripes);
  }
  for (const DeviceRecord& device : account.devices) {
    stripes.push_back(StripeHash('n', KeyView(device.noise_key)) % kPutLockStripes);
  }
  std::sort(stripes.begin(), stripes.end());
  stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
  return stripes;
}

Result<uint64_t> RocksDbAccountStore::Put(const AccountRecord& account) {
  SOTTO_RETURN_IF_ERROR(CheckAccountRecord(account));
  std::vector<std::unique_lock<std::mutex>> locks;
  for (size_t stripe : PutStripes(account)) locks.emplace_back(put_mu_[stripe]);
  SOTTO_ASSIGN_OR_RETURN(auto old, Get(account.id));
  if ((old ? old->revision : 0) != account.revision) return StaleError(kStaleAccount);
  if (!account.handle.empty()) {
    SOTTO_ASSIGN_OR_RETURN(auto owner, FindByHandle(account.handle));
    if (owner && *owner != account.id) return ConflictError("handle belongs to another account");
  }
  for (const DeviceRecord& device : account.devices) {
    SOTTO_ASSIGN_OR_RETURN(auto holder, FindByNoiseKey(device.noise_key));
    if (holder && *holder != DeviceAddress{account.id, device.device_id}) {
      return ConflictError("Noise key belongs to another device");
    }
  }

  rocksdb::WriteBatch batch;
  if (old) {
    if (!old->handle.empty() && old->handle != account.handle) {
      SOTTO_RETURN_IF_ERROR(db_.Delete(&batch, Cf::kHandles, old->handle));
    }
    for (const DeviceRecord& device : old->devices) {
      if (ListsNoiseKey(account, device.noise_key)) continue;
      SOTTO_RETURN_IF_ERROR(db_.Delete(&batch, Cf::kNoiseKeys, KeyView(device.noise_key)));
    }
  }
  if (!account.handle.empty()) {
    SOTTO_RETURN_IF_ERROR(
        db_.Put(&batch, Cf::kHandles, account.handle, EncodeAccountId(account.id)));
  }
  for (const DeviceRecord& device : account.devices) {
    SOTTO_RETURN_IF_ERROR(db_.Put(&batch, Cf::kNoiseKeys, KeyView(device.noise_key),
                                  EncodeDeviceAddress({account.id, device.device_id})));
  }
  AccountRecord stored = account;
  ++stored.revision;
  SOTTO_RETURN_IF_ERROR(
      db_.Put(&batch, Cf::kAccounts, AccountKey(account.id), EncodeAccount(stored)));
  SOTTO_RETURN_IF_ERROR(db_.Write(&batch, "cannot write the account"));
  return stored.revision;
}

Status RocksDbAccountStore::AddContact(const AccountId& owner, const AccountId& contact) {
  SOTTO_RETURN_IF_ERROR(db_.Writable());
  rocksdb::Status s = db_.db()->Put(db_.write_options(), db_.cf(Cf::kContacts),
                                    ToSlice(ContactKey(owner, contact)), rocksdb::Slice());
  SOTTO_RETURN_IF_ERROR(db_.Check(s, "cannot add the contact"));
  return Ok();
}

Status RocksDbAccountStore::RemoveContact(const AccountId& owner, const AccountId& contact) {
  SOTTO_RETURN_IF_ERROR(db_.Writable());
  rocksdb::Status s = db_.db()->Delete(db_.write_options(), db_.cf(Cf::kContacts),
                                       ToSlice(ContactKey(owner, contact)));
  SOTTO_RETURN_IF_ERROR(db_.Check(s, "cannot remove the contact"));
  return Ok();
}

Result<bool> RocksDbAccountStore::HasContact(const AccountId& owner, const AccountId& contact) {
  SOTTO_ASSIGN_OR_RETURN(auto value, db_.Get(Cf::kContacts, ContactKey(owner, contact)));
  return value.has_value();
}

// ---- RocksDbKeyStore

std::mutex& RocksDbKeyStore::StripeFor(const DeviceAddress& device) {
  return claim_mu_[DeviceAddressHash()(device) % kClaimLockStripes];
}

Status RocksDbKeyStore::PutDeviceKeys(const DeviceAddress& device, const DeviceKeys& keys) {
  SOTTO_RETURN_IF_ERROR(db_.Writable());
  rocksdb::Status s = db_.db()->Put(db_.write_options(), db_.cf(Cf::kDeviceKeys),
                                    ToSlice(DeviceKey(device)), ToSlice(EncodeDeviceKeys(keys)));
  SOTTO_RETURN_IF_ERROR(db_.Check(s, "cannot write the device keys"));
  return Ok();
}

Result<std::optional<DeviceKeys>> RocksDbKeyStore::GetDeviceKeys(const DeviceAddress& device) {
  SOTTO_ASSIGN_OR_RETURN(auto value, db_.Get(Cf::kDeviceKeys, DeviceKey(device)));
  if (!value) return std::optional<DeviceKeys>();
  SOTTO_ASSIGN_OR_RETURN(DeviceKeys keys, DecodeDeviceKeys(*value));
  return std::optional<DeviceKeys>(keys);
}

Status RocksDbKeyStore::AddOneTimePreKeys(const DeviceAddress& device,
                                          std::span<const OneTimePreKey> keys) {
  if (keys.empty()) return Ok();
  rocksdb::WriteBatch batch;
  for (const OneTimePreKey& key : keys) {
    SOTTO_RETURN_IF_ERROR(db_.Put(&batch, Cf::kOneTimePreKeys, OneTimePreKeyKey(device, key.id),
                                  EncodePublicKey(key.public_key)));
  }
  std::lock_guard lock(StripeFor(device));
  return db_.Write(&batch, "cannot write one-time prekeys");
}

Result<std::optional<OneTimePreKey>> RocksDbKeyStore::ClaimOneTimePreKey(
    const DeviceAddress& device) {
  std::lock_guard lock(StripeFor(device));
  OneTimePreKey claimed;
  std::string key;
  {
    KeyScan scan = KeyScan::Prefix(db_, Cf::kOneTimePreKeys, DeviceKey(device));
    if (!scan.Valid()) {
      SOTTO_RETURN_IF_ERROR(scan.status("cannot scan one-time prekeys"));
      return std::optional<OneTimePreKey>();
    }
    key = std::string(scan.key());
    SOTTO_ASSIGN_OR_RETURN(claimed.id, ParseOneTimePreKeyId(scan.key()));
    SOTTO_ASSIGN_OR_RETURN(claimed.public_key, DecodePublicKey(scan.value()));
  }
  SOTTO_RETURN_IF_ERROR(db_.Writable());
  rocksdb::Status s =
      db_.db()->Delete(db_.write_options(), db_.cf(Cf::kOneTimePreKeys), ToSlice(key));
  SOTTO_RETURN_IF_ERROR(db_.Check(s, "cannot delete the claimed prekey"));
  return std::optional<OneTimePreKey>(claimed);
}

Result<uint32_t> RocksDbKeyStore::CountOneTimePreKeys(const DeviceAddress& device) {
  uint32_t count = 0;
  KeyScan scan = KeyScan::Prefix(db_, Cf::kOneTimePreKeys, DeviceKey(device));
  for (; scan.Valid(); scan.Next()) {
    if (count < std::numeric_limits<uint32_t>::max()) ++count;
  }
  SOTTO_RETURN_IF_ERROR(scan.status("cannot count one-time prekeys"));
  return count;
}

Status RocksDbKeyStore::DeleteDevice(const DeviceAddress& device) {
  std::lock_guard lock(StripeFor(device));
  rocksdb::WriteBatch batch;
  SOTTO_RETURN_IF_ERROR(db_.Delete(&batch, Cf::kDeviceKeys, DeviceKey(device)));
  KeyScan scan = KeyScan::Prefix(db_, Cf::kOneTimePreKeys, DeviceKey(device));
  for (; scan.Valid(); scan.Next()) {
    SOTTO_RETURN_IF_ERROR(db_.Delete(&batch, Cf::kOneTimePreKeys, scan.key()));
  }
  SOTTO_RETURN_IF_ERROR(scan.status("cannot scan one-time prekeys"));
  return db_.Write(&batch, "cannot delete the device keys");
}

}  // namespace sotto::store::internal
