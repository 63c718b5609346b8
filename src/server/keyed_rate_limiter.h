// A token bucket per key (a source address, an account, a device) with a bound on the
// keys remembered, for limits that one user must not be able to lift by spreading over
// many keys nor turn into a memory problem. A key is forgotten once its bucket has surely
// refilled (burst / rate after its last token was taken), which changes nothing; when
// `max_keys` keys are remembered the oldest one is forgotten (its bucket starts full
// again: the limit errs on the lenient side, it never refuses a key for lack of room).
// Time comes from the caller, so tests drive it.
//
// Thread-safety: thread-safe.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "server/rate_limiter.h"

namespace sotto::server {

// How long a bucket keyed state is kept at most (a very slow limit would otherwise keep
// its keys for years).
inline constexpr uint64_t kMaxKeyedBucketMemoryMs = uint64_t{30} * 86'400 * 1'000;

// The time an empty bucket of `limit` needs to be full again, capped.
inline uint64_t RefillMs(const RateLimit& limit) {
  if (limit.per_second <= 0) return 0;
  const double ms = std::ceil(limit.burst / limit.per_second * 1'000.0);
  return ms >= static_cast<double>(kMaxKeyedBucketMemoryMs) ? kMaxKeyedBucketMemoryMs
                                                            : static_cast<uint64_t>(ms);
}

template <typename Key, typename Hash = std::hash<Key>>
class KeyedRateLimiter {
 public:
  explicit KeyedRateLimiter(size_t max_keys) : max_keys_(std::max<size_t>(1, max_keys)) {}
  KeyedRateLimiter(const KeyedRateLimiter&) = delete;
  KeyedRateLimiter& operator=(const KeyedRateLimiter&) = delete;

  // Takes one token from `key`'s bucket under `limit` (a limit of rate 0 always allows
  // and remembers nothing). Pass the same limit for a key every time.
  bool Allow(const Key& key, uint64_t now_ms, const RateLimit& limit) {
    if (limit.per_second <= 0) return true;
    std::lock_guard<std::mutex> lock(mu_);
    Forget(now_ms);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      if (entries_.size() >= max_keys_) EvictOldest();
      const uint64_t generation = ++generation_;
      it = entries_.emplace(key, Entry{TokenBucket(), now_ms + RefillMs(limit), generation}).first;
      order_.push_back({it->second.retire_ms, generation, key});
    }
    if (!it->second.bucket.Allow(now_ms, limit)) return false;
    it->second.retire_ms = now_ms + RefillMs(limit);
    return true;
  }

  // Gives back the token Allow() took (the request it paid for did not count, e.g. a
  // right guess when only wrong ones are limited).
  void Refund(const Key& key, const RateLimit& limit) {
    if (limit.per_second <= 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) it->second.bucket.Refund(limit);
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.size();
  }

 private:
  struct Entry {
    TokenBucket bucket;
    uint64_t retire_ms = 0;   // forget the key from here on
    uint64_t generation = 0;  // tells this entry's item in order_ from a forgotten one's
  };
  struct Item {
    uint64_t retire_ms = 0;
    uint64_t generation = 0;
    Key key;
  };

  // Forgets retired keys from the front of order_; a key still in use goes to the back
  // (so each key has at most one item in order_).
  void Forget(uint64_t now_ms) {
    while (!order_.empty() && order_.front().retire_ms <= now_ms) {
      Item item = std::move(order_.front());
      order_.pop_front();
      auto it = entries_.find(item.key);
      if (it == entries_.end() || it->second.generation != item.generation) continue;
      if (it->second.retire_ms <= now_ms) {
        entries_.erase(it);
      } else {
        item.retire_ms = it->second.retire_ms;
        order_.push_back(std::move(item));
      }
    }
  }

  void EvictOldest() {
    while (!order_.empty()) {
      Item item = std::move(order_.front());
      order_.pop_front();
      auto it = entries_.find(item.key);
      if (it != entries_.end() && it->second.generation == item.generation) {
        entries_.erase(it);
        return;
      }
    }
  }

  const size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<Key, Entry, Hash> entries_;  // GUARDED_BY(mu_)
  std::deque<Item> order_;   // one item per entry, roughly by retire_ms; GUARDED_BY(mu_)
  uint64_t generation_ = 0;  // GUARDED_BY(mu_)
};

// One token bucket shared by every caller: a server-wide limit. Thread-safe.
class SharedTokenBucket {
 public:
  bool Allow(uint64_t now_ms, const RateLimit& limit) {
    if (limit.per_second <= 0) return true;
    std::lock_guard<std::mutex> lock(mu_);
    return bucket_.Allow(now_ms, limit);
  }
  void Refund(const RateLimit& limit) {
    if (limit.per_second <= 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    bucket_.Refund(limit);
  }

 private:
  std::mutex mu_;
  TokenBucket bucket_;  // GUARDED_BY(mu_)
};

}  // namespace sotto::server
