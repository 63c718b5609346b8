#include "server/push.h"

#include <algorithm>
#include <exception>

#include "crypto/random.h"
#include "net/http_client.h"

namespace sotto::server {
namespace {

constexpr unsigned kHttpNotFound = 404;
constexpr unsigned kHttpGone = 410;

tl::unexpected<Error> PushError(Code code, PushErr detail, const char* message) {
  return MakeError(code, Module::kServer, static_cast<uint16_t>(detail), message);
}

bool IsSuccess(unsigned status) { return status >= 200 && status < 300; }

}  // namespace

PushSender DefaultHttpSender(net::AddressPolicy addresses) {
  return [addresses](const std::string& endpoint, std::string_view body,
                     std::chrono::milliseconds timeout) -> Status {
    const net::HttpHeader headers[] = {{"TTL", kPushTtlSeconds}, {"Urgency", kPushUrgency}};
    SOTTO_ASSIGN_OR_RETURN(
        net::HttpClientResponse response,
        net::HttpPost(endpoint, kPushContentType, body, timeout, headers, addresses));
    if (IsSuccess(response.status)) return Ok();
    if (response.status == kHttpNotFound || response.status == kHttpGone) {
      return PushError(Code::kNotFound, PushErr::kGone, "push endpoint is gone");
    }
    return PushError(Code::kFailedPrecondition, PushErr::kRejected,
                     "push endpoint answered with a non-2xx status");
  };
}

Result<std::unique_ptr<PushNotifier>> PushNotifier::Create(PushOptions options) {
  return Create(options, DefaultHttpSender(options.endpoint_addresses));
}

Result<std::unique_ptr<PushNotifier>> PushNotifier::Create(PushOptions options, PushSender sender) {
  if (options.max_attempts == 0) {
    return PushError(Code::kInvalidArgument, PushErr::kBadOptions,
                     "push.max_attempts must be at least 1");
  }
  if (options.timeout_ms == 0) {
    return PushError(Code::kInvalidArgument, PushErr::kBadOptions,
                     "push.timeout_ms must be at least 1");
  }
  if (options.max_pending == 0) {
    return PushError(Code::kInvalidArgument, PushErr::kBadOptions,
                     "push.max_pending must be at least 1");
  }
  if (options.initial_backoff_ms > options.max_backoff_ms) {
    return PushError(Code::kInvalidArgument, PushErr::kBadOptions,
                     "push.initial_backoff_ms must not exceed push.max_backoff_ms");
  }
  if (!sender) {
    return PushError(Code::kInvalidArgument, PushErr::kBadOptions, "push sender is empty");
  }
  std::unique_ptr<PushNotifier> notifier(new PushNotifier(options, std::move(sender)));
  try {
    notifier->worker_ = std::thread([raw = notifier.get()] { raw->Run(); });
  } catch (const std::exception&) {
    return PushError(Code::kInternal, PushErr::kThread, "cannot start the push worker");
  }
  return notifier;
}

PushNotifier::PushNotifier(PushOptions options, PushSender sender)
    : options_(options), sender_(std::move(sender)) {}

PushNotifier::~PushNotifier() { Stop(); }

void PushNotifier::Notify(uint64_t device_key, std::string endpoint) {
  counters_.notifies.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  if (stopping_) {
    counters_.dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto it = devices_.find(device_key);
  if (it == devices_.end()) {
    if (pending_ >= options_.max_pending) {
      counters_.dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    Device& device = devices_[device_key];
    device.endpoint = std::move(endpoint);
    device.phase = Phase::kQueued;
    ++pending_;
    Schedule(device_key, Clock::now());
    return;
  }
  Device& device = it->second;
  device.endpoint = std::move(endpoint);
  switch (device.phase) {
    case Phase::kQueued:
    case Phase::kBackoff:
      // The push (or its retry) has not started yet: it already covers this notify.
      counters_.coalesced.fetch_add(1, std::memory_order_relaxed);
      return;
    case Phase::kInFlight:
      // The POST may have woken the device before this message was queued: one more.
      if (device.again) {
        counters_.coalesced.fetch_add(1, std::memory_order_relaxed);
      } else {
        device.again = true;
      }
      return;
    case Phase::kCooldown:
      if (pending_ >= options_.max_pending) {
        counters_.dropped.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      // Its timeline entry already sits at the end of the coalesce window.
      device.phase = Phase::kQueued;
      device.attempts = 0;
      ++pending_;
      return;
  }
}

void PushNotifier::Stop() {
  std::call_once(stop_once_, [this] {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    std::lock_guard lock(mu_);
    counters_.dropped.fetch_add(pending_, std::memory_order_relaxed);
    pending_ = 0;
    devices_.clear();
    timeline_.clear();
  });
}

PushStats PushNotifier::stats() const {
  PushStats s;
  s.notifies = counters_.notifies.load(std::memory_order_relaxed);
  s.coalesced = counters_.coalesced.load(std::memory_order_relaxed);
  s.sent = counters_.sent.load(std::memory_order_relaxed);
  s.failed_attempts = counters_.failed_attempts.load(std::memory_order_relaxed);
  s.dropped = counters_.dropped.load(std::memory_order_relaxed);
  s.refused = counters_.refused.load(std::memory_order_relaxed);
  return s;
}

void PushNotifier::Schedule(uint64_t key, Clock::time_point due) {
  const auto slot = timeline_.emplace(due, key);
  if (slot == timeline_.begin()) cv_.notify_one();
}

std::chrono::milliseconds PushNotifier::Backoff(uint32_t attempts) {
  uint64_t delay = options_.initial_backoff_ms;
  for (uint32_t i = 1; i < attempts && delay < options_.max_backoff_ms; ++i) delay *= 2;
  delay = std::min<uint64_t>(delay, options_.max_backoff_ms);
  // delay <= UINT32_MAX, so the jitter bound fits too.
  const auto jitter_max = static_cast<uint32_t>(delay * kPushJitterPercent / 100);
  const uint64_t jitter = jitter_max == 0 ? 0 : crypto::SystemRandom().Uniform(jitter_max + 1);
  return std::chrono::milliseconds(delay + jitter);
}

void PushNotifier::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (timeline_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const auto first = timeline_.begin();
    if (first->first > Clock::now()) {
      cv_.wait_until(lock, first->first);
      continue;
    }
    const uint64_t key = first->second;
    timeline_.erase(first);
    auto it = devices_.find(key);
    if (it == devices_.end()) continue;
    if (it->second.phase == Phase::kCooldown) {
      devices_.erase(it);  // the window ended with nothing waiting
      continue;
    }
    Attempt(lock, key);
  }
}

void PushNotifier::Attempt(std::unique_lock<std::mutex>& lock, uint64_t key) {
  Device& device = devices_.at(key);
  device.phase = Phase::kInFlight;
  ++device.attempts;
  const std::string endpoint = device.endpoint;
  lock.unlock();
  const Status status =
      sender_(endpoint, kPushBody, std::chrono::milliseconds(options_.timeout_ms));
  lock.lock();
  // Accounted even when stopping, so the counters are final once Stop() returns.
  // `device` is still valid: only this thread erases devices, and a rehash keeps references.
  const Clock::time_point now = Clock::now();
  if (status) {
    counters_.sent.fetch_add(1, std::memory_order_relaxed);
    device.attempts = 0;
    if (device.again) {
      device.again = false;
      device.phase = Phase::kQueued;
    } else {
      device.phase = Phase::kCooldown;
      --pending_;
    }
    Schedule(key, now + std::chrono::milliseconds(options_.coalesce_ms));
    return;
  }
  counters_.failed_attempts.fetch_add(1, std::memory_order_relaxed);
  if (device.again) {
    // The retry comes after that notify, so it covers it.
    device.again = false;
    counters_.coalesced.fetch_add(1, std::memory_order_relaxed);
  }
  // An address refused by policy stays refused for this push: no retry. (A later Notify
  // resolves again, so a name that moves to a public address works from then on.)
  const bool refused = status.error().module == Module::kNet &&
                       status.error().detail ==
                           static_cast<uint16_t>(net::HttpClientErr::kForbiddenAddress);
  if (refused) counters_.refused.fetch_add(1, std::memory_order_relaxed);
  if (refused || device.attempts >= options_.max_attempts) {
    counters_.dropped.fetch_add(1, std::memory_order_relaxed);
    --pending_;
    devices_.erase(key);
    return;
  }
  device.phase = Phase::kBackoff;
  Schedule(key, now + Backoff(device.attempts));
}

}  // namespace sotto::server
