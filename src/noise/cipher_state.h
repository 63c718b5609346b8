// CipherState: the Noise Protocol Framework's k/n pair (noiseprotocol/noise_spec, noise.md
// revision 34, §5.1), instantiated with ChaChaPoly (§12.3: ChaCha20-Poly1305 IETF,
// nonce = 4 zero bytes || 64-bit little-endian n) and the default REKEY of §4.2.
// Transport messages are EncryptWithAd/DecryptWithAd with an empty ad (§5); see
// docs/noise.md for limits and the rekey policy.
//
// Thread-safety: externally synchronized (one owner, typically the connection).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/secret.h"

namespace sotto::noise {

// Every Noise message, handshake or transport, is at most this long (spec §3).
inline constexpr size_t kMaxNoiseMessage = 65535;
inline constexpr size_t kKeySize = 32;
inline constexpr size_t kTagSize = 16;
// The largest transport plaintext: its ciphertext is exactly kMaxNoiseMessage bytes.
inline constexpr size_t kMaxTransportPlaintext = kMaxNoiseMessage - kTagSize;
// n = 2^64-1 is reserved (REKEY uses it); reaching it exhausts a CipherState.
inline constexpr uint64_t kMaxNonce = UINT64_MAX;
// Transport messages per direction between automatic rekeys (EnableAutoRekey).
inline constexpr uint64_t kRekeyInterval = 65536;

using CipherKey = crypto::SecretArray<kKeySize>;

// A cipher key k (possibly empty) and a nonce n. Move-only: a copy would reuse nonces. A
// moved-from CipherState refuses every operation (it does not fall back to the
// pass-through behaviour of an empty key). Externally synchronized.
class CipherState {
 public:
  // An empty key and n = 0, as after InitializeKey(empty).
  CipherState() = default;
  CipherState(CipherState&& other) noexcept;
  CipherState& operator=(CipherState&& other) noexcept;
  CipherState(const CipherState&) = delete;
  CipherState& operator=(const CipherState&) = delete;
  ~CipherState() = default;

  // Sets k = key and n = 0.
  void InitializeKey(const CipherKey& key);
  // Sets k = empty and n = 0.
  void InitializeEmpty();
  bool HasKey() const { return state_ == KeyState::kKeyed; }
  // Sets n (spec §11.4; the caller must reject replays itself).
  void SetNonce(uint64_t nonce) { n_ = nonce; }
  uint64_t nonce() const { return n_; }

  // With a key: writes ENCRYPT(k, n++, ad, plaintext) (plaintext.size() + 16 bytes) to the
  // start of `out`. Without a key: copies `plaintext` to `out`. `out` may be the very
  // memory of `plaintext`, but must not overlap it otherwise. Returns the bytes written.
  // Errors: kResourceExhausted (kMessageTooLarge) if the output would exceed
  // kMaxNoiseMessage; kResourceExhausted (kNonceExhausted) once n has reached 2^64-1;
  // kInvalidArgument (kBufferTooSmall); kFailedPrecondition (kWrongState) if moved from.
  // On error nothing changes.
  Result<size_t> EncryptWithAd(ByteSpan ad, ByteSpan plaintext, MutableByteSpan out);

  // With a key: verifies and decrypts DECRYPT(k, n, ad, ciphertext) into `out`
  // (ciphertext.size() - 16 bytes) and increments n only on success. Without a key:
  // copies. Aliasing as for EncryptWithAd. Returns the plaintext length. Errors:
  // kUnauthenticated (kDecryptFailed) on a bad tag (n unchanged, `out` contents
  // unspecified); kResourceExhausted (kMessageTooLarge) for a ciphertext over
  // kMaxNoiseMessage; kInvalidArgument (kMessageTooShort) for one shorter than the tag;
  // kResourceExhausted (kNonceExhausted); kInvalidArgument (kBufferTooSmall);
  // kFailedPrecondition (kWrongState) if moved from.
  Result<size_t> DecryptWithAd(ByteSpan ad, ByteSpan ciphertext, MutableByteSpan out);

  // k = REKEY(k): the first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes). n is not
  // reset (spec §11.3). Errors: kFailedPrecondition (kWrongState) without a key.
  Status Rekey();

  // Turns on the transport rekey policy (docs/noise.md): after every kRekeyInterval-th
  // successful encrypt or decrypt, Rekey(). Both ends see the same n, so they stay in
  // step without signalling. NoisePipe::Split() enables it; plain HandshakeState does not.
  void EnableAutoRekey() { auto_rekey_ = true; }

 private:
  enum class KeyState : uint8_t { kEmpty, kKeyed, kMovedFrom };

  CipherKey k_;
  uint64_t n_ = 0;
  KeyState state_ = KeyState::kEmpty;
  bool auto_rekey_ = false;
};

}  // namespace sotto::noise
