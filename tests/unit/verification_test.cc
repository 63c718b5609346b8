// Tests of server/verification.h: E.164 handles, code issue/check with a fake clock and
// seeded or scripted randomness, the log sender in a temporary directory and the webhook
// sender against a real net::HttpServer on 127.0.0.1 (port 0).
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net/http_server.h"
#include "net/socket.h"
#include "server/verification.h"

namespace sotto::server {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kWaitBound{10'000};  // only reached when a test fails
constexpr const char* kAlice = "+12025550123";
constexpr const char* kBob = "+4915112345678";

uint16_t Detail(VerifyErr e) { return static_cast<uint16_t>(e); }
uint16_t Detail(CodeSenderErr e) { return static_cast<uint16_t>(e); }

// Returns the given 32-bit values (little-endian), in order; then zeros.
class ScriptedRandom final : public crypto::Random {
 public:
  explicit ScriptedRandom(std::deque<uint32_t> values) : values_(std::move(values)) {}
  void Fill(MutableByteSpan out) override {
    ASSERT_EQ(out.size(), 4u);
    uint32_t v = 0;
    if (!values_.empty()) {
      v = values_.front();
      values_.pop_front();
    }
    for (size_t i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
  }

 private:
  std::deque<uint32_t> values_;
};

CodeOptions TestOptions() {
  CodeOptions o;
  o.code_ttl_s = 600;
  o.code_attempts = 3;
  o.code_rate_per_s = 1.0 / 60;
  o.code_burst = 3;
  o.max_pending_codes = 100;
  return o;
}

std::unique_ptr<VerificationCodes> MakeCodes(CodeOptions options = TestOptions()) {
  auto codes = VerificationCodes::Create(options);
  EXPECT_TRUE(codes) << codes.error().ToString();  // callers assert on the null
  return codes ? std::move(*codes) : nullptr;
}

TEST(IsE164, Edges) {
  EXPECT_FALSE(IsE164("+1234567"));           // 7 digits
  EXPECT_TRUE(IsE164("+12345678"));           // 8
  EXPECT_TRUE(IsE164("+123456789012345"));    // 15
  EXPECT_FALSE(IsE164("+1234567890123456"));  // 16
  EXPECT_FALSE(IsE164("+0123456789"));        // leading 0
  EXPECT_FALSE(IsE164("12025550123"));        // no '+'
  EXPECT_FALSE(IsE164("+1202555O123"));       // a letter
  EXPECT_FALSE(IsE164("+1202 555 0123"));
  EXPECT_FALSE(IsE164("++12025550123"));
  EXPECT_FALSE(IsE164("+"));
  EXPECT_FALSE(IsE164(""));
  EXPECT_TRUE(IsE164(kAlice));
  EXPECT_TRUE(IsE164(kBob));
}

TEST(VerificationCodes, CodesAreSixDigits) {
  auto codes = MakeCodes();
  ASSERT_NE(codes, nullptr);
  crypto::DeterministicRandom random(42);
  for (int i = 0; i < 50; ++i) {
    const std::string handle = "+1202555" + std::to_string(1000 + i);
    auto code = codes->Issue(handle, 0, random);
    ASSERT_TRUE(code) << code.error().ToString();
    ASSERT_EQ(code->size(), kCodeDigits);
    for (char c : *code) EXPECT_TRUE(c >= '0' && c <= '9') << *code;
  }
}

TEST(VerificationCodes, RejectionSamplingAndLeadingZeros) {
  auto codes = MakeCodes();
  ASSERT_NE(codes, nullptr);
  // 0 lies in the biased tail (below 2^32 mod 10^6) and is rejected; 1'000'042 maps to 42.
  ScriptedRandom random({0, 1'000'042});
  auto code = codes->Issue(kAlice, 0, random);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, "000042");
}

TEST(VerificationCodes, SingleUseAndReplacement) {
  auto codes = MakeCodes();
  ASSERT_NE(codes, nullptr);
  ScriptedRandom random({1'000'111, 1'000'222});
  ASSERT_EQ(*codes->Issue(kAlice, 0, random), "000111");
  ASSERT_EQ(*codes->Issue(kAlice, 1, random), "000222");  // replaces the first
  auto old = codes->Check(kAlice, "000111", 2);
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().detail, Detail(VerifyErr::kWrongCode));
  EXPECT_TRUE(codes->Check(kAlice, "000222", 3));
  auto again = codes->Check(kAlice, "000222", 4);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().detail, Detail(VerifyErr::kNoCode));
  auto never = codes->Check(kBob, "000222", 4);
  ASSERT_FALSE(never);
  EXPECT_EQ(never.error().detail, Detail(VerifyErr::kNoCode));
  EXPECT_EQ(never.error().module, Module::kServer);
}

