// Content-free push notifications to UnifiedPush-style endpoints: when a message waits for
// an offline device, the server POSTs a fixed body to the device's push endpoint so the app
// wakes up and fetches its queue over the gateway (docs: ARCHITECTURE.md, message flow 4).
//
// The body is identical for every push (kPushBody); it never names the sender, the
// recipient or anything about the message. Callers identify a device by an opaque 64-bit
// hash they compute, so this class never sees account or device identifiers.
//
// Per device, pushes are coalesced: while one is queued, in flight or backing off, or for
// coalesce_ms after one succeeded, further Notify calls at most mark one more push, sent
// when the window ends. Failures are retried with exponential backoff (doubling from
// initial_backoff_ms up to max_backoff_ms, plus up to 20% jitter) until max_attempts, then
// dropped. At most max_pending devices have a push waiting; past that, new devices drop.
// Drops are counted, never logged per device.
//
// Thread-safety: Thread-safe. One worker thread sends; the sender runs on it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include "base/result.h"
#include "net/http_client.h"

namespace sotto::server {

// Detail codes for Module::kServer errors from push.
enum class PushErr : uint16_t {
  kBadOptions = 7020,  // an option is out of range
  kThread = 7021,      // the worker thread could not start
  kRejected = 7022,    // the endpoint answered with a non-2xx status
  kGone = 7023,        // the endpoint answered 404 or 410 (the subscription is gone)
};

// The only body a push ever carries, sent as application/json.
inline constexpr std::string_view kPushBody = R"({"v":1})";
inline constexpr std::string_view kPushContentType = "application/json";
// Web Push headers: keep the push a day at the distributor, deliver it at once.
inline constexpr std::string_view kPushTtlSeconds = "86400";
inline constexpr std::string_view kPushUrgency = "high";
// Jitter added to each backoff: up to this percentage of it.
inline constexpr uint32_t kPushJitterPercent = 20;

// Same meaning and defaults as PushConfig ([push] in the config file).
struct PushOptions {
  uint32_t coalesce_ms = 2'000;
  uint32_t max_attempts = 6;
  uint32_t initial_backoff_ms = 500;
  uint32_t max_backoff_ms = 60'000;
  uint32_t timeout_ms = 5'000;
  uint32_t max_pending = 100'000;
  // push.allow_private_endpoints = false is kPublicOnly: the default sender resolves each
  // endpoint at send time and refuses it if any address is not public (docs/server.md).
  net::AddressPolicy endpoint_addresses = net::AddressPolicy::kPublicOnly;
};

// Delivers one push. Returns an error for any failure, including a non-2xx status. Runs
// on the notifier's worker; must not throw and must not call the notifier's Stop().
using PushSender = std::function<Status(const std::string& endpoint, std::string_view body,
                                        std::chrono::milliseconds timeout)>;

// POSTs with net::HttpPost, kPushContentType and the TTL/Urgency headers; 2xx is success,
// 404/410 give PushErr::kGone, any other status PushErr::kRejected. With kPublicOnly an
// endpoint that is or resolves to a non-public address gives net's kForbiddenAddress
// (kPermissionDenied) and nothing is sent.
PushSender DefaultHttpSender(net::AddressPolicy addresses);

struct PushStats {
  uint64_t notifies = 0;         // Notify calls
  uint64_t coalesced = 0;        // Notify calls absorbed by a push already waiting
  uint64_t sent = 0;             // successful POSTs
  uint64_t failed_attempts = 0;  // POSTs that failed (each retry counts)
  uint64_t dropped = 0;          // pushes given up: max_attempts, max_pending, or stopped
  uint64_t refused = 0;  // pushes dropped at once: the endpoint's address is not allowed
};

class PushNotifier {
 public:
  // Starts the worker. Errors: kInvalidArgument (PushErr::kBadOptions) if max_attempts,
  // timeout_ms or max_pending is 0 or initial_backoff_ms > max_backoff_ms, or `sender`
  // is empty; kInternal (PushErr::kThread). The first form sends with
  // DefaultHttpSender(options.endpoint_addresses).
  static Result<std::unique_ptr<PushNotifier>> Create(PushOptions options);
  static Result<std::unique_ptr<PushNotifier>> Create(PushOptions options, PushSender sender);
  ~PushNotifier();  // Stop()s
  PushNotifier(const PushNotifier&) = delete;
  PushNotifier& operator=(const PushNotifier&) = delete;

  // Asks for a push to `endpoint` for the device whose opaque hash is `device_key`. The
  // latest endpoint given for a device is the one used. Never blocks on the network.
  void Notify(uint64_t device_key, std::string endpoint);

  // Stops the worker promptly (it waits only for a POST already under way, bounded by
  // timeout_ms); pushes still waiting are dropped (counted). Later Notify calls drop.
  // Idempotent; not callable from the sender.
  void Stop();

  PushStats stats() const;

 private:
  using Clock = std::chrono::steady_clock;

  enum class Phase : uint8_t {
    kQueued,    // waiting for its timeline entry to send (first attempt)
    kInFlight,  // the worker is POSTing
    kBackoff,   // a failed attempt; retried at its timeline entry
    kCooldown,  // sent, nothing waiting; forgotten at the end of the coalesce window
  };

  struct Device {
    std::string endpoint;
    Phase phase = Phase::kQueued;
    bool again = false;     // a Notify arrived while in flight: push once more after
    uint32_t attempts = 0;  // of the current push
  };

  struct Counters {
    std::atomic<uint64_t> notifies{0};
    std::atomic<uint64_t> coalesced{0};
    std::atomic<uint64_t> sent{0};
    std::atomic<uint64_t> failed_attempts{0};
    std::atomic<uint64_t> dropped{0};
    std::atomic<uint64_t> refused{0};
  };

  PushNotifier(PushOptions options, PushSender sender);
  void Run();
  // Sends one push for `key`, whose entry is due; called with `lock` held, drops it
  // around the POST.
  void Attempt(std::unique_lock<std::mutex>& lock, uint64_t key);
  // Adds `key` to the timeline at `due`, waking the worker if it is now the earliest.
  void Schedule(uint64_t key, Clock::time_point due);
  std::chrono::milliseconds Backoff(uint32_t attempts);

  const PushOptions options_;
  const PushSender sender_;
  Counters counters_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                         // GUARDED_BY(mu_)
  std::unordered_map<uint64_t, Device> devices_;  // GUARDED_BY(mu_)
  // Devices waiting for a time (one entry each, every phase but kInFlight), earliest first.
  std::multimap<Clock::time_point, uint64_t> timeline_;  // GUARDED_BY(mu_)
  // Devices not in kCooldown, bounded by max_pending. (kCooldown entries are bounded by
  // the sends in one coalesce window.) GUARDED_BY(mu_)
  uint32_t pending_ = 0;

  std::once_flag stop_once_;
  std::thread worker_;  // last: starts after everything above exists
};

}  // namespace sotto::server
