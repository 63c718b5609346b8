#include "signal/session_record.h"

#include "signal/error.h"
#include "signal/internal/proto.h"

namespace sotto::signal {
namespace {

using internal::AppendBytesField;
using internal::AppendVarintField;
using internal::ProtoField;
using internal::ProtoReader;
using internal::WireType;

// Field numbers: docs/signal-session-record.md.
enum RecordField : uint32_t { kCurrent = 1, kPrevious = 2 };
enum StateField : uint32_t {
  kVersion = 1, kLocalIdentity = 2, kRemoteIdentity = 3, kRootKey = 4, kPreviousCounter = 5,
  kSenderChain = 6, kReceiverChain = 7, kPending = 8, kRemoteRegistration = 9,
  kLocalRegistration = 10, kAliceBaseKey = 11,
};

tl::unexpected<Error> Corrupt(const char* message) {
  return SignalError(Code::kDataLoss, Err::kCorruptRecord, message);
}

void AppendKey(Bytes& out, uint32_t field, const PublicKey& key) {
  AppendBytesField(out, field, key.Serialize());
}

using internal::BeginNested;
using internal::EndNested;

size_t EstimateStateSize(const SessionState& s) {
  size_t n = 400;
  for (const ReceiverChain& rc : s.receiver_chains) n += 90 + rc.skipped.size() * 42;
  return n;
}

void SerializeState(Bytes& out, const SessionState& s) {
  AppendVarintField(out, kVersion, s.version);
  AppendKey(out, kLocalIdentity, s.local_identity);
  AppendKey(out, kRemoteIdentity, s.remote_identity);
  AppendBytesField(out, kRootKey, s.root_key.span());
  AppendVarintField(out, kPreviousCounter, s.previous_counter);
  {
    const size_t chain = BeginNested(out, kSenderChain);
    AppendKey(out, 1, s.sender_ratchet.public_key);
    AppendBytesField(out, 2, s.sender_ratchet.private_key.span());
    AppendBytesField(out, 3, s.sender_chain.key.span());
    AppendVarintField(out, 4, s.sender_chain.index);
    EndNested(out, chain);
  }
  for (const ReceiverChain& rc : s.receiver_chains) {
    const size_t chain = BeginNested(out, kReceiverChain);
    AppendKey(out, 1, rc.sender_ratchet_key);
    AppendBytesField(out, 2, rc.chain_key.key.span());
    AppendVarintField(out, 3, rc.chain_key.index);
    for (const SkippedMessageKey& k : rc.skipped) {
      const size_t key = BeginNested(out, 4);
      AppendVarintField(out, 1, k.counter);
      AppendBytesField(out, 2, k.seed.span());
      EndNested(out, key);
    }
    EndNested(out, chain);
  }
  if (s.pending_prekey) {
    const size_t pending = BeginNested(out, kPending);
    if (s.pending_prekey->prekey_id) AppendVarintField(out, 1, *s.pending_prekey->prekey_id);
    AppendVarintField(out, 2, s.pending_prekey->signed_prekey_id);
    AppendKey(out, 3, s.pending_prekey->base_key);
    EndNested(out, pending);
  }
  AppendVarintField(out, kRemoteRegistration, s.remote_registration_id);
  AppendVarintField(out, kLocalRegistration, s.local_registration_id);
  AppendKey(out, kAliceBaseKey, s.alice_base_key);
}

bool ReadSecret(const ProtoField& f, crypto::SecretArray<32>& out) {
  if (f.type != WireType::kLengthDelimited || f.bytes.size() != 32) return false;
  out = crypto::SecretArray<32>(f.bytes);
  return true;
}

bool ReadKey(const ProtoField& f, PublicKey& out) {
  if (f.type != WireType::kLengthDelimited) return false;
  auto key = PublicKey::Deserialize(f.bytes);
  if (!key) return false;
  out = *key;
  return true;
}

bool ReadU32(const ProtoField& f, uint32_t& out) {
  if (f.type != WireType::kVarint || f.varint > UINT32_MAX) return false;
  out = static_cast<uint32_t>(f.varint);
  return true;
}

Result<SkippedMessageKey> ParseSkipped(ByteSpan bytes) {
  SkippedMessageKey k;
  bool has_seed = false, has_counter = false;
  ProtoReader r(bytes);
  ProtoField f;
  while (r.Next(f)) {
    if (f.number == 1) {
      if (!ReadU32(f, k.counter)) return Corrupt("skipped key counter");
      has_counter = true;
    } else if (f.number == 2) {
      if (!ReadSecret(f, k.seed)) return Corrupt("skipped key seed");
      has_seed = true;
    }
  }
  if (r.error() || !has_seed || !has_counter) return Corrupt("skipped key");
  return k;
}

Result<ReceiverChain> ParseReceiverChain(ByteSpan bytes) {
  ReceiverChain rc;
  bool has_key = false, has_chain = false;
  ProtoReader r(bytes);
  ProtoField f;
  while (r.Next(f)) {
    switch (f.number) {
      case 1:
        if (!ReadKey(f, rc.sender_ratchet_key)) return Corrupt("receiver chain key");
        has_key = true;
        break;
      case 2:
        if (!ReadSecret(f, rc.chain_key.key)) return Corrupt("receiver chain key bytes");
        has_chain = true;
        break;
      case 3:
        if (!ReadU32(f, rc.chain_key.index)) return Corrupt("receiver chain index");
        break;
      case 4: {
        if (f.type != WireType::kLengthDelimited) return Corrupt("skipped key type");
        if (rc.skipped.size() >= kMaxSkippedMessageKeys) {
          return Corrupt("more skipped keys than kMaxSkippedMessageKeys");
        }
        SOTTO_ASSIGN_OR_RETURN(SkippedMessageKey k, ParseSkipped(f.bytes));
        rc.skipped.push_back(std::move(k));
        break;
      }
      default:
        break;
    }
  }
  if (r.error() || !has_key || !has_chain) return Corrupt("receiver chain");
  return rc;
}

Result<SessionState> ParseState(ByteSpan bytes) {
  SessionState s;
  bool has_root = false, has_sender = false, has_local = false, has_remote = false;
  ProtoReader r(bytes);
  ProtoField f;
  while (r.Next(f)) {
    switch (f.number) {
      case kVersion:
        if (!ReadU32(f, s.version)) return Corrupt("state version");
        break;
      case kLocalIdentity:
        if (!ReadKey(f, s.local_identity)) return Corrupt("local identity");
        has_local = true;
        break;
      case kRemoteIdentity:
        if (!ReadKey(f, s.remote_identity)) return Corrupt("remote identity");
        has_remote = true;
        break;
      case kRootKey:
        if (!ReadSecret(f, s.root_key)) return Corrupt("root key");
        has_root = true;
        break;
      case kPreviousCounter:
        if (!ReadU32(f, s.previous_counter)) return Corrupt("previous counter");
        break;
      case kSenderChain: {
        if (f.type != WireType::kLengthDelimited) return Corrupt("sender chain");
        bool pub = false, priv = false, key = false;
        ProtoReader cr(f.bytes);
        ProtoField c;
        while (cr.Next(c)) {
          if (c.number == 1) {
            pub = ReadKey(c, s.sender_ratchet.public_key);
          } else if (c.number == 2) {
            priv = ReadSecret(c, s.sender_ratchet.private_key);
          } else if (c.number == 3) {
            key = ReadSecret(c, s.sender_chain.key);
          } else if (c.number == 4) {
            if (!ReadU32(c, s.sender_chain.index)) return Corrupt("sender chain index");
          }
        }
        if (cr.error() || !pub || !priv || !key) return Corrupt("sender chain fields");
        has_sender = true;
        break;
      }
      case kReceiverChain: {
        if (f.type != WireType::kLengthDelimited) return Corrupt("receiver chain type");
        if (s.receiver_chains.size() >= kMaxReceiverChains) {
          return Corrupt("more receiver chains than kMaxReceiverChains");
        }
        SOTTO_ASSIGN_OR_RETURN(ReceiverChain rc, ParseReceiverChain(f.bytes));
        s.receiver_chains.push_back(std::move(rc));
        break;
      }
      case kPending: {
        if (f.type != WireType::kLengthDelimited) return Corrupt("pending prekey");
        PendingPreKey p;
        bool base = false;
        ProtoReader pr(f.bytes);
        ProtoField c;
        while (pr.Next(c)) {
          uint32_t v = 0;
          if (c.number == 1) {
            if (!ReadU32(c, v)) return Corrupt("pending prekey id");
            p.prekey_id = v;
          } else if (c.number == 2) {
            if (!ReadU32(c, p.signed_prekey_id)) return Corrupt("pending signed prekey id");
          } else if (c.number == 3) {
            base = ReadKey(c, p.base_key);
          }
        }
        if (pr.error() || !base) return Corrupt("pending prekey fields");
        s.pending_prekey = p;
        break;
      }
      case kRemoteRegistration:
        if (!ReadU32(f, s.remote_registration_id)) return Corrupt("remote registration id");
        break;
      case kLocalRegistration:
        if (!ReadU32(f, s.local_registration_id)) return Corrupt("local registration id");
        break;
      case kAliceBaseKey:
        if (!ReadKey(f, s.alice_base_key)) return Corrupt("alice base key");
        break;
      default:
        break;
    }
  }
  if (r.error() || !has_root || !has_sender || !has_local || !has_remote) {
    return Corrupt("session state missing fields");
  }
  return s;
}

}  // namespace

bool SessionRecord::HasState(uint32_t version, const PublicKey& base_key) const {
  if (current_ && current_->version == version && current_->alice_base_key == base_key) {
    return true;
  }
  for (const SessionState& s : previous_) {
    if (s.version == version && s.alice_base_key == base_key) return true;
  }
  return false;
}

void SessionRecord::PromoteState(SessionState state) {
  ArchiveCurrent();
  current_ = std::move(state);
}

void SessionRecord::ArchiveCurrent() {
  if (current_) {
    previous_.insert(previous_.begin(), std::move(*current_));
    current_.reset();
    while (previous_.size() > kMaxArchivedStates) previous_.pop_back();
  }
}

void SessionRecord::PromoteArchived(size_t index) {
  if (index >= previous_.size()) return;
  SessionState promoted = std::move(previous_[index]);
  previous_.erase(previous_.begin() + static_cast<std::ptrdiff_t>(index));
  PromoteState(std::move(promoted));
}

Bytes SessionRecord::Serialize() const {
  size_t estimate = current_ ? EstimateStateSize(*current_) : 0;
  for (const SessionState& s : previous_) estimate += EstimateStateSize(s);
  Bytes out;
  out.reserve(estimate);
  if (current_) {
    const size_t state = BeginNested(out, kCurrent);
    SerializeState(out, *current_);
    EndNested(out, state);
  }
  for (const SessionState& s : previous_) {
    const size_t state = BeginNested(out, kPrevious);
    SerializeState(out, s);
    EndNested(out, state);
  }
  return out;
}

Result<SessionRecord> SessionRecord::Deserialize(ByteSpan bytes) {
  SessionRecord record;
  ProtoReader r(bytes);
  ProtoField f;
  while (r.Next(f)) {
    if (f.type != WireType::kLengthDelimited) continue;
    if (f.number == kCurrent) {
      SOTTO_ASSIGN_OR_RETURN(SessionState s, ParseState(f.bytes));
      record.current_ = std::move(s);
    } else if (f.number == kPrevious) {
      if (record.previous_.size() >= kMaxArchivedStates) {
        return Corrupt("more archived states than kMaxArchivedStates");
      }
      SOTTO_ASSIGN_OR_RETURN(SessionState s, ParseState(f.bytes));
      record.previous_.push_back(std::move(s));
    }
  }
  if (r.error()) return Corrupt("session record protobuf malformed");
  return record;
}

}  // namespace sotto::signal
