// Fuzzes the decoding of what another client put inside a Signal message: padding,
// the Content protobuf and its limits. A decoded Content must re-encode and decode to
// the same message.
#include <cstddef>
#include <cstdint>

#include "client/content.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sotto;  // NOLINT(google-build-using-namespace)
  auto content = client::DecodeContent(ByteSpan(data, size));
  if (!content) return 0;
  const Bytes again = client::EncodeContent(*content);
  if (again.size() % client::kPaddingBlock != 0) __builtin_trap();
  auto round = client::DecodeContent(again);
  if (!round || round->SerializeAsString() != content->SerializeAsString()) __builtin_trap();
  return 0;
}
