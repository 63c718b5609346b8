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
