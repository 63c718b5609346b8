// The one form of HTTP Range header (RFC 9110 §14) the media blob service serves: a
// single byte range "bytes=N-", "bytes=N-M" or "bytes=-SUFFIX". Pure function of its
// input; fuzzed by fuzz/http_range_fuzz.cc.
//
// Thread-safety: stateless.
#pragma once

#include <cstdint>
#include <string_view>

namespace sotto::net {

enum class RangeKind : uint8_t {
  kNone,           // no usable Range header: serve the whole resource (200)
  kSatisfiable,    // serve [first, last] (206 with Content-Range)
  kUnsatisfiable,  // the range starts at or past the end (416, Content-Range: bytes */size)
};

struct ByteRange {
  RangeKind kind = RangeKind::kNone;
  uint64_t first = 0;  // inclusive
  uint64_t last = 0;   // inclusive; last - first + 1 bytes
};

// Interprets `header` (the Range header's value; empty if absent) for a resource of
// `size` bytes. Syntactically invalid values, other units and multiple ranges are
// ignored (kNone), as RFC 9110 allows; a last position past the end is clamped.
ByteRange ParseRangeHeader(std::string_view header, uint64_t size);

}  // namespace sotto::net
