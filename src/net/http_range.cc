#include "net/http_range.h"

#include <limits>

namespace sotto::net {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// Parses one or more decimal digits; false on anything else. A value past 2^64-1 is
// still a valid position (RFC 9110 sets no digit limit): it saturates to 2^64-1, which is
// past the end of any resource, so "bytes=<huge>-" is unsatisfiable (416), not ignored.
bool ParseDecimal(std::string_view text, uint64_t& out) {
  if (text.empty()) return false;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<uint64_t>(c - '0');
    value = value > (kMax - digit) / 10 ? kMax : value * 10 + digit;
  }
  out = value;
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

ByteRange ParseRangeHeader(std::string_view header, uint64_t size) {
  constexpr std::string_view kUnit = "bytes=";
  header = Trim(header);
  if (header.size() < kUnit.size() || header.substr(0, kUnit.size()) != kUnit) return {};
  std::string_view spec = Trim(header.substr(kUnit.size()));
  if (spec.find(',') != std::string_view::npos) return {};  // multiple ranges: not served
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return {};
  const std::string_view first_text = Trim(spec.substr(0, dash));
  const std::string_view last_text = Trim(spec.substr(dash + 1));
  if (first_text.empty()) {
    uint64_t suffix = 0;
    if (!ParseDecimal(last_text, suffix)) return {};
    if (suffix == 0 || size == 0) return {RangeKind::kUnsatisfiable, 0, 0};
    const uint64_t n = suffix < size ? suffix : size;
    return {RangeKind::kSatisfiable, size - n, size - 1};
  }
  uint64_t first = 0;
  if (!ParseDecimal(first_text, first)) return {};
  uint64_t last = kMax;
  if (!last_text.empty()) {
    if (!ParseDecimal(last_text, last)) return {};
    if (last < first) return {};  // invalid: ignored
  }
  if (first >= size) return {RangeKind::kUnsatisfiable, 0, 0};
  if (last >= size) last = size - 1;
  return {RangeKind::kSatisfiable, first, last};
}

}  // namespace sotto::net
