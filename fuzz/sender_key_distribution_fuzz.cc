// Fuzzes SenderKeyDistributionMessage parsing and processing into a store.
#include <cstddef>
#include <cstdint>

#include "signal/group.h"
#include "signal/in_memory_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sotto::signal;  // NOLINT(google-build-using-namespace)
  auto parsed = SenderKeyDistributionMessage::Parse({data, size});
  if (!parsed) return 0;
  InMemorySenderKeyStore store;
  const SenderKeyName name{"g", {"x", 1}};
  if (ProcessSenderKeyDistribution(store, name, *parsed)) {
    auto reparsed = SenderKeyDistributionMessage::Parse(parsed->Serialize());
    if (!reparsed || reparsed->key_id != parsed->key_id) __builtin_trap();
  }
  return 0;
}
