// Oracle peer for wire-compatibility tests: a thin wrapper around libsignal-protocol-c 2.3.3.
//
// Tests and benchmarks use OracleParty as the "other side" of a conversation to prove that
// Sotto's own Signal implementation produces and accepts the exact same bytes as the reference
// C library (sessions, prekey bundles, sender keys, fingerprints, curve signatures).
//
// Licence: libsignal-protocol-c is GPL-3.0. This library may only ever be linked into test and
// benchmark binaries, never into the product.
//
// Errors are reported as plain int codes: libsignal's SG_* values (0 = SG_SUCCESS, negative =
// failure). No exceptions cross this API.
//
// Thread-safety: externally synchronized. An OracleParty (and everything it owns) must only be
// used by one thread at a time; the free functions are safe to call concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/bytes.h"

namespace sotto::oracle {

using ::sotto::Bytes;
using ::sotto::ByteSpan;

// Message type codes as returned by libsignal's ciphertext_message_get_type().
inline constexpr int kTypeSignal = 2;
inline constexpr int kTypePreKey = 3;
inline constexpr int kTypeSenderKey = 4;
inline constexpr int kTypeSenderKeyDistribution = 5;

// libsignal-protocol-c result codes (SG_* in signal_protocol.h), so callers need not include the
// library's headers. The .cc checks that they match.
inline constexpr int kOk = 0;
inline constexpr int kErrNoMem = -12;
inline constexpr int kErrInval = -22;
inline constexpr int kErrUnknown = -1000;
inline constexpr int kErrDuplicateMessage = -1001;
inline constexpr int kErrInvalidKey = -1002;
inline constexpr int kErrInvalidKeyId = -1003;
inline constexpr int kErrInvalidMac = -1004;
inline constexpr int kErrInvalidMessage = -1005;
inline constexpr int kErrInvalidVersion = -1006;
inline constexpr int kErrLegacyMessage = -1007;
inline constexpr int kErrNoSession = -1008;
inline constexpr int kErrStaleKeyExchange = -1009;
inline constexpr int kErrUntrustedIdentity = -1010;
inline constexpr int kErrInvalidProtoBuf = -1100;
inline constexpr int kErrFpVersionMismatch = -1200;
inline constexpr int kErrFpIdentMismatch = -1201;

// Public part of a prekey bundle. All public keys are 33 bytes (0x05 type byte + 32 bytes).
struct OracleBundle {
  uint32_t registration_id = 0;
  uint32_t device_id = 0;
  bool has_prekey = false;
  uint32_t prekey_id = 0;
  Bytes prekey_public;  // 33 B; empty when !has_prekey.
  uint32_t signed_prekey_id = 0;
  Bytes signed_prekey_public;     // 33 B.
  Bytes signed_prekey_signature;  // 64 B, by the identity key over signed_prekey_public.
  Bytes identity_key;             // 33 B.
};

struct OracleCiphertext {
  int rc = 0;    // SG_* code; bytes/type are only meaningful when rc == 0.
  int type = 0;  // kTypeSignal, kTypePreKey or kTypeSenderKey.
  Bytes bytes;   // Serialized message exactly as it goes on the wire.
};

struct OraclePlaintext {
  int rc = 0;  // SG_* code; plaintext is only meaningful when rc == 0.
  Bytes plaintext;
};

// One Signal user/device backed by libsignal-protocol-c with in-memory stores. Session and
// sender-key records are kept serialized, so every encrypt/decrypt performs the library's full
// load (deserialize) / store (serialize) round trip.
class OracleParty {
 public:
  // seed == 0: system randomness (libsodium). Otherwise a deterministic stream
  // (randombytes_buf_deterministic keyed by the seed and a call counter), so runs are
  // reproducible; two parties created with the same seed draw identical keys.
  // Returns nullptr on failure.
  static std::unique_ptr<OracleParty> Create(uint32_t registration_id, uint64_t seed = 0);
  // Same, with the given identity key pair (public 33 B with 0x05, private 32 B).
  static std::unique_ptr<OracleParty> CreateWithIdentity(uint32_t registration_id,
                                                         ByteSpan identity_public,
                                                         ByteSpan identity_private,
                                                         uint64_t seed = 0);
  ~OracleParty();

  OracleParty(const OracleParty&) = delete;
  OracleParty& operator=(const OracleParty&) = delete;

  Bytes IdentityPublic() const;   // 33 B.
  Bytes IdentityPrivate() const;  // 32 B.
  uint32_t RegistrationId() const;

