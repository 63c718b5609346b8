// Curve25519 keys: X25519 key agreement (RFC 7748) and XEdDSA signatures over the
// same keys (Signal's XEdDSA spec, compatible with libsignal-protocol-c's
// curve25519_sign, which embeds the Edwards sign bit in the signature: see
// docs/signal-wire.md "Keys").
//
// Thread-safety: functions are thread-safe; objects are externally synchronized.
#pragma once

#include <array>
#include <cstdint>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/random.h"
#include "crypto/secret.h"

namespace sotto::crypto {

inline constexpr size_t kX25519KeySize = 32;
inline constexpr size_t kSignatureSize = 64;

using X25519Public = std::array<uint8_t, kX25519KeySize>;
using X25519Private = SecretArray<kX25519KeySize>;
using Signature = std::array<uint8_t, kSignatureSize>;

// Detail codes for Module::kCrypto errors.
enum class CryptoErr : uint16_t {
  kWeakKey = 1001,        // agreement produced the all-zero secret (low-order point)
  kCipherFailure = 1002,  // OpenSSL refused the operation
  kBadPadding = 1003,     // CBC padding invalid after decryption
  kBadLength = 1004,      // input length not valid for the operation
};

// A fresh clamped private key from `random`.
X25519Private GeneratePrivateKey(Random& random);
// The X25519 public key of `private_key` (clamping applied as RFC 7748 says).
X25519Public PublicKeyOf(const X25519Private& private_key);
// X25519(private_key, public_key). Fails with kWeakKey on an all-zero result.
Result<SecretArray<32>> Agree(const X25519Private& private_key, const X25519Public& public_key);

// Signs `message` with XEdDSA using 64 bytes of randomness from `random`. The
// signature verifies under VerifySignature and under libsignal's verifier.
Signature Sign(const X25519Private& private_key, ByteSpan message, Random& random);

// A private key prepared for repeated signing (the Edwards form is computed once).
class Signer {
 public:
  explicit Signer(const X25519Private& private_key);
  Signature Sign(ByteSpan message, Random& random) const;

 private:
  SecretArray<32> edwards_scalar_;         // a, negated if needed so A is "positive"
  std::array<uint8_t, 32> edwards_public_;  // A with sign bit 0
};

// Verifies an XEdDSA signature. Accepts both the spec's form (sign bit 0) and
// libsignal-protocol-c's (the Edwards sign bit in the top bit of byte 63).
bool VerifySignature(const X25519Public& public_key, ByteSpan message, ByteSpan signature);

// A public key prepared for repeated verification (the Edwards y is computed once).
class Verifier {
 public:
  explicit Verifier(const X25519Public& public_key);
  bool Verify(ByteSpan message, ByteSpan signature) const;

 private:
  std::array<uint8_t, 32> edwards_y_;
};

}  // namespace sotto::crypto
