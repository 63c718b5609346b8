#include "server/verification.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <exception>

#include <spdlog/spdlog.h>

#include "crypto/secret.h"
#include "net/http_client.h"

namespace sotto::server {
namespace {

constexpr mode_t kLogFileMode = 0600;
constexpr uint32_t kCodeSpace = 1'000'000;  // 10^kCodeDigits
static_assert(kCodeDigits == 6, "kCodeSpace must be 10^kCodeDigits");
constexpr double kMsPerSecond = 1'000.0;

tl::unexpected<Error> VerifyError(Code code, VerifyErr detail, const char* message) {
  return MakeError(code, Module::kServer, static_cast<uint16_t>(detail), message);
}

tl::unexpected<Error> SenderError(Code code, CodeSenderErr detail, const char* message) {
  return MakeError(code, Module::kServer, static_cast<uint16_t>(detail), message);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsCode(std::string_view code) {
  return code.size() == kCodeDigits && std::all_of(code.begin(), code.end(), IsDigit);
}

Status CheckSendInput(const std::string& handle, const std::string& code) {
  if (!IsE164(handle) || !IsCode(code)) {
    return SenderError(Code::kInvalidArgument, CodeSenderErr::kBadInput,
                       "code sender needs an E.164 handle and a 6-digit code");
  }
  return Ok();
}

}  // namespace


// --- LogCodeSender -----------------------------------------------------------------------

Result<std::unique_ptr<LogCodeSender>> LogCodeSender::Create(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, kLogFileMode);
  if (fd < 0) {
    return SenderError(Code::kInternal, CodeSenderErr::kIo, "cannot open the code log");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return SenderError(Code::kInternal, CodeSenderErr::kIo, "code log is not a regular file");
  }
  if ((st.st_mode & 0777) != kLogFileMode && ::fchmod(fd, kLogFileMode) != 0) {
    ::close(fd);
    return SenderError(Code::kInternal, CodeSenderErr::kIo, "cannot make the code log 0600");
  }
  return std::unique_ptr<LogCodeSender>(new LogCodeSender(fd));
}

LogCodeSender::~LogCodeSender() { ::close(fd_); }

Status LogCodeSender::Send(const std::string& handle, const std::string& code) {
  SOTTO_RETURN_IF_ERROR(CheckSendInput(handle, code));
  std::string line;
  line.reserve(handle.size() + code.size() + 2);
  line += handle;
  line += ' ';
  line += code;
  line += '\n';
  ssize_t n = 0;
  do {
    n = ::write(fd_, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  // A short write is not resumed: a second write could interleave with another line.
  if (n < 0 || static_cast<size_t>(n) != line.size()) {
    return SenderError(Code::kInternal, CodeSenderErr::kIo, "cannot write the code log");
  }
  return Ok();
}

// --- WebhookCodeSender -------------------------------------------------------------------

Result<std::unique_ptr<WebhookCodeSender>> WebhookCodeSender::Create(std::string url,
                                                                     WebhookOptions options) {
  if (!net::ParseUrl(url)) {
    return SenderError(Code::kInvalidArgument, CodeSenderErr::kBadUrl,
                       "registration.webhook_url is not an http(s) URL");
  }
  std::unique_ptr<WebhookCodeSender> sender(new WebhookCodeSender(std::move(url), options));
  try {
    sender->worker_ = std::thread([raw = sender.get()] { raw->Run(); });
  } catch (const std::exception&) {
    return SenderError(Code::kInternal, CodeSenderErr::kThread, "cannot start the webhook worker");
  }
  return sender;
}

WebhookCodeSender::WebhookCodeSender(std::string url, WebhookOptions options)
    : url_(std::move(url)), options_(options) {}

WebhookCodeSender::~WebhookCodeSender() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

Status WebhookCodeSender::Send(const std::string& handle, const std::string& code) {
  SOTTO_RETURN_IF_ERROR(CheckSendInput(handle, code));
  // Both parts are digits and '+' (checked above): nothing to escape.
  std::string body = R"({"handle":")";
  body += handle;
  body += R"(","code":")";
  body += code;
  body += R"("})";
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return SenderError(Code::kFailedPrecondition, CodeSenderErr::kStopped,
                         "code webhook is stopping");
    }
    if (queue_.size() >= kMaxWebhookQueue) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return SenderError(Code::kResourceExhausted, CodeSenderErr::kQueueFull,
                         "code webhook queue is full");
    }
    queue_.push_back(std::move(body));
  }
  cv_.notify_one();
  return Ok();
}

