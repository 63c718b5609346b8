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
  kDecryptFailed = 1,      // kUnauthenticated: an AEAD tag did not verify
  kNonceExhausted = 2,     // kResourceExhausted: n reached 2^64-1 (spec §5.1)
  kMessageTooLarge = 3,    // kResourceExhausted: over kMaxNoiseMessage (spec §3)
  kMessageTooShort = 4,    // kInvalidArgument: fewer bytes than the message pattern needs
  kBufferTooSmall = 5,     // kInvalidArgument: a caller's output buffer is too small
  kWrongState = 6,         // kFailedPrecondition: the call is not allowed at this point
  kHandshakeFailed = 7,    // kFailedPrecondition: an earlier error ended this handshake
  kMissingKey = 8,         // kInvalidArgument: the pattern needs a key that was not given
  kUnexpectedKey = 9,      // kInvalidArgument: a key was given that the pattern does not take
  kDhFailed = 10,          // kInvalidArgument: X25519 with a low-order public key
  kBadPipeTag = 11,        // kInvalidArgument: a Noise Pipes negotiation byte invalid here
  kCleartextPayload = 12,  // kInvalidArgument: a payload where it would travel in clear
};

inline tl::unexpected<Error> NoiseError(Code code, NoiseErr detail, const char* message) {
  return MakeError(code, Module::kNoise, static_cast<uint16_t>(detail), message);
}

}  // namespace sotto::noise
