// Safety numbers (signal-facts.md §5): the 60-digit displayable form both users read
// aloud, and the scannable (QR) form, compatible with libsignal-protocol-c 2.3.3.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "signal/keys.h"

namespace sotto::signal {

// Signal's apps use 5200 hash iterations.
inline constexpr uint32_t kFingerprintIterations = 5200;
inline constexpr uint32_t kScannableFingerprintVersion = 1;
// Bound on a caller-provided iteration count (each costs one SHA-512).
inline constexpr uint32_t kMaxFingerprintIterations = 1'000'000;

struct Fingerprint {
  std::string displayable;  // 60 digits, the same on both sides
  Bytes scannable;          // serialized CombinedFingerprints (version 1)
};

// Both forms for a conversation between `local_id` (e.g. our E.164) with `local_key`
// and `remote_id` with `remote_key`. kInvalidArgument past kMaxFingerprintIterations.
Result<Fingerprint> ComputeFingerprint(uint32_t iterations, std::string_view local_id,
                                       const IdentityKey& local_key, std::string_view remote_id,
                                       const IdentityKey& remote_key);

// Compares our scannable fingerprint with the one scanned from the peer's screen.
// true = the same conversation keys; false = keys differ. Errors: kInvalidMessage
// (unparseable), kFingerprintVersion (different versions).
Result<bool> CompareScannable(ByteSpan mine, ByteSpan scanned);

}  // namespace sotto::signal
