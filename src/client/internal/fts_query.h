// Turns what a user typed into an FTS5 MATCH expression that FTS5 cannot misread.
//
// Thread-safety: functions only.
#pragma once

#include <string>
#include <string_view>

namespace sotto::client::internal {

// Splits `words` on ASCII whitespace and makes each word a quoted string token ("..."
// with inner quotes doubled) matched as a prefix ("..."*), all joined with AND. FTS5
// operators, parentheses, column filters and quotes in the input are thus only text.
// Words made only of ASCII punctuation are dropped: they hold no token and would match
// nothing. Returns "" when no word is left.
std::string BuildMatchQuery(std::string_view words);

}  // namespace sotto::client::internal
