// Double Ratchet encryption and decryption of pairwise messages
// (signal-facts.md §3.4-3.8), byte-compatible with libsignal-protocol-c 2.3.3.
//
// Two layers:
//  - record functions (EncryptWithRecord, DecryptWithRecord) work on a SessionRecord
//    the caller holds: no store, and no heap allocation per steady-state message
//    beyond the returned buffer;
//  - SessionCipher loads the record from a SessionStore, runs the above and stores it
//    back, as libsignal does, and handles PreKeySignalMessages (responder X3DH).
// A failed decrypt changes nothing: keys are derived on the side and committed only
// after the MAC and the body check out.
//
// Thread-safety: externally synchronized; stores and Random must outlive the cipher.
#pragma once

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/random.h"
#include "signal/keys.h"
#include "signal/protocol.h"
#include "signal/session_record.h"
#include "signal/store.h"

namespace sotto::signal {

// Encrypts with the record's current state: a PreKeySignalMessage until the first
// reply has been decrypted, a SignalMessage afterwards. kNoSession without a state.
Result<CiphertextMessage> EncryptWithRecord(SessionRecord& record, ByteSpan plaintext);

// Decrypts a serialized SignalMessage with the current state, then archived ones (an
// archived state that works becomes current). Errors: kInvalidMessage, kBadMac,
// kDuplicateMessage, kTooFarInFuture, kUnsupportedVersion, kNoSession.
Result<Bytes> DecryptWithRecord(SessionRecord& record, ByteSpan message, crypto::Random& random);

class SessionCipher {
 public:
  SessionCipher(ProtocolStores stores, ProtocolAddress remote,
                crypto::Random& random = crypto::SystemRandom());

  Result<CiphertextMessage> Encrypt(ByteSpan plaintext);

  // Decrypts by type (kSignal or kPreKey).
  Result<Bytes> Decrypt(ByteSpan message, MessageType type);
  Result<Bytes> DecryptSignalMessage(ByteSpan message);
  // Sets up the session as responder if this message starts a new one (kNoPreKey /
  // kNoSignedPreKey if the keys it names are gone; kUntrustedIdentity if the sender's
  // identity changed), then decrypts. The one-time prekey is removed only after
  // success, and never the last-resort key.
  Result<Bytes> DecryptPreKeySignalMessage(ByteSpan message);

  // The remote registration id of the current session, for retries.
  Result<uint32_t> RemoteRegistrationId();

 private:
  Result<SessionRecord> LoadRecord();

  ProtocolStores stores_;
  ProtocolAddress remote_;
  crypto::Random& random_;
};

}  // namespace sotto::signal
