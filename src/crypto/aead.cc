#include "crypto/aead.h"

#include <sodium/crypto_aead_chacha20poly1305.h>

#include "crypto/internal/sodium.h"
#include "crypto/x25519.h"

namespace sotto::crypto {
namespace {

static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == kAeadKeySize);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == kAeadNonceSize);
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == kAeadTagSize);

tl::unexpected<Error> BadLength(const char* message) {
  return MakeError(Code::kInvalidArgument, Module::kCrypto,
                   static_cast<uint16_t>(CryptoErr::kBadLength), message);
}

// Exact aliasing (in-place) is fine for libsodium; partial overlap is not.
bool PartiallyOverlaps(ByteSpan in, MutableByteSpan out) {
  if (in.empty() || out.empty() || in.data() == out.data()) return false;
  const auto* in_begin = in.data();
  const auto* in_end = in.data() + in.size();
  const auto* out_begin = out.data();
  const auto* out_end = out.data() + out.size();
  return in_begin < out_end && out_begin < in_end;
}

}  // namespace

Result<size_t> ChaChaPolyEncrypt(ByteSpan key, ByteSpan nonce, ByteSpan ad, ByteSpan plaintext,
                                 MutableByteSpan out) {
  if (key.size() != kAeadKeySize || nonce.size() != kAeadNonceSize) {
    return BadLength("ChaCha20-Poly1305 encrypt: key must be 32 bytes, nonce 12");
  }
  if (plaintext.size() > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX ||
      out.size() < plaintext.size() + kAeadTagSize) {
    return BadLength("ChaCha20-Poly1305 encrypt: output buffer too small");
  }
  if (PartiallyOverlaps(plaintext, out)) {
    return BadLength("ChaCha20-Poly1305 encrypt: buffers overlap");
  }
  internal::EnsureSodium();
  unsigned long long written = 0;  // NOLINT(google-runtime-int): libsodium's type
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &written, plaintext.data(),
                                            plaintext.size(), ad.data(), ad.size(), nullptr,
                                            nonce.data(), key.data());
  return static_cast<size_t>(written);
}

Result<size_t> ChaChaPolyDecrypt(ByteSpan key, ByteSpan nonce, ByteSpan ad, ByteSpan ciphertext,
                                 MutableByteSpan out) {
  if (key.size() != kAeadKeySize || nonce.size() != kAeadNonceSize) {
    return BadLength("ChaCha20-Poly1305 decrypt: key must be 32 bytes, nonce 12");
  }
  if (ciphertext.size() < kAeadTagSize) {
    return BadLength("ChaCha20-Poly1305 decrypt: ciphertext shorter than the tag");
  }
  if (out.size() < ciphertext.size() - kAeadTagSize) {
    return BadLength("ChaCha20-Poly1305 decrypt: output buffer too small");
  }
  if (PartiallyOverlaps(ciphertext, out)) {
    return BadLength("ChaCha20-Poly1305 decrypt: buffers overlap");
  }
  internal::EnsureSodium();
  unsigned long long written = 0;  // NOLINT(google-runtime-int): libsodium's type
  uint8_t empty_out = 0;           // libsodium wants a valid pointer even for an empty plaintext
  uint8_t* plaintext = out.empty() ? &empty_out : out.data();
  if (crypto_aead_chacha20poly1305_ietf_decrypt(plaintext, &written, nullptr, ciphertext.data(),
                                                ciphertext.size(), ad.data(), ad.size(),
                                                nonce.data(), key.data()) != 0) {
    return MakeError(Code::kUnauthenticated, Module::kCrypto,
                     static_cast<uint16_t>(CryptoErr::kCipherFailure),
                     "ChaCha20-Poly1305 decrypt: authentication tag mismatch");
  }
  return static_cast<size_t>(written);
}

}  // namespace sotto::crypto
