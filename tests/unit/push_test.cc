// Tests of server::PushNotifier: real POSTs to a net::HttpServer on 127.0.0.1 (port 0)
// for the wire format, coalescing and retries; an injected sender for the cases that need
// to hold a POST in flight. Waits use condition variables (with a generous bound so a bug
// fails instead of hanging), never sleeps.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "net/http_server.h"
#include "net/socket.h"
#include "server/push.h"

namespace sotto::server {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kWaitBound{10'000};  // only reached when a test fails

// Collects what a receiver or sender saw and lets the test wait for a count.
template <typename T>
class Probe {
 public:
  void Add(T item) {
    {
      std::lock_guard lock(mu_);
      items_.push_back(std::move(item));
    }
    cv_.notify_all();
  }
  bool WaitFor(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWaitBound, [&] { return items_.size() >= n; });
  }
  std::vector<T> items() {
    std::lock_guard lock(mu_);
    return items_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<T> items_;
};

// Blocks senders until released; lets the test see that a POST is under way.
class Gate {
 public:
  void Enter() {
    std::unique_lock lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  bool WaitEntered(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWaitBound, [&] { return entered_ >= n; });
  }
  void Open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0;
  bool open_ = false;
};

std::unique_ptr<net::HttpServer> StartReceiver(
    Probe<net::HttpRequest>& probe, std::function<unsigned()> status = [] { return 201u; }) {
  auto server = net::HttpServer::Start(
      *net::ParseHostPort("127.0.0.1:0"),
      [&probe, status = std::move(status)](const net::HttpRequest& r) {
        const unsigned code = status();
        probe.Add(r);
        return net::HttpResponse{code, "text/plain", ""};
      },
      4096);
  if (!server) return nullptr;
  return std::move(*server);
}

std::string Endpoint(const net::HttpServer& server, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(server.port()) + path;
}

PushOptions FastOptions() {
  PushOptions o;
  o.coalesce_ms = 50;
  o.max_attempts = 3;
  o.initial_backoff_ms = 10;
  o.max_backoff_ms = 40;
  o.timeout_ms = 5'000;
  o.max_pending = 100;
  o.endpoint_addresses = net::AddressPolicy::kAny;  // the receivers listen on 127.0.0.1
  return o;
}

TEST(Push, OneNotifyIsOneContentFreePost) {
  Probe<net::HttpRequest> received;
  auto server = StartReceiver(received);
  ASSERT_NE(server, nullptr);
  auto notifier = PushNotifier::Create(FastOptions());
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  (*notifier)->Notify(0x1234, Endpoint(*server, "/up/device-a"));
  ASSERT_TRUE(received.WaitFor(1));
  (*notifier)->Stop();
  const auto requests = received.items();
  ASSERT_EQ(requests.size(), 1u);
  const net::HttpRequest& r = requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/up/device-a");
  EXPECT_EQ(r.body, kPushBody);
  EXPECT_EQ(r.body, R"({"v":1})");
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  EXPECT_EQ(r.Header("TTL"), "86400");
  EXPECT_EQ(r.Header("Urgency"), "high");
  const PushStats s = (*notifier)->stats();
  EXPECT_EQ(s.notifies, 1u);
  EXPECT_EQ(s.sent, 1u);
  EXPECT_EQ(s.failed_attempts, 0u);
  EXPECT_EQ(s.dropped, 0u);
}

TEST(Push, BurstForOneDeviceIsCoalesced) {
  Probe<net::HttpRequest> received;
  auto server = StartReceiver(received);
  ASSERT_NE(server, nullptr);
  auto notifier = PushNotifier::Create(FastOptions());
  ASSERT_TRUE(notifier);
  constexpr uint64_t kBurst = 100;
  for (uint64_t i = 0; i < kBurst; ++i) (*notifier)->Notify(7, Endpoint(*server, "/d7"));
  // Every notify either started a push or was absorbed; at most one more push than the first.
  const uint64_t expected = kBurst - (*notifier)->stats().coalesced;
  ASSERT_GE(expected, 1u);
  ASSERT_LE(expected, 2u);
  ASSERT_TRUE(received.WaitFor(expected));
  (*notifier)->Stop();  // joins the worker: nothing else can be under way
  EXPECT_EQ(received.items().size(), expected);
  EXPECT_EQ((*notifier)->stats().sent, expected);
  EXPECT_EQ((*notifier)->stats().dropped, 0u);
}

TEST(Push, NotifiesDuringFlightGiveExactlyOneTrailingPush) {
  Gate gate;
  Probe<std::string> calls;
  auto notifier = PushNotifier::Create(
      FastOptions(), [&](const std::string& endpoint, std::string_view, milliseconds) -> Status {
        calls.Add(endpoint);
        if (calls.items().size() == 1) gate.Enter();
        return Ok();
      });
  ASSERT_TRUE(notifier);
  (*notifier)->Notify(9, "http://127.0.0.1:1/a");
  ASSERT_TRUE(gate.WaitEntered(1));
  for (int i = 0; i < 50; ++i) (*notifier)->Notify(9, "http://127.0.0.1:1/b");
  gate.Open();
  ASSERT_TRUE(calls.WaitFor(2));  // after the coalesce window
  (*notifier)->Stop();
  const auto seen = calls.items();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1], "http://127.0.0.1:1/b");  // the latest endpoint is used
  const PushStats s = (*notifier)->stats();
  EXPECT_EQ(s.notifies, 51u);
  EXPECT_EQ(s.coalesced, 49u);
  EXPECT_EQ(s.sent, 2u);
}

