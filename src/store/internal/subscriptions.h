// The subscriptions of one message queue (MessageQueue::Subscribe), shared by the
// in-process backends: who listens to which device, and the delivery of new entries to
// them in the order the backend stored them (docs/store.md, "Subscriptions and ordering").
//
// A backend calls Publish for every append it stored, in seq order per device, once the
// append is durable and while it still holds what orders its commits (the memory queue's
// lock; the RocksDB writer thread); then Deliver once it let go of that. Deliver runs the
// callbacks on one thread at a time, outside every lock of the registry, in Publish
// order: a thread that finds another delivering leaves its entries to that one.
//
// With no subscription at all, Publish is one atomic load.
//
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/store.h"

namespace sotto::store::internal {

class SubscriptionRegistry {
 public:
  SubscriptionRegistry();
  ~SubscriptionRegistry();
  SubscriptionRegistry(const SubscriptionRegistry&) = delete;
  SubscriptionRegistry& operator=(const SubscriptionRegistry&) = delete;

  // MessageQueue::Subscribe. The subscription may outlive the registry.
  std::unique_ptr<QueueSubscription> Subscribe(const DeviceAddress& device, OnNewMessage on_new);

  // Queues the stored append `seq` of `device` for the device's subscriptions as they are
  // now. Returns whether it queued anything (then call Deliver); copies nothing when the
  // device has no subscription.
  bool Publish(const DeviceAddress& device, uint64_t seq, uint64_t expires_ms,
               std::string_view payload, const std::optional<AccountId>& sender) {
    if (core_->subscriptions.load(std::memory_order_acquire) == 0) return false;
    return PublishToListeners(device, seq, expires_ms, payload, sender);
  }

  // Runs the callbacks of everything published so far, unless another thread is running
  // them (that one runs these too before it stops).
  void Deliver();

 private:
  struct Listener;  // one subscription's callback and its state (subscriptions.cc)
  class Subscription;
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_map<DeviceAddress, std::vector<std::shared_ptr<Listener>>, DeviceAddressHash>
        listeners;  // GUARDED_BY(mu)
  };
  struct Pending {
    std::shared_ptr<Listener> listener;
    std::shared_ptr<const StoredMessage> message;  // shared by the device's listeners
  };
  // Shared by the registry and its subscriptions, so that a subscription destroyed after
  // its queue still finds the map it unregisters from.
  struct Core {
    std::atomic<size_t> subscriptions{0};  // live subscriptions, all devices
    std::array<Shard, kShards> shards;
    std::mutex mu;                 // the delivery queue
    std::vector<Pending> pending;  // GUARDED_BY(mu), in Publish order
    bool delivering = false;       // GUARDED_BY(mu): a thread runs Deliver's loop
    Shard& ShardOf(const DeviceAddress& device) {
      return shards[DeviceAddressHash{}(device) % kShards];
    }
  };

  bool PublishToListeners(const DeviceAddress& device, uint64_t seq, uint64_t expires_ms,
                          std::string_view payload, const std::optional<AccountId>& sender);

  std::shared_ptr<Core> core_;
};

}  // namespace sotto::store::internal