TEST(VerificationCodes, ExpiresAtTtl) {
  auto codes = MakeCodes();
  ASSERT_NE(codes, nullptr);
  crypto::DeterministicRandom random(1);
  constexpr uint64_t kIssued = 5'000;
  constexpr uint64_t kTtlMs = 600'000;
  auto a = codes->Issue(kAlice, kIssued, random);
  ASSERT_TRUE(a);
  EXPECT_TRUE(codes->Check(kAlice, *a, kIssued + kTtlMs - 1));  // just before

  auto at = codes->Issue(kBob, kIssued, random);
  ASSERT_TRUE(at);
  auto r = codes->Check(kBob, *at, kIssued + kTtlMs);  // at the TTL: expired
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().detail, Detail(VerifyErr::kExpired));
  EXPECT_EQ(codes->Check(kBob, *at, kIssued + kTtlMs).error().detail, Detail(VerifyErr::kNoCode));

  auto past = codes->Issue("+33612345678", kIssued, random);
  ASSERT_TRUE(past);
  EXPECT_EQ(codes->Check("+33612345678", *past, kIssued + kTtlMs + 1).error().detail,
            Detail(VerifyErr::kExpired));
}

TEST(VerificationCodes, AttemptsExhaustedAtExactlyCodeAttempts) {
  auto codes = MakeCodes();  // code_attempts = 3
  ASSERT_NE(codes, nullptr);
  ScriptedRandom random({1'123'456, 1'654'321});
  ASSERT_EQ(*codes->Issue(kAlice, 0, random), "123456");
  EXPECT_EQ(codes->Check(kAlice, "000000", 1).error().detail, Detail(VerifyErr::kWrongCode));
  EXPECT_EQ(codes->Check(kAlice, "12345", 1).error().detail, Detail(VerifyErr::kWrongCode));
  EXPECT_TRUE(codes->Check(kAlice, "123456", 1));  // two wrong, then right: fine

  ASSERT_EQ(*codes->Issue(kAlice, 2, random), "654321");
  EXPECT_EQ(codes->Check(kAlice, "000000", 3).error().detail, Detail(VerifyErr::kWrongCode));
  EXPECT_EQ(codes->Check(kAlice, "000001", 3).error().detail, Detail(VerifyErr::kWrongCode));
  auto third = codes->Check(kAlice, "000002", 3);
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().detail, Detail(VerifyErr::kAttemptsExhausted));
  EXPECT_EQ(third.error().code, Code::kResourceExhausted);
  EXPECT_EQ(codes->Check(kAlice, "654321", 4).error().detail, Detail(VerifyErr::kNoCode));
}

