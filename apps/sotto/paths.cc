#include "apps/sotto/paths.h"

#include <algorithm>

namespace sotto::cli {

std::optional<std::filesystem::path> ResolveHome(std::string_view flag, const char* sotto_home,
                                                 const char* home) {
  if (!flag.empty()) return std::filesystem::path(flag);
  if (sotto_home != nullptr && *sotto_home != '\0') return std::filesystem::path(sotto_home);
  if (home != nullptr && *home != '\0') {
    return std::filesystem::path(home) / ".local" / "share" / "sotto";
  }
  return std::nullopt;
}

std::string ShellQuote(std::string_view text) {
  const bool safe = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
           c == '.' || c == '_' || c == '-' || c == '+' || c == ':' || c == '=' || c == ',' ||
           c == '@';
  });
  if (safe) return std::string(text);
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

}  // namespace sotto::cli
