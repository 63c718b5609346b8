#include "crypto/hash.h"

#include <sodium/crypto_hash_sha256.h>

#include <algorithm>

#include "crypto/internal/sodium.h"

namespace sotto::crypto {

Sha256Digest Sha256(ByteSpan data) {
  Sha256Digest out;
  crypto_hash_sha256(out.data(), data.data(), data.size());
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

HmacSha256::HmacSha256(ByteSpan key) {
  crypto_auth_hmacsha256_init(&state_, key.data(), key.size());
}
HmacSha256::~HmacSha256() {
  SecureWipe({reinterpret_cast<uint8_t*>(&state_), sizeof state_});
}
void HmacSha256::Update(ByteSpan data) {
  crypto_auth_hmacsha256_update(&state_, data.data(), data.size());
}
SecretArray<32> HmacSha256::Final() {
  SecretArray<32> out;
  crypto_auth_hmacsha256_final(&state_, out.data());
  return out;
}

SecretArray<32> Hmac256(ByteSpan key, ByteSpan data) {
  HmacSha256 mac(key);
  mac.Update(data);
  return mac.Final();
}

void Hkdf(ByteSpan ikm, ByteSpan salt, ByteSpan info, MutableByteSpan out) {
  static constexpr uint8_t kZeroSalt[32] = {};
  SecretArray<32> prk = Hmac256(salt.empty() ? ByteSpan(kZeroSalt) : salt, ikm);
  SecretArray<32> previous;
  size_t written = 0;
  const size_t total = std::min<size_t>(out.size(), size_t{255} * 32);
  for (uint8_t counter = 1; written < total; ++counter) {
    HmacSha256 mac(prk.span());
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
