// Fuzzes the wire layer's handling of untrusted bytes: TCP message splitting across
// arbitrary read boundaries (the first input byte picks the chunk size), then frame and
// hello parsing of every complete message.
#include <cstddef>
#include <cstdint>

#include "wire/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sotto;  // NOLINT(google-build-using-namespace)
  if (size == 0) return 0;
  const size_t chunk = static_cast<size_t>(data[0] % 64) + 1;
  ByteSpan stream(data + 1, size - 1);
  Bytes partial;
  wire::Frame frame;
  wire::ClientHello hello;
  while (!stream.empty()) {
    const size_t n = std::min(chunk, stream.size());
    Status s = wire::SplitMessages(partial, stream.first(n), wire::kMaxNoiseMessage,
                                   [&](ByteSpan message) {
                                     (void)wire::ParseFrame(message, frame);
                                     (void)hello.ParseFromArray(message.data(),
                                                                static_cast<int>(message.size()));
                                     return true;
                                   });
    if (!s) return 0;
    if (partial.size() > wire::kLengthPrefixSize + wire::kMaxNoiseMessage) __builtin_trap();
    stream = stream.subspan(n);
  }
  return 0;
}
