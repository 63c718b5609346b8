// The handshake pattern table (noise spec rev 34 §7.4, §7.5, §18.1 and §10.2), written
// in the spec's own notation and parsed at compile time, so each entry can be checked
// against the spec by eye. Private to noise/.
//
// Tokens are in Alice/Bob terms (§7.2): the first letter of a DH token is Alice's key,
// the second Bob's. Alice-initiated patterns have Alice as initiator; `fallback`
// patterns are Bob-initiated (§10.2).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "noise/handshake_state.h"

namespace sotto::noise::internal {

enum class Token : uint8_t { kE, kS, kEE, kES, kSE, kSS };
enum class Party : uint8_t { kAlice, kBob };

inline constexpr size_t kMaxTokens = 6;
inline constexpr size_t kMaxMessages = 4;

struct TokenList {
  std::array<Token, kMaxTokens> tokens{};
  uint8_t size = 0;
};

struct MessageSpec {
  Party sender = Party::kAlice;
  TokenList tokens;
};

struct PreMessageSpec {
  Party owner = Party::kAlice;
  TokenList tokens;  // "e", "s", or "e, s"
};

struct PatternSpec {
  HandshakePattern id = HandshakePattern::kNN;
  std::string_view name;
  std::array<PreMessageSpec, 2> pre{};  // in the order listed, hence hashed (§5.3)
  uint8_t pre_count = 0;
  std::array<MessageSpec, kMaxMessages> messages{};
  uint8_t message_count = 0;
  bool ok = false;  // false if the text did not parse

  Party initiator() const { return messages[0].sender; }
};

// The spec entry of `pattern`.
const PatternSpec& Spec(HandshakePattern pattern);
// All implemented patterns, for name lookup and tests.
std::span<const PatternSpec> AllSpecs();

}  // namespace sotto::noise::internal