TEST(VerificationCodes, RateLimitAtAndPastBurst) {
  auto codes = MakeCodes();  // 1 per minute, burst 3
  ASSERT_NE(codes, nullptr);
  crypto::DeterministicRandom random(2);
  EXPECT_TRUE(codes->Issue(kAlice, 0, random));
  EXPECT_TRUE(codes->Issue(kAlice, 0, random));
  EXPECT_TRUE(codes->Issue(kAlice, 0, random));  // at the burst
  auto past = codes->Issue(kAlice, 0, random);
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().detail, Detail(VerifyErr::kRateLimited));
  EXPECT_EQ(past.error().code, Code::kResourceExhausted);
  EXPECT_NE(std::string(past.error().message).find("registration.code_rate"), std::string::npos);
  EXPECT_TRUE(codes->Issue(kBob, 0, random));  // per handle
  EXPECT_FALSE(codes->Issue(kAlice, 59'999, random));
  EXPECT_TRUE(codes->Issue(kAlice, 60'000, random));  // one token a minute
  EXPECT_FALSE(codes->Issue(kAlice, 60'001, random));
}

TEST(VerificationCodes, VoidingACodeDoesNotResetTheRateLimit) {
  auto codes = MakeCodes();
  ASSERT_NE(codes, nullptr);
  crypto::DeterministicRandom random(3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(codes->Issue(kAlice, 0, random));
    for (int j = 0; j < 3; ++j) EXPECT_FALSE(codes->Check(kAlice, "abcdef", 0));
  }
  EXPECT_EQ(codes->Issue(kAlice, 0, random).error().detail, Detail(VerifyErr::kRateLimited));
}

TEST(VerificationCodes, MaxPendingAtAndPastTheEdge) {
  CodeOptions options = TestOptions();
  options.max_pending_codes = 3;
  auto codes = MakeCodes(options);
  ASSERT_NE(codes, nullptr);
  crypto::DeterministicRandom random(4);
  EXPECT_TRUE(codes->Issue("+12025550001", 0, random));
  EXPECT_TRUE(codes->Issue("+12025550002", 0, random));
  EXPECT_TRUE(codes->Issue("+12025550003", 0, random));  // at the limit
  EXPECT_EQ(codes->remembered(), 3u);
  auto past = codes->Issue("+12025550004", 0, random);
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().detail, Detail(VerifyErr::kTooManyPending));
  EXPECT_NE(std::string(past.error().message).find("registration.max_pending_codes"),
            std::string::npos);
  EXPECT_TRUE(codes->Issue("+12025550002", 1, random));  // a known handle needs no slot
  // Once codes expired and buckets refilled (600 s > 3 / (1/60 s)), the slots come back.
  EXPECT_FALSE(codes->Issue("+12025550004", 599'999, random));
  EXPECT_TRUE(codes->Issue("+12025550004", 600'000, random));
  EXPECT_EQ(codes->remembered(), 2u);  // 0002 (issued again at 1) and 0004
}

TEST(VerificationCodes, RejectsBadHandlesAndOptions) {
  auto codes = MakeCodes();
  ASSERT_NE(codes, nullptr);
  crypto::DeterministicRandom random(5);
  auto bad = codes->Issue("12025550123", 0, random);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().detail, Detail(VerifyErr::kBadHandle));
  EXPECT_EQ(bad.error().code, Code::kInvalidArgument);
  CodeOptions o = TestOptions();
  o.code_attempts = 0;
  EXPECT_FALSE(VerificationCodes::Create(o));
  o = TestOptions();
  o.code_ttl_s = 0;
  EXPECT_FALSE(VerificationCodes::Create(o));
  o = TestOptions();
  o.max_pending_codes = 0;
  EXPECT_FALSE(VerificationCodes::Create(o));
  o = TestOptions();
  o.code_burst = 0.5;
  EXPECT_FALSE(VerificationCodes::Create(o));
  o.code_rate_per_s = 0;  // limit off: the burst does not matter
  EXPECT_TRUE(VerificationCodes::Create(o));
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sotto-verify-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data()) ? pattern : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(LogCodeSender, AppendsLinesWithMode0600) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/verification-codes.log";
  {
    auto sender = LogCodeSender::Create(path);
    ASSERT_TRUE(sender) << sender.error().ToString();
    EXPECT_TRUE((*sender)->Send(kAlice, "123456"));
    EXPECT_TRUE((*sender)->Send(kBob, "000042"));
    auto bad = (*sender)->Send("+1202\n+15550000000", "123456");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().detail, Detail(CodeSenderErr::kBadInput));
    EXPECT_FALSE((*sender)->Send(kAlice, "12345\n"));
  }
  EXPECT_EQ(ReadFile(path), "+12025550123 123456\n+4915112345678 000042\n");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Reopening appends.
  auto again = LogCodeSender::Create(path);
  ASSERT_TRUE(again);
  EXPECT_TRUE((*again)->Send(kAlice, "999999"));
  EXPECT_EQ(ReadFile(path), "+12025550123 123456\n+4915112345678 000042\n+12025550123 999999\n");
}

TEST(LogCodeSender, TightensAnExistingFile) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/codes.log";
  { std::ofstream(path) << ""; }
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto sender = LogCodeSender::Create(path);
  ASSERT_TRUE(sender);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(LogCodeSender::Create(dir.path()));  // a directory
}

TEST(LogCodeSender, ConcurrentLinesDoNotInterleave) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/codes.log";
  auto sender = LogCodeSender::Create(path);
  ASSERT_TRUE(sender);
  constexpr int kThreads = 4;
  constexpr int kLines = 200;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string handle = "+1202555000" + std::to_string(t);
      for (int i = 0; i < kLines; ++i) EXPECT_TRUE((*sender)->Send(handle, "123456"));
    });
  }
  for (auto& th : threads) th.join();
  std::istringstream in(ReadFile(path));
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    ++count;
    EXPECT_EQ(line.size(), 19u) << line;
    EXPECT_EQ(line.rfind("+1202555000", 0), 0u) << line;
    EXPECT_EQ(line.substr(12), " 123456") << line;
  }
  EXPECT_EQ(count, kThreads * kLines);
}

// Records requests for the webhook tests and answers with `status`.
struct Receiver {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<net::HttpRequest> requests;  // GUARDED_BY(mu)
  unsigned status = 200;                   // GUARDED_BY(mu)
  bool hold = false;                       // GUARDED_BY(mu): block answers until cleared

  bool WaitFor(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, kWaitBound, [&] { return requests.size() >= n; });
  }
};

