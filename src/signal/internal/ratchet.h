// Key derivation of X3DH and the Double Ratchet (signal-facts.md §3). Private to
// signal/.
#pragma once

#include "base/result.h"
#include "crypto/secret.h"
#include "signal/keys.h"
#include "signal/session_record.h"

namespace sotto::signal::internal {

struct RootAndChain {
  crypto::SecretArray<32> root;
  ChainKey chain;
};

struct MessageKeys {
  crypto::SecretArray<32> cipher_key;
  crypto::SecretArray<32> mac_key;
  crypto::SecretArray<16> iv;
  uint32_t counter = 0;
};

// HKDF(secret, zero salt, "WhisperText", 64): the X3DH master secret's root and chain.
RootAndChain DeriveInitial(ByteSpan secret);
// HKDF(DH(ours, theirs), salt = root, "WhisperRatchet", 64). kInvalidKey on a weak key.
Result<RootAndChain> RootStep(const crypto::SecretArray<32>& root,
                              const crypto::X25519Private& ours, const PublicKey& theirs);
// One symmetric-ratchet step under a single HMAC key schedule: the message key seed
// HMAC(chain key, 0x01) for chain.index, and the next chain key HMAC(chain key, 0x02).
struct ChainStep {
  crypto::SecretArray<32> seed;  // message key seed for chain.index
  ChainKey next;
};
ChainStep StepChain(const ChainKey& chain);
// HKDF(seed, zero salt, "WhisperMessageKeys", 80) -> cipher key, MAC key, IV.
MessageKeys DeriveMessageKeys(const crypto::SecretArray<32>& seed, uint32_t counter);

}  // namespace sotto::signal::internal
