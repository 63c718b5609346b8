#include "crypto/hash.h"


// The low-level SHA-256 calls are deprecated in OpenSSL 3 but are the only ones that
// neither allocate nor dispatch through providers per call.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <cstring>

#include <algorithm>

#include "crypto/internal/sodium.h"

namespace sotto::crypto {

Sha256Digest Sha256(ByteSpan data) {
  Sha256Digest out;
  SHA256(data.data(), data.size(), out.data());
  return out;
}

static_assert(sizeof(SHA256_CTX) == Sha256Stream::kStateSize);

Sha256Stream::Sha256Stream() { SHA256_Init(reinterpret_cast<SHA256_CTX*>(state_)); }
void Sha256Stream::Update(ByteSpan data) {
  SHA256_Update(reinterpret_cast<SHA256_CTX*>(state_), data.data(), data.size());
}
Sha256Digest Sha256Stream::Final() {
  Sha256Digest out;
  SHA256_Final(out.data(), reinterpret_cast<SHA256_CTX*>(state_));
  return out;
}

Sha512Digest Sha512(ByteSpan data) {
  Sha512Digest out;
  crypto_hash_sha512(out.data(), data.data(), data.size());
  return out;
}

Sha512Stream::Sha512Stream() { crypto_hash_sha512_init(&state_); }
void Sha512Stream::Update(ByteSpan data) {
  crypto_hash_sha512_update(&state_, data.data(), data.size());
}
Sha512Digest Sha512Stream::Final() {
  Sha512Digest out;
  crypto_hash_sha512_final(&state_, out.data());
  return out;
}
void Sha512Stream::Reset() { crypto_hash_sha512_init(&state_); }

static_assert(sizeof(SHA256_CTX) == HmacSha256Key::kStateSize);

HmacSha256Key::HmacSha256Key(ByteSpan key) {
  uint8_t block[64] = {};
  if (key.size() > sizeof block) {
    SHA256(key.data(), key.size(), block);
  } else if (!key.empty()) {
    std::memcpy(block, key.data(), key.size());
  }
  uint8_t pad[64];
  for (size_t i = 0; i < 64; ++i) pad[i] = block[i] ^ 0x36;
  auto* inner = reinterpret_cast<SHA256_CTX*>(inner_);
  SHA256_Init(inner);
  SHA256_Update(inner, pad, sizeof pad);
  for (size_t i = 0; i < 64; ++i) pad[i] = block[i] ^ 0x5c;
  auto* outer = reinterpret_cast<SHA256_CTX*>(outer_);
  SHA256_Init(outer);
  SHA256_Update(outer, pad, sizeof pad);
  SecureWipe(block);
  SecureWipe(pad);
}

HmacSha256Key::~HmacSha256Key() {
  SecureWipe(inner_);
  SecureWipe(outer_);
}

SecretArray<32> HmacSha256Key::Mac(ByteSpan data) const {
  HmacSha256 mac(*this);
  mac.Update(data);
  return mac.Final();
}

HmacSha256::HmacSha256(ByteSpan key) : key_(key) {}
HmacSha256::HmacSha256(const HmacSha256Key& key) : key_(key) {}
HmacSha256::~HmacSha256() = default;  // key_ wipes itself

void HmacSha256::Update(ByteSpan data) {
  SHA256_Update(reinterpret_cast<SHA256_CTX*>(key_.inner_), data.data(), data.size());
}

SecretArray<32> HmacSha256::Final() {
  uint8_t inner_digest[32];
  SHA256_Final(inner_digest, reinterpret_cast<SHA256_CTX*>(key_.inner_));
  auto* outer = reinterpret_cast<SHA256_CTX*>(key_.outer_);
  SHA256_Update(outer, inner_digest, sizeof inner_digest);
  SecretArray<32> out;
  SHA256_Final(out.data(), outer);
  SecureWipe(inner_digest);
  return out;
}

SecretArray<32> Hmac256(ByteSpan key, ByteSpan data) { return HmacSha256Key(key).Mac(data); }

void Hkdf(ByteSpan ikm, ByteSpan salt, ByteSpan info, MutableByteSpan out) {
  // The all-zero salt (Signal's usual one) is keyed once per process.
  static const HmacSha256Key kZeroSaltKey(ByteSpan(std::array<uint8_t, 32>{}));
  const SecretArray<32> prk = salt.empty() ? kZeroSaltKey.Mac(ikm) : Hmac256(salt, ikm);
  const HmacSha256Key prk_key(prk.span());
  SecretArray<32> previous;
  size_t written = 0;
  const size_t total = std::min<size_t>(out.size(), size_t{255} * 32);
  for (uint8_t counter = 1; written < total; ++counter) {
    HmacSha256 mac(prk_key);
    if (counter > 1) mac.Update(previous.span());
    mac.Update(info);
    mac.Update(ByteSpan(&counter, 1));
    previous = mac.Final();
    const size_t n = std::min<size_t>(32, total - written);
    std::copy_n(previous.data(), n, out.data() + written);
    written += n;
  }
}

}  // namespace sotto::crypto
