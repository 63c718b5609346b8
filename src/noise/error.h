// Error details for Module::kNoise (the Error::detail field of every error noise/ returns).
// Messages are static and local; what a peer is told about a failed handshake is up to
// the caller (deliberately vague: "handshake failed").
//
// Thread-safety: constants only.
#pragma once

#include <cstdint>

#include "base/result.h"

namespace sotto::noise {

enum class NoiseErr : uint16_t {
  kDecryptFailed = 3001,     // kUnauthenticated: an AEAD tag did not verify
  kNonceExhausted = 3002,    // kResourceExhausted: n reached 2^64-1 (spec §5.1)
  kMessageTooLarge = 3003,   // kResourceExhausted: over kMaxNoiseMessage (spec §3)
  kMessageTooShort = 3004,   // kInvalidArgument: fewer bytes than the message pattern needs
  kBufferTooSmall = 3005,    // kInvalidArgument: a caller's output buffer is too small
  kWrongState = 3006,        // kFailedPrecondition: the call is not allowed at this point
  kHandshakeFailed = 3007,   // kFailedPrecondition: an earlier error ended this handshake
  kMissingKey = 3008,        // kInvalidArgument: the pattern needs a key that was not given
  kUnexpectedKey = 3009,     // kInvalidArgument: a key was given that the pattern does not take
  kDhFailed = 3010,          // kInvalidArgument: X25519 with a low-order public key
  kBadPipeTag = 3011,        // kInvalidArgument: a Noise Pipes negotiation byte invalid here
  kCleartextPayload = 3012,  // kInvalidArgument: a payload where it would travel in clear
};

inline tl::unexpected<Error> NoiseError(Code code, NoiseErr detail, const char* message) {
  return MakeError(code, Module::kNoise, static_cast<uint16_t>(detail), message);
}

}  // namespace sotto::noise
