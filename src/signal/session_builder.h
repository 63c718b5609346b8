// X3DH session setup (signal-facts.md §3.2-3.3): the initiator from a PreKeyBundle,
// the responder from a PreKeySignalMessage (done inside SessionCipher::Decrypt).
//
// Thread-safety: externally synchronized; the stores must outlive the builder.
#pragma once

#include "base/result.h"
#include "crypto/random.h"
#include "signal/keys.h"
#include "signal/protocol.h"
#include "signal/session_record.h"
#include "signal/store.h"

namespace sotto::signal {

// Starts a session with `remote` from its bundle: checks the identity is trusted
// (kUntrustedIdentity otherwise), verifies the signed prekey's signature
// (kInvalidSignature), runs X3DH as initiator, archives any current session and stores
// the record. Messages sent until the first reply are PreKeySignalMessages.
Status ProcessPreKeyBundle(ProtocolStores stores, const ProtocolAddress& remote,
                           const PreKeyBundle& bundle, crypto::Random& random);

// The store-free core of the above, for callers that keep records themselves.
// Signature and trust are NOT checked here.
Result<SessionState> InitializeAliceSession(const IdentityKeyPair& local_identity,
                                            uint32_t local_registration_id,
                                            const PreKeyBundle& bundle, crypto::Random& random);

// The responder's side of X3DH for a PreKeySignalMessage. `prekey` is null when the
// message names no one-time prekey.
Result<SessionState> InitializeBobSession(const IdentityKeyPair& local_identity,
                                          uint32_t local_registration_id,
                                          const PreKeySignalMessageView& message,
                                          const KeyPair& signed_prekey, const KeyPair* prekey,
                                          crypto::Random& random);

}  // namespace sotto::signal
