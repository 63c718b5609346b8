// Error details of the Signal library (Module::kSignal). Every entry point that takes
// bytes reports one of these; none of them throws or aborts on bad input.
//
// Thread-safety: constants only.
#pragma once

#include <cstdint>

#include "base/result.h"

namespace sotto::signal {

enum class Err : uint16_t {
  kInvalidMessage = 2001,      // malformed bytes, missing fields, bad lengths
  kInvalidKey = 2002,          // a public key that is not 33 bytes starting 0x05, or weak
  kBadMac = 2003,              // the SignalMessage MAC did not verify
  kInvalidSignature = 2004,    // a signed prekey or sender-key message signature failed
  kDuplicateMessage = 2005,    // the message key was already used
  kUntrustedIdentity = 2006,   // the peer's identity key differs from the one we trust
  kNoSession = 2007,           // no session (or sender key) for this address
  kTooFarInFuture = 2008,      // counter jumps past kMaxForwardJump
  kUnsupportedVersion = 2009,  // message version other than 3
  kLegacyMessage = 2010,       // version <= 1
  kNoPreKey = 2011,            // the PreKeySignalMessage names a prekey we do not have
  kNoSignedPreKey = 2012,
  kStore = 2013,                // a store failed
  kFingerprintVersion = 2014,   // scannable fingerprints of different versions
  kFingerprintIdentity = 2015,  // scannable fingerprint is for other identifiers
  kCorruptRecord = 2016,        // a stored record did not parse
  kCipher = 2017,               // the body cipher failed (padding, length)
  kTooManyDevices = 2018,       // reserved for callers' limits
};

inline tl::unexpected<Error> SignalError(Code code, Err detail, const char* message) {
  return MakeError(code, Module::kSignal, static_cast<uint16_t>(detail), message);
}

inline bool Is(const Error& e, Err detail) {
  return e.module == Module::kSignal && e.detail == static_cast<uint16_t>(detail);
}

}  // namespace sotto::signal
