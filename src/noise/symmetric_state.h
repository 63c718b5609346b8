// SymmetricState: the chaining key ck, the handshake hash h and the handshake-phase
// CipherState (noise spec rev 34 §5.2), with BLAKE2b as HASH (§12.8: HASHLEN 64,
// BLOCKLEN 128). HKDF outputs used as cipher keys are truncated to 32 bytes.
// HandshakeState drives it; it is public for tests and for protocols built on Noise's
// symmetric layer.
//
// Thread-safety: externally synchronized.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/secret.h"
#include "noise/cipher_state.h"

namespace sotto::noise {

inline constexpr size_t kHashSize = 64;  // HASHLEN of BLAKE2b

// h: public (it is the channel-binding value of §11.2), but unique per session.
using HandshakeHash = std::array<uint8_t, kHashSize>;
using ChainingKey = crypto::SecretArray<kHashSize>;

// ck, h and the handshake CipherState. Move-only (it holds a CipherState). Externally
// synchronized.
class SymmetricState {
 public:
  // InitializeSymmetric(protocol_name): h = the name zero-padded to 64 bytes, or
  // BLAKE2b(name) if it is longer; ck = h; the cipher key is empty.
  explicit SymmetricState(std::string_view protocol_name);

  // ck, temp_k = HKDF(ck, ikm, 2); InitializeKey(temp_k[0:32]).
  void MixKey(ByteSpan input_key_material);
  // h = BLAKE2b(h || data).
  void MixHash(ByteSpan data);
  // ck, temp_h, temp_k = HKDF(ck, ikm, 3); MixHash(temp_h); InitializeKey(temp_k[0:32]).
  void MixKeyAndHash(ByteSpan input_key_material);
  const HandshakeHash& GetHandshakeHash() const { return h_; }
  bool HasKey() const { return cipher_.HasKey(); }

  // Writes EncryptWithAd(h, plaintext) to `out` and mixes it into h. Returns its length.
  // Errors: those of CipherState::EncryptWithAd (nothing changes then).
  Result<size_t> EncryptAndHash(ByteSpan plaintext, MutableByteSpan out);
  // Writes DecryptWithAd(h, ciphertext) to `out` and mixes the ciphertext into h; `out`
  // may be `ciphertext` itself. Returns the plaintext length. Errors: those of
  // CipherState::DecryptWithAd (h and n unchanged then).
  Result<size_t> DecryptAndHash(ByteSpan ciphertext, MutableByteSpan out);

  // temp_k1, temp_k2 = HKDF(ck, empty, 2): (c1, c2) keyed with their first 32 bytes; c1
  // is for initiator-to-responder messages.
  std::pair<CipherState, CipherState> Split() const;

 private:
  CipherState cipher_;
  ChainingKey ck_;
  HandshakeHash h_{};
};

}  // namespace sotto::noise
