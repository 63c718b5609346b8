#include "noise/handshake_state.h"

#include <algorithm>
#include <utility>

#include "noise/error.h"
#include "noise/internal/patterns.h"

namespace sotto::noise {
namespace {

using internal::Party;
using internal::PatternSpec;
using internal::Token;
using internal::TokenList;

bool Contains(const TokenList& list, Token token) {
  return std::find(list.tokens.begin(), list.tokens.begin() + list.size, token) !=
         list.tokens.begin() + list.size;
}

// Which of `party`'s keys a DH token uses: true for its ephemeral.
bool UsesEphemeral(Token token, Party party) {
  switch (token) {
    case Token::kEE:
      return true;
    case Token::kES:
      return party == Party::kAlice;
    case Token::kSE:
      return party == Party::kBob;
    case Token::kSS:
    case Token::kE:
    case Token::kS:
      return false;
  }
  return false;
}

bool IsDh(Token token) { return token != Token::kE && token != Token::kS; }

Party Other(Party p) { return p == Party::kAlice ? Party::kBob : Party::kAlice; }

// What `party`'s role in `spec` needs and may take.
struct KeyNeeds {
  bool s = false;       // needs its static key
  bool e_pre = false;   // its ephemeral is a pre-message
  bool e_sent = false;  // it sends an `e` token
  bool rs_pre = false;  // the peer's static is a pre-message
  bool re_pre = false;  // the peer's ephemeral is a pre-message
};

KeyNeeds NeedsOf(const PatternSpec& spec, Party party) {
  KeyNeeds needs;
  for (size_t i = 0; i < spec.pre_count; ++i) {
    const auto& pre = spec.pre[i];
    const bool mine = pre.owner == party;
    if (Contains(pre.tokens, Token::kS)) (mine ? needs.s : needs.rs_pre) = true;
    if (Contains(pre.tokens, Token::kE)) (mine ? needs.e_pre : needs.re_pre) = true;
  }
  for (size_t i = 0; i < spec.message_count; ++i) {
    const auto& m = spec.messages[i];
    for (size_t t = 0; t < m.tokens.size; ++t) {
      const Token token = m.tokens.tokens[t];
      if (m.sender == party && token == Token::kS) needs.s = true;
      if (m.sender == party && token == Token::kE) needs.e_sent = true;
      if (IsDh(token) && !UsesEphemeral(token, party)) needs.s = true;
    }
  }
  return needs;
}

tl::unexpected<Error> KeyError(NoiseErr detail, const char* message) {
  return NoiseError(Code::kInvalidArgument, detail, message);
}

}  // namespace

std::string_view PatternName(HandshakePattern pattern) { return internal::Spec(pattern).name; }

std::optional<HandshakePattern> PatternFromName(std::string_view name) {
  for (const auto& spec : internal::AllSpecs()) {
    if (spec.name == name) return spec.id;
  }
  return std::nullopt;
}

std::string ProtocolName(HandshakePattern pattern) {
  std::string name = "Noise_";
  name += PatternName(pattern);
  name += '_';
  name += kSuiteName;
  return name;
}

bool IsOneWay(HandshakePattern pattern) {
  return pattern == HandshakePattern::kN || pattern == HandshakePattern::kK ||
         pattern == HandshakePattern::kX;
}

KeyPair KeyPair::Generate(crypto::Random& random) {
  return FromPrivate(crypto::GeneratePrivateKey(random));
}

KeyPair KeyPair::FromPrivate(const crypto::X25519Private& private_key) {
  return KeyPair{private_key, crypto::PublicKeyOf(private_key)};
}

HandshakeState::HandshakeState(const PatternSpec& spec, Role role, SymmetricState symmetric,
                               crypto::Random& random)
    : spec_(&spec), role_(role), symmetric_(std::move(symmetric)), random_(&random) {}

Result<HandshakeState> HandshakeState::Initialize(HandshakePattern pattern, Role role,
                                                  ByteSpan prologue, HandshakeKeys keys,
                                                  crypto::Random& random) {
  const PatternSpec& spec = internal::Spec(pattern);
  const Party initiator = spec.initiator();
  const Party me = role == Role::kInitiator ? initiator : Other(initiator);
  const KeyNeeds needs = NeedsOf(spec, me);
  if (needs.s && !keys.s) return KeyError(NoiseErr::kMissingKey, "pattern needs a static key");
  if (needs.e_pre && !keys.e) {
    return KeyError(NoiseErr::kMissingKey, "pattern needs the pre-message ephemeral key");
  }
  if (keys.e && !needs.e_pre && !needs.e_sent) {
    return KeyError(NoiseErr::kUnexpectedKey, "this role never uses an ephemeral key");
  }
  if (needs.rs_pre != keys.rs.has_value()) {
    return needs.rs_pre ? KeyError(NoiseErr::kMissingKey, "pattern needs the remote static key")
                        : KeyError(NoiseErr::kUnexpectedKey,
                                   "remote static key given but not a pre-message");
  }
  if (needs.re_pre != keys.re.has_value()) {
    return needs.re_pre ? KeyError(NoiseErr::kMissingKey, "pattern needs the remote ephemeral key")
                        : KeyError(NoiseErr::kUnexpectedKey,
                                   "remote ephemeral key given but not a pre-message");
  }

  SymmetricState symmetric(ProtocolName(pattern));
  symmetric.MixHash(prologue);
  HandshakeState state(spec, role, std::move(symmetric), random);
  if (needs.s) state.s_ = std::move(keys.s);
  state.e_ = std::move(keys.e);
  state.rs_ = keys.rs;
  state.re_ = keys.re;
  // Pre-message keys in the order listed: the initiator's first (§5.3, §7.1).
  for (size_t i = 0; i < spec.pre_count; ++i) {
    const auto& pre = spec.pre[i];
    const bool mine = pre.owner == me;
    for (size_t t = 0; t < pre.tokens.size; ++t) {
      const bool ephemeral = pre.tokens.tokens[t] == Token::kE;
      const crypto::X25519Public& key =
          mine ? (ephemeral ? state.e_->public_key : state.s_->public_key)
               : (ephemeral ? *state.re_ : *state.rs_);
      state.symmetric_.MixHash(key);
    }
  }
  return state;
}

HandshakePattern HandshakeState::pattern() const { return spec_->id; }

bool HandshakeState::IsAlice() const {
  return (role_ == Role::kInitiator) == (spec_->initiator() == Party::kAlice);
}

bool HandshakeState::LocalWritesNext() const {
  return (spec_->messages[next_message_].sender == Party::kAlice) == IsAlice();
}

HandshakeAction HandshakeState::NextAction() const {
  switch (phase_) {
    case Phase::kRunning:
      return LocalWritesNext() ? HandshakeAction::kWriteMessage : HandshakeAction::kReadMessage;
    case Phase::kFinished:
      return HandshakeAction::kSplit;
    case Phase::kSplit:
      return HandshakeAction::kDone;
    case Phase::kFailed:
      return HandshakeAction::kFailed;
  }
  return HandshakeAction::kFailed;
}

size_t HandshakeState::MessageSize(size_t payload_size) const {
  bool has_key = symmetric_.HasKey();
  size_t size = 0;
  const TokenList& tokens = spec_->messages[next_message_].tokens;
  for (size_t t = 0; t < tokens.size; ++t) {
    switch (tokens.tokens[t]) {
      case Token::kE:
        size += kDhSize;
        break;
      case Token::kS:
        size += kDhSize + (has_key ? kTagSize : 0);
        break;
      case Token::kEE:
      case Token::kES:
      case Token::kSE:
      case Token::kSS:
        has_key = true;
        break;
    }
  }
  return size + payload_size + (has_key ? kTagSize : 0);
}

Status HandshakeState::MixDh(Token token) {
  const Party me = IsAlice() ? Party::kAlice : Party::kBob;
  const bool local_ephemeral = UsesEphemeral(token, me);
  const bool remote_ephemeral = UsesEphemeral(token, Other(me));
  const std::optional<KeyPair>& local = local_ephemeral ? e_ : s_;
  const std::optional<crypto::X25519Public>& remote = remote_ephemeral ? re_ : rs_;
  if (!local || !remote) {  // impossible for the validated table
    return NoiseError(Code::kInternal, NoiseErr::kMissingKey, "DH key missing");
  }
  auto shared = crypto::Agree(local->private_key, *remote);
  if (!shared) {
    return NoiseError(Code::kInvalidArgument, NoiseErr::kDhFailed,
                      "X25519 with a low-order public key");
  }
  symmetric_.MixKey(shared->span());
  return Ok();
}

Result<Bytes> HandshakeState::Fail(Code code, NoiseErr detail, const char* message) {
  return Fail(NoiseError(code, detail, message).value());
}

Result<Bytes> HandshakeState::Fail(Error error) {
  phase_ = Phase::kFailed;
  s_.reset();
  e_.reset();
  return tl::unexpected<Error>(error);
}

void HandshakeState::FinishMessage() {
  ++next_message_;
  if (next_message_ == spec_->message_count) {
    phase_ = Phase::kFinished;
    s_.reset();  // wipes the private keys: only h and the split keys live on
    e_.reset();
  }
}

Result<Bytes> HandshakeState::WriteMessage(ByteSpan payload) {
  if (phase_ == Phase::kFailed) {
    return NoiseError(Code::kFailedPrecondition, NoiseErr::kHandshakeFailed,
                      "handshake already failed");
  }
  if (phase_ != Phase::kRunning || !LocalWritesNext()) {
    return Fail(Code::kFailedPrecondition, NoiseErr::kWrongState,
                "WriteMessage: not this party's turn to write");
  }
  const size_t size = MessageSize(payload.size());
  if (size > kMaxNoiseMessage) {
    return Fail(Code::kResourceExhausted, NoiseErr::kMessageTooLarge,
                "handshake message would exceed 65535 bytes");
  }
  Bytes out(size);
  size_t offset = 0;
  const TokenList& tokens = spec_->messages[next_message_].tokens;
  for (size_t t = 0; t < tokens.size; ++t) {
    const Token token = tokens.tokens[t];
    switch (token) {
      case Token::kE: {
        if (!e_) e_ = KeyPair::Generate(*random_);
        std::copy(e_->public_key.begin(), e_->public_key.end(),
                  out.begin() + static_cast<ptrdiff_t>(offset));
        symmetric_.MixHash(e_->public_key);
        offset += kDhSize;
        break;
      }
      case Token::kS: {
        auto written =
            symmetric_.EncryptAndHash(s_->public_key, MutableByteSpan(out).subspan(offset));
        if (!written) return Fail(written.error());
        offset += *written;
        break;
      }
      case Token::kEE:
      case Token::kES:
      case Token::kSE:
      case Token::kSS: {
        auto mixed = MixDh(token);
        if (!mixed) return Fail(mixed.error());
        break;
      }
    }
  }
  auto written = symmetric_.EncryptAndHash(payload, MutableByteSpan(out).subspan(offset));
  if (!written) return Fail(written.error());
  FinishMessage();
  return out;
}

Result<Bytes> HandshakeState::ReadMessage(ByteSpan message) {
  if (phase_ == Phase::kFailed) {
    return NoiseError(Code::kFailedPrecondition, NoiseErr::kHandshakeFailed,
                      "handshake already failed");
  }
  if (phase_ != Phase::kRunning || LocalWritesNext()) {
    return Fail(Code::kFailedPrecondition, NoiseErr::kWrongState,
                "ReadMessage: not this party's turn to read");
  }
  if (message.size() > kMaxNoiseMessage) {
    return Fail(Code::kResourceExhausted, NoiseErr::kMessageTooLarge,
                "handshake message longer than 65535 bytes");
  }
  if (message.size() < MessageSize(0)) {
    return Fail(Code::kInvalidArgument, NoiseErr::kMessageTooShort,
                "handshake message too short for its pattern");
  }
  size_t offset = 0;
  const TokenList& tokens = spec_->messages[next_message_].tokens;
  for (size_t t = 0; t < tokens.size; ++t) {
    const Token token = tokens.tokens[t];
    switch (token) {
      case Token::kE: {
        crypto::X25519Public re;
        std::copy_n(message.begin() + static_cast<ptrdiff_t>(offset), kDhSize, re.begin());
        re_ = re;
        symmetric_.MixHash(re);
        offset += kDhSize;
        break;
      }
      case Token::kS: {
        const size_t length = kDhSize + (symmetric_.HasKey() ? kTagSize : 0);
        crypto::X25519Public rs;
        auto read = symmetric_.DecryptAndHash(message.subspan(offset, length), rs);
        if (!read) return Fail(read.error());
        rs_ = rs;
        offset += length;
        break;
      }
      case Token::kEE:
      case Token::kES:
      case Token::kSE:
      case Token::kSS: {
        auto mixed = MixDh(token);
        if (!mixed) return Fail(mixed.error());
        break;
      }
    }
  }
  const ByteSpan rest = message.subspan(offset);
  Bytes payload(rest.size());
  auto read = symmetric_.DecryptAndHash(rest, payload);
  if (!read) return Fail(read.error());
  payload.resize(*read);
  FinishMessage();
  return payload;
}

Result<TransportCiphers> HandshakeState::Split() {
  if (phase_ != Phase::kFinished) {
    return NoiseError(Code::kFailedPrecondition, NoiseErr::kWrongState,
                      "Split: the handshake is not finished, failed or was already split");
  }
  auto [c1, c2] = symmetric_.Split();
  phase_ = Phase::kSplit;
  if (role_ == Role::kInitiator) return TransportCiphers{std::move(c1), std::move(c2)};
  return TransportCiphers{std::move(c2), std::move(c1)};
}

}  // namespace sotto::noise
