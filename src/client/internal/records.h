// Byte encodings of the secrets the local store seals: one-time prekey records, signed
// prekey records and the account's private keys. Each starts with a version byte; any
// other version or length is kCorrupt (kDataLoss). Layouts: docs/client-store.md.
//
// Thread-safety: functions only.
#pragma once

#include <cstdint>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/secret.h"
#include "noise/handshake_state.h"
#include "signal/keys.h"

namespace sotto::client::internal {

inline constexpr uint8_t kRecordVersion = 1;
// version(1) id(4) private(32)
inline constexpr size_t kPreKeyRecordSize = 37;
// version(1) id(4) timestamp_ms(8) private(32) signature(64)
inline constexpr size_t kSignedPreKeyRecordSize = 109;

crypto::SecretBytes EncodePreKey(const signal::PreKeyRecord& record);
Result<signal::PreKeyRecord> DecodePreKey(ByteSpan bytes);

crypto::SecretBytes EncodeSignedPreKey(const signal::SignedPreKeyRecord& record);
Result<signal::SignedPreKeyRecord> DecodeSignedPreKey(ByteSpan bytes);

// The account's secret part: version(1) noise_private(32) IdentityKeyPair::Serialize().
struct AccountSecrets {
  noise::KeyPair noise_static;
  signal::IdentityKeyPair identity;
};
crypto::SecretBytes EncodeAccountSecrets(const noise::KeyPair& noise_static,
                                         const signal::IdentityKeyPair& identity);
Result<AccountSecrets> DecodeAccountSecrets(ByteSpan bytes);

}  // namespace sotto::client::internal
