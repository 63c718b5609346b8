#include "server/accounts.h"

#include <algorithm>
#include <cstring>

#include "wire/device_list.h"

namespace sotto::server {

size_t AccountIdHash::operator()(const AccountId& id) const noexcept {
  uint64_t h = 0;
  std::memcpy(&h, id.data(), sizeof h);  // account ids are random
  return static_cast<size_t>(h);
}

namespace {

bool IsStoreDetail(const Error& e, store::StoreErr detail) {
  return e.module == Module::kStore && e.detail == static_cast<uint16_t>(detail);
}

}  // namespace

Result<std::shared_ptr<const store::AccountRecord>> Accounts::Get(const AccountId& id) {
  {
    std::shared_lock lock(mu_);
    if (auto it = cache_.find(id); it != cache_.end()) return it->second;
  }
  return Load(id);
}

Result<Accounts::RecordPtr> Accounts::Load(const AccountId& id) {
  SOTTO_ASSIGN_OR_RETURN(auto record, store_.Get(id));
  if (!record) return RecordPtr();
  return Cache(std::make_shared<const store::AccountRecord>(std::move(*record)));
}

Accounts::RecordPtr Accounts::Cache(RecordPtr record) {
  std::unique_lock lock(mu_);
  auto it = cache_.find(record->id);
  if (it != cache_.end()) {
    // A reader's store read may finish after a change cached a newer revision.
    if (it->second->revision >= record->revision) return it->second;
    it->second = record;
    return record;
  }
  if (cache_.size() >= kMaxCachedAccounts) cache_.clear();
  cache_.emplace(record->id, record);
  return record;
}

Result<std::optional<AccountId>> Accounts::FindByHandle(const std::string& handle) {
  return store_.FindByHandle(handle);
}

Result<std::optional<DeviceAddress>> Accounts::FindByNoiseKey(const StaticKey& key) {
  return store_.FindByNoiseKey(key);
}

Result<Registration> Accounts::RegisterPrimary(const std::string& handle, const StaticKey& key,
                                               uint64_t now_ms, crypto::Random& random) {
  // Each attempt checks the key and the handle again: a Put that finds the account
  // changed (kStale) or the handle or key taken meanwhile (kConflict) lost a race with
  // another registration, whose outcome the next attempt sees.
  Error lost{};
  for (int attempt = 0; attempt < kMaxCasAttempts; ++attempt) {
    SOTTO_ASSIGN_OR_RETURN(auto existing_key, store_.FindByNoiseKey(key));
    SOTTO_ASSIGN_OR_RETURN(auto existing_id, store_.FindByHandle(handle));
    Registration out;
    store::AccountRecord record;
    if (existing_id) {
      SOTTO_ASSIGN_OR_RETURN(RecordPtr current,
                             attempt == 0 ? Get(*existing_id) : Load(*existing_id));
      if (current == nullptr) {
        return store::StoreError(Code::kDataLoss, store::StoreErr::kCorrupt,
                                 "handle index names a missing account");
      }
      if (existing_key) {
        if (existing_key->account == *existing_id &&
            existing_key->device_id == store::kPrimaryDeviceId) {
          out.device = *existing_key;
          return out;  // the same primary registering again
        }
        return store::StoreError(Code::kAlreadyExists, store::StoreErr::kConflict,
                                 "this device key belongs to another device");
      }
      record = *current;
      for (const store::DeviceRecord& d : record.devices) {
        out.removed.push_back({record.id, d.device_id});
      }
      record.devices.clear();
      record.device_list.clear();  // signed by the old primary; its version stays the floor
      out.reregistered = true;
    } else {
      if (existing_key) {
        return store::StoreError(Code::kAlreadyExists, store::StoreErr::kConflict,
                                 "this device key belongs to another account");
      }
      random.Fill(record.id);
      record.handle = handle;
    }
    store::DeviceRecord primary;
    primary.device_id = store::kPrimaryDeviceId;
    primary.noise_key = key;
    primary.created_ms = now_ms;
    record.devices.push_back(primary);
    auto put = store_.Put(record);
    if (put) {
      record.revision = *put;
      out.device = {record.id, store::kPrimaryDeviceId};
      Cache(std::make_shared<const store::AccountRecord>(std::move(record)));
      return out;
    }
    if (!IsStoreDetail(put.error(), store::StoreErr::kStale) &&
        !IsStoreDetail(put.error(), store::StoreErr::kConflict)) {
      return tl::unexpected<Error>(put.error());
    }
    lost = put.error();
  }
  return tl::unexpected<Error>(lost);
}

template <typename Fn>
Status Accounts::Update(const AccountId& id, Fn&& change) {
  SOTTO_ASSIGN_OR_RETURN(RecordPtr current, Get(id));  // the first attempt trusts the cache
  for (int attempt = 1;; ++attempt) {
    if (current == nullptr) {
      return store::StoreError(Code::kNotFound, store::StoreErr::kConflict, "no such account");
    }
    store::AccountRecord record = *current;
    SOTTO_RETURN_IF_ERROR(change(record));
    auto put = store_.Put(record);
    if (put) {
      record.revision = *put;
      Cache(std::make_shared<const store::AccountRecord>(std::move(record)));
      return Ok();
    }
    if (!IsStoreDetail(put.error(), store::StoreErr::kStale) || attempt >= kMaxCasAttempts) {
      return tl::unexpected<Error>(put.error());
    }
    SOTTO_ASSIGN_OR_RETURN(current, Load(id));  // another writer won: its record, from the store
  }
}

namespace {
tl::unexpected<Error> NoDevice() {
  return store::StoreError(Code::kNotFound, store::StoreErr::kConflict, "no such device");
}
store::DeviceRecord* FindMutable(store::AccountRecord& r, uint32_t device_id) {
  auto it = std::find_if(r.devices.begin(), r.devices.end(),
                         [&](const store::DeviceRecord& d) { return d.device_id == device_id; });
  return it == r.devices.end() ? nullptr : &*it;
}
}  // namespace

Status Accounts::SetRegistrationId(const DeviceAddress& device, uint32_t registration_id) {
  return Update(device.account, [&](store::AccountRecord& r) -> Status {
    store::DeviceRecord* d = FindMutable(r, device.device_id);
    if (d == nullptr) return NoDevice();
    d->registration_id = registration_id;
    return Ok();
  });
}

Status Accounts::SetPushEndpoint(const DeviceAddress& device, const std::string& endpoint) {
  return Update(device.account, [&](store::AccountRecord& r) -> Status {
    store::DeviceRecord* d = FindMutable(r, device.device_id);
    if (d == nullptr) return NoDevice();
    d->push_endpoint = endpoint;
    return Ok();
  });
}

Status Accounts::SetPresenceVisibility(const AccountId& account,
                                       store::PresenceVisibility visibility) {
  return Update(account, [&](store::AccountRecord& r) -> Status {
    r.presence = visibility;
    return Ok();
  });
}

Status Accounts::SetGroupAdds(const AccountId& account, store::GroupAdds adds) {
  return Update(account, [&](store::AccountRecord& r) -> Status {
    r.group_adds = adds;
    return Ok();
  });
}

Result<bool> Accounts::HasContact(const AccountId& owner, const AccountId& contact) {
  return store_.HasContact(owner, contact);
}

Result<std::optional<DeviceAddress>> Accounts::LinkDevice(const AccountId& account,
                                                          const StaticKey& key,
                                                          uint32_t max_devices, uint64_t now_ms) {
  SOTTO_ASSIGN_OR_RETURN(auto existing_key, store_.FindByNoiseKey(key));
  if (existing_key) {
    return store::StoreError(Code::kAlreadyExists, store::StoreErr::kConflict,
                             "this device key belongs to another device");
  }
  std::optional<DeviceAddress> out;
  SOTTO_RETURN_IF_ERROR(Update(account, [&](store::AccountRecord& r) -> Status {
    out.reset();  // a retry starts over
    if (r.devices.size() >= max_devices) return Ok();
    uint32_t next = r.next_device_id;
    for (const store::DeviceRecord& d : r.devices) next = std::max(next, d.device_id + 1);
    store::DeviceRecord device;
    device.device_id = next;
    device.noise_key = key;
    device.created_ms = now_ms;
    device.pending = true;
    r.devices.push_back(device);  // the highest id: the order by device id holds
    r.next_device_id = next + 1;
    out = DeviceAddress{account, next};
    return Ok();
  }));
  return out;
}

Status Accounts::RemoveDevice(const DeviceAddress& device) {
  if (device.device_id == store::kPrimaryDeviceId) return NoDevice();
  return Update(device.account, [&](store::AccountRecord& r) -> Status {
    auto it = std::find_if(r.devices.begin(), r.devices.end(), [&](const store::DeviceRecord& d) {
      return d.device_id == device.device_id;
    });
    if (it == r.devices.end()) return NoDevice();
    r.next_device_id = std::max(r.next_device_id, it->device_id + 1);
    r.devices.erase(it);
    return Ok();
  });
}

Result<Accounts::Published> Accounts::PublishDeviceList(const AccountId& account,
                                                        std::string signed_list, uint64_t version,
                                                        const std::vector<uint32_t>& listed) {
  Published outcome = Published::kPublished;
  SOTTO_RETURN_IF_ERROR(Update(account, [&](store::AccountRecord& r) -> Status {
    outcome = Published::kPublished;  // a retry starts over
    if (version <= r.device_list_version) {
      outcome = Published::kStale;
      return Ok();
    }
    if (version - r.device_list_version > wire::kMaxDeviceListVersionStep) {
      outcome = Published::kTooFar;
      return Ok();
    }
    for (uint32_t id : listed) {
      if (r.FindDevice(id) == nullptr) outcome = Published::kMismatch;
    }
    for (const store::DeviceRecord& d : r.devices) {
      const bool named = std::find(listed.begin(), listed.end(), d.device_id) != listed.end();
      if (!d.pending && !named) outcome = Published::kMismatch;
    }
    if (outcome != Published::kPublished) return Ok();
    for (store::DeviceRecord& d : r.devices) {
      if (std::find(listed.begin(), listed.end(), d.device_id) != listed.end()) d.pending = false;
    }
    r.device_list = signed_list;  // copied: a retry needs it again
    r.device_list_version = version;
    return Ok();
  }));
  return outcome;
}

}  // namespace sotto::server
