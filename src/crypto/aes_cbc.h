// AES-256-CBC with PKCS#7 padding (OpenSSL), as Signal's message bodies use it.
// No heap allocation per call: each thread keeps one cipher context.
//
// Thread-safety: thread-safe.
#pragma once

#include <cstddef>

#include "base/bytes.h"
#include "base/result.h"

namespace sotto::crypto {

inline constexpr size_t kAesKeySize = 32;
inline constexpr size_t kAesBlockSize = 16;

// Ciphertext length for `plaintext_size` bytes: always at least one byte of padding.
constexpr size_t CbcCiphertextSize(size_t plaintext_size) {
  return (plaintext_size / kAesBlockSize + 1) * kAesBlockSize;
}

// Encrypts `plaintext` into `out`, which must hold CbcCiphertextSize(plaintext.size())
// bytes. `key` is 32 bytes, `iv` 16. Returns the bytes written.
Result<size_t> AesCbcEncrypt(ByteSpan key, ByteSpan iv, ByteSpan plaintext, MutableByteSpan out);

// Decrypts into `out` (at least ciphertext.size() bytes). Returns the plaintext
// length. kBadLength if the ciphertext is empty or not whole blocks, kBadPadding if
// the padding is wrong.
Result<size_t> AesCbcDecrypt(ByteSpan key, ByteSpan iv, ByteSpan ciphertext, MutableByteSpan out);

}  // namespace sotto::crypto
