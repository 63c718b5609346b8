#include "store/internal/subscriptions.h"

#include <algorithm>
#include <condition_variable>
#include <thread>
#include <utility>

namespace sotto::store::internal {

struct SubscriptionRegistry::Listener {
  Listener(const DeviceAddress& d, OnNewMessage fn) : device(d), on_new(std::move(fn)) {}

  const DeviceAddress device;
  const OnNewMessage on_new;
  std::mutex mu;
  std::condition_variable idle;  // running dropped to zero
  bool active = true;            // GUARDED_BY(mu): the subscription lives
  // Calls under way, and the thread of the latest: Deliver runs on one thread at a time,
  // so at most one call runs, and a destructor on that thread is inside its own callback.
  int running = 0;         // GUARDED_BY(mu)
  std::thread::id runner;  // GUARDED_BY(mu)
};

class SubscriptionRegistry::Subscription final : public QueueSubscription {
 public:
  Subscription(std::shared_ptr<Core> core, std::shared_ptr<Listener> listener)
      : core_(std::move(core)), listener_(std::move(listener)) {}

  ~Subscription() override {
    Shard& shard = core_->ShardOf(listener_->device);
    {
      std::lock_guard lock(shard.mu);
      auto it = shard.listeners.find(listener_->device);
      if (it != shard.listeners.end()) {
        std::erase(it->second, listener_);
        if (it->second.empty()) shard.listeners.erase(it);
      }
    }
    core_->subscriptions.fetch_sub(1, std::memory_order_acq_rel);
    // Entries already queued for it are skipped from now on; a call under way on another
    // thread is waited for. Inside its own callback there is nothing to wait for: the
    // delivering thread keeps the Listener alive until the call returns.
    std::unique_lock lock(listener_->mu);
    listener_->active = false;
    const std::thread::id self = std::this_thread::get_id();
    listener_->idle.wait(lock,
                         [&] { return listener_->running == 0 || listener_->runner == self; });
  }
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

 private:
  std::shared_ptr<Core> core_;
  std::shared_ptr<Listener> listener_;
};

SubscriptionRegistry::SubscriptionRegistry() : core_(std::make_shared<Core>()) {}

SubscriptionRegistry::~SubscriptionRegistry() = default;

std::unique_ptr<QueueSubscription> SubscriptionRegistry::Subscribe(const DeviceAddress& device,
                                                                   OnNewMessage on_new) {
  auto listener = std::make_shared<Listener>(device, std::move(on_new));
  Shard& shard = core_->ShardOf(device);
  {
    std::lock_guard lock(shard.mu);
    shard.listeners[device].push_back(listener);
  }
  core_->subscriptions.fetch_add(1, std::memory_order_acq_rel);
  return std::make_unique<Subscription>(core_, std::move(listener));
}

bool SubscriptionRegistry::PublishToListeners(const DeviceAddress& device, uint64_t seq,
                                              uint64_t expires_ms, std::string_view payload,
                                              const std::optional<AccountId>& sender) {
  Shard& shard = core_->ShardOf(device);
  std::lock_guard shard_lock(shard.mu);
  auto it = shard.listeners.find(device);
  if (it == shard.listeners.end()) return false;
  auto message = std::make_shared<const StoredMessage>(
      StoredMessage{seq, expires_ms, std::string(payload), sender});
  std::lock_guard lock(core_->mu);
  for (const std::shared_ptr<Listener>& listener : it->second) {
    core_->pending.push_back(Pending{listener, message});
  }
  return true;
}

void SubscriptionRegistry::Deliver() {
  std::unique_lock lock(core_->mu);
  if (core_->delivering) return;
  core_->delivering = true;
  std::vector<Pending> batch;
  while (!core_->pending.empty()) {
    batch.swap(core_->pending);
    lock.unlock();
    for (Pending& p : batch) {
      Listener& l = *p.listener;
      {
        std::lock_guard listener_lock(l.mu);
        if (!l.active) continue;
        ++l.running;
        l.runner = std::this_thread::get_id();
      }
      l.on_new(l.device, *p.message);
      {
        std::lock_guard listener_lock(l.mu);
        if (--l.running == 0) l.idle.notify_all();
      }
    }
    batch.clear();
    lock.lock();
  }
  core_->delivering = false;
}

}  // namespace sotto::store::internal
