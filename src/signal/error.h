// Error details of the Signal library (Module::kSignal). Every entry point that takes
// bytes reports one of these; none of them throws or aborts on bad input.
//
// Thread-safety: constants only.
#pragma once

#include <cstdint>

#include "base/result.h"

namespace sotto::signal {

enum class Err : uint16_t {
  kInvalidMessage = 1,      // malformed bytes, missing fields, bad lengths
  kInvalidKey = 2,          // a public key that is not 33 bytes starting 0x05, or weak
  kBadMac = 3,              // the SignalMessage MAC did not verify
  kInvalidSignature = 4,    // a signed prekey or sender-key message signature failed
  kDuplicateMessage = 5,    // the message key was already used
  kUntrustedIdentity = 6,   // the peer's identity key differs from the one we trust
  kNoSession = 7,           // no session (or sender key) for this address
  kTooFarInFuture = 8,      // counter jumps past kMaxForwardJump
  kUnsupportedVersion = 9,  // message version other than 3
  kLegacyMessage = 10,      // version <= 1
  kNoPreKey = 11,           // the PreKeySignalMessage names a prekey we do not have
  kNoSignedPreKey = 12,
  kStore = 13,              // a store failed
  kFingerprintVersion = 14, // scannable fingerprints of different versions
  kFingerprintIdentity = 15,// scannable fingerprint is for other identifiers
  kCorruptRecord = 16,      // a stored record did not parse
  kCipher = 17,             // the body cipher failed (padding, length)
  kTooManyDevices = 18,     // reserved for callers' limits
};

inline tl::unexpected<Error> SignalError(Code code, Err detail, const char* message) {
  return MakeError(code, Module::kSignal, static_cast<uint16_t>(detail), message);
}

inline bool Is(const Error& e, Err detail) {
  return e.module == Module::kSignal && e.detail == static_cast<uint16_t>(detail);
}

}  // namespace sotto::signal
