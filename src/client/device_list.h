// Client-side handling of an account's signed device list (docs/devices.md): the
// verification every sender and receiver applies before it trusts a companion device,
// and the primary's signing. The primary's identity key is the one the user trusts for
// the account (its safety number); every other device is trusted only through a list
// that key signed.
//
// Thread-safety: functions are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "crypto/random.h"
#include "signal/keys.h"
#include "wire/device_list.h"
#include "wire/sotto_wire.pb.h"

namespace sotto::client {

// Verifies `signed_list` as the device list of `account_id` (16 raw bytes): the
// signature by `primary_identity` over wire::DeviceListSignedBytes, the list's shape
// (wire::ParseDeviceList), the account id, that device 1's key is `primary_identity`, and
// that its version is at least `min_version` (the newest this device has accepted; a
// lower one is a replayed, stale list). Errors: kPermissionDenied (SdkErr::kBadDeviceList)
// naming what failed.
Result<wire::DeviceList> VerifyDeviceList(const wire::SignedDeviceList& signed_list,
                                          std::string_view account_id,
                                          const signal::IdentityKey& primary_identity,
                                          uint64_t min_version);

struct DeviceListEntryInput {
  uint32_t device_id = 0;
  signal::IdentityKey identity_key;
};

// The primary signs a list of `entries` (any order; the primary's own entry included)
// with its identity key pair.
wire::SignedDeviceList SignDeviceList(std::string_view account_id, uint64_t version,
                                      uint64_t timestamp_ms,
                                      std::vector<DeviceListEntryInput> entries,
                                      const signal::IdentityKeyPair& primary,
                                      crypto::Random& random);

// The identity key `list` names for `device_id`, if it lists it.
std::optional<signal::IdentityKey> ListedIdentity(const wire::DeviceList& list, uint32_t device_id);

}  // namespace sotto::client
