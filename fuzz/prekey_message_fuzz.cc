// Fuzzes PreKeySignalMessage parsing and the responder's X3DH + first decrypt, through
// the store-backed SessionCipher.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_fixture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sotto;  // NOLINT(google-build-using-namespace)
  static fuzz::Fixture* fixture = new fuzz::Fixture();
  // Fresh responder stores each run: identity, signed prekey and one-time prekeys.
  signal::InMemoryProtocolStore bob(*fixture->bob.identity.GetIdentityKeyPair(), 22);
  (void)bob.signed_prekeys.StoreSignedPreKey(**fixture->bob.signed_prekeys.LoadSignedPreKey(5));
  (void)bob.prekeys.StorePreKey(fixture->first_prekey);
  for (uint32_t id = 2; id <= 3; ++id) {
    (void)bob.prekeys.StorePreKey(**fixture->bob.prekeys.LoadPreKey(id));
  }
  signal::SessionCipher cipher(bob.stores(), fuzz::Fixture::kAlice, fixture->random);
  auto result = cipher.DecryptPreKeySignalMessage({data, size});
  (void)result;
  return 0;
}
