// The client<->server wire protocol: protobuf frames (sotto_wire.proto) carried one per
// Noise transport message, and the TCP framing of Noise messages (2-byte big-endian
// length, as Noise §13 recommends). Byte format: docs/wire.md.
//
// Thread-safety: functions are thread-safe; FrameReader is externally synchronized.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "wire/sotto_wire.pb.h"

namespace sotto::wire {

inline constexpr uint32_t kWireVersion = 1;
// The largest Noise message (Noise §3); TCP length prefixes above it are refused.
inline constexpr size_t kMaxNoiseMessage = 65535;
inline constexpr size_t kLengthPrefixSize = 2;
inline constexpr size_t kMaxUserAgent = 64;
// Account handles are E.164 numbers: '+' and kE164MinDigits..kE164MaxDigits digits, the
// first 1-9 (docs/wire.md "Accounts").
inline constexpr size_t kE164MinDigits = 8;
inline constexpr size_t kE164MaxDigits = 15;
bool IsE164(std::string_view handle);

enum class WireErr : uint16_t {
  kMalformed = 4001,  // protobuf did not parse
  kUnknown = 4002,    // a frame with no known body
  kTooLarge = 4003,   // over a size limit
  kVersion = 4004,    // unsupported wire version
};

tl::unexpected<Error> WireError(Code code, WireErr detail, const char* message);

// Parses one frame; kMalformed / kUnknown on bad input. Reuses `frame`'s memory.
Status ParseFrame(ByteSpan bytes, Frame& frame);
// Serializes into `out` (cleared first; capacity reused).
void SerializeFrame(const Frame& frame, Bytes& out);

// Appends the 2-byte length prefix of a `size`-byte Noise message.
void AppendLengthPrefix(Bytes& out, size_t size);

// Splits a TCP byte stream into length-prefixed Noise messages without copying
// complete ones: `partial` holds only the bytes of an incomplete message (empty for an
// idle connection). Calls on_message(ByteSpan) for each complete message in order; it
// returns false to stop (e.g. the connection closed), and then the rest is dropped.
// Returns kMalformed on a zero length and kTooLarge past `max_message`.
template <typename OnMessage>
Status SplitMessages(Bytes& partial, ByteSpan data, size_t max_message, OnMessage&& on_message) {
  auto length_of = [](const uint8_t* p) { return (size_t{p[0]} << 8) | size_t{p[1]}; };
  auto check = [&](size_t len) -> Status {
    if (len == 0)
      return WireError(Code::kInvalidArgument, WireErr::kMalformed, "zero-length message");
    if (len > max_message) {
      return WireError(Code::kResourceExhausted, WireErr::kTooLarge,
                       "message exceeds the frame limit");
    }
    return Ok();
  };
  if (!partial.empty()) {
    // Complete the prefix, then the message, from `data`.
    while (partial.size() < kLengthPrefixSize && !data.empty()) {
      partial.push_back(data[0]);
      data = data.subspan(1);
    }
    if (partial.size() < kLengthPrefixSize) return Ok();
    const size_t len = length_of(partial.data());
    SOTTO_RETURN_IF_ERROR(check(len));
    const size_t want = kLengthPrefixSize + len - partial.size();
    const size_t take = std::min(want, data.size());
    // Grow geometrically but never past this one message: a connection's buffer is
    // bounded by one frame (the gateway counts its capacity against its input budget).
    if (partial.capacity() < partial.size() + take) {
      partial.reserve(std::min(kLengthPrefixSize + len,
                               std::max(partial.size() + take, 2 * partial.capacity())));
    }
    partial.insert(partial.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
    data = data.subspan(take);
    if (take < want) return Ok();
    const bool go_on = on_message(ByteSpan(partial).subspan(kLengthPrefixSize));
    partial.clear();
    partial.shrink_to_fit();  // idle connections hold no buffer
    if (!go_on) return Ok();
  }
  while (data.size() >= kLengthPrefixSize) {
    const size_t len = length_of(data.data());
    SOTTO_RETURN_IF_ERROR(check(len));
    if (data.size() < kLengthPrefixSize + len) break;
    if (!on_message(data.subspan(kLengthPrefixSize, len))) return Ok();
    data = data.subspan(kLengthPrefixSize + len);
  }
  partial.assign(data.begin(), data.end());
  return Ok();
}

}  // namespace sotto::wire
