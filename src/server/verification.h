// One-time registration codes proving a handle (an E.164 phone number), after
// ARCHITECTURE.md "Identity and addressing": VerificationCodes issues and checks them,
// a CodeSender delivers them (a log file in development, an HTTP webhook in production).
//
// Codes are 6 uniform decimal digits, single use, valid for code_ttl_s, void after
// code_attempts wrong guesses, issued at most code_rate_per_s per handle (burst code_burst),
// and at most max_pending_codes handles are remembered at once. The options mirror
// RegistrationConfig ([registration] in the config file). Errors are precise for local
// diagnostics; the server maps every one of them to a single STATUS_BAD_CODE for clients.
//
// Thread-safety: every class here is Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include "base/result.h"
#include "crypto/random.h"
#include "net/socket.h"
#include "server/keyed_rate_limiter.h"
#include "server/rate_limiter.h"
#include "wire/wire.h"

namespace sotto::server {

// Detail codes for Module::kServer errors from VerificationCodes.
enum class VerifyErr : uint16_t {
  kBadHandle = 7030,          // kInvalidArgument: not an E.164 number
  kRateLimited = 7031,        // kResourceExhausted: registration.code_rate
  kTooManyPending = 7032,     // kResourceExhausted: registration.max_pending_codes
  kNoCode = 7033,             // kNotFound: nothing outstanding (never issued, used, or void)
  kExpired = 7034,            // kFailedPrecondition: past registration.code_ttl_s
  kWrongCode = 7035,          // kUnauthenticated
  kAttemptsExhausted = 7036,  // kResourceExhausted: registration.code_attempts reached
  kBadOptions = 7037,         // kInvalidArgument: CodeOptions out of range
  kSourceRateLimited = 7038,  // kResourceExhausted: registration.ip_code_rate
  kGlobalRateLimited = 7039,  // kResourceExhausted: registration.global_code_rate
  // (7040..7045 are CodeSenderErr)
  kSourceGuessLimited = 7046,  // kResourceExhausted: registration.ip_guess_rate
  kGlobalGuessLimited = 7047,  // kResourceExhausted: registration.global_guess_rate
};

// Detail codes for Module::kServer errors from the code senders.
enum class CodeSenderErr : uint16_t {
  kBadInput = 7040,   // kInvalidArgument: handle not E.164 or code not kCodeDigits digits
  kIo = 7041,         // kInternal: opening or writing the log failed
  kQueueFull = 7042,  // kResourceExhausted: kMaxWebhookQueue codes waiting
  kBadUrl = 7043,     // kInvalidArgument: the webhook URL does not parse
  kThread = 7044,     // kInternal: the webhook worker could not start
  kStopped = 7045,    // kFailedPrecondition: the webhook sender is shutting down
};

inline constexpr size_t kCodeDigits = 6;
// A handle's rate-limit state is kept at most this long after its last code.
inline constexpr uint64_t kMaxRateMemoryMs = uint64_t{30} * 86'400 * 1'000;

inline constexpr size_t kMaxWebhookQueue = 1'024;
inline constexpr uint32_t kWebhookAttempts = 3;  // the first POST and two retries
inline constexpr uint32_t kWebhookTimeoutMs = 5'000;
inline constexpr uint32_t kWebhookRetryDelayMs = 1'000;

using wire::IsE164;  // '+' then 8 to 15 digits (wire.h)

// Delivers a code to the owner of a handle.
class CodeSender {
 public:
  virtual ~CodeSender() = default;
  // `handle` must be E.164 and `code` kCodeDigits digits (else CodeSenderErr::kBadInput).
  virtual Status Send(const std::string& handle, const std::string& code) = 0;
};

// Appends "+E164 CODE\n" lines to a file (development and tests: DATA/verification-codes.log).
class LogCodeSender final : public CodeSender {
 public:
  // Opens `path` for appending, creating it with mode 0600; tightens an existing file to
  // 0600. Errors: kInternal (CodeSenderErr::kIo).
  static Result<std::unique_ptr<LogCodeSender>> Create(const std::string& path);
  ~LogCodeSender() override;
  LogCodeSender(const LogCodeSender&) = delete;
  LogCodeSender& operator=(const LogCodeSender&) = delete;

  // One write() per line, so lines from concurrent calls never interleave. No fsync.
  Status Send(const std::string& handle, const std::string& code) override;

 private:
  explicit LogCodeSender(int fd) : fd_(fd) {}
  const int fd_;
};

struct WebhookOptions {
  std::chrono::milliseconds timeout{kWebhookTimeoutMs};         // per POST
  std::chrono::milliseconds retry_delay{kWebhookRetryDelayMs};  // between attempts
};

// POSTs {"handle":"+E164","code":"123456"} (application/json) to a URL from its own
// worker thread. A non-2xx answer or a network error is retried up to kWebhookAttempts
// in all, then counted as failed and logged at warn (without handle, code or URL).
class WebhookCodeSender final : public CodeSender {
 public:
  // Errors: kInvalidArgument (kBadUrl), kInternal (kThread).
  static Result<std::unique_ptr<WebhookCodeSender>> Create(std::string url,
                                                           WebhookOptions options = {});
  // Stops the worker (waiting for a POST under way); codes still queued are dropped.
  ~WebhookCodeSender() override;
  WebhookCodeSender(const WebhookCodeSender&) = delete;
  WebhookCodeSender& operator=(const WebhookCodeSender&) = delete;

