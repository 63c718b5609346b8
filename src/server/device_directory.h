// Maps a device's Noise static public key to its (account, device) address. The
// gateway consults it once per handshake; unknown keys may only register.
//
// The server-core issue backs this with the store (RocksDB / NATS KV); until then
// InMemoryDeviceDirectory keeps it in memory, so registrations do not survive a
// restart.
//
// Thread-safety: implementations are thread-safe (called from every gateway loop).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/result.h"

namespace sotto::server {

using AccountId = std::array<uint8_t, 16>;
using StaticKey = std::array<uint8_t, 32>;

struct DeviceAddress {
  AccountId account{};
  uint32_t device_id = 0;
};

class DeviceDirectory {
 public:
  virtual ~DeviceDirectory() = default;
  virtual std::optional<DeviceAddress> Lookup(const StaticKey& key) = 0;
  // Registers `key` as the primary device (1) of a new account; registering a key
  // twice returns its existing address.
  virtual Result<DeviceAddress> Register(const StaticKey& key) = 0;
};

class InMemoryDeviceDirectory final : public DeviceDirectory {
 public:
  std::optional<DeviceAddress> Lookup(const StaticKey& key) override;
  Result<DeviceAddress> Register(const StaticKey& key) override;

 private:
  std::mutex mu_;
  std::unordered_map<std::string, DeviceAddress> devices_;  // GUARDED_BY(mu_)
};

}  // namespace sotto::server
