// Where each online device is connected: device address -> a link to its connection.
// It answers "is this device connected here" (push or not), carries what is never stored
// (online-only envelopes, notices); stored messages reach a connection through its queue
// subscription instead (ServerCore::OnOnline). A device has at most one routed
// connection: a newer one replaces (and the core closes) the older.
//
// Thread-safety: thread-safe (sharded mutexes; each critical section is a map operation).
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "server/internal/session_link.h"
#include "store/store.h"

namespace sotto::server {

class Router {
 public:
  // Routes `device` to `link`; returns the link it replaced, if any.
  std::shared_ptr<internal::SessionLink> Attach(const store::DeviceAddress& device,
                                                std::shared_ptr<internal::SessionLink> link);
  // Unroutes `device` if `link` is still its route.
  void Detach(const store::DeviceAddress& device, const internal::SessionLink* link);
  // The device's link, or nullptr when it is offline.
  std::shared_ptr<internal::SessionLink> Find(const store::DeviceAddress& device) const;
  size_t online() const;

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<store::DeviceAddress, std::shared_ptr<internal::SessionLink>,
                       store::DeviceAddressHash>
        routes;  // GUARDED_BY(mu)
  };
  Shard& ShardOf(const store::DeviceAddress& device) const;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace sotto::server
