#include "client/internal/fts_query.h"

namespace sotto::client::internal {
namespace {

// NUL counts as a space: FTS5 would read it as the end of the query.
bool IsSpace(char c) {
  return c == '\0' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// unicode61 makes tokens of letters and digits; any non-ASCII byte may start one.
bool MayHoldToken(std::string_view word) {
  for (char c : word) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80 || (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string BuildMatchQuery(std::string_view words) {
  std::string query;
  size_t i = 0;
  while (i < words.size()) {
    while (i < words.size() && IsSpace(words[i])) ++i;
    const size_t start = i;
    while (i < words.size() && !IsSpace(words[i])) ++i;
    const std::string_view word = words.substr(start, i - start);
    if (word.empty() || !MayHoldToken(word)) continue;
    if (!query.empty()) query += " AND ";
    query += '"';
    for (char c : word) {
      if (c == '"') query += '"';
      query += c;
    }
    query += "\"*";
  }
  return query;
}

}  // namespace sotto::client::internal
