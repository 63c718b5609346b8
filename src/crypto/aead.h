// ChaCha20-Poly1305, the IETF variant of RFC 8439 (96-bit nonce, 16-byte tag appended to
// the ciphertext), backed by libsodium. Encrypts and decrypts into caller-provided
// buffers: no heap allocation.
//
// Thread-safety: functions are thread-safe.
#pragma once

#include <cstddef>

#include "base/bytes.h"
#include "base/result.h"

namespace sotto::crypto {

inline constexpr size_t kAeadKeySize = 32;
inline constexpr size_t kAeadNonceSize = 12;
inline constexpr size_t kAeadTagSize = 16;

// Encrypts `plaintext` with `key` (32 bytes), `nonce` (12 bytes) and associated data `ad`,
// writing ciphertext || tag (plaintext.size() + 16 bytes) to the start of `out`. `out` may
// be the very memory of `plaintext` (in-place), but must not overlap it otherwise.
// Returns the bytes written. Errors: kInvalidArgument (CryptoErr::kBadLength) on a wrong
// key or nonce size or an `out` that is too small.
Result<size_t> ChaChaPolyEncrypt(ByteSpan key, ByteSpan nonce, ByteSpan ad, ByteSpan plaintext,
                                 MutableByteSpan out);

// Verifies and decrypts `ciphertext` (ciphertext || tag) into `out`, which must hold
// ciphertext.size() - 16 bytes; in-place works as for ChaChaPolyEncrypt. Returns the
// plaintext length. Errors: kInvalidArgument (kBadLength) on wrong sizes or a ciphertext
// shorter than the tag; kUnauthenticated (kCipherFailure) when the tag does not verify,
// in which case nothing of the plaintext is released (`out` is zeroed by libsodium).
Result<size_t> ChaChaPolyDecrypt(ByteSpan key, ByteSpan nonce, ByteSpan ad, ByteSpan ciphertext,
                                 MutableByteSpan out);

}  // namespace sotto::crypto
