// Fuzzes the media service's Range header parser (net/http_range.h). Input: 8 bytes of
// resource size (little-endian), then the header value. A satisfiable range must lie
// inside the resource.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "net/http_range.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sotto;  // NOLINT(google-build-using-namespace)
  if (size < 8) return 0;
  uint64_t resource = 0;
  std::memcpy(&resource, data, 8);
  const std::string_view header(reinterpret_cast<const char*>(data + 8), size - 8);
  const net::ByteRange r = net::ParseRangeHeader(header, resource);
  if (r.kind == net::RangeKind::kSatisfiable && !(r.first <= r.last && r.last < resource)) {
    __builtin_trap();
  }
  if (r.kind != net::RangeKind::kSatisfiable && (r.first != 0 || r.last != 0)) __builtin_trap();
  return 0;
}
