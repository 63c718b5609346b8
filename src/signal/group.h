// Sender Keys for group messages (signal-facts.md §6), byte-compatible with
// libsignal-protocol-c 2.3.3: each member has a sender key per group (id, chain key,
// signing key), distributes it in a SenderKeyDistributionMessage over pairwise
// sessions, and encrypts each group message once.
//
// Thread-safety: externally synchronized; stores and Random must outlive the objects.
#pragma once

#include <cstdint>
#include <vector>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/random.h"
#include "crypto/secret.h"
#include "signal/keys.h"
#include "signal/protocol.h"

namespace sotto::signal {

inline constexpr uint32_t kMaxSenderKeyForwardJump = 2000;
inline constexpr size_t kMaxSenderMessageKeys = 2000;  // skipped keys kept per state
inline constexpr size_t kMaxSenderKeyStates = 5;       // per record, newest first

// A sender key is named by the group and the sending device.
struct SenderKeyName {
  std::string group_id;
  ProtocolAddress sender;
  friend bool operator==(const SenderKeyName&, const SenderKeyName&) = default;
  friend auto operator<=>(const SenderKeyName&, const SenderKeyName&) = default;
};

struct SenderMessageKeySeed {
  uint32_t iteration = 0;
  crypto::SecretArray<32> seed;
};

struct SenderKeyState {
  uint32_t key_id = 0;
  uint32_t iteration = 0;             // of chain_key
  crypto::SecretArray<32> chain_key;
  PublicKey signing_public;
  std::optional<crypto::X25519Private> signing_private;  // only on the sender's side
  std::vector<SenderMessageKeySeed> skipped;              // oldest first

  // Edwards forms of the signing key, computed on first use and kept while the record
  // stays in memory (not serialized): they save a base-point multiplication per
  // encrypt and a field inversion per decrypt.
  std::optional<crypto::Signer> signer_cache;
  std::optional<crypto::Verifier> verifier_cache;
};

class SenderKeyRecord {
 public:
  bool empty() const { return states_.empty(); }
  // The newest state, or null.
  SenderKeyState* newest() { return states_.empty() ? nullptr : &states_.front(); }
  SenderKeyState* FindState(uint32_t key_id);
  // Adds a state as the newest, dropping the oldest past kMaxSenderKeyStates.
  void AddState(SenderKeyState state);
  // Replaces all states with `state` (a new own key).
  void SetState(SenderKeyState state);
  const std::vector<SenderKeyState>& states() const { return states_; }

  Bytes Serialize() const;
  static Result<SenderKeyRecord> Deserialize(ByteSpan bytes);

 private:
  std::vector<SenderKeyState> states_;
};

class SenderKeyStore {
 public:
  virtual ~SenderKeyStore() = default;
  virtual Result<std::optional<SenderKeyRecord>> LoadSenderKey(const SenderKeyName& name) = 0;
  virtual Status StoreSenderKey(const SenderKeyName& name, const SenderKeyRecord& record) = 0;
};

// Our own sender key for `name` (creating it if absent) as a distribution message.
Result<SenderKeyDistributionMessage> CreateSenderKeyDistribution(SenderKeyStore& store,
                                                                 const SenderKeyName& name,
                                                                 crypto::Random& random);
// Replaces our sender key for `name` with a fresh one (after a member leaves) and
// returns its distribution message.
Result<SenderKeyDistributionMessage> RotateSenderKey(SenderKeyStore& store,
                                                     const SenderKeyName& name,
                                                     crypto::Random& random);
// Stores a sender key received from `name.sender`.
Status ProcessSenderKeyDistribution(SenderKeyStore& store, const SenderKeyName& name,
                                    const SenderKeyDistributionMessage& message);

// Record-level group encryption (no store): for callers that cache records.
Result<Bytes> GroupEncryptWithRecord(SenderKeyRecord& record, ByteSpan plaintext,
                                     crypto::Random& random);
// Errors: kNoSession (unknown key id), kInvalidSignature, kDuplicateMessage,
// kTooFarInFuture, kInvalidMessage, kCipher.
Result<Bytes> GroupDecryptWithRecord(SenderKeyRecord& record, ByteSpan message);

class GroupCipher {
 public:
  GroupCipher(SenderKeyStore& store, SenderKeyName name,
              crypto::Random& random = crypto::SystemRandom());
  // Encrypts with our sender key; kNoSession if none was created.
  Result<Bytes> Encrypt(ByteSpan plaintext);
  Result<Bytes> Decrypt(ByteSpan message);

 private:
  SenderKeyStore& store_;
  SenderKeyName name_;
  crypto::Random& random_;
};

}  // namespace sotto::signal
