#include "noise/pipes.h"

#include <cstdlib>
#include <utility>

#include "noise/error.h"

namespace sotto::noise {
namespace {

// Pipes only ever run IK, XX and XXfallback.
PipeTag TagOf(HandshakePattern pattern) {
  if (pattern == HandshakePattern::kIK) return PipeTag::kIK;
  if (pattern == HandshakePattern::kXXfallback) return PipeTag::kXXfallback;
  return PipeTag::kXX;
}

tl::unexpected<Error> BadTag() {
  return NoiseError(Code::kInvalidArgument, NoiseErr::kBadPipeTag,
                    "Noise Pipes: unexpected negotiation byte");
}

// The callers below pass exactly the keys each pattern and role takes, so failing here
// is our bug.
HandshakeState MustInitialize(HandshakePattern pattern, Role role, HandshakeKeys keys,
                              crypto::Random& random) {
  auto state = HandshakeState::Initialize(pattern, role, PipePrologue(TagOf(pattern)),
                                          std::move(keys), random);
  if (!state) std::abort();
  return std::move(*state);
}

}  // namespace

Bytes PipePrologue(PipeTag tag) {
  Bytes prologue(kPipesProtocolVersion.begin(), kPipesProtocolVersion.end());
  prologue.push_back(static_cast<uint8_t>(tag));
  return prologue;
}

NoisePipe::NoisePipe(Side side, const KeyPair& static_key, crypto::Random& random)
    : side_(side), static_key_(static_key), random_(&random) {}

NoisePipe NoisePipe::Client(const KeyPair& client_static,
                            std::optional<crypto::X25519Public> known_server_static,
                            crypto::Random& random) {
  NoisePipe pipe(Side::kClient, client_static, random);
  HandshakeKeys keys;
  keys.s = client_static;
  if (known_server_static) {
    pipe.ik_ephemeral_ = KeyPair::Generate(random);
    keys.e = pipe.ik_ephemeral_;
    keys.rs = known_server_static;
    pipe.handshake_ =
        MustInitialize(HandshakePattern::kIK, Role::kInitiator, std::move(keys), random);
  } else {
    pipe.handshake_ =
        MustInitialize(HandshakePattern::kXX, Role::kInitiator, std::move(keys), random);
  }
  return pipe;
}

NoisePipe NoisePipe::Server(const KeyPair& server_static, crypto::Random& random) {
  return NoisePipe(Side::kServer, server_static, random);
}

Result<Bytes> NoisePipe::Fail(Error error) {
  failed_ = true;
  ik_ephemeral_.reset();
  return tl::unexpected<Error>(error);
}

HandshakeAction NoisePipe::NextAction() const {
  if (failed_) return HandshakeAction::kFailed;
  if (!handshake_) return HandshakeAction::kReadMessage;  // a server before message 1
  return handshake_->NextAction();
}

Result<Bytes> NoisePipe::WriteMessage(ByteSpan payload) {
  if (failed_) {
    return NoiseError(Code::kFailedPrecondition, NoiseErr::kHandshakeFailed,
                      "Noise Pipes handshake already failed");
  }
  if (!handshake_) {
    return Fail(NoiseError(Code::kFailedPrecondition, NoiseErr::kWrongState,
                           "Noise Pipes: the server reads first")
                    .value());
  }
  if (side_ == Side::kClient && handshake_->pattern() == HandshakePattern::kXX &&
      handshake_->NextAction() == HandshakeAction::kWriteMessage &&
      !handshake_->RemoteEphemeral() && !payload.empty()) {
    return Fail(NoiseError(Code::kInvalidArgument, NoiseErr::kCleartextPayload,
                           "Noise Pipes: the first XX message would carry its payload in clear")
                    .value());
  }
  auto body = handshake_->WriteMessage(payload);
  if (!body) return Fail(body.error());
  Bytes out;
  out.reserve(1 + body->size());
  out.push_back(static_cast<uint8_t>(TagOf(handshake_->pattern())));
  Append(out, *body);
  return out;
}

Result<Bytes> NoisePipe::ReadMessage(ByteSpan message) {
  if (failed_) {
    return NoiseError(Code::kFailedPrecondition, NoiseErr::kHandshakeFailed,
                      "Noise Pipes handshake already failed");
  }
  if (message.empty()) {
    return Fail(NoiseError(Code::kInvalidArgument, NoiseErr::kMessageTooShort,
                           "Noise Pipes: empty handshake message")
                    .value());
  }
  const auto tag = static_cast<PipeTag>(message[0]);
  const ByteSpan body = message.subspan(1);
  if (!handshake_) return ServerReadFirst(tag, body);

  // The client's reply to IK may switch to XXfallback: Alice becomes the responder of
  // XXfallback with her IK ephemeral as the pre-message (spec §10.2).
  if (side_ == Side::kClient && handshake_->pattern() == HandshakePattern::kIK &&
      tag == PipeTag::kXXfallback && ik_ephemeral_ &&
      handshake_->NextAction() == HandshakeAction::kReadMessage) {
    HandshakeKeys keys;
    keys.s = static_key_;
    keys.e = std::move(ik_ephemeral_);
    ik_ephemeral_.reset();
    handshake_ =
        MustInitialize(HandshakePattern::kXXfallback, Role::kResponder, std::move(keys), *random_);
  } else if (tag != TagOf(handshake_->pattern())) {
    return Fail(BadTag().value());
  }
  auto payload = handshake_->ReadMessage(body);
  if (!payload) return Fail(payload.error());
  ik_ephemeral_.reset();  // the reply settled IK vs XXfallback
  return payload;
}

Result<Bytes> NoisePipe::ServerReadFirst(PipeTag tag, ByteSpan body) {
  HandshakeKeys keys;
  keys.s = static_key_;
  switch (tag) {
    case PipeTag::kXX: {
      // Sotto's clients send XX message 1 without a payload (it would be cleartext).
      if (body.size() != kDhSize) {
        return Fail(NoiseError(Code::kInvalidArgument, NoiseErr::kCleartextPayload,
                               "Noise Pipes: XX message 1 must be just an ephemeral key")
                        .value());
      }
      handshake_ =
          MustInitialize(HandshakePattern::kXX, Role::kResponder, std::move(keys), *random_);
      auto payload = handshake_->ReadMessage(body);
      if (!payload) return Fail(payload.error());
      return payload;
    }
    case PipeTag::kIK: {
      HandshakeState ik =
          MustInitialize(HandshakePattern::kIK, Role::kResponder, std::move(keys), *random_);
      auto payload = ik.ReadMessage(body);
      if (payload) {
        handshake_ = std::move(ik);
        return payload;
      }
      // Trial decryption failed (e.g. the client cached an old static key): switch to
      // XXfallback with the client's ephemeral, which IK sent in clear. Other errors
      // (malformed or low-order keys) end the handshake.
      if (payload.error().code != Code::kUnauthenticated || !ik.RemoteEphemeral()) {
        return Fail(payload.error());
      }
      HandshakeKeys fallback;
      fallback.s = static_key_;
      fallback.re = ik.RemoteEphemeral();
      handshake_ = MustInitialize(HandshakePattern::kXXfallback, Role::kInitiator,
                                  std::move(fallback), *random_);
      return Bytes();
    }
    case PipeTag::kXXfallback:
      return Fail(BadTag().value());
  }
  return Fail(BadTag().value());
}

Result<TransportCiphers> NoisePipe::Split() {
  if (failed_ || !handshake_) {
    return NoiseError(Code::kFailedPrecondition, NoiseErr::kWrongState,
                      "Noise Pipes: the handshake is not finished");
  }
  SOTTO_ASSIGN_OR_RETURN(TransportCiphers ciphers, handshake_->Split());
  ciphers.send.EnableAutoRekey();
  ciphers.receive.EnableAutoRekey();
  return ciphers;
}

std::optional<HandshakePattern> NoisePipe::pattern() const {
  if (!handshake_) return std::nullopt;
  return handshake_->pattern();
}

std::optional<crypto::X25519Public> NoisePipe::RemoteStatic() const {
  if (!handshake_) return std::nullopt;
  return handshake_->RemoteStatic();
}

std::optional<HandshakeHash> NoisePipe::GetHandshakeHash() const {
  if (!handshake_) return std::nullopt;
  return handshake_->GetHandshakeHash();
}

}  // namespace sotto::noise
