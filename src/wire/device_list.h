// The signed device list of an account with linked devices (docs/devices.md): the
// structural rules every reader applies before trusting a DeviceList, and the exact bytes
// the primary's XEdDSA signature covers. The signature itself is checked by the caller
// (server: crypto::VerifySignature with the primary's uploaded identity key; client:
// client/device_list.h with the identity key the user trusts).
//
// Thread-safety: functions are thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "wire/sotto_wire.pb.h"
#include "wire/wire.h"

namespace sotto::wire {

// Domain separation: the signature covers this prefix, then the serialized DeviceList.
inline constexpr std::string_view kDeviceListSignaturePrefix = "sotto-device-list-v1";
// A serialized DeviceList of kMaxDeviceListEntries entries is about 600 bytes.
inline constexpr size_t kMaxDeviceListBytes = 2'048;
inline constexpr size_t kMaxDeviceListEntries = 16;  // server::kMaxDevicesPerAccountLimit
inline constexpr size_t kDeviceListSignatureBytes = 64;
inline constexpr size_t kIdentityKeyBytes = 33;  // 0x05 || Curve25519
inline constexpr size_t kAccountIdBytes = 16;
// A published list's version must be above the published one by at most this much: a
// primary steps by 1, and no single list can jump to where no version is left above it
// (2^64 - 1), which would leave the account unable to publish again.
inline constexpr uint64_t kMaxDeviceListVersionStep = 1'000'000;

// Parses `bytes` (a serialized DeviceList) and checks its shape: at most
// kMaxDeviceListBytes, a 16-byte account id, version >= 1, 1..kMaxDeviceListEntries
// entries in strictly increasing device-id order starting with the primary (1), each with
// a 33-byte type-5 identity key. kMalformed / kTooLarge otherwise.
Status ParseDeviceList(std::string_view bytes, DeviceList& out);

// The bytes the signature covers: kDeviceListSignaturePrefix || list.
Bytes DeviceListSignedBytes(std::string_view list);

}  // namespace sotto::wire