  // Generates a signed prekey (and a one-time prekey if with_one_time_prekey), keeps the
  // private parts in this party's stores and returns the public bundle for device_id.
  // On failure returns a bundle with an empty identity_key.
  OracleBundle GenerateBundle(uint32_t device_id, uint32_t signed_prekey_id, uint32_t prekey_id,
                              bool with_one_time_prekey);
  // Stores a caller-provided prekey / signed prekey (public 33 B, private 32 B,
  // signature 64 B). The public key must match the private one. Returns an SG_* code.
  int AddPreKey(uint32_t id, ByteSpan pub, ByteSpan priv);
  int AddSignedPreKey(uint32_t id, ByteSpan pub, ByteSpan priv, ByteSpan signature);
  bool HasPreKey(uint32_t id) const;
  bool HasSignedPreKey(uint32_t id) const;
  void RemovePreKey(uint32_t id);

  // Pairwise sessions, addressed by (name, device_id).
  // Builds a session (X3DH as initiator) from a remote bundle. Returns an SG_* code.
  int ProcessBundle(const std::string& name, int32_t device_id, const OracleBundle& bundle);
  // Without a session returns kErrNoSession (checked here; the library itself would return
  // SG_ERR_UNKNOWN). While the session is unacknowledged the type is kTypePreKey.
  OracleCiphertext Encrypt(const std::string& name, int32_t device_id, ByteSpan plaintext);
  // type kTypePreKey (3) -> session_cipher_decrypt_pre_key_signal_message,
  // type kTypeSignal (2) -> session_cipher_decrypt_signal_message; other types -> SG_ERR_INVAL.
  OraclePlaintext Decrypt(const std::string& name, int32_t device_id, ByteSpan message, int type);
  bool HasSession(const std::string& name, int32_t device_id) const;
  void DeleteSession(const std::string& name, int32_t device_id);
  // Serialized session record (libsignal RecordStructure) as held by the store; empty if none.
  Bytes SessionRecord(const std::string& name, int32_t device_id) const;

  // Identity store: trust on first use per name; a later different key is untrusted
  // (is_trusted_identity returns 0) unless SetTrustAll(true). Saving replaces the stored key.
  void SetTrustAll(bool trust_all);
  // Stored identity key (33 B) for name; empty if none.
  Bytes StoredIdentity(const std::string& name) const;

  // Groups (sender keys): group addressed by group_id, sender by (name, device_id).
  // Creates (or reuses) this party's own sender key for the group and returns the serialized
  // SenderKeyDistributionMessage; empty on failure.
  Bytes CreateSenderKeyDistribution(const std::string& group_id, const std::string& own_name,
                                    int32_t own_device);
  int ProcessSenderKeyDistribution(const std::string& group_id, const std::string& sender_name,
                                   int32_t sender_device, ByteSpan skdm);
  OracleCiphertext GroupEncrypt(const std::string& group_id, const std::string& own_name,
                                int32_t own_device, ByteSpan plaintext);
  OraclePlaintext GroupDecrypt(const std::string& group_id, const std::string& sender_name,
                               int32_t sender_device, ByteSpan message);

  // Number of times the library called the session store's load function: exactly one per
  // successful Encrypt/Decrypt (checked by the self-test), plus one per ProcessBundle.
  uint64_t SessionLoads() const;
  // Number of times the library called the session store's store function.
  uint64_t SessionStores() const;

  struct Impl;  // Public only so the C callbacks in the .cc can name it.

 private:
  explicit OracleParty(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Stateless helpers running the library's own code paths (system randomness).

// 60-digit safety number (libsignal fingerprint_generator, displayable form). Empty on error.
std::string DisplayableFingerprint(uint32_t iterations, const std::string& local_id,
                                   ByteSpan local_key33, const std::string& remote_id,
                                   ByteSpan remote_key33);
// Serialized CombinedFingerprints (scannable form), scannable_version 0 or 1. Empty on error.
Bytes ScannableFingerprint(uint32_t iterations, const std::string& local_id, ByteSpan local_key33,
                           const std::string& remote_id, ByteSpan remote_key33,
                           int scannable_version);
// scannable_fingerprint_compare: 1 = match, 0 = mismatch, < 0 = error (e.g.
// SG_ERR_FP_VERSION_MISMATCH, SG_ERR_FP_IDENT_MISMATCH, SG_ERR_INVALID_PROTO_BUF).
int CompareScannable(ByteSpan mine_serialized, ByteSpan theirs_serialized);
// curve_calculate_signature (randomized, 64 B). Empty on error.
Bytes Sign(ByteSpan private32, ByteSpan message);
// curve_verify_signature; false on any error.
bool Verify(ByteSpan public33, ByteSpan message, ByteSpan signature64);
// curve_calculate_agreement (X25519, 32 B). Empty on error.
Bytes Agree(ByteSpan public33, ByteSpan private32);
// curve_generate_public_key, serialized (33 B). Empty on error.
Bytes PublicFromPrivate(ByteSpan private32);
// curve_generate_key_pair with system randomness: {public 33 B, private 32 B}.
struct OracleKeyPair {
  Bytes public_key;
  Bytes private_key;
};
OracleKeyPair GenerateKeyPair();

}  // namespace sotto::oracle
