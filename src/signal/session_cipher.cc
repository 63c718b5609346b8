#include "signal/session_cipher.h"

#include <algorithm>

#include "crypto/aes_cbc.h"
#include "crypto/hash.h"
#include "signal/error.h"
#include "signal/internal/proto.h"
#include "signal/internal/ratchet.h"
#include "signal/session_builder.h"

namespace sotto::signal {
namespace {

using internal::MessageKeys;

// The truncated MAC over sender identity || receiver identity || version || protobuf.
std::array<uint8_t, kMacSize> ComputeMac(const crypto::SecretArray<32>& mac_key,
                                         const IdentityKey& sender, const IdentityKey& receiver,
                                         ByteSpan mac_input) {
  crypto::HmacSha256 mac(mac_key.span());
  mac.Update(sender.Serialize());
  mac.Update(receiver.Serialize());
  mac.Update(mac_input);
  crypto::SecretArray<32> full = mac.Final();
  std::array<uint8_t, kMacSize> out;
  std::copy_n(full.data(), kMacSize, out.begin());
  return out;
}

// Everything a successful decrypt will change in a state, computed without touching it.
struct DecryptPlan {
  // Set when the message starts a new receiving chain (a DH ratchet step).
  bool ratchet_step = false;
  crypto::SecretArray<32> new_root;
  KeyPair new_sender_ratchet;
  ChainKey new_sender_chain;
  uint32_t new_previous_counter = 0;
  // Index of the receiving chain in use; == receiver_chains.size() for a new one.
  size_t chain_index = 0;
  PublicKey their_ratchet_key;
  // Where the message key came from.
  bool from_skipped = false;
  size_t skipped_index = 0;
  ChainKey chain_after;                       // receiving chain after this message
  std::vector<SkippedMessageKey> new_skipped; // keys for messages jumped over
};

tl::unexpected<Error> DecryptError(Code code, Err err, const char* message) {
  return SignalError(code, err, message);
}

// Decrypts `msg` against `state` without modifying it; fills `plan` and `out`.
Status TryDecrypt(const SessionState& state, const SignalMessageView& msg,
                  crypto::Random& random, DecryptPlan& plan, Bytes& out) {
  if (msg.version != state.version) {
    return DecryptError(Code::kInvalidArgument, Err::kInvalidMessage,
                        "message version differs from session version");
  }
  plan.their_ratchet_key = msg.ratchet_key;
  ChainKey chain;
  const std::vector<SkippedMessageKey>* skipped = nullptr;
  auto it = std::find_if(state.receiver_chains.begin(), state.receiver_chains.end(),
                         [&](const ReceiverChain& c) { return c.sender_ratchet_key == msg.ratchet_key; });
  if (it != state.receiver_chains.end()) {
    plan.chain_index = static_cast<size_t>(it - state.receiver_chains.begin());
    chain = it->chain_key;
    skipped = &it->skipped;
  } else {
    // DH ratchet step: receiving chain from our current ratchet key, then a new ratchet
    // key pair and sending chain.
    plan.ratchet_step = true;
    plan.chain_index = state.receiver_chains.size();
    SOTTO_ASSIGN_OR_RETURN(
        internal::RootAndChain receiving,
        internal::RootStep(state.root_key, state.sender_ratchet.private_key, msg.ratchet_key));
    plan.new_sender_ratchet = KeyPair::Generate(random);
    SOTTO_ASSIGN_OR_RETURN(
        internal::RootAndChain sending,
        internal::RootStep(receiving.root, plan.new_sender_ratchet.private_key, msg.ratchet_key));
    plan.new_root = sending.root;
    plan.new_sender_chain = sending.chain;
    plan.new_previous_counter = state.sender_chain.index > 0 ? state.sender_chain.index - 1 : 0;
    chain = receiving.chain;
  }

  crypto::SecretArray<32> seed;
  if (msg.counter < chain.index) {
    if (skipped == nullptr) {
      return DecryptError(Code::kAlreadyExists, Err::kDuplicateMessage, "message key already used");
    }
    auto k = std::find_if(skipped->begin(), skipped->end(),
                          [&](const SkippedMessageKey& s) { return s.counter == msg.counter; });
    if (k == skipped->end()) {
      return DecryptError(Code::kAlreadyExists, Err::kDuplicateMessage, "message key already used");
    }
    plan.from_skipped = true;
    plan.skipped_index = static_cast<size_t>(k - skipped->begin());
    seed = k->seed;
    plan.chain_after = chain;
  } else {
    if (msg.counter - chain.index > kMaxForwardJump) {
      return DecryptError(Code::kOutOfRange, Err::kTooFarInFuture,
                          "message counter beyond kMaxForwardJump");
    }
    while (chain.index < msg.counter) {
      internal::ChainStep step = internal::StepChain(chain);
      plan.new_skipped.push_back(SkippedMessageKey{chain.index, step.seed});
      chain = step.next;
    }
    internal::ChainStep step = internal::StepChain(chain);
    seed = step.seed;
    plan.chain_after = step.next;
  }

  const MessageKeys keys = internal::DeriveMessageKeys(seed, msg.counter);
  const auto mac = ComputeMac(keys.mac_key, state.remote_identity, state.local_identity,
                              msg.mac_input);
  if (!crypto::ConstantTimeEqual(mac, msg.mac)) {
    return DecryptError(Code::kUnauthenticated, Err::kBadMac, "message MAC does not verify");
  }
  out.resize(msg.ciphertext.size());
  auto n = crypto::AesCbcDecrypt(keys.cipher_key.span(), keys.iv.span(), msg.ciphertext, out);
  if (!n) {
    return DecryptError(Code::kInvalidArgument, Err::kCipher, "message body does not decrypt");
  }
  out.resize(*n);
  return Ok();
}

void Commit(SessionState& state, DecryptPlan& plan) {
  if (plan.ratchet_step) {
    state.receiver_chains.push_back(ReceiverChain{plan.their_ratchet_key, plan.chain_after, {}});
    if (state.receiver_chains.size() > kMaxReceiverChains) {
      state.receiver_chains.erase(state.receiver_chains.begin());
      --plan.chain_index;
    }
    state.root_key = plan.new_root;
    state.sender_ratchet = plan.new_sender_ratchet;
    state.sender_chain = plan.new_sender_chain;
    state.previous_counter = plan.new_previous_counter;
  }
  ReceiverChain& chain = state.receiver_chains[plan.chain_index];
  chain.chain_key = plan.chain_after;
  if (plan.from_skipped) {
    chain.skipped.erase(chain.skipped.begin() + static_cast<std::ptrdiff_t>(plan.skipped_index));
  }
  if (!plan.new_skipped.empty()) {
    for (SkippedMessageKey& k : plan.new_skipped) chain.skipped.push_back(std::move(k));
    if (chain.skipped.size() > kMaxSkippedMessageKeys) {
      chain.skipped.erase(chain.skipped.begin(),
                          chain.skipped.end() - static_cast<std::ptrdiff_t>(kMaxSkippedMessageKeys));
    }
  }
  state.pending_prekey.reset();
}

bool FitsOtherState(const Error& e) {
  // Errors that mean "not this state"; anything else is final.
  return !Is(e, Err::kDuplicateMessage);
}

}  // namespace

Result<CiphertextMessage> EncryptWithRecord(SessionRecord& record, ByteSpan plaintext) {
  SessionState* state = record.current();
  if (state == nullptr) {
    return SignalError(Code::kFailedPrecondition, Err::kNoSession, "no session to encrypt with");
  }
  if (plaintext.size() > kMaxMessageSize - 512) {
    return SignalError(Code::kResourceExhausted, Err::kInvalidMessage,
                       "plaintext larger than kMaxMessageSize");
  }
  using internal::BytesFieldSize;
  using internal::VarintFieldSize;
  internal::ChainStep step = internal::StepChain(state->sender_chain);
  const MessageKeys keys = internal::DeriveMessageKeys(step.seed, state->sender_chain.index);
  const size_t body = crypto::CbcCiphertextSize(plaintext.size());
  const size_t inner_proto = BytesFieldSize(1, kSerializedPublicKeySize) +
                             VarintFieldSize(2, state->sender_chain.index) +
                             VarintFieldSize(3, state->previous_counter) + BytesFieldSize(4, body);
  const size_t inner = 1 + inner_proto + kMacSize;

  const PendingPreKey* pending = state->pending_prekey ? &*state->pending_prekey : nullptr;
  size_t total = inner;
  if (pending != nullptr) {
    total = 1 + (pending->prekey_id ? VarintFieldSize(1, *pending->prekey_id) : 0) +
            BytesFieldSize(2, kSerializedPublicKeySize) +
            BytesFieldSize(3, kSerializedPublicKeySize) + BytesFieldSize(4, inner) +
            VarintFieldSize(5, state->local_registration_id) +
            VarintFieldSize(6, pending->signed_prekey_id);
  }

  CiphertextMessage out;
  out.type = pending ? MessageType::kPreKey : MessageType::kSignal;
  Bytes& buf = out.bytes;
  buf.reserve(total);
  if (pending != nullptr) {
    // Fields in ascending order, as protobuf-c writes them; the SignalMessage goes
    // straight into field 4.
    buf.push_back(kVersionByte);
    if (pending->prekey_id) internal::AppendVarintField(buf, 1, *pending->prekey_id);
    internal::AppendBytesField(buf, 2, pending->base_key.Serialize());
    internal::AppendBytesField(buf, 3, state->local_identity.Serialize());
    internal::AppendBytesHeader(buf, 4, inner);
  }
  const size_t inner_start = buf.size();
  buf.push_back(kVersionByte);
  internal::AppendBytesField(buf, 1, state->sender_ratchet.public_key.Serialize());
  internal::AppendVarintField(buf, 2, state->sender_chain.index);
  internal::AppendVarintField(buf, 3, state->previous_counter);
  internal::AppendBytesHeader(buf, 4, body);
  const size_t body_start = buf.size();
  buf.resize(body_start + body);
  SOTTO_ASSIGN_OR_RETURN(size_t written,
                         crypto::AesCbcEncrypt(keys.cipher_key.span(), keys.iv.span(), plaintext,
                                               MutableByteSpan(buf.data() + body_start, body)));
  (void)written;
  const auto mac = ComputeMac(keys.mac_key, state->local_identity, state->remote_identity,
                              ByteSpan(buf.data() + inner_start, buf.size() - inner_start));
  buf.insert(buf.end(), mac.begin(), mac.end());
  if (pending != nullptr) {
    internal::AppendVarintField(buf, 5, state->local_registration_id);
    internal::AppendVarintField(buf, 6, pending->signed_prekey_id);
  }
  state->sender_chain = step.next;
  return out;
}

namespace {

Result<Bytes> DecryptParsed(SessionRecord& record, const SignalMessageView& msg,
                            crypto::Random& random) {
  SessionState* current = record.current();
  if (current == nullptr) {
    return SignalError(Code::kFailedPrecondition, Err::kNoSession, "no session to decrypt with");
  }
  Bytes out;
  {
    DecryptPlan plan;
    Status status = TryDecrypt(*current, msg, random, plan, out);
    if (status) {
      Commit(*current, plan);
      return out;
    }
    if (!FitsOtherState(status.error())) return tl::unexpected(status.error());
    for (size_t i = 0; i < record.previous().size(); ++i) {
      DecryptPlan archived_plan;
      if (TryDecrypt(record.previous()[i], msg, random, archived_plan, out)) {
        Commit(record.previous()[i], archived_plan);
        record.PromoteArchived(i);
        return out;
      }
    }
    return tl::unexpected(status.error());
  }
}

}  // namespace

Result<Bytes> DecryptWithRecord(SessionRecord& record, ByteSpan message, crypto::Random& random) {
  SOTTO_ASSIGN_OR_RETURN(SignalMessageView msg, ParseSignalMessage(message));
  return DecryptParsed(record, msg, random);
}

SessionCipher::SessionCipher(ProtocolStores stores, ProtocolAddress remote, crypto::Random& random)
    : stores_(stores), remote_(std::move(remote)), random_(random) {}

Result<SessionRecord> SessionCipher::LoadRecord() {
  SOTTO_ASSIGN_OR_RETURN(std::optional<SessionRecord> loaded, stores_.sessions.LoadSession(remote_));
  if (!loaded) {
    return SignalError(Code::kFailedPrecondition, Err::kNoSession, "no session for this address");
  }
  return std::move(*loaded);
}

Result<CiphertextMessage> SessionCipher::Encrypt(ByteSpan plaintext) {
  SOTTO_ASSIGN_OR_RETURN(SessionRecord record, LoadRecord());
  const SessionState* state = record.current();
  if (state != nullptr) {
    SOTTO_ASSIGN_OR_RETURN(bool trusted, stores_.identity.IsTrustedIdentity(
                                             remote_, state->remote_identity, Direction::kSending));
    if (!trusted) {
      return SignalError(Code::kPermissionDenied, Err::kUntrustedIdentity,
                         "session identity is no longer trusted");
    }
  }
  SOTTO_ASSIGN_OR_RETURN(CiphertextMessage out, EncryptWithRecord(record, plaintext));
  SOTTO_RETURN_IF_ERROR(stores_.sessions.StoreSession(remote_, record));
  return out;
}

Result<Bytes> SessionCipher::Decrypt(ByteSpan message, MessageType type) {
  switch (type) {
    case MessageType::kSignal:
      return DecryptSignalMessage(message);
    case MessageType::kPreKey:
      return DecryptPreKeySignalMessage(message);
    case MessageType::kSenderKey:
    case MessageType::kSenderKeyDistribution:
      break;
  }
  return SignalError(Code::kInvalidArgument, Err::kInvalidMessage,
                     "not a pairwise message type");
}

Result<Bytes> SessionCipher::DecryptSignalMessage(ByteSpan message) {
  SOTTO_ASSIGN_OR_RETURN(SignalMessageView msg, ParseSignalMessage(message));
  SOTTO_ASSIGN_OR_RETURN(SessionRecord record, LoadRecord());
  SOTTO_ASSIGN_OR_RETURN(Bytes plaintext, DecryptParsed(record, msg, random_));
  const SessionState* state = record.current();
  SOTTO_ASSIGN_OR_RETURN(bool trusted, stores_.identity.IsTrustedIdentity(
                                           remote_, state->remote_identity, Direction::kReceiving));
  if (!trusted) {
    return SignalError(Code::kPermissionDenied, Err::kUntrustedIdentity,
                       "session identity is no longer trusted");
  }
  SOTTO_RETURN_IF_ERROR(stores_.identity.SaveIdentity(remote_, state->remote_identity));
  SOTTO_RETURN_IF_ERROR(stores_.sessions.StoreSession(remote_, record));
  return plaintext;
}

Result<Bytes> SessionCipher::DecryptPreKeySignalMessage(ByteSpan message) {
  SOTTO_ASSIGN_OR_RETURN(PreKeySignalMessageView msg, ParsePreKeySignalMessage(message));
  SOTTO_ASSIGN_OR_RETURN(bool trusted, stores_.identity.IsTrustedIdentity(
                                           remote_, msg.identity_key, Direction::kReceiving));
  if (!trusted) {
    return SignalError(Code::kPermissionDenied, Err::kUntrustedIdentity,
                       "sender identity key differs from the trusted one");
  }
  SOTTO_ASSIGN_OR_RETURN(std::optional<SessionRecord> loaded, stores_.sessions.LoadSession(remote_));
  SessionRecord record = loaded ? std::move(*loaded) : SessionRecord();

  std::optional<uint32_t> used_prekey;
  Bytes plaintext;
  if (record.HasState(msg.version, msg.base_key)) {
    // A retry of a message whose session we already set up.
    SOTTO_ASSIGN_OR_RETURN(plaintext, DecryptParsed(record, msg.message, random_));
  } else {
    SOTTO_ASSIGN_OR_RETURN(std::optional<SignedPreKeyRecord> signed_prekey,
                           stores_.signed_prekeys.LoadSignedPreKey(msg.signed_prekey_id));
    if (!signed_prekey) {
      return SignalError(Code::kNotFound, Err::kNoSignedPreKey, "no such signed prekey");
    }
    std::optional<PreKeyRecord> prekey;
    if (msg.prekey_id) {
      SOTTO_ASSIGN_OR_RETURN(prekey, stores_.prekeys.LoadPreKey(*msg.prekey_id));
      if (!prekey) return SignalError(Code::kNotFound, Err::kNoPreKey, "no such one-time prekey");
    }
    SOTTO_ASSIGN_OR_RETURN(IdentityKeyPair local, stores_.identity.GetIdentityKeyPair());
    SOTTO_ASSIGN_OR_RETURN(uint32_t registration_id, stores_.identity.GetLocalRegistrationId());
    SOTTO_ASSIGN_OR_RETURN(
        SessionState state,
        InitializeBobSession(local, registration_id, msg, signed_prekey->key_pair,
                             prekey ? &prekey->key_pair : nullptr, random_));
    DecryptPlan plan;
    SOTTO_RETURN_IF_ERROR(TryDecrypt(state, msg.message, random_, plan, plaintext));
    Commit(state, plan);
    record.PromoteState(std::move(state));
    used_prekey = msg.prekey_id;
  }
  SOTTO_RETURN_IF_ERROR(stores_.sessions.StoreSession(remote_, record));
  SOTTO_RETURN_IF_ERROR(stores_.identity.SaveIdentity(remote_, msg.identity_key));
  if (used_prekey && *used_prekey != kLastResortPreKeyId) {
    SOTTO_RETURN_IF_ERROR(stores_.prekeys.RemovePreKey(*used_prekey));
  }
  return plaintext;
}

Result<uint32_t> SessionCipher::RemoteRegistrationId() {
  SOTTO_ASSIGN_OR_RETURN(SessionRecord record, LoadRecord());
  return record.current()->remote_registration_id;
}

}  // namespace sotto::signal