bool WebhookCodeSender::Deliver(const std::string& body) {
  for (uint32_t attempt = 0; attempt < kWebhookAttempts; ++attempt) {
    if (attempt > 0) {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, options_.retry_delay, [this] { return stopping_; })) return false;
    }
    auto response = net::HttpPost(url_, "application/json", body, options_.timeout);
    if (response && response->status >= 200 && response->status < 300) return true;
  }
  return false;
}

void WebhookCodeSender::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    std::string body = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    const bool ok = Deliver(body);
    crypto::SecureWipe(MutableByteSpan(reinterpret_cast<uint8_t*>(body.data()), body.size()));
    if (ok) {
      delivered_.fetch_add(1, std::memory_order_relaxed);
    } else {
      failed_.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("verification webhook: a code was not delivered after {} attempts",
                   kWebhookAttempts);
    }
    lock.lock();
  }
}

// --- VerificationCodes -------------------------------------------------------------------

Result<std::unique_ptr<VerificationCodes>> VerificationCodes::Create(CodeOptions options) {
  if (options.code_ttl_s == 0) {
    return VerifyError(Code::kInvalidArgument, VerifyErr::kBadOptions,
                       "registration.code_ttl_s must be at least 1");
  }
  if (options.code_attempts == 0) {
    return VerifyError(Code::kInvalidArgument, VerifyErr::kBadOptions,
                       "registration.code_attempts must be at least 1");
  }
  if (options.max_pending_codes == 0) {
    return VerifyError(Code::kInvalidArgument, VerifyErr::kBadOptions,
                       "registration.max_pending_codes must be at least 1");
  }
  if (!std::isfinite(options.code_rate_per_s) || options.code_rate_per_s < 0 ||
      (options.code_rate_per_s > 0 && !(options.code_burst >= 1))) {
    return VerifyError(Code::kInvalidArgument, VerifyErr::kBadOptions,
                       "registration.code_rate needs a rate >= 0 and a burst >= 1");
  }
  for (const RateLimit* r : {&options.ip_code_rate, &options.global_code_rate,
                             &options.ip_guess_rate, &options.global_guess_rate}) {
    if (!std::isfinite(r->per_second) || r->per_second < 0 ||
        (r->per_second > 0 && !(r->burst >= 1))) {
      return VerifyError(Code::kInvalidArgument, VerifyErr::kBadOptions,
                         "registration ip_/global_ code and guess rates need a rate >= 0 and "
                         "a burst >= 1");
    }
  }
  return std::unique_ptr<VerificationCodes>(new VerificationCodes(options));
}

namespace {

// How long until a bucket drained by its last code is full again (then forgetting it
// changes nothing), but at least the code's lifetime.
uint64_t RetireAfterMs(const CodeOptions& o) {
  const uint64_t ttl_ms = uint64_t{o.code_ttl_s} * 1'000;
  if (o.code_rate_per_s <= 0) return ttl_ms;
  const double refill_ms = std::ceil(o.code_burst / o.code_rate_per_s * kMsPerSecond);
  const uint64_t capped = refill_ms >= static_cast<double>(kMaxRateMemoryMs)
                              ? kMaxRateMemoryMs
                              : static_cast<uint64_t>(refill_ms);
  return std::max(ttl_ms, capped);
}

}  // namespace

