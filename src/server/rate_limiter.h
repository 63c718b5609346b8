// A token bucket small enough to live in every connection (8 bytes): `rate` tokens per
// second refill up to `burst`. Time comes from the caller (the loop's cached clock), so
// tests drive it deterministically.
//
// Thread-safety: externally synchronized.
#pragma once

#include <algorithm>
#include <cstdint>

namespace sotto::server {

struct RateLimit {
  double per_second = 0;  // 0 disables the limit
  double burst = 0;
};

class TokenBucket {
 public:
  // Takes one token if available. The first call finds a full bucket.
  bool Allow(uint64_t now_ms, const RateLimit& limit) {
    if (limit.per_second <= 0) return true;
    const auto now = static_cast<uint32_t>(now_ms);  // wraps every 49 days: deltas stay right
    if (tokens_ < 0) {  // first use
      tokens_ = static_cast<float>(limit.burst);
      last_ms_ = now;
    }
    const uint32_t elapsed = now - last_ms_;
    last_ms_ = now;
    tokens_ = static_cast<float>(std::min<double>(
        limit.burst, static_cast<double>(tokens_) + static_cast<double>(elapsed) * limit.per_second / 1000.0));
    if (tokens_ < 1.0f) return false;
    tokens_ -= 1.0f;
    return true;
  }

  // Gives back one token Allow() took (up to the burst).
  void Refund(const RateLimit& limit) {
    if (limit.per_second <= 0 || tokens_ < 0) return;
    tokens_ = static_cast<float>(std::min<double>(limit.burst, static_cast<double>(tokens_) + 1.0));
  }

 private:
  float tokens_ = -1;  // < 0: not used yet
  uint32_t last_ms_ = 0;
};

}  // namespace sotto::server
