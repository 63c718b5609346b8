#include "crypto/random.h"

#include <sodium/crypto_stream_chacha20.h>
#include <sodium/randombytes.h>

#include <cstring>

#include "crypto/internal/sodium.h"

namespace sotto::crypto {
namespace {

class SodiumRandom final : public Random {
 public:
  void Fill(MutableByteSpan out) override {
    if (!out.empty()) randombytes_buf(out.data(), out.size());
  }
};

}  // namespace

uint32_t Random::Uniform(uint32_t upper_bound) {
  // Rejection sampling: no modulo bias.
  const uint32_t limit = static_cast<uint32_t>(-upper_bound) % upper_bound;
  for (;;) {
    uint8_t b[4];
    Fill(b);
    uint32_t v = static_cast<uint32_t>(b[0]) | (static_cast<uint32_t>(b[1]) << 8) |
                 (static_cast<uint32_t>(b[2]) << 16) | (static_cast<uint32_t>(b[3]) << 24);
    if (v >= limit) return v % upper_bound;
  }
}

Random& SystemRandom() {
  internal::EnsureSodium();
  static SodiumRandom random;
  return random;
}

DeterministicRandom::DeterministicRandom(uint64_t seed) {
  internal::EnsureSodium();
  for (int i = 0; i < 8; ++i) key_[static_cast<size_t>(i)] = static_cast<uint8_t>(seed >> (8 * i));
}

void DeterministicRandom::Fill(MutableByteSpan out) {
  if (out.empty()) return;
  uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
  std::memcpy(nonce, &counter_, sizeof nonce);
  ++counter_;
  crypto_stream_chacha20(out.data(), out.size(), nonce, key_.data());
}

}  // namespace sotto::crypto
