// Fuzzes scannable fingerprint comparison (bytes scanned from another phone's QR code).
#include <cstddef>
#include <cstdint>

#include "signal/fingerprint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sotto::signal;  // NOLINT(google-build-using-namespace)
  static const Fingerprint* mine = [] {
    sotto::crypto::DeterministicRandom random(1);
    auto fp = ComputeFingerprint(2, "+15550001", IdentityKeyPair::Generate(random).public_key,
                                 "+15550002", IdentityKeyPair::Generate(random).public_key);
    return new Fingerprint(*fp);
  }();
  (void)CompareScannable(mine->scannable, {data, size});
  return 0;
}
