// One descriptor budget shared by every listener of a process (gateway TCP and WebSocket,
// metrics, media): RLIMIT_NOFILE minus a reserve for the store and files, so that no
// listener can take the descriptors another part was promised (docs/gateway.md
// "Budgets"). Each accept takes its descriptors from it and gives them back on close;
// a listener that cannot take them refuses the connection.
//
// Thread-safety: thread-safe (one atomic counter).
#pragma once

#include <atomic>
#include <cstdint>

namespace sotto::net {

class FdBudget {
 public:
  explicit FdBudget(uint64_t limit) : limit_(limit) {}
  FdBudget(const FdBudget&) = delete;
  FdBudget& operator=(const FdBudget&) = delete;

  // Takes `n` descriptors if that stays within the limit; false (nothing taken) if not.
  bool TryAcquire(uint32_t n = 1) {
    uint64_t used = used_.load(std::memory_order_relaxed);
    do {
      if (used + n > limit_) return false;
    } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
    return true;
  }
  // Gives back `n` descriptors taken by TryAcquire.
  void Release(uint32_t n = 1) { used_.fetch_sub(n, std::memory_order_relaxed); }

  uint64_t limit() const { return limit_; }
  uint64_t in_use() const { return used_.load(std::memory_order_relaxed); }

 private:
  const uint64_t limit_;
  std::atomic<uint64_t> used_{0};
};

}  // namespace sotto::net