VerificationCodes::VerificationCodes(CodeOptions options)
    : options_(options),
      rate_{options.code_rate_per_s, options.code_burst},
      ttl_ms_(uint64_t{options.code_ttl_s} * 1'000),
      retire_after_ms_(RetireAfterMs(options)) {}

void VerificationCodes::Void(Entry& entry) {
  entry.has_code = false;
  entry.code.fill('\0');
  entry.attempts_left = 0;
}

void VerificationCodes::Purge(uint64_t now_ms) {
  while (!retire_queue_.empty() && retire_queue_.front().first <= now_ms) {
    auto it = entries_.find(retire_queue_.front().second);
    if (it != entries_.end() && it->second.retire_ms <= now_ms) entries_.erase(it);
    retire_queue_.pop_front();
  }
}

Result<std::string> VerificationCodes::Issue(const std::string& handle, const net::IpKey& source,
                                             uint64_t now_ms, crypto::Random& random) {
  if (!IsE164(handle)) {
    return VerifyError(Code::kInvalidArgument, VerifyErr::kBadHandle,
                       "handle is not an E.164 number");
  }
  if (!source_codes_.Allow(source, now_ms, options_.ip_code_rate)) {
    return VerifyError(Code::kResourceExhausted, VerifyErr::kSourceRateLimited,
                       "too many codes for this source address (registration.ip_code_rate)");
  }
  std::lock_guard lock(mu_);
  Purge(now_ms);
  auto it = entries_.find(handle);
  const bool created = it == entries_.end();
  if (created) {
    if (entries_.size() >= options_.max_pending_codes) {
      return VerifyError(Code::kResourceExhausted, VerifyErr::kTooManyPending,
                         "too many outstanding codes (registration.max_pending_codes)");
    }
    it = entries_.emplace(handle, Entry{}).first;
  }
  Entry& entry = it->second;
  if (!entry.bucket.Allow(now_ms, rate_)) {  // never for a new entry: its bucket is full
    return VerifyError(Code::kResourceExhausted, VerifyErr::kRateLimited,
                       "too many codes for this handle (registration.code_rate)");
  }
  if (!global_codes_.Allow(now_ms, options_.global_code_rate)) {
    // Not the handle's nor the source's doing: give their tokens back.
    if (created) {
      entries_.erase(it);  // it has no retire item yet
    } else {
      entry.bucket.Refund(rate_);
    }
    source_codes_.Refund(source, options_.ip_code_rate);
    return VerifyError(Code::kResourceExhausted, VerifyErr::kGlobalRateLimited,
                       "too many codes server-wide (registration.global_code_rate)");
  }
  // Uniform() rejects biased samples: each of the 10^6 codes is equally likely.
  uint32_t value = random.Uniform(kCodeSpace);
  for (size_t i = kCodeDigits; i-- > 0;) {
    entry.code[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  entry.has_code = true;
  entry.attempts_left = options_.code_attempts;
  entry.expires_ms = now_ms + ttl_ms_;
  entry.retire_ms = now_ms + retire_after_ms_;
  retire_queue_.emplace_back(entry.retire_ms, handle);
  return std::string(entry.code.data(), entry.code.size());
}

Status VerificationCodes::Check(const std::string& handle, std::string_view code,
                                const net::IpKey& source, uint64_t now_ms) {
  if (!source_guesses_.Allow(source, now_ms, options_.ip_guess_rate)) {
    return VerifyError(
        Code::kResourceExhausted, VerifyErr::kSourceGuessLimited,
        "too many wrong codes from this source address (registration.ip_guess_rate)");
  }
  if (!global_guesses_.Allow(now_ms, options_.global_guess_rate)) {
    source_guesses_.Refund(source, options_.ip_guess_rate);
    return VerifyError(Code::kResourceExhausted, VerifyErr::kGlobalGuessLimited,
                       "too many wrong codes server-wide (registration.global_guess_rate)");
  }
  Status checked = CheckCode(handle, code, now_ms);
  if (checked) {  // only wrong codes are limited
    source_guesses_.Refund(source, options_.ip_guess_rate);
    global_guesses_.Refund(options_.global_guess_rate);
  }
  return checked;
}

Status VerificationCodes::CheckCode(const std::string& handle, std::string_view code,
                                    uint64_t now_ms) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(handle);
  if (it == entries_.end() || !it->second.has_code) {
    return VerifyError(Code::kNotFound, VerifyErr::kNoCode, "no outstanding code");
  }
  Entry& entry = it->second;
  if (now_ms >= entry.expires_ms) {
    Void(entry);
    return VerifyError(Code::kFailedPrecondition, VerifyErr::kExpired,
                       "code expired (registration.code_ttl_s)");
  }
  const std::string_view expected(entry.code.data(), entry.code.size());
  if (crypto::ConstantTimeEqual(AsBytes(expected), AsBytes(code))) {
    Void(entry);  // single use; the bucket stays until it retires
    return Ok();
  }
  if (--entry.attempts_left == 0) {
    Void(entry);
    return VerifyError(Code::kResourceExhausted, VerifyErr::kAttemptsExhausted,
                       "too many wrong codes (registration.code_attempts)");
  }
  return VerifyError(Code::kUnauthenticated, VerifyErr::kWrongCode, "wrong code");
}

size_t VerificationCodes::remembered() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace sotto::server