TEST(Push, DifferentDevicesAreNotCoalesced) {
  Probe<net::HttpRequest> received;
  auto server = StartReceiver(received);
  ASSERT_NE(server, nullptr);
  auto notifier = PushNotifier::Create(FastOptions());
  ASSERT_TRUE(notifier);
  (*notifier)->Notify(1, Endpoint(*server, "/d1"));
  (*notifier)->Notify(2, Endpoint(*server, "/d2"));
  (*notifier)->Notify(3, Endpoint(*server, "/d3"));
  ASSERT_TRUE(received.WaitFor(3));
  (*notifier)->Stop();
  std::vector<std::string> targets;
  for (const auto& r : received.items()) targets.push_back(r.target);
  std::sort(targets.begin(), targets.end());
  EXPECT_EQ(targets, (std::vector<std::string>{"/d1", "/d2", "/d3"}));
  EXPECT_EQ((*notifier)->stats().coalesced, 0u);
}

TEST(Push, RetriesUntilSuccess) {
  Probe<net::HttpRequest> received;
  std::mutex mu;
  int answered = 0;
  auto server = StartReceiver(received, [&]() -> unsigned {
    std::lock_guard lock(mu);
    return ++answered <= 2 ? 500u : 200u;
  });
  ASSERT_NE(server, nullptr);
  PushOptions options = FastOptions();
  options.max_attempts = 5;
  auto notifier = PushNotifier::Create(options);
  ASSERT_TRUE(notifier);
  (*notifier)->Notify(5, Endpoint(*server, "/retry"));
  ASSERT_TRUE(received.WaitFor(3));
  (*notifier)->Stop();
  EXPECT_EQ(received.items().size(), 3u);
  const PushStats s = (*notifier)->stats();
  EXPECT_EQ(s.failed_attempts, 2u);
  EXPECT_EQ(s.sent, 1u);
  EXPECT_EQ(s.dropped, 0u);
}

