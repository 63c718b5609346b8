#include "crypto/x25519.h"

#include <sodium/core.h>
#include <sodium/crypto_core_ed25519.h>
#include <sodium/crypto_scalarmult.h>
#include <sodium/crypto_scalarmult_ed25519.h>
#include <sodium/crypto_sign_ed25519.h>
#include <sodium/utils.h>

#include <cstdlib>
#include <cstring>

#include "crypto/hash.h"
#include "crypto/internal/fe25519.h"
#include "crypto/internal/sodium.h"

namespace sotto::crypto {

namespace internal {
void EnsureSodium() {
  static const bool initialized = sodium_init() >= 0;
  // sodium_init fails only if the OS has no entropy source; nothing is safe then.
  if (!initialized) std::abort();
}
}  // namespace internal

namespace {

void Clamp(uint8_t k[32]) {
  k[0] &= 248;
  k[31] &= 127;
  k[31] |= 64;
}

// Reduces a 32-byte little-endian scalar modulo the group order L.
void ReduceScalar32(uint8_t out[32], const uint8_t in[32]) {
  uint8_t wide[64] = {};
  std::memcpy(wide, in, 32);
  crypto_core_ed25519_scalar_reduce(out, wide);
  sodium_memzero(wide, sizeof wide);
}

}  // namespace

X25519Private GeneratePrivateKey(Random& random) {
  X25519Private key;
  random.Fill(key.mutable_span());
  Clamp(key.data());
  return key;
}

X25519Public PublicKeyOf(const X25519Private& private_key) {
  internal::EnsureSodium();
  // The fixed-base Edwards multiplication (precomputed tables) plus the birational map
  // to Montgomery u is about twice as fast as libsodium's X25519 base-point ladder, and
  // gives the same u: the curves are isomorphic and the base points correspond.
  SecretArray<32> clamped = private_key;
  Clamp(clamped.data());
  uint8_t edwards[32];
  X25519Public out;
  if (crypto_scalarmult_ed25519_base_noclamp(edwards, clamped.data()) != 0) {
    crypto_scalarmult_base(out.data(), private_key.data());  // unreachable once clamped
    return out;
  }
  out = internal::EdwardsYToMontgomery(edwards);
  return out;
}

Result<SecretArray<32>> Agree(const X25519Private& private_key, const X25519Public& public_key) {
  internal::EnsureSodium();
  SecretArray<32> shared;
  if (crypto_scalarmult(shared.data(), private_key.data(), public_key.data()) != 0) {
    return MakeError(Code::kInvalidArgument, Module::kCrypto,
                     static_cast<uint16_t>(CryptoErr::kWeakKey),
                     "X25519 agreement with a low-order public key");
  }
  return shared;
}

Signer::Signer(const X25519Private& private_key) {
  internal::EnsureSodium();
  SecretArray<32> clamped = private_key;
  Clamp(clamped.data());
  // A = a·B on Edwards25519. base_noclamp only fails for a = 0, impossible once clamped.
  if (crypto_scalarmult_ed25519_base_noclamp(edwards_public_.data(), clamped.data()) != 0) {
    std::abort();
  }
  ReduceScalar32(edwards_scalar_.data(), clamped.data());
  // XEdDSA: use the key pair whose public point has sign bit 0.
  if (edwards_public_[31] & 0x80) {
    SecretArray<32> negated;
    crypto_core_ed25519_scalar_negate(negated.data(), edwards_scalar_.data());
    edwards_scalar_ = negated;
    edwards_public_[31] &= 0x7f;
  }
}

Signature Signer::Sign(ByteSpan message, Random& random) const {
  // r = hash1(a || M || Z) mod L, with hash1's prefix 0xFE 0xFF*31 (XEdDSA §5).
  uint8_t z[64];
  random.Fill(z);
  uint8_t prefix[32];
  std::memset(prefix, 0xff, sizeof prefix);
  prefix[0] = 0xfe;
  crypto::Sha512Stream h1;
  h1.Update(prefix);
  h1.Update(edwards_scalar_.span());
  h1.Update(message);
  h1.Update(z);
  Sha512Digest nonce_wide = h1.Final();
  SecretArray<32> r;
  crypto_core_ed25519_scalar_reduce(r.data(), nonce_wide.data());
  sodium_memzero(nonce_wide.data(), nonce_wide.size());
  sodium_memzero(z, sizeof z);

  Signature sig;
  // R = r·B. r = 0 happens with probability 2^-252; the signature would still verify
  // if we used the identity point, but libsodium refuses it, so resample.
  if (crypto_scalarmult_ed25519_base_noclamp(sig.data(), r.data()) != 0) {
    return Sign(message, random);
  }
  crypto::Sha512Stream h2;
  h2.Update(ByteSpan(sig.data(), 32));
  h2.Update(edwards_public_);
  h2.Update(message);
  Sha512Digest k_wide = h2.Final();
  uint8_t k[32];
  crypto_core_ed25519_scalar_reduce(k, k_wide.data());
  uint8_t ka[32];
  crypto_core_ed25519_scalar_mul(ka, k, edwards_scalar_.data());
  crypto_core_ed25519_scalar_add(sig.data() + 32, r.data(), ka);
  sodium_memzero(ka, sizeof ka);
  return sig;
}

Signature Sign(const X25519Private& private_key, ByteSpan message, Random& random) {
  return Signer(private_key).Sign(message, random);
}

Verifier::Verifier(const X25519Public& public_key)
    : edwards_y_(internal::MontgomeryToEdwardsY(public_key.data())) {}

bool Verifier::Verify(ByteSpan message, ByteSpan signature) const {
  if (signature.size() != kSignatureSize) return false;
  internal::EnsureSodium();
  // The Edwards sign bit travels in the top bit of S (libsignal's convention; it is 0
  // for spec XEdDSA signatures).
  uint8_t edwards_public[32];
  std::memcpy(edwards_public, edwards_y_.data(), 32);
  edwards_public[31] |= static_cast<uint8_t>(signature[63] & 0x80);
  uint8_t sig[64];
  std::memcpy(sig, signature.data(), 64);
  sig[63] &= 0x7f;
  return crypto_sign_ed25519_verify_detached(sig, message.data(), message.size(),
                                             edwards_public) == 0;
}

bool VerifySignature(const X25519Public& public_key, ByteSpan message, ByteSpan signature) {
  return Verifier(public_key).Verify(message, signature);
}

}  // namespace sotto::crypto
