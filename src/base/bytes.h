// Byte buffers and views used across every layer.
//
// Thread-safety: value types; externally synchronized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sotto {

// Owned, growable bytes. Never holds secrets: use crypto::SecretBytes for those.
using Bytes = std::vector<uint8_t>;
// Read-only view of bytes; the viewed memory must outlive the span.
using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

// Lower-case hex of `bytes`. For tests and diagnostics of public data only.
std::string ToHex(ByteSpan bytes);
// Parses lower- or upper-case hex; returns an empty vector on odd length or a bad digit.
Bytes FromHex(std::string_view hex);

inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsString(ByteSpan b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Appends `b` to `out`.
inline void Append(Bytes& out, ByteSpan b) { out.insert(out.end(), b.begin(), b.end()); }

}  // namespace sotto
