// Small helpers shared by the server core's request handlers.
//
// Thread-safety: functions are thread-safe.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "store/store.h"
#include "wire/sotto_wire.pb.h"

namespace sotto::server::internal {

inline constexpr size_t kPublicKeyBytes = 33;  // 0x05 + Curve25519
inline constexpr uint8_t kDjbType = 0x05;
inline constexpr size_t kSignatureBytes = 64;
inline constexpr uint32_t kMaxRegistrationId = 16'380;  // Signal's 14-bit range, 0 excluded

inline void Fail(wire::Response& r, wire::StatusCode code, const char* reason) {
  r.set_status(code);
  r.set_reason(reason);
}

// --- From an Error to the wire (docs/wire.md "Status codes") ---
// The one mapping from an Error of the layers below the handlers (store, accounts, groups)
// to the status a client gets: by canonical code, so a missing account is NOT_FOUND and a
// failing store INTERNAL wherever they happen; a recipient queue at its depth limit is the
// one detail with a status of its own.
inline wire::StatusCode StatusFor(const Error& e) {
  if (e.module == Module::kStore &&
      (e.detail == static_cast<uint16_t>(store::StoreErr::kQueueFull) ||
       e.detail == static_cast<uint16_t>(store::StoreErr::kSenderQuota))) {
    return wire::STATUS_QUEUE_FULL;
  }
  if (e.module == Module::kStore && e.detail == static_cast<uint16_t>(store::StoreErr::kNoSpace)) {
    return wire::STATUS_STORAGE_FULL;  // docs/server.md, "Disk full and readiness"
  }
  switch (e.code) {
    case Code::kInvalidArgument:
    case Code::kOutOfRange:
    case Code::kUnimplemented:
      return wire::STATUS_BAD_REQUEST;
    case Code::kNotFound:
      return wire::STATUS_NOT_FOUND;
    case Code::kAlreadyExists:
    case Code::kFailedPrecondition:
      return wire::STATUS_CONFLICT;
    case Code::kPermissionDenied:
      return wire::STATUS_PERMISSION_DENIED;
    case Code::kUnauthenticated:
      return wire::STATUS_UNAUTHENTICATED;
    case Code::kResourceExhausted:
    case Code::kUnavailable:
    case Code::kAborted:  // a change lost its compare-and-set retries: try again
      return wire::STATUS_UNAVAILABLE;
    case Code::kInternal:
    case Code::kDataLoss:
      return wire::STATUS_INTERNAL;
  }
  return wire::STATUS_INTERNAL;
}

// Refuses with StatusFor(e). The reason is e's static message, except that a failure on
// the server's side (STATUS_INTERNAL) is told only as "store failure".
inline void FailFromError(wire::Response& r, const Error& e) {
  const wire::StatusCode status = StatusFor(e);
  Fail(r, status, status == wire::STATUS_INTERNAL ? "store failure" : e.message);
}

inline bool ToAccountId(const std::string& bytes, store::AccountId& out) {
  if (bytes.size() != out.size()) return false;
  std::memcpy(out.data(), bytes.data(), out.size());
  return true;
}

inline bool IsPublicKey(const std::string& bytes) {
  return bytes.size() == kPublicKeyBytes && static_cast<uint8_t>(bytes[0]) == kDjbType;
}

template <size_t N>
std::array<uint8_t, N> ToArray(const std::string& bytes) {
  std::array<uint8_t, N> out{};
  std::memcpy(out.data(), bytes.data(), std::min(N, bytes.size()));
  return out;
}

// account (16) + device id (4, big-endian): the device part of de-duplication ids.
inline void AppendDevice(std::string& out, const store::DeviceAddress& d) {
  out.append(reinterpret_cast<const char*>(d.account.data()), d.account.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(d.device_id >> shift));
}

}  // namespace sotto::server::internal
