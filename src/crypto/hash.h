// Hashes, MACs and key derivation: SHA-256, SHA-512, HMAC-SHA256, HKDF-SHA256
// (RFC 5869). SHA-512 from libsodium, SHA-256 from OpenSSL; no heap allocation.
//
// Thread-safety: functions are thread-safe; Sha512/HmacSha256 objects are externally
// synchronized.
#pragma once

#include <array>
#include <cstdint>

#include <sodium/crypto_hash_sha512.h>

#include "base/bytes.h"
#include "crypto/secret.h"

namespace sotto::crypto {

using Sha256Digest = std::array<uint8_t, 32>;
using Sha512Digest = std::array<uint8_t, 64>;

Sha256Digest Sha256(ByteSpan data);
Sha512Digest Sha512(ByteSpan data);

// Incremental SHA-512. Final() may be called once; Reset() starts over.
class Sha512Stream {
 public:
  Sha512Stream();
  void Update(ByteSpan data);
  Sha512Digest Final();
  void Reset();

 private:
  crypto_hash_sha512_state state_;
};

// Incremental SHA-256 (OpenSSL). Final() may be called once; equal to Sha256() of the
// concatenated input however it is split.
class Sha256Stream {
 public:
  Sha256Stream();
  void Update(ByteSpan data);
  Sha256Digest Final();

  static constexpr size_t kStateSize = 112;  // sizeof(SHA256_CTX), checked in hash.cc

 private:
  alignas(8) uint8_t state_[kStateSize];
};

// An HMAC-SHA256 key with its inner and outer hash states precomputed, so each MAC
// under it costs only the data's blocks plus one (OpenSSL's SHA-256, which uses the
// SHA extensions where the CPU has them). No allocation.
class HmacSha256Key {
 public:
  explicit HmacSha256Key(ByteSpan key);
  ~HmacSha256Key();
  HmacSha256Key(const HmacSha256Key&) = default;
  HmacSha256Key& operator=(const HmacSha256Key&) = default;

  SecretArray<32> Mac(ByteSpan data) const;

  static constexpr size_t kStateSize = 112;  // sizeof(SHA256_CTX), checked in hash.cc

 private:
  friend class HmacSha256;
  alignas(8) uint8_t inner_[kStateSize];
  alignas(8) uint8_t outer_[kStateSize];
};

// Incremental HMAC-SHA256.
class HmacSha256 {
 public:
  explicit HmacSha256(ByteSpan key);
  explicit HmacSha256(const HmacSha256Key& key);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;
  void Update(ByteSpan data);
  SecretArray<32> Final();

 private:
  HmacSha256Key key_;
};

// One-shot HMAC-SHA256.
SecretArray<32> Hmac256(ByteSpan key, ByteSpan data);

// HKDF-SHA256 (RFC 5869). An empty `salt` means 32 zero bytes, as the RFC says.
// `out` may be up to 255*32 bytes; larger requests are truncated to that (callers
// here use at most 80).
void Hkdf(ByteSpan ikm, ByteSpan salt, ByteSpan info, MutableByteSpan out);

}  // namespace sotto::crypto
