// Noise Pipes (noise spec rev 34 §10.4) for Sotto's client<->server transport: XX for a
// full handshake, IK for a zero-RTT handshake with a cached server static key, and
// XXfallback when the server cannot decrypt an IK first message. Sans-I/O: each call takes
// or returns one handshake message as it travels on the wire (one negotiation byte, then
// the Noise message); framing is the transport's job. Wire format, prologue and policies:
// docs/noise.md.
//
// Thread-safety: externally synchronized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/random.h"
#include "crypto/x25519.h"
#include "noise/handshake_state.h"

namespace sotto::noise {

// The negotiation byte in front of every pipe handshake message (not of transport
// messages): which Noise protocol the message belongs to (spec §10.3).
enum class PipeTag : uint8_t {
  kIK = 0x01,          // zero-RTT: client's IK message 1, server's IK message 2
  kXX = 0x02,          // full handshake: XX messages 1-3
  kXXfallback = 0x03,  // switch: server's XXfallback message 1, client's message 2
};

// Protocol name and version, the first part of every pipe prologue.
inline constexpr std::string_view kPipesProtocolVersion = "Sotto/1";
// A pipe handshake message is at most one tag byte plus one Noise message.
inline constexpr size_t kMaxPipeHandshakeMessage = 1 + kMaxNoiseMessage;

// The prologue of a pipe handshake: kPipesProtocolVersion || tag.
Bytes PipePrologue(PipeTag tag);

// One side of a Noise Pipes handshake. After IsFinished(), Split() gives the transport
// ciphers and RemoteStatic() the peer's static key. Externally synchronized.
class NoisePipe {
 public:
  // A client with static key `client_static`. With `known_server_static` it starts IK
  // (zero-RTT: the first payload is encrypted to that key, without forward secrecy and
  // replayable); without it, XX. Flow: WriteMessage, ReadMessage, then WriteMessage
  // unless IsFinished() (IK takes two messages, XX and XXfallback three).
  // `random` must outlive the pipe.
  static NoisePipe Client(const KeyPair& client_static,
                          std::optional<crypto::X25519Public> known_server_static,
                          crypto::Random& random);
  // A server with static key `server_static`. Flow: ReadMessage, WriteMessage, then
  // ReadMessage unless IsFinished(). `random` must outlive the pipe.
  static NoisePipe Server(const KeyPair& server_static, crypto::Random& random);

  NoisePipe(NoisePipe&&) noexcept = default;
  NoisePipe& operator=(NoisePipe&&) noexcept = default;
  NoisePipe(const NoisePipe&) = delete;
  NoisePipe& operator=(const NoisePipe&) = delete;
  ~NoisePipe() = default;

  // Returns tag || Noise message carrying `payload`. The client's first XX message would
  // carry it in the clear, so there it must be empty. Errors: those of
  // HandshakeState::WriteMessage; kInvalidArgument (kCleartextPayload) for a payload in
  // the first XX message.
  Result<Bytes> WriteMessage(ByteSpan payload);

  // Reads tag || Noise message and returns the payload. The server reads a kIK message
  // as IK; if that fails to authenticate it switches to XXfallback (reusing the client's
  // ephemeral) and returns an empty payload: the zero-RTT payload is lost and pattern()
  // says kXXfallback. The client accepts kIK or kXXfallback after sending IK, else the
  // tag it sent; the server takes XX message 1 only without payload. Errors:
  // kInvalidArgument (kBadPipeTag, kCleartextPayload, kMessageTooShort) and those of
  // HandshakeState::ReadMessage. Every error ends the pipe (NextAction() == kFailed).
  Result<Bytes> ReadMessage(ByteSpan message);

  HandshakeAction NextAction() const;
  bool IsFinished() const {
    return NextAction() == HandshakeAction::kSplit || NextAction() == HandshakeAction::kDone;
  }
  // The transport ciphers, once finished (see HandshakeState::Split).
  Result<TransportCiphers> Split();

  // The pattern in use: kIK, kXX or kXXfallback; nullopt on a server before the first
  // message.
  std::optional<HandshakePattern> pattern() const;
  // The peer's static key once known. In XX and XXfallback the server's key is new to
  // the client: the application must check it (pinning or a certificate in the payload).
  std::optional<crypto::X25519Public> RemoteStatic() const;
  // The handshake hash, for channel binding; meaningful once IsFinished().
  std::optional<HandshakeHash> GetHandshakeHash() const;

 private:
  enum class Side : uint8_t { kClient, kServer };

  NoisePipe(Side side, const KeyPair& static_key, crypto::Random& random);

  Result<Bytes> ServerReadFirst(PipeTag tag, ByteSpan body);
  Result<Bytes> Fail(Error error);

  Side side_;
  KeyPair static_key_;
  crypto::Random* random_;  // not owned
  // The client's IK ephemeral, kept until the reply shows whether XXfallback reuses it.
  std::optional<KeyPair> ik_ephemeral_;
  std::optional<HandshakeState> handshake_;  // empty on a server before message 1
  bool failed_ = false;
};

}  // namespace sotto::noise
