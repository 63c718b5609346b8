#include "signal/group.h"

#include <algorithm>

#include "crypto/aes_cbc.h"
#include "crypto/hash.h"
#include "signal/error.h"
#include "signal/internal/proto.h"
#include "signal/internal/ratchet.h"

namespace sotto::signal {
namespace {

struct SenderMessageKeys {
  crypto::SecretArray<16> iv;
  crypto::SecretArray<32> cipher_key;
};

// HKDF(seed, zero salt, "WhisperGroup", 48) -> IV (0..15), cipher key (16..47).
SenderMessageKeys DeriveSenderKeys(const crypto::SecretArray<32>& seed) {
  crypto::SecretArray<48> derived;
  crypto::Hkdf(seed.span(), {}, AsBytes("WhisperGroup"), derived.mutable_span());
  SenderMessageKeys keys;
  keys.iv = crypto::SecretArray<16>(ByteSpan(derived.data(), 16));
  keys.cipher_key = crypto::SecretArray<32>(ByteSpan(derived.data() + 16, 32));
  return keys;
}

SenderKeyState NewOwnState(crypto::Random& random) {
  SenderKeyState state;
  state.key_id = random.Uniform(0x7fffffff);
  state.iteration = 0;
  random.Fill(state.chain_key.mutable_span());
  KeyPair signing = KeyPair::Generate(random);
  state.signing_public = signing.public_key;
  state.signing_private = signing.private_key;
  return state;
}

SenderKeyDistributionMessage DistributionOf(const SenderKeyState& state) {
  SenderKeyDistributionMessage m;
  m.key_id = state.key_id;
  m.iteration = state.iteration;
  m.chain_key = state.chain_key;
  m.signing_key = state.signing_public;
  return m;
}

tl::unexpected<Error> Corrupt(const char* message) {
  return SignalError(Code::kDataLoss, Err::kCorruptRecord, message);
}

}  // namespace

SenderKeyState* SenderKeyRecord::FindState(uint32_t key_id) {
  auto it = std::find_if(states_.begin(), states_.end(),
                         [&](const SenderKeyState& s) { return s.key_id == key_id; });
  return it == states_.end() ? nullptr : &*it;
}

void SenderKeyRecord::AddState(SenderKeyState state) {
  states_.insert(states_.begin(), std::move(state));
  while (states_.size() > kMaxSenderKeyStates) states_.pop_back();
}

void SenderKeyRecord::SetState(SenderKeyState state) {
  states_.clear();
  states_.insert(states_.begin(), std::move(state));
}

Bytes SenderKeyRecord::Serialize() const {
  using internal::AppendBytesField;
  using internal::AppendVarintField;
  Bytes out;
  for (const SenderKeyState& s : states_) {
    Bytes state;
    state.reserve(160 + s.skipped.size() * 40);
    AppendVarintField(state, 1, s.key_id);
    AppendVarintField(state, 2, s.iteration);
    AppendBytesField(state, 3, s.chain_key.span());
    AppendBytesField(state, 4, s.signing_public.Serialize());
    if (s.signing_private) AppendBytesField(state, 5, s.signing_private->span());
    for (const SenderMessageKeySeed& k : s.skipped) {
      Bytes key;
      AppendVarintField(key, 1, k.iteration);
      AppendBytesField(key, 2, k.seed.span());
      AppendBytesField(state, 6, key);
    }
    AppendBytesField(out, 1, state);
  }
  return out;
}

Result<SenderKeyRecord> SenderKeyRecord::Deserialize(ByteSpan bytes) {
  using internal::ProtoField;
  using internal::ProtoReader;
  using internal::WireType;
  SenderKeyRecord record;
  ProtoReader r(bytes);
  ProtoField f;
  while (r.Next(f)) {
    if (f.number != 1 || f.type != WireType::kLengthDelimited) continue;
    if (record.states_.size() >= kMaxSenderKeyStates) {
      return Corrupt("more sender key states than kMaxSenderKeyStates");
    }
    SenderKeyState s;
    bool has_chain = false, has_signing = false;
    ProtoReader sr(f.bytes);
    ProtoField c;
    while (sr.Next(c)) {
      const bool bytes32 = c.type == WireType::kLengthDelimited && c.bytes.size() == 32;
      switch (c.number) {
        case 1:
        case 2:
          if (c.type != WireType::kVarint || c.varint > UINT32_MAX) return Corrupt("sender key int");
          (c.number == 1 ? s.key_id : s.iteration) = static_cast<uint32_t>(c.varint);
          break;
        case 3:
          if (!bytes32) return Corrupt("sender chain key");
          s.chain_key = crypto::SecretArray<32>(c.bytes);
          has_chain = true;
          break;
        case 4: {
          if (c.type != WireType::kLengthDelimited) return Corrupt("sender signing key");
          auto key = PublicKey::Deserialize(c.bytes);
          if (!key) return Corrupt("sender signing key");
          s.signing_public = *key;
          has_signing = true;
          break;
        }
        case 5:
          if (!bytes32) return Corrupt("sender signing private key");
          s.signing_private = crypto::X25519Private(c.bytes);
          break;
        case 6: {
          if (c.type != WireType::kLengthDelimited) return Corrupt("sender skipped key");
          if (s.skipped.size() >= kMaxSenderMessageKeys) {
            return Corrupt("more skipped sender keys than kMaxSenderMessageKeys");
          }
          SenderMessageKeySeed k;
          bool has_seed = false;
          ProtoReader kr(c.bytes);
          ProtoField kf;
          while (kr.Next(kf)) {
            if (kf.number == 1 && kf.type == WireType::kVarint && kf.varint <= UINT32_MAX) {
              k.iteration = static_cast<uint32_t>(kf.varint);
            } else if (kf.number == 2 && kf.type == WireType::kLengthDelimited &&
                       kf.bytes.size() == 32) {
              k.seed = crypto::SecretArray<32>(kf.bytes);
              has_seed = true;
            }
          }
          if (kr.error() || !has_seed) return Corrupt("sender skipped key fields");
          s.skipped.push_back(std::move(k));
          break;
        }
        default:
          break;
      }
    }
    if (sr.error() || !has_chain || !has_signing) return Corrupt("sender key state");
    record.states_.push_back(std::move(s));
  }
  if (r.error()) return Corrupt("sender key record malformed");
  return record;
}

Result<SenderKeyDistributionMessage> CreateSenderKeyDistribution(SenderKeyStore& store,
                                                                 const SenderKeyName& name,
                                                                 crypto::Random& random) {
  SOTTO_ASSIGN_OR_RETURN(std::optional<SenderKeyRecord> loaded, store.LoadSenderKey(name));
  SenderKeyRecord record = loaded ? std::move(*loaded) : SenderKeyRecord();
  if (record.empty() || !record.newest()->signing_private) {
    record.SetState(NewOwnState(random));
    SOTTO_RETURN_IF_ERROR(store.StoreSenderKey(name, record));
  }
  return DistributionOf(*record.newest());
}

Result<SenderKeyDistributionMessage> RotateSenderKey(SenderKeyStore& store,
                                                     const SenderKeyName& name,
                                                     crypto::Random& random) {
  SenderKeyRecord record;
  record.SetState(NewOwnState(random));
  SOTTO_RETURN_IF_ERROR(store.StoreSenderKey(name, record));
  return DistributionOf(*record.newest());
}

Status ProcessSenderKeyDistribution(SenderKeyStore& store, const SenderKeyName& name,
                                    const SenderKeyDistributionMessage& message) {
  SOTTO_ASSIGN_OR_RETURN(std::optional<SenderKeyRecord> loaded, store.LoadSenderKey(name));
  SenderKeyRecord record = loaded ? std::move(*loaded) : SenderKeyRecord();
  SenderKeyState state;
  state.key_id = message.key_id;
  state.iteration = message.iteration;
  state.chain_key = message.chain_key;
  state.signing_public = message.signing_key;
  record.AddState(std::move(state));
  return store.StoreSenderKey(name, record);
}

Result<Bytes> GroupEncryptWithRecord(SenderKeyRecord& record, ByteSpan plaintext,
                                     crypto::Random& random) {
  SenderKeyState* state = record.newest();
  if (state == nullptr || !state->signing_private) {
    return SignalError(Code::kFailedPrecondition, Err::kNoSession, "no own sender key");
  }
  if (plaintext.size() > kMaxMessageSize - 512) {
    return SignalError(Code::kResourceExhausted, Err::kInvalidMessage,
                       "plaintext larger than kMaxMessageSize");
  }
  using internal::BytesFieldSize;
  using internal::VarintFieldSize;
  const ChainKey chain{state->chain_key, state->iteration};
  const internal::ChainStep step = internal::StepChain(chain);
  const SenderMessageKeys keys = DeriveSenderKeys(step.seed);
  const size_t body = crypto::CbcCiphertextSize(plaintext.size());
  Bytes out;
  out.reserve(1 + VarintFieldSize(1, state->key_id) + VarintFieldSize(2, state->iteration) +
              BytesFieldSize(3, body) + crypto::kSignatureSize);
  out.push_back(kVersionByte);
  internal::AppendVarintField(out, 1, state->key_id);
  internal::AppendVarintField(out, 2, state->iteration);
  internal::AppendBytesHeader(out, 3, body);
  const size_t body_start = out.size();
  out.resize(body_start + body);
  SOTTO_ASSIGN_OR_RETURN(size_t written,
                         crypto::AesCbcEncrypt(keys.cipher_key.span(), keys.iv.span(), plaintext,
                                               MutableByteSpan(out.data() + body_start, body)));
  (void)written;
  if (!state->signer_cache) state->signer_cache.emplace(*state->signing_private);
  const crypto::Signature sig = state->signer_cache->Sign(out, random);
  out.insert(out.end(), sig.begin(), sig.end());
  state->chain_key = step.next.key;
  state->iteration = step.next.index;
  return out;
}

Result<Bytes> GroupDecryptWithRecord(SenderKeyRecord& record, ByteSpan message) {
  SOTTO_ASSIGN_OR_RETURN(SenderKeyMessageView msg, ParseSenderKeyMessage(message));
  SenderKeyState* state = record.FindState(msg.key_id);
  if (state == nullptr) {
    return SignalError(Code::kFailedPrecondition, Err::kNoSession, "no sender key with this id");
  }
  if (!state->verifier_cache) state->verifier_cache.emplace(state->signing_public.raw());
  if (!state->verifier_cache->Verify(msg.signed_part, msg.signature)) {
    return SignalError(Code::kUnauthenticated, Err::kInvalidSignature,
                       "sender key message signature does not verify");
  }
  ChainKey chain{state->chain_key, state->iteration};
  crypto::SecretArray<32> seed;
  std::optional<size_t> skipped_index;
  std::vector<SenderMessageKeySeed> new_skipped;
  if (msg.iteration < chain.index) {
    auto it = std::find_if(state->skipped.begin(), state->skipped.end(),
                           [&](const SenderMessageKeySeed& k) { return k.iteration == msg.iteration; });
    if (it == state->skipped.end()) {
      return SignalError(Code::kAlreadyExists, Err::kDuplicateMessage, "sender key already used");
    }
    skipped_index = static_cast<size_t>(it - state->skipped.begin());
    seed = it->seed;
  } else {
    if (msg.iteration - chain.index > kMaxSenderKeyForwardJump) {
      return SignalError(Code::kOutOfRange, Err::kTooFarInFuture,
                         "iteration beyond kMaxSenderKeyForwardJump");
    }
    while (chain.index < msg.iteration) {
      internal::ChainStep step = internal::StepChain(chain);
      new_skipped.push_back(SenderMessageKeySeed{chain.index, step.seed});
      chain = step.next;
    }
    internal::ChainStep step = internal::StepChain(chain);
    seed = step.seed;
    chain = step.next;
  }
  const SenderMessageKeys keys = DeriveSenderKeys(seed);
  Bytes out(msg.ciphertext.size());
  auto n = crypto::AesCbcDecrypt(keys.cipher_key.span(), keys.iv.span(), msg.ciphertext, out);
  if (!n) {
    return SignalError(Code::kInvalidArgument, Err::kCipher, "group message body does not decrypt");
  }
  out.resize(*n);
  // Commit.
  if (skipped_index) {
    state->skipped.erase(state->skipped.begin() + static_cast<std::ptrdiff_t>(*skipped_index));
  } else {
    state->chain_key = chain.key;
    state->iteration = chain.index;
    for (SenderMessageKeySeed& k : new_skipped) state->skipped.push_back(std::move(k));
    if (state->skipped.size() > kMaxSenderMessageKeys) {
      state->skipped.erase(state->skipped.begin(),
                           state->skipped.end() - static_cast<std::ptrdiff_t>(kMaxSenderMessageKeys));
    }
  }
  return out;
}

GroupCipher::GroupCipher(SenderKeyStore& store, SenderKeyName name, crypto::Random& random)
    : store_(store), name_(std::move(name)), random_(random) {}

Result<Bytes> GroupCipher::Encrypt(ByteSpan plaintext) {
  SOTTO_ASSIGN_OR_RETURN(std::optional<SenderKeyRecord> record, store_.LoadSenderKey(name_));
  if (!record) return SignalError(Code::kFailedPrecondition, Err::kNoSession, "no own sender key");
  SOTTO_ASSIGN_OR_RETURN(Bytes out, GroupEncryptWithRecord(*record, plaintext, random_));
  SOTTO_RETURN_IF_ERROR(store_.StoreSenderKey(name_, *record));
  return out;
}

Result<Bytes> GroupCipher::Decrypt(ByteSpan message) {
  SOTTO_ASSIGN_OR_RETURN(std::optional<SenderKeyRecord> record, store_.LoadSenderKey(name_));
  if (!record) {
    return SignalError(Code::kFailedPrecondition, Err::kNoSession, "no sender key for sender");
  }
  SOTTO_ASSIGN_OR_RETURN(Bytes out, GroupDecryptWithRecord(*record, message));
  SOTTO_RETURN_IF_ERROR(store_.StoreSenderKey(name_, *record));
  return out;
}

}  // namespace sotto::signal