std::unique_ptr<net::HttpServer> StartReceiver(Receiver& receiver) {
  auto server = net::HttpServer::Start(
      *net::ParseHostPort("127.0.0.1:0"),
      [&receiver](const net::HttpRequest& r) {
        std::unique_lock lock(receiver.mu);
        const unsigned status = receiver.status;  // as of the request's arrival
        receiver.requests.push_back(r);
        receiver.cv.notify_all();
        receiver.cv.wait_for(lock, kWaitBound, [&] { return !receiver.hold; });
        return net::HttpResponse{status, "text/plain", ""};
      },
      4096);
  return server ? std::move(*server) : nullptr;
}

TEST(WebhookCodeSender, PostsJson) {
  Receiver receiver;
  auto server = StartReceiver(receiver);
  ASSERT_NE(server, nullptr);
  const std::string url = "http://127.0.0.1:" + std::to_string(server->port()) + "/sms";
  auto sender = WebhookCodeSender::Create(url);
  ASSERT_TRUE(sender) << sender.error().ToString();
  ASSERT_TRUE((*sender)->Send(kAlice, "012345"));
  ASSERT_TRUE(receiver.WaitFor(1));
  {
    std::lock_guard lock(receiver.mu);
    const net::HttpRequest& r = receiver.requests[0];
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/sms");
    EXPECT_EQ(r.body, R"({"handle":"+12025550123","code":"012345"})");
    EXPECT_EQ(r.Header("Content-Type"), "application/json");
  }
  // Another code proves the first was accounted (the worker is sequential).
  ASSERT_TRUE((*sender)->Send(kBob, "000001"));
  ASSERT_TRUE(receiver.WaitFor(2));
  EXPECT_GE((*sender)->delivered(), 1u);  // the second may be accounted too by now
  EXPECT_EQ((*sender)->failed(), 0u);
  sender->reset();
  std::lock_guard lock(receiver.mu);
  EXPECT_EQ(receiver.requests.size(), 2u);
}

TEST(WebhookCodeSender, RetriesTwiceThenCountsAFailure) {
  Receiver receiver;
  receiver.status = 503;
  auto server = StartReceiver(receiver);
  ASSERT_NE(server, nullptr);
  const std::string url = "http://127.0.0.1:" + std::to_string(server->port()) + "/";
  auto sender = WebhookCodeSender::Create(url, {milliseconds(5'000), milliseconds(1)});
  ASSERT_TRUE(sender);
  ASSERT_TRUE((*sender)->Send(kBob, "654321"));
  ASSERT_TRUE(receiver.WaitFor(kWebhookAttempts));
  {
    std::lock_guard lock(receiver.mu);
    receiver.status = 200;
  }
  // The worker is sequential: once the next code's POST arrives, the first is accounted.
  ASSERT_TRUE((*sender)->Send(kBob, "111111"));
  ASSERT_TRUE(receiver.WaitFor(kWebhookAttempts + 1));
  EXPECT_EQ((*sender)->failed(), 1u);
  EXPECT_EQ((*sender)->dropped(), 0u);
  sender->reset();
  std::lock_guard lock(receiver.mu);
  EXPECT_EQ(receiver.requests.size(), size_t{kWebhookAttempts} + 1);
}

TEST(WebhookCodeSender, QueueIsBounded) {
  Receiver receiver;
  receiver.hold = true;
  auto server = StartReceiver(receiver);
  ASSERT_NE(server, nullptr);
  const std::string url = "http://127.0.0.1:" + std::to_string(server->port()) + "/";
  auto sender = WebhookCodeSender::Create(url);
  ASSERT_TRUE(sender);
  ASSERT_TRUE((*sender)->Send(kAlice, "000001"));
  ASSERT_TRUE(receiver.WaitFor(1));  // the worker is now blocked in that POST
  for (size_t i = 0; i < kMaxWebhookQueue; ++i) {
    ASSERT_TRUE((*sender)->Send(kAlice, "000002")) << i;  // up to the limit
  }
  auto full = (*sender)->Send(kAlice, "000003");
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().detail, Detail(CodeSenderErr::kQueueFull));
  EXPECT_EQ((*sender)->dropped(), 1u);
  {
    std::lock_guard lock(receiver.mu);
    receiver.hold = false;
  }
  receiver.cv.notify_all();
  sender->reset();  // the queued codes are dropped on shutdown
}

TEST(WebhookCodeSender, RejectsBadUrl) {
  auto sender = WebhookCodeSender::Create("mailto:codes@example.org");
  ASSERT_FALSE(sender);
  EXPECT_EQ(sender.error().detail, Detail(CodeSenderErr::kBadUrl));
}

}  // namespace
}  // namespace sotto::server
