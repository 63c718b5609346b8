// Containers for secret bytes: wiped on destruction, never printable, compared in
// constant time. Every private key, chain key, message key and shared secret in Sotto
// lives in one of these.
//
// Thread-safety: value types; externally synchronized.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/bytes.h"

namespace sotto::crypto {

// Overwrites `bytes` with zeros in a way the compiler cannot elide.
void SecureWipe(MutableByteSpan bytes);
// Constant-time equality for equal-length inputs; false if the lengths differ.
bool ConstantTimeEqual(ByteSpan a, ByteSpan b);

// A fixed-size secret held inline (no heap). Copyable on purpose: ratchet states are
// copied so that a failed decrypt leaves the original untouched (see
// docs/signal-session-record.md); every copy wipes itself.
template <size_t N>
class SecretArray {
 public:
  static constexpr size_t kSize = N;

  SecretArray() { bytes_.fill(0); }
  explicit SecretArray(ByteSpan from) {
    bytes_.fill(0);
    if (from.size() == N) std::copy(from.begin(), from.end(), bytes_.begin());
  }
  SecretArray(const SecretArray&) = default;
  SecretArray& operator=(const SecretArray&) = default;
  ~SecretArray() { SecureWipe(bytes_); }

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  static constexpr size_t size() { return N; }
  ByteSpan span() const { return bytes_; }
  MutableByteSpan mutable_span() { return bytes_; }

  friend bool operator==(const SecretArray& a, const SecretArray& b) {
    return ConstantTimeEqual(a.bytes_, b.bytes_);
  }

 private:
  std::array<uint8_t, N> bytes_;
};

// A variable-length secret on the heap. Move-only; wiped on destruction and on move.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size) : bytes_(size, 0) {}
  explicit SecretBytes(ByteSpan from) : bytes_(from.begin(), from.end()) {}
  SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {
    other.bytes_.clear();
  }
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes() { SecureWipe(bytes_); }

  // An explicit copy, for the rare place that needs two owners.
  SecretBytes Clone() const { return SecretBytes(ByteSpan(bytes_)); }

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  ByteSpan span() const { return bytes_; }
  MutableByteSpan mutable_span() { return bytes_; }

  friend bool operator==(const SecretBytes& a, const SecretBytes& b) {
    return ConstantTimeEqual(a.bytes_, b.bytes_);
  }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace sotto::crypto
