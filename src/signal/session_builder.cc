#include "signal/session_builder.h"

#include <cstring>

#include "signal/error.h"
#include "signal/internal/ratchet.h"

namespace sotto::signal {
namespace {

// X3DH master secret: 0xFF*32 || DH1 || DH2 || DH3 [|| DH4].
class SecretBuilder {
 public:
  SecretBuilder() { std::memset(buf_.data(), 0xff, 32); }
  Status Add(const crypto::X25519Private& ours, const PublicKey& theirs) {
    auto shared = crypto::Agree(ours, theirs.raw());
    if (!shared) return SignalError(Code::kInvalidArgument, Err::kInvalidKey, "weak X3DH key");
    std::memcpy(buf_.data() + len_, shared->data(), 32);
    len_ += 32;
    return Ok();
  }
  ByteSpan span() const { return ByteSpan(buf_.data(), len_); }

 private:
  crypto::SecretArray<size_t{32} * 5> buf_;
  size_t len_ = 32;
};

}  // namespace

Result<SessionState> InitializeAliceSession(const IdentityKeyPair& local_identity,
                                            uint32_t local_registration_id,
                                            const PreKeyBundle& bundle, crypto::Random& random) {
  const KeyPair base = KeyPair::Generate(random);
  SecretBuilder secret;
  SOTTO_RETURN_IF_ERROR(secret.Add(local_identity.private_key, bundle.signed_prekey));
  SOTTO_RETURN_IF_ERROR(secret.Add(base.private_key, bundle.identity_key));
  SOTTO_RETURN_IF_ERROR(secret.Add(base.private_key, bundle.signed_prekey));
  if (bundle.prekey) SOTTO_RETURN_IF_ERROR(secret.Add(base.private_key, *bundle.prekey));
  internal::RootAndChain derived = internal::DeriveInitial(secret.span());

  SessionState state;
  state.version = kSessionVersion;
  state.local_identity = local_identity.public_key;
  state.remote_identity = bundle.identity_key;
  state.receiver_chains.push_back(ReceiverChain{bundle.signed_prekey, derived.chain, {}});
  state.sender_ratchet = KeyPair::Generate(random);
  SOTTO_ASSIGN_OR_RETURN(
      internal::RootAndChain sending,
      internal::RootStep(derived.root, state.sender_ratchet.private_key, bundle.signed_prekey));
  state.root_key = sending.root;
  state.sender_chain = sending.chain;
  state.pending_prekey = PendingPreKey{bundle.prekey ? bundle.prekey_id : std::nullopt,
                                       bundle.signed_prekey_id, base.public_key};
  state.local_registration_id = local_registration_id;
  state.remote_registration_id = bundle.registration_id;
  state.alice_base_key = base.public_key;
  return state;
}

Result<SessionState> InitializeBobSession(const IdentityKeyPair& local_identity,
                                          uint32_t local_registration_id,
                                          const PreKeySignalMessageView& message,
                                          const KeyPair& signed_prekey, const KeyPair* prekey,
                                          crypto::Random& random) {
  (void)random;
  SecretBuilder secret;
  SOTTO_RETURN_IF_ERROR(secret.Add(signed_prekey.private_key, message.identity_key));
  SOTTO_RETURN_IF_ERROR(secret.Add(local_identity.private_key, message.base_key));
  SOTTO_RETURN_IF_ERROR(secret.Add(signed_prekey.private_key, message.base_key));
  if (prekey != nullptr) SOTTO_RETURN_IF_ERROR(secret.Add(prekey->private_key, message.base_key));
  internal::RootAndChain derived = internal::DeriveInitial(secret.span());

  SessionState state;
  state.version = kSessionVersion;
  state.local_identity = local_identity.public_key;
  state.remote_identity = message.identity_key;
  state.root_key = derived.root;
  state.sender_ratchet = signed_prekey;
  state.sender_chain = derived.chain;
  state.local_registration_id = local_registration_id;
  state.remote_registration_id = message.registration_id;
  state.alice_base_key = message.base_key;
  return state;
}

Status ProcessPreKeyBundle(ProtocolStores stores, const ProtocolAddress& remote,
                           const PreKeyBundle& bundle, crypto::Random& random) {
  SOTTO_ASSIGN_OR_RETURN(bool trusted, stores.identity.IsTrustedIdentity(
                                           remote, bundle.identity_key, Direction::kSending));
  if (!trusted) {
    return SignalError(Code::kPermissionDenied, Err::kUntrustedIdentity,
                       "bundle identity key differs from the trusted one");
  }
  const SerializedPublicKey signed_bytes = bundle.signed_prekey.Serialize();
  if (!crypto::VerifySignature(bundle.identity_key.raw(), signed_bytes,
                               bundle.signed_prekey_signature)) {
    return SignalError(Code::kUnauthenticated, Err::kInvalidSignature,
                       "signed prekey signature does not verify");
  }
  if (bundle.prekey.has_value() != bundle.prekey_id.has_value()) {
    return SignalError(Code::kInvalidArgument, Err::kInvalidKey,
                       "bundle prekey and prekey id must come together");
  }
  SOTTO_ASSIGN_OR_RETURN(IdentityKeyPair local, stores.identity.GetIdentityKeyPair());
  SOTTO_ASSIGN_OR_RETURN(uint32_t registration_id, stores.identity.GetLocalRegistrationId());
  SOTTO_ASSIGN_OR_RETURN(std::optional<SessionRecord> loaded, stores.sessions.LoadSession(remote));
  SessionRecord record = loaded ? std::move(*loaded) : SessionRecord();
  SOTTO_ASSIGN_OR_RETURN(SessionState state,
                         InitializeAliceSession(local, registration_id, bundle, random));
  record.PromoteState(std::move(state));
  SOTTO_RETURN_IF_ERROR(stores.sessions.StoreSession(remote, record));
  SOTTO_ASSIGN_OR_RETURN(IdentityChange change, stores.identity.SaveIdentity(remote, bundle.identity_key));
  (void)change;
  return Ok();
}

}  // namespace sotto::signal
