// Result<T> and Error: how every fallible function in Sotto reports failure.
//
// No exceptions cross module boundaries. An Error carries a canonical code (what a
// caller can act on), the module that produced it, a module-specific detail code and
// a static message. It never carries user data, keys or identifiers.
//
// Result<T> is tl::expected today; switching to C++23 std::expected is a change of
// this header only.
//
// Thread-safety: value types; externally synchronized.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace sotto {

// Canonical error codes, after absl::StatusCode.
enum class Code : uint8_t {
  kInvalidArgument,     // malformed input from a caller or peer
  kFailedPrecondition,  // the state does not allow this (e.g. no session)
  kNotFound,
  kAlreadyExists,       // e.g. a duplicate message
  kPermissionDenied,    // e.g. an untrusted identity
  kUnauthenticated,     // a MAC or signature did not verify
  kResourceExhausted,   // a limit was hit
  kOutOfRange,          // e.g. a counter too far in the future
  kUnimplemented,       // e.g. an unsupported version
  kInternal,            // our bug or a library failure
  kDataLoss,            // stored data is corrupt
  kUnavailable,         // a peer or server cannot be reached now; try again later
  kAborted,             // a concurrent change won (e.g. a lost compare-and-set); retry
};

// The module an Error comes from; selects the meaning of Error::detail.
enum class Module : uint8_t {
  kBase,
  kCrypto,
  kSignal,
  kNoise,
  kWire,
  kNet,
  kStore,
  kServer,
  kClient,
  kNats,  // src/store/nats/: the NATS JetStream client wrapper (NatsErr)
};

// Each module's details lie in a range of their own, [DetailBase(m), DetailBase(m) +
// kDetailsPerModule), so a detail number names one error in the whole program and a
// check of `detail` that forgets `module` cannot match another module's error. 0 means
// no detail. Every detail enum is checked by scripts/check-error-details.sh (a ctest).
inline constexpr uint16_t kDetailsPerModule = 1'000;
constexpr uint16_t DetailBase(Module module) {
  return static_cast<uint16_t>(static_cast<uint16_t>(module) * kDetailsPerModule);
}

struct [[nodiscard]] Error {
  Code code;
  Module module;
  uint16_t detail;       // a module's own enum value (in its DetailBase range), or 0
  const char* message;   // static text, never user data

  std::string ToString() const;
};

std::string_view CodeName(Code code);

template <typename T>
using Result = tl::expected<T, Error>;

// Result<void> for functions that return nothing on success.
using Status = tl::expected<void, Error>;

inline tl::unexpected<Error> MakeError(Code code, Module module, uint16_t detail,
                                       const char* message) {
  return tl::unexpected<Error>(Error{code, module, detail, message});
}

inline Status Ok() { return {}; }

}  // namespace sotto

// Propagates an error from a Result/Status expression; evaluates to nothing.
#define SOTTO_RETURN_IF_ERROR(expr)                                          \
  do {                                                                       \
    auto sotto_status_ = (expr);                                             \
    if (!sotto_status_) return tl::unexpected<::sotto::Error>(sotto_status_.error()); \
  } while (false)

#define SOTTO_CONCAT_INNER_(a, b) a##b
#define SOTTO_CONCAT_(a, b) SOTTO_CONCAT_INNER_(a, b)
// Declares `lhs` from a Result's value, or returns its error.
#define SOTTO_ASSIGN_OR_RETURN(lhs, expr) \
  SOTTO_ASSIGN_OR_RETURN_IMPL_(SOTTO_CONCAT_(sotto_result_, __LINE__), lhs, expr)
// `tmp` and `lhs` are a name and a declaration, which cannot take parentheses.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define SOTTO_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)                       \
  auto tmp = (expr);                                                       \
  if (!tmp) return tl::unexpected<::sotto::Error>(std::move(tmp).error()); \
  lhs = std::move(*tmp)
// NOLINTEND(bugprone-macro-parentheses)
