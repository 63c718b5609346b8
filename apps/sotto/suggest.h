// "Did you mean": the command nearest to a mistyped one, by edit distance, for the
// "unknown command" usage error of `sotto` (docs/cli.md).
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sotto::cli {

// The optimal-string-alignment distance between `a` and `b`: insertions, deletions,
// substitutions and transpositions of neighbours each cost 1 ("recieve" is 1 from
// "receive").
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate nearest to `typed`, if it is near enough to be what was meant: at most
// kMaxSuggestDistance edits, or a third of the longer word's length if that is more. A
// tie goes to the first candidate.
inline constexpr size_t kMaxSuggestDistance = 2;
std::optional<std::string> NearestCommand(std::string_view typed,
                                          const std::vector<std::string>& candidates);

}  // namespace sotto::cli
