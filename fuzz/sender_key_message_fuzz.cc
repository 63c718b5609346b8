// Fuzzes SenderKeyMessage parsing, signature check and group decryption.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_fixture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sotto::fuzz::Fixture* fixture = new sotto::fuzz::Fixture();
  sotto::signal::SenderKeyRecord record = fixture->bob_sender_record;
  auto result = sotto::signal::GroupDecryptWithRecord(record, {data, size});
  (void)result;
  return 0;
}
