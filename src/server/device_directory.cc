#include "server/device_directory.h"

#include "crypto/random.h"

namespace sotto::server {
namespace {
std::string KeyOf(const StaticKey& key) {
  return std::string(reinterpret_cast<const char*>(key.data()), key.size());
}
}  // namespace

std::optional<DeviceAddress> InMemoryDeviceDirectory::Lookup(const StaticKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = devices_.find(KeyOf(key));
  if (it == devices_.end()) return std::nullopt;
  return it->second;
}

Result<DeviceAddress> InMemoryDeviceDirectory::Register(const StaticKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = devices_.try_emplace(KeyOf(key));
  if (inserted) {
    crypto::SystemRandom().Fill(it->second.account);
    it->second.device_id = 1;
  }
  return it->second;
}

}  // namespace sotto::server
