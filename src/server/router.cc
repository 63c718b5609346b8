#include "server/router.h"

namespace sotto::server {

Router::Shard& Router::ShardOf(const store::DeviceAddress& device) const {
  return shards_[store::DeviceAddressHash{}(device) % kShards];
}

std::shared_ptr<internal::SessionLink> Router::Attach(const store::DeviceAddress& device,
                                                      std::shared_ptr<internal::SessionLink> link) {
  Shard& shard = ShardOf(device);
  std::lock_guard<std::mutex> lock(shard.mu);
  std::shared_ptr<internal::SessionLink>& slot = shard.routes[device];
  std::shared_ptr<internal::SessionLink> previous = std::move(slot);
  slot = std::move(link);
  return previous;
}

void Router::Detach(const store::DeviceAddress& device, const internal::SessionLink* link) {
  Shard& shard = ShardOf(device);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.routes.find(device);
  if (it != shard.routes.end() && it->second.get() == link) shard.routes.erase(it);
}

std::shared_ptr<internal::SessionLink> Router::Find(const store::DeviceAddress& device) const {
  Shard& shard = ShardOf(device);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.routes.find(device);
  return it == shard.routes.end() ? nullptr : it->second;
}

size_t Router::online() const {
  size_t n = 0;
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    n += shard.routes.size();
  }
  return n;
}

}  // namespace sotto::server
