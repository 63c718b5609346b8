// Where `sotto` keeps its data and how it names paths back to the user.
//
// Thread-safety: pure functions.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace sotto::cli {

// The home directory: `flag` if not empty, else $SOTTO_HOME if set and not empty, else
// $HOME/.local/share/sotto; nullopt if none is set. The environment values are passed
// in (getenv results, may be null) so that tests need no environment.
std::optional<std::filesystem::path> ResolveHome(std::string_view flag, const char* sotto_home,
                                                 const char* home);

// `text` as one POSIX shell word: unchanged if it holds only safe characters, else in
// single quotes. For the commands `sotto` suggests the user run next.
std::string ShellQuote(std::string_view text);

}  // namespace sotto::cli
