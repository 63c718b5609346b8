// Double Ratchet session state and the per-peer session record (current state plus
// archived previous states), with the limits libsignal uses. Serialized form (for
// stores; not on the wire): docs/signal-session-record.md.
//
// Thread-safety: value types; externally synchronized.
#pragma once

#include <cstdint>
#include <vector>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/secret.h"
#include "signal/keys.h"

namespace sotto::signal {

// Limits, the same as libsignal-protocol-c 2.3.3 (docs/signal-wire.md "Limits").
inline constexpr uint32_t kMaxForwardJump = 2000;       // counter - chain index
inline constexpr size_t kMaxSkippedMessageKeys = 2000;  // per receiving chain
inline constexpr size_t kMaxReceiverChains = 5;         // per session state
inline constexpr size_t kMaxArchivedStates = 40;        // per session record
inline constexpr uint32_t kSessionVersion = 3;

struct ChainKey {
  crypto::SecretArray<32> key;
  uint32_t index = 0;
};

// A message key kept for a message that has not arrived yet: the HMAC seed from which
// the cipher key, MAC key and IV are derived.
struct SkippedMessageKey {
  uint32_t counter = 0;
  crypto::SecretArray<32> seed;
};

struct ReceiverChain {
  PublicKey sender_ratchet_key;
  ChainKey chain_key;
  std::vector<SkippedMessageKey> skipped;  // oldest first, at most kMaxSkippedMessageKeys
};

// Set by the initiator until the first reply arrives: every message it sends until then
// is wrapped in a PreKeySignalMessage built from this.
struct PendingPreKey {
  std::optional<uint32_t> prekey_id;
  uint32_t signed_prekey_id = 0;
  PublicKey base_key;
};

struct SessionState {
  uint32_t version = kSessionVersion;
  IdentityKey local_identity;
  IdentityKey remote_identity;
  crypto::SecretArray<32> root_key;
  uint32_t previous_counter = 0;
  KeyPair sender_ratchet;
  ChainKey sender_chain;
  std::vector<ReceiverChain> receiver_chains;  // oldest first, at most kMaxReceiverChains
  std::optional<PendingPreKey> pending_prekey;
  uint32_t local_registration_id = 0;
  uint32_t remote_registration_id = 0;
  PublicKey alice_base_key;
};

class SessionRecord {
 public:
  SessionRecord() = default;

  bool IsFresh() const { return !current_.has_value(); }
  SessionState* current() { return current_ ? &*current_ : nullptr; }
  const SessionState* current() const { return current_ ? &*current_ : nullptr; }
  std::vector<SessionState>& previous() { return previous_; }
  const std::vector<SessionState>& previous() const { return previous_; }

  // True if the current or an archived state was set up from `base_key`.
  bool HasState(uint32_t version, const PublicKey& base_key) const;
  // Archives the current state (newest first, at most kMaxArchivedStates) and makes
  // `state` current.
  void PromoteState(SessionState state);
  // Moves the current state to the archive, leaving no current state.
  void ArchiveCurrent();
  // Makes archived state `index` current, archiving the old current one.
  void PromoteArchived(size_t index);

  Bytes Serialize() const;
  // kCorruptRecord on malformed bytes or bytes that break a limit above.
  static Result<SessionRecord> Deserialize(ByteSpan bytes);

 private:
  std::optional<SessionState> current_;
  std::vector<SessionState> previous_;  // newest first (a vector: an empty deque allocates)
};

}  // namespace sotto::signal
