// Fuzzes the stored-record parsers: SessionRecord, SenderKeyRecord, IdentityKeyPair.
// A record that parses must serialize and parse back to the same bytes.
#include <cstddef>
#include <cstdint>

#include "signal/group.h"
#include "signal/keys.h"
#include "signal/session_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sotto::signal;  // NOLINT(google-build-using-namespace)
  if (size == 0) return 0;
  const sotto::ByteSpan input(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      if (auto r = SessionRecord::Deserialize(input)) {
        const sotto::Bytes once = r->Serialize();
        auto again = SessionRecord::Deserialize(once);
        if (!again || again->Serialize() != once) __builtin_trap();
      }
      break;
    case 1:
      if (auto r = SenderKeyRecord::Deserialize(input)) {
        const sotto::Bytes once = r->Serialize();
        auto again = SenderKeyRecord::Deserialize(once);
        if (!again || again->Serialize() != once) __builtin_trap();
      }
      break;
    default:
      (void)IdentityKeyPair::Deserialize(input);
      break;
  }
  return 0;
}