TEST(Push, DropsAfterMaxAttempts) {
  Probe<int> calls;
  PushOptions options = FastOptions();
  options.max_attempts = 3;
  options.initial_backoff_ms = 1;
  options.max_backoff_ms = 2;
  auto notifier = PushNotifier::Create(
      options, [&](const std::string&, std::string_view, milliseconds) -> Status {
        calls.Add(1);
        return MakeError(Code::kFailedPrecondition, Module::kServer, 0, "test failure");
      });
  ASSERT_TRUE(notifier);
  (*notifier)->Notify(11, "http://127.0.0.1:1/");
  ASSERT_TRUE(calls.WaitFor(3));
  (*notifier)->Stop();
  EXPECT_EQ(calls.items().size(), 3u);  // never a fourth
  const PushStats s = (*notifier)->stats();
  EXPECT_EQ(s.failed_attempts, 3u);
  EXPECT_EQ(s.dropped, 1u);
  EXPECT_EQ(s.sent, 0u);
}

TEST(Push, MaxPendingBoundsDevices) {
  Gate gate;
  PushOptions options = FastOptions();
  options.max_pending = 3;
  auto notifier = PushNotifier::Create(
      options, [&](const std::string&, std::string_view, milliseconds) -> Status {
        gate.Enter();
        return Ok();
      });
  ASSERT_TRUE(notifier);
  PushNotifier& n = **notifier;
  n.Notify(1, "http://127.0.0.1:1/1");
  ASSERT_TRUE(gate.WaitEntered(1));  // device 1 in flight: it still counts
  n.Notify(2, "http://127.0.0.1:1/2");
  n.Notify(3, "http://127.0.0.1:1/3");  // at the limit: accepted
  EXPECT_EQ(n.stats().dropped, 0u);
  n.Notify(4, "http://127.0.0.1:1/4");  // past it: dropped
  EXPECT_EQ(n.stats().dropped, 1u);
  n.Notify(2, "http://127.0.0.1:1/2");  // already waiting: coalesced, not dropped
  EXPECT_EQ(n.stats().dropped, 1u);
  EXPECT_EQ(n.stats().coalesced, 1u);
  gate.Open();
  n.Stop();
  const PushStats s = n.stats();
  EXPECT_EQ(s.notifies, 5u);
  EXPECT_EQ(s.sent + s.dropped, 4u);  // 1, 2, 3 sent or dropped by Stop; 4 dropped
}

TEST(Push, StopDuringLongBackoffIsPrompt) {
  Probe<int> calls;
  PushOptions options = FastOptions();
  options.initial_backoff_ms = 60'000;
  options.max_backoff_ms = 60'000;
  auto notifier = PushNotifier::Create(
      options, [&](const std::string&, std::string_view, milliseconds) -> Status {
        calls.Add(1);
        return MakeError(Code::kFailedPrecondition, Module::kServer, 0, "test failure");
      });
  ASSERT_TRUE(notifier);
  (*notifier)->Notify(3, "http://127.0.0.1:1/");
  ASSERT_TRUE(calls.WaitFor(1));
  const auto start = std::chrono::steady_clock::now();
  (*notifier)->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1'000));
  (*notifier)->Stop();  // idempotent
  EXPECT_EQ(calls.items().size(), 1u);
  EXPECT_EQ((*notifier)->stats().dropped, 1u);
  (*notifier)->Notify(3, "http://127.0.0.1:1/");  // after Stop: dropped
  EXPECT_EQ((*notifier)->stats().dropped, 2u);
}

TEST(Push, RejectsBadOptions) {
  PushOptions o = FastOptions();
  o.max_attempts = 0;
  EXPECT_FALSE(PushNotifier::Create(o));
  o = FastOptions();
  o.max_pending = 0;
  EXPECT_FALSE(PushNotifier::Create(o));
  o = FastOptions();
  o.timeout_ms = 0;
  EXPECT_FALSE(PushNotifier::Create(o));
  o = FastOptions();
  o.initial_backoff_ms = o.max_backoff_ms + 1;
  EXPECT_FALSE(PushNotifier::Create(o));
  EXPECT_FALSE(PushNotifier::Create(FastOptions(), PushSender()));
}

