// Fuzzes SignalMessage parsing and Double Ratchet decryption against a live session.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_fixture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sotto::fuzz::Fixture* fixture = new sotto::fuzz::Fixture();
  sotto::signal::SessionRecord record = fixture->bob_record;
  auto result = sotto::signal::DecryptWithRecord(record, {data, size}, fixture->random);
  (void)result;
  return 0;
}
