// BLAKE2b-512 (RFC 7693, unkeyed, 64-byte digest) and HMAC-BLAKE2b (RFC 2104 with
// B = 128, L = 64), as the Noise Protocol Framework's BLAKE2b hash functions use them
// (noise spec rev 34 §4.3, §12.8). Backed by libsodium's crypto_generichash; the
// libsodium state is held opaquely so that callers do not see libsodium headers. No heap
// allocation.
//
// Thread-safety: functions are thread-safe; Blake2bStream and HmacBlake2b objects are
// externally synchronized.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "crypto/secret.h"

namespace sotto::crypto {

inline constexpr size_t kBlake2bSize = 64;        // HASHLEN
inline constexpr size_t kBlake2bBlockSize = 128;  // BLOCKLEN, HMAC's B

using Blake2bDigest = std::array<uint8_t, kBlake2bSize>;

// BLAKE2b with a 64-byte digest and no key.
Blake2bDigest Blake2b(ByteSpan data);

// Incremental BLAKE2b-512. Final() may be called once; Reset() starts over. Externally
// synchronized.
class Blake2bStream {
 public:
  Blake2bStream();
  ~Blake2bStream();
  Blake2bStream(const Blake2bStream&) = delete;
  Blake2bStream& operator=(const Blake2bStream&) = delete;

  void Update(ByteSpan data);
  Blake2bDigest Final();
  void Reset();

 private:
  // libsodium's crypto_generichash_blake2b_state (size and alignment checked in the .cc).
  alignas(64) std::array<uint8_t, 384> state_;
};

// Incremental HMAC-BLAKE2b with a key of any length; a key longer than 128 bytes is
// first hashed, as RFC 2104 says. Final() may be called once. Externally synchronized.
class HmacBlake2b {
 public:
  explicit HmacBlake2b(ByteSpan key);
  HmacBlake2b(const HmacBlake2b&) = delete;
  HmacBlake2b& operator=(const HmacBlake2b&) = delete;
  ~HmacBlake2b() = default;

  void Update(ByteSpan data);
  SecretArray<kBlake2bSize> Final();

 private:
  SecretArray<kBlake2bBlockSize> outer_pad_;  // key XOR 0x5c, for the outer hash
  Blake2bStream inner_;                       // started with key XOR 0x36
};

// One-shot HMAC-BLAKE2b.
SecretArray<kBlake2bSize> HmacBlake2b512(ByteSpan key, ByteSpan data);

}  // namespace sotto::crypto