  // Queues the code and returns at once. Errors: kBadInput, kQueueFull (counted as
  // dropped), kStopped.
  Status Send(const std::string& handle, const std::string& code) override;

  uint64_t delivered() const { return delivered_.load(std::memory_order_relaxed); }
  uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  WebhookCodeSender(std::string url, WebhookOptions options);
  void Run();
  bool Deliver(const std::string& body);

  const std::string url_;
  const WebhookOptions options_;
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> dropped_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;          // GUARDED_BY(mu_)
  std::deque<std::string> queue_;  // JSON bodies; GUARDED_BY(mu_)
  std::thread worker_;             // last: starts after everything above exists
};

// Same meaning and defaults as RegistrationConfig (code_rate split in two).
struct CodeOptions {
  uint32_t code_ttl_s = 600;
  uint32_t code_attempts = 5;
  double code_rate_per_s = 1.0 / 60;  // 0 disables the per-handle limit
  double code_burst = 3;
  uint32_t max_pending_codes = 100'000;
  // Per source (net::IpKey) and server-wide. Off (rate 0) here; sottod copies them from
  // RegistrationConfig, whose defaults are the production ones.
  RateLimit ip_code_rate;       // codes issued per source
  RateLimit global_code_rate;   // codes issued, whole server
  RateLimit ip_guess_rate;      // wrong codes (Check failures) per source
  RateLimit global_guess_rate;  // wrong codes, whole server
};

// Sources whose code and guess buckets are remembered at once (KeyedRateLimiter).
inline constexpr size_t kMaxCodeSources = 100'000;

// Issues and checks codes. Time comes from the caller (milliseconds on any monotonic
// clock), so tests are deterministic.
class VerificationCodes {
 public:
  // Errors: kInvalidArgument (VerifyErr::kBadOptions) if code_ttl_s, code_attempts or
  // max_pending_codes is 0, code_rate_per_s is negative or not finite, or the rate is on
  // and code_burst < 1.
  static Result<std::unique_ptr<VerificationCodes>> Create(CodeOptions options);
  VerificationCodes(const VerificationCodes&) = delete;
  VerificationCodes& operator=(const VerificationCodes&) = delete;

  // Issues a fresh code for `handle`, replacing any outstanding one, and returns it.
  // The handle's state (code and rate-limit bucket) is remembered until both the code
  // expired and the bucket refilled; max_pending_codes bounds the handles remembered.
  // `source` (the requester's net::IpKey) pays ip_code_rate, then the handle code_rate,
  // then the server global_code_rate; a refusal takes nothing from the later ones.
  // Errors: kBadHandle, kSourceRateLimited, kRateLimited, kGlobalRateLimited, kTooManyPending.
  Result<std::string> Issue(const std::string& handle, const net::IpKey& source, uint64_t now_ms,
                            crypto::Random& random);
  // Issue() from an unknown source (all such calls share one source bucket).
  Result<std::string> Issue(const std::string& handle, uint64_t now_ms, crypto::Random& random) {
    return Issue(handle, net::IpKey{}, now_ms, random);
  }

  // Checks `code` for `handle` in constant time. Success consumes the code. A wrong code
  // uses one attempt; the code_attempts-th wrong one voids the code (kAttemptsExhausted).
  // Errors: kNoCode, kExpired (at or past issue + code_ttl_s; voids the code),
  // kWrongCode, kAttemptsExhausted.
  // Every failed check costs `source` one token of ip_guess_rate and the server one of
  // global_guess_rate (a right code costs nothing); with either empty the check is
  // refused before the code is looked at (kSourceGuessLimited, kGlobalGuessLimited) and
  // uses no attempt.
  Status Check(const std::string& handle, std::string_view code, const net::IpKey& source,
               uint64_t now_ms);
  Status Check(const std::string& handle, std::string_view code, uint64_t now_ms) {
    return Check(handle, code, net::IpKey{}, now_ms);
  }

  // Handles remembered now (for metrics and tests).
  size_t remembered() const;

 private:
  struct Entry {
    TokenBucket bucket;
    std::array<char, kCodeDigits> code{};
    bool has_code = false;
    uint32_t attempts_left = 0;
    uint64_t expires_ms = 0;
    uint64_t retire_ms = 0;  // forget the entry from here on
  };

  explicit VerificationCodes(CodeOptions options);
  // Forgets entries whose retire time passed. Requires mu_.
  void Purge(uint64_t now_ms);
  Status CheckCode(const std::string& handle, std::string_view code, uint64_t now_ms);
  static void Void(Entry& entry);

  const CodeOptions options_;
  const RateLimit rate_;
  const uint64_t ttl_ms_;
  const uint64_t retire_after_ms_;  // max(ttl, time for a bucket to refill), capped

  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // GUARDED_BY(mu_)
  // (retire_ms, handle) in issue order, so the front retires first; an item is stale if
  // the handle was issued again later. GUARDED_BY(mu_)
  std::deque<std::pair<uint64_t, std::string>> retire_queue_;

  // Per-source and server-wide limits (thread-safe themselves; taken outside mu_).
  KeyedRateLimiter<net::IpKey, net::IpKeyHash> source_codes_{kMaxCodeSources};
  KeyedRateLimiter<net::IpKey, net::IpKeyHash> source_guesses_{kMaxCodeSources};
  SharedTokenBucket global_codes_;
  SharedTokenBucket global_guesses_;
};

}  // namespace sotto::server
