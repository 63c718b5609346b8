#include "noise/internal/patterns.h"

#include <utility>

namespace sotto::noise::internal {
namespace {

constexpr bool IsSeparator(char c) { return c == ' ' || c == ','; }

constexpr bool ParseToken(std::string_view word, Token& token) {
  constexpr std::array<std::pair<std::string_view, Token>, 6> kNames = {{
      {"e", Token::kE},
      {"s", Token::kS},
      {"ee", Token::kEE},
      {"es", Token::kES},
      {"se", Token::kSE},
      {"ss", Token::kSS},
  }};
  for (const auto& [name, value] : kNames) {
    if (word == name) {
      token = value;
      return true;
    }
  }
  return false;
}

constexpr bool Append(TokenList& list, Token token) {
  if (list.size >= kMaxTokens) return false;
  list.tokens[list.size++] = token;
  return true;
}

// What each party holds or has learnt, to check validity rules 1-3 of §7.3.
struct Knowledge {
  bool has_e[2] = {false, false};    // party owns its e
  bool has_s[2] = {false, false};    // party owns its s
  bool knows_e[2] = {false, false};  // the other party knows this party's e
  bool knows_s[2] = {false, false};
  bool dh_done[4] = {false, false, false, false};
};

constexpr size_t Index(Party p) { return p == Party::kAlice ? 0 : 1; }

// Applies one token sent (or pre-shared) by `sender`; false if the pattern is invalid.
constexpr bool Apply(Knowledge& k, Party sender, Token token) {
  const size_t me = Index(sender);
  switch (token) {
    case Token::kE:
      if (k.has_e[me]) return false;
      k.has_e[me] = k.knows_e[me] = true;
      return true;
    case Token::kS:
      if (k.has_s[me]) return false;
      k.has_s[me] = k.knows_s[me] = true;
      return true;
    case Token::kEE:
    case Token::kES:
    case Token::kSE:
    case Token::kSS: {
      const bool alice_e = token == Token::kEE || token == Token::kES;
      const bool bob_e = token == Token::kEE || token == Token::kSE;
      const bool alice_ok = alice_e ? k.knows_e[0] : k.knows_s[0];
      const bool bob_ok = bob_e ? k.knows_e[1] : k.knows_s[1];
      const size_t dh = static_cast<size_t>(token) - static_cast<size_t>(Token::kEE);
      if (!alice_ok || !bob_ok || k.dh_done[dh]) return false;
      k.dh_done[dh] = true;
      return true;
    }
  }
  return false;
}

constexpr bool Validate(const PatternSpec& spec) {
  if (spec.message_count == 0) return false;
  Knowledge k;
  for (size_t i = 0; i < spec.pre_count; ++i) {
    const auto& pre = spec.pre[i];
    if (pre.tokens.size == 0) return false;
    for (size_t t = 0; t < pre.tokens.size; ++t) {
      if (pre.tokens.tokens[t] != Token::kE && pre.tokens.tokens[t] != Token::kS) return false;
      if (!Apply(k, pre.owner, pre.tokens.tokens[t])) return false;
    }
  }
  for (size_t i = 0; i < spec.message_count; ++i) {
    const auto& m = spec.messages[i];
    if (i > 0 && m.sender == spec.messages[i - 1].sender) return false;  // must alternate
    for (size_t t = 0; t < m.tokens.size; ++t) {
      if (!Apply(k, m.sender, m.tokens.tokens[t])) return false;
    }
  }
  return true;
}

// Parses the spec's notation, e.g. "<- s ... -> e, es, s, ss <- e, ee, se".
constexpr PatternSpec Parse(HandshakePattern id, std::string_view name, std::string_view text) {
  PatternSpec spec;
  spec.id = id;
  spec.name = name;
  bool in_pre = text.find("...") != std::string_view::npos;
  TokenList* current = nullptr;
  size_t i = 0;
  while (i < text.size()) {
    if (IsSeparator(text[i])) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < text.size() && !IsSeparator(text[end])) ++end;
    const std::string_view word = text.substr(i, end - i);
    i = end;
    if (word == "->" || word == "<-") {
      const Party party = word == "->" ? Party::kAlice : Party::kBob;
      if (in_pre) {
        if (spec.pre_count >= spec.pre.size()) return spec;
        spec.pre[spec.pre_count] = PreMessageSpec{party, {}};
        current = &spec.pre[spec.pre_count++].tokens;
      } else {
        if (spec.message_count >= kMaxMessages) return spec;
        spec.messages[spec.message_count] = MessageSpec{party, {}};
        current = &spec.messages[spec.message_count++].tokens;
      }
    } else if (word == "...") {
      if (!in_pre) return spec;
      in_pre = false;
      current = nullptr;
    } else {
      Token token = Token::kE;
      if (current == nullptr || !ParseToken(word, token) || !Append(*current, token)) return spec;
    }
  }
  spec.ok = !in_pre && Validate(spec);
  return spec;
}

using P = HandshakePattern;

constexpr std::array kSpecs = {
    Parse(P::kN, "N", "<- s ... -> e, es"),
    Parse(P::kK, "K", "-> s <- s ... -> e, es, ss"),
    Parse(P::kX, "X", "<- s ... -> e, es, s, ss"),
    Parse(P::kNN, "NN", "-> e <- e, ee"),
    Parse(P::kNK, "NK", "<- s ... -> e, es <- e, ee"),
    Parse(P::kNX, "NX", "-> e <- e, ee, s, es"),
    Parse(P::kKN, "KN", "-> s ... -> e <- e, ee, se"),
    Parse(P::kKK, "KK", "-> s <- s ... -> e, es, ss <- e, ee, se"),
    Parse(P::kKX, "KX", "-> s ... -> e <- e, ee, se, s, es"),
    Parse(P::kXN, "XN", "-> e <- e, ee -> s, se"),
    Parse(P::kXK, "XK", "<- s ... -> e, es <- e, ee -> s, se"),
    Parse(P::kXX, "XX", "-> e <- e, ee, s, es -> s, se"),
    Parse(P::kIN, "IN", "-> e, s <- e, ee, se"),
    Parse(P::kIK, "IK", "<- s ... -> e, es, s, ss <- e, ee, se"),
    Parse(P::kIX, "IX", "-> e, s <- e, ee, se, s, es"),
    Parse(P::kNK1, "NK1", "<- s ... -> e <- e, ee, es"),
    Parse(P::kNX1, "NX1", "-> e <- e, ee, s -> es"),
    Parse(P::kX1N, "X1N", "-> e <- e, ee -> s <- se"),
    Parse(P::kX1K, "X1K", "<- s ... -> e, es <- e, ee -> s <- se"),
    Parse(P::kXK1, "XK1", "<- s ... -> e <- e, ee, es -> s, se"),
    Parse(P::kX1K1, "X1K1", "<- s ... -> e <- e, ee, es -> s <- se"),
    Parse(P::kX1X, "X1X", "-> e <- e, ee, s, es -> s <- se"),
    Parse(P::kXX1, "XX1", "-> e <- e, ee, s -> es, s, se"),
    Parse(P::kX1X1, "X1X1", "-> e <- e, ee, s -> es, s <- se"),
    Parse(P::kK1N, "K1N", "-> s ... -> e <- e, ee -> se"),
    Parse(P::kK1K, "K1K", "-> s <- s ... -> e, es <- e, ee -> se"),
    Parse(P::kKK1, "KK1", "-> s <- s ... -> e <- e, ee, se, es"),
    Parse(P::kK1K1, "K1K1", "-> s <- s ... -> e <- e, ee, es -> se"),
    Parse(P::kK1X, "K1X", "-> s ... -> e <- e, ee, s, es -> se"),
    Parse(P::kKX1, "KX1", "-> s ... -> e <- e, ee, se, s -> es"),
    Parse(P::kK1X1, "K1X1", "-> s ... -> e <- e, ee, s -> se, es"),
    Parse(P::kI1N, "I1N", "-> e, s <- e, ee -> se"),
    Parse(P::kI1K, "I1K", "<- s ... -> e, es, s <- e, ee -> se"),
    Parse(P::kIK1, "IK1", "<- s ... -> e, s <- e, ee, se, es"),
    Parse(P::kI1K1, "I1K1", "<- s ... -> e, s <- e, ee, es -> se"),
    Parse(P::kI1X, "I1X", "-> e, s <- e, ee, s, es -> se"),
    Parse(P::kIX1, "IX1", "-> e, s <- e, ee, se, s -> es"),
    Parse(P::kI1X1, "I1X1", "-> e, s <- e, ee, s -> se, es"),
    Parse(P::kXXfallback, "XXfallback", "-> e ... <- e, ee, s, es -> s, se"),
};

constexpr bool TableIsSound() {
  for (size_t i = 0; i < kSpecs.size(); ++i) {
    if (!kSpecs[i].ok || static_cast<size_t>(kSpecs[i].id) != i) return false;
  }
  return static_cast<size_t>(HandshakePattern::kXXfallback) + 1 == kSpecs.size();
}
static_assert(TableIsSound(), "a pattern does not parse, is invalid (§7.3) or is out of order");

}  // namespace

const PatternSpec& Spec(HandshakePattern pattern) { return kSpecs[static_cast<size_t>(pattern)]; }

std::span<const PatternSpec> AllSpecs() { return kSpecs; }

}  // namespace sotto::noise::internal
