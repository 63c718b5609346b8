// Randomness sources. Protocol code takes a Random& so tests can be deterministic.
//
// Thread-safety: SystemRandom() is thread-safe; DeterministicRandom is externally
// synchronized.
#pragma once

#include <array>
#include <cstdint>

#include "base/bytes.h"

namespace sotto::crypto {

class Random {
 public:
  virtual ~Random() = default;
  // Fills `out` with random bytes. Never fails.
  virtual void Fill(MutableByteSpan out) = 0;
  // A uniform value in [0, upper_bound); upper_bound must be > 0.
  uint32_t Uniform(uint32_t upper_bound);
};

// The operating system's CSPRNG (libsodium randombytes). Thread-safe; lives forever.
Random& SystemRandom();

// A reproducible stream (ChaCha20 keyed by `seed`), for tests and benchmarks only.
class DeterministicRandom final : public Random {
 public:
  explicit DeterministicRandom(uint64_t seed);
  void Fill(MutableByteSpan out) override;

 private:
  std::array<uint8_t, 32> key_{};
  uint64_t counter_ = 0;
};

}  // namespace sotto::crypto
