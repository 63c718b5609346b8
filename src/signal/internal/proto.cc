#include "signal/internal/proto.h"

namespace sotto::signal::internal {

bool ProtoReader::ReadVarint(uint64_t& out) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= data_.size()) return false;
    const uint8_t b = data_[pos_++];
    // The tenth byte may only carry the top bit of a 64-bit value.
    if (shift == 63 && b > 1) return false;
    value |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      out = value;
      return true;
    }
  }
  return false;
}

bool ProtoReader::Next(ProtoField& field) {
  if (error_ || pos_ >= data_.size()) return false;
  uint64_t key = 0;
  if (!ReadVarint(key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) {
    error_ = true;
    return false;
  }
  field.number = static_cast<uint32_t>(key >> 3);
  switch (key & 7) {
    case 0:
      field.type = WireType::kVarint;
      if (!ReadVarint(field.varint)) break;
      return true;
    case 1: {
      field.type = WireType::kFixed64;
      if (data_.size() - pos_ < 8) break;
      uint64_t v = 0;
      for (int i = 7; i >= 0; --i) v = (v << 8) | data_[pos_ + static_cast<size_t>(i)];
      field.varint = v;
      pos_ += 8;
      return true;
    }
    case 2: {
      field.type = WireType::kLengthDelimited;
      uint64_t len = 0;
      if (!ReadVarint(len) || len > data_.size() - pos_) break;
      field.bytes = data_.subspan(pos_, static_cast<size_t>(len));
      pos_ += static_cast<size_t>(len);
      return true;
    }
    case 5: {
      field.type = WireType::kFixed32;
      if (data_.size() - pos_ < 4) break;
      uint32_t v = 0;
      for (int i = 3; i >= 0; --i) v = (v << 8) | data_[pos_ + static_cast<size_t>(i)];
      field.varint = v;
      pos_ += 4;
      return true;
    }
    default:  // groups (3, 4) and reserved types are not used by any Signal message
      break;
  }
  error_ = true;
  return false;
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void AppendVarint(Bytes& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

void AppendVarintField(Bytes& out, uint32_t field, uint64_t v) {
  AppendVarint(out, uint64_t{field} << 3);
  AppendVarint(out, v);
}

void AppendBytesHeader(Bytes& out, uint32_t field, size_t len) {
  AppendVarint(out, uint64_t{field} << 3 | 2);
  AppendVarint(out, len);
}

void AppendBytesField(Bytes& out, uint32_t field, ByteSpan value) {
  AppendBytesHeader(out, field, value.size());
  out.insert(out.end(), value.begin(), value.end());
}

size_t BeginNested(Bytes& out, uint32_t field) {
  AppendVarint(out, uint64_t{field} << 3 | 2);
  const size_t position = out.size();
  out.insert(out.end(), 4, 0);
  return position;
}

void EndNested(Bytes& out, size_t position) {
  const size_t len = out.size() - position - 4;
  out[position] = static_cast<uint8_t>(0x80 | (len & 0x7f));
  out[position + 1] = static_cast<uint8_t>(0x80 | ((len >> 7) & 0x7f));
  out[position + 2] = static_cast<uint8_t>(0x80 | ((len >> 14) & 0x7f));
  out[position + 3] = static_cast<uint8_t>((len >> 21) & 0x7f);
}

}  // namespace sotto::signal::internal
