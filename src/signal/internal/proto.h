// A minimal protobuf (proto2 wire format) reader and writer for Signal's small
// messages: views into the input, no allocation, unknown fields skipped. Private to
// signal/. The schemas are in docs/signal-wire.md.
//
// Thread-safety: externally synchronized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "base/bytes.h"

namespace sotto::signal::internal {

enum class WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

struct ProtoField {
  uint32_t number = 0;
  WireType type = WireType::kVarint;
  uint64_t varint = 0;  // kVarint, kFixed64, kFixed32
  ByteSpan bytes;       // kLengthDelimited
};

// Iterates the fields of one message. Next() returns false at the end and on
// malformed input; error() tells which.
class ProtoReader {
 public:
  explicit ProtoReader(ByteSpan data) : data_(data) {}
  bool Next(ProtoField& field);
  bool error() const { return error_; }

 private:
  bool ReadVarint(uint64_t& out);
  ByteSpan data_;
  size_t pos_ = 0;
  bool error_ = false;
};

size_t VarintSize(uint64_t v);
inline size_t VarintFieldSize(uint32_t field, uint64_t v) {
  return VarintSize(uint64_t{field} << 3) + VarintSize(v);
}
inline size_t BytesFieldSize(uint32_t field, size_t len) {
  return VarintSize(uint64_t{field} << 3 | 2) + VarintSize(len) + len;
}

// Appends fields to a Bytes buffer; reserve the exact size first to avoid regrowth.
void AppendVarint(Bytes& out, uint64_t v);
void AppendVarintField(Bytes& out, uint32_t field, uint64_t v);
void AppendBytesField(Bytes& out, uint32_t field, ByteSpan value);
// Writes only the tag and length of a bytes field whose content the caller appends.
void AppendBytesHeader(Bytes& out, uint32_t field, size_t len);

// Nested messages written in place: BeginNested appends the tag and a 4-byte length
// placeholder and returns its position; EndNested fills in the length as a padded
// (non-minimal, still valid) varint. For stored records only, where it saves a temporary
// buffer per nested message; nested length must stay below 2^28.
size_t BeginNested(Bytes& out, uint32_t field);
void EndNested(Bytes& out, size_t position);

}  // namespace sotto::signal::internal