TEST(Push, DefaultSenderMapsStatuses) {
  Probe<net::HttpRequest> received;
  std::mutex mu;
  unsigned next = 0;
  auto server = StartReceiver(received, [&]() -> unsigned {
    std::lock_guard lock(mu);
    return next;
  });
  ASSERT_NE(server, nullptr);
  const PushSender send = DefaultHttpSender(net::AddressPolicy::kAny);
  const auto with = [&](unsigned status) {
    {
      std::lock_guard lock(mu);
      next = status;
    }
    return send(Endpoint(*server, "/s"), kPushBody, milliseconds(5'000));
  };
  EXPECT_TRUE(with(200));
  EXPECT_TRUE(with(204));
  auto gone = with(410);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().detail, static_cast<uint16_t>(PushErr::kGone));
  auto rejected = with(500);
  ASSERT_FALSE(rejected);
  EXPECT_EQ(rejected.error().detail, static_cast<uint16_t>(PushErr::kRejected));
  EXPECT_FALSE(send("not a url", kPushBody, milliseconds(5'000)));
}

// push.allow_private_endpoints = false: a name that resolves to loopback passes
// registration's literal check, so the sender must refuse it after resolving it.
TEST(Push, PublicOnlySenderRefusesWhatResolvesToLoopback) {
  Probe<net::HttpRequest> received;
  auto server = StartReceiver(received);
  ASSERT_NE(server, nullptr);
  const std::string port = std::to_string(server->port());
  const PushSender public_only = DefaultHttpSender(net::AddressPolicy::kPublicOnly);
  for (const std::string& url : {"http://localhost:" + port + "/n", "http://127.0.0.1:" + port,
                                 "http://[::ffff:127.0.0.1]:" + port}) {
    auto refused = public_only(url, kPushBody, milliseconds(5'000));
    ASSERT_FALSE(refused) << url;
    EXPECT_EQ(refused.error().code, Code::kPermissionDenied) << url;
    EXPECT_EQ(refused.error().detail,
              static_cast<uint16_t>(net::HttpClientErr::kForbiddenAddress))
        << url;
  }
  EXPECT_TRUE(received.items().empty()) << "nothing reached the listener";
  // The same name with private endpoints allowed does reach it: the refusal above is
  // the policy, not a name that failed to resolve.
  ASSERT_TRUE(DefaultHttpSender(net::AddressPolicy::kAny)("http://localhost:" + port + "/n",
                                                          kPushBody, milliseconds(5'000)));
  EXPECT_EQ(received.items().size(), 1u);
}

TEST(Push, RefusedAddressIsDroppedWithoutRetries) {
  Probe<net::HttpRequest> received;
  auto server = StartReceiver(received);
  ASSERT_NE(server, nullptr);
  Probe<bool> attempts;
  PushOptions options = FastOptions();
  options.endpoint_addresses = net::AddressPolicy::kPublicOnly;
  const PushSender inner = DefaultHttpSender(options.endpoint_addresses);
  auto notifier = PushNotifier::Create(
      options, [&](const std::string& endpoint, std::string_view body, milliseconds timeout) {
        Status s = inner(endpoint, body, timeout);
        attempts.Add(static_cast<bool>(s));
        return s;
      });
  ASSERT_TRUE(notifier) << notifier.error().ToString();
  (*notifier)->Notify(7, "http://localhost:" + std::to_string(server->port()) + "/x");
  ASSERT_TRUE(attempts.WaitFor(1));
  (*notifier)->Stop();
  const PushStats s = (*notifier)->stats();
  EXPECT_EQ(attempts.items(), std::vector<bool>{false}) << "one attempt, no retries";
  EXPECT_EQ(s.refused, 1u);
  EXPECT_EQ(s.dropped, 1u);
  EXPECT_EQ(s.sent, 0u);
  EXPECT_TRUE(received.items().empty());
}

}  // namespace
}  // namespace sotto::server
