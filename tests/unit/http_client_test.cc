// Tests of net::HttpPost and net::ParseUrl against a real net::HttpServer on 127.0.0.1
// (port 0). No test needs the internet.
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <string>

#include "net/http_client.h"
#include "net/http_server.h"

namespace sotto::net {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kTimeout{5'000};

uint16_t Detail(HttpClientErr e) { return static_cast<uint16_t>(e); }

// Records the last request the server saw.
struct Recorder {
  std::mutex mu;
  HttpRequest last;  // GUARDED_BY(mu)
  int count = 0;     // GUARDED_BY(mu)
};

std::unique_ptr<HttpServer> StartServer(Recorder& recorder, const HttpResponse& response,
                                        const char* address = "127.0.0.1:0") {
  auto server = HttpServer::Start(
      *ParseHostPort(address),
      [&recorder, response](const HttpRequest& r) {
        std::lock_guard lock(recorder.mu);
        recorder.last = r;
        ++recorder.count;
        return response;
      },
      1024 * 1024);
  if (!server) return nullptr;
  return std::move(*server);
}

TEST(HttpClient, PostsBodyContentTypeAndHeaders) {
  Recorder recorder;
  auto server = StartServer(recorder, {200, "text/plain", "ok"});
  ASSERT_NE(server, nullptr);
  const std::string url = "http://127.0.0.1:" + std::to_string(server->port()) + "/up/abc?x=1";
  const HttpHeader headers[] = {{"TTL", "86400"}, {"Urgency", "high"}};
  auto r = HttpPost(url, "application/json", R"({"v":1})", kTimeout, headers);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, 200u);
  EXPECT_EQ(r->body, "ok");
  std::lock_guard lock(recorder.mu);
  EXPECT_EQ(recorder.count, 1);
  EXPECT_EQ(recorder.last.method, "POST");
  EXPECT_EQ(recorder.last.target, "/up/abc?x=1");
  EXPECT_EQ(recorder.last.body, R"({"v":1})");
  EXPECT_EQ(recorder.last.Header("content-type"), "application/json");
  EXPECT_EQ(recorder.last.Header("TTL"), "86400");
  EXPECT_EQ(recorder.last.Header("Urgency"), "high");
  EXPECT_EQ(recorder.last.Header("Host"), "127.0.0.1:" + std::to_string(server->port()));
}

TEST(HttpClient, ReturnsNon2xxStatus) {
  Recorder recorder;
  auto server = StartServer(recorder, {404, "text/plain", "gone\n"});
  ASSERT_NE(server, nullptr);
  auto r =
      HttpPost("http://127.0.0.1:" + std::to_string(server->port()), "text/plain", "x", kTimeout);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, 404u);
  EXPECT_EQ(r->body, "gone\n");
  std::lock_guard lock(recorder.mu);
  EXPECT_EQ(recorder.last.target, "/");
}

TEST(HttpClient, ResponseBodyIsCapped) {
  Recorder recorder;
  auto at_limit =
      StartServer(recorder, {200, "text/plain", std::string(kMaxResponseBodyBytes, 'a')});
  ASSERT_NE(at_limit, nullptr);
  auto ok =
      HttpPost("http://127.0.0.1:" + std::to_string(at_limit->port()), "text/plain", "", kTimeout);
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->body.size(), kMaxResponseBodyBytes);

  auto past =
      StartServer(recorder, {200, "text/plain", std::string(kMaxResponseBodyBytes + 1, 'a')});
  ASSERT_NE(past, nullptr);
  auto r = HttpPost("http://127.0.0.1:" + std::to_string(past->port()), "text/plain", "", kTimeout);
  ASSERT_FALSE(r) << r->body.size();
  EXPECT_EQ(r.error().detail, Detail(HttpClientErr::kTooLarge));
}

TEST(HttpClient, ConnectionRefused) {
  // Bind a free port, then close it: nothing listens there.
  auto fd = Listen(*ParseHostPort("127.0.0.1:0"), 1, ReusePort::kNo);
  ASSERT_TRUE(fd);
  const uint16_t port = LocalAddress(*fd)->port();
  ::close(*fd);
  auto r = HttpPost("http://127.0.0.1:" + std::to_string(port) + "/", "text/plain", "x", kTimeout);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().detail, Detail(HttpClientErr::kConnect));
}

TEST(HttpClient, TimesOutAgainstSilentListener) {
  // The kernel completes the TCP handshake from the backlog; nobody ever reads or answers.
  auto fd = Listen(*ParseHostPort("127.0.0.1:0"), 8, ReusePort::kNo);
  ASSERT_TRUE(fd);
  const uint16_t port = LocalAddress(*fd)->port();
  const auto start = std::chrono::steady_clock::now();
  auto r = HttpPost("http://127.0.0.1:" + std::to_string(port) + "/", "text/plain", "x",
                    milliseconds(200));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ::close(*fd);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().detail, Detail(HttpClientErr::kTimeout));
  EXPECT_GE(elapsed, milliseconds(190));
  EXPECT_LT(elapsed, milliseconds(2'000));
}

TEST(HttpClient, TlsAgainstPlainServerFails) {
  Recorder recorder;
  auto server = StartServer(recorder, {200, "text/plain", "ok"});
  ASSERT_NE(server, nullptr);
  auto r = HttpPost("https://127.0.0.1:" + std::to_string(server->port()) + "/", "text/plain", "x",
                    kTimeout);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().detail, Detail(HttpClientErr::kTls));
}

TEST(HttpClient, ResolvesLocalhost) {
  // /etc/hosts only; if localhost resolves to ::1 first, the client moves on to 127.0.0.1.
  Recorder recorder;
  auto server = StartServer(recorder, {200, "text/plain", "ok"});
  ASSERT_NE(server, nullptr);
  auto r = HttpPost("http://localhost:" + std::to_string(server->port()) + "/n", "text/plain", "x",
                    kTimeout);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, 200u);
}

TEST(HttpClient, Ipv6Literal) {
  Recorder recorder;
  auto server = StartServer(recorder, {204, "text/plain", ""}, "[::1]:0");
  if (server == nullptr) GTEST_SKIP() << "no IPv6 loopback here";
  auto r = HttpPost("http://[::1]:" + std::to_string(server->port()) + "/six", "text/plain", "6",
                    kTimeout);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, 204u);
  std::lock_guard lock(recorder.mu);
  EXPECT_EQ(recorder.last.Header("Host"), "[::1]:" + std::to_string(server->port()));
}

TEST(HttpClient, RejectsBadHeadersAndUrls) {
  const HttpHeader crlf[] = {{"X", "a\r\nInjected: 1"}};
  auto r = HttpPost("http://127.0.0.1:1/", "text/plain", "", kTimeout, crlf);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().detail, Detail(HttpClientErr::kBadHeader));
  const HttpHeader reserved[] = {{"content-length", "5"}};
  EXPECT_FALSE(HttpPost("http://127.0.0.1:1/", "text/plain", "", kTimeout, reserved));
  const HttpHeader bad_name[] = {{"Bad Name", "x"}};
  EXPECT_FALSE(HttpPost("http://127.0.0.1:1/", "text/plain", "", kTimeout, bad_name));
  auto u = HttpPost("ftp://127.0.0.1/", "text/plain", "", kTimeout);
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().detail, Detail(HttpClientErr::kBadUrl));
}

TEST(ParseUrl, Defaults) {
  auto https = ParseUrl("https://push.example.org");
  ASSERT_TRUE(https);
  EXPECT_EQ(https->scheme, Scheme::kHttps);
  EXPECT_EQ(https->host, "push.example.org");
  EXPECT_EQ(https->port, 443);
  EXPECT_EQ(https->target, "/");

  auto http = ParseUrl("HTTP://10.0.0.1/a/b?c=d#frag");
  ASSERT_TRUE(http);
  EXPECT_EQ(http->scheme, Scheme::kHttp);
  EXPECT_EQ(http->host, "10.0.0.1");
  EXPECT_EQ(http->port, 80);
  EXPECT_EQ(http->target, "/a/b?c=d");

  auto query = ParseUrl("http://h:8080?x=1");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->port, 8080);
  EXPECT_EQ(query->target, "/?x=1");
}

TEST(ParseUrl, Ipv6Literals) {
  auto v6 = ParseUrl("https://[2001:db8::1]:8443/wp");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_EQ(v6->port, 8443);
  EXPECT_EQ(v6->target, "/wp");
  auto v6_default = ParseUrl("http://[::1]");
  ASSERT_TRUE(v6_default);
  EXPECT_EQ(v6_default->host, "::1");
  EXPECT_EQ(v6_default->port, 80);
  EXPECT_FALSE(ParseUrl("http://[::1/"));            // no ']'
  EXPECT_FALSE(ParseUrl("http://[not-v6]/"));        // not an address
  EXPECT_FALSE(ParseUrl("http://[::1]x/"));          // junk after ']'
  EXPECT_FALSE(ParseUrl("http://[fe80::1%eth0]/"));  // zone ids are not URLs' business
  EXPECT_FALSE(ParseUrl("http://::1/"));             // unbracketed
}

TEST(ParseUrl, Rejects) {
  for (const char* bad : {"",
                          "example.org/path",
                          "ftp://example.org/",
                          "file:///etc/passwd",
                          "ws://h/",
                          "javascript://x",
                          "http:/h/",
                          "http://",
                          "http:///path",
                          "http://:80/",
                          "http://user:pw@h/",
                          "http://h:0/",
                          "http://h:65536/",
                          "http://h:/",
                          "http://h:8x/",
                          "http://h:123456/",
                          "http://h /",
                          "http://h/a b",
                          "http://h/\r\n",
                          "http://h\x80/",
                          "http://ho$t/"}) {
    auto r = ParseUrl(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().detail, Detail(HttpClientErr::kBadUrl)) << bad;
    }
  }
  EXPECT_TRUE(ParseUrl("http://h:65535/"));
  EXPECT_TRUE(ParseUrl("http://h:1/"));
  EXPECT_FALSE(ParseUrl("http://h/" + std::string(kMaxUrlBytes, 'a')));
}

TEST(IsLocalOrPrivateHost, RangesAndNames) {
  for (const char* host : {"localhost", "LOCALHOST.", "a.localhost", "127.0.0.1", "127.9.9.9",
                           "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                           "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "::",
                           "fd00::1", "fc00::", "fe80::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1"}) {
    EXPECT_TRUE(IsLocalOrPrivateHost(host)) << host;
  }
  for (const char* host : {"push.example.org", "8.8.8.8", "172.15.255.255", "172.32.0.1",
                           "100.128.0.1", "2001:db8::1", "::ffff:8.8.8.8", "169.253.1.1"}) {
    EXPECT_FALSE(IsLocalOrPrivateHost(host)) << host;
  }
}

// inet_aton's other spellings of 127.0.0.1 (and friends): a resolver would connect to
// them, the literal check would not see them. ParseUrl refuses them all.
TEST(IsNonCanonicalNumericHost, InetAtonFormsAndNumericLastLabels) {
  for (const char* host : {"127.1", "0x7f000001", "2130706433", "0177.0.0.1", "0", "0x7f.1",
                           "127.0.1", "127.000.0.1", "127.0.0.01", "127.0.0.1.", "1.2.3.4.5",
                           "999.1.1.1", "a.123", "example.0x1f", "4294967296", "0X7F000001"}) {
    EXPECT_TRUE(IsNonCanonicalNumericHost(host)) << host;
    auto r = ParseUrl(std::string("http://") + host + "/x");
    EXPECT_FALSE(r) << host;
    if (!r) {
      EXPECT_EQ(r.error().detail, Detail(HttpClientErr::kBadUrl)) << host;
    }
  }
  for (const char* host : {"127.0.0.1", "8.8.8.8", "0.0.0.0", "push.example.org", "1password.com",
                           "x0.example", "host-1", "a.b1", "localhost"}) {
    EXPECT_FALSE(IsNonCanonicalNumericHost(host)) << host;
    EXPECT_TRUE(ParseUrl(std::string("http://") + host + "/x")) << host;
  }
}

TEST(IsLocalOrPrivateHost, Ipv6FormsThatEmbedIpv4) {
  for (const char* host :
       {"::127.0.0.1", "::8.8.8.8", "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b:1::1",
        "2002:7f00:1::", "2002:a00:1::1", "2001:0:1::1", "100::1", "fec0::1", "ff02::1",
        "::ffff:7f00:1", "::ffff:169.254.1.1", "198.18.0.1", "192.0.0.8", "255.255.255.255"}) {
    EXPECT_TRUE(IsLocalOrPrivateHost(host)) << host;
  }
  for (const char* host : {"64:ff9b::808:808", "2002:808:808::1", "2606:4700::1111"}) {
    EXPECT_FALSE(IsLocalOrPrivateHost(host)) << host;
  }
  const uint8_t v4_public[] = {8, 8, 4, 4};
  const uint8_t v4_cgnat[] = {100, 100, 1, 1};
  EXPECT_TRUE(IsPublicAddressBytes(v4_public));
  EXPECT_FALSE(IsPublicAddressBytes(v4_cgnat));
  const uint8_t odd_size[] = {1, 2, 3};
  EXPECT_FALSE(IsPublicAddressBytes(odd_size));
}

TEST(HttpClient, PublicOnlyChecksTheResolvedAddressesAndSendsNothing) {
  Recorder recorder;
  auto server = StartServer(recorder, {200, "text/plain", "ok"});
  ASSERT_NE(server, nullptr);
  const std::string port = std::to_string(server->port());
  for (const std::string& url :
       {"http://localhost:" + port + "/n", "http://127.0.0.1:" + port + "/n"}) {
    auto r = HttpPost(url, "text/plain", "x", kTimeout, {}, AddressPolicy::kPublicOnly);
    ASSERT_FALSE(r) << url;
    EXPECT_EQ(r.error().code, Code::kPermissionDenied) << url;
    EXPECT_EQ(r.error().detail, Detail(HttpClientErr::kForbiddenAddress)) << url;
  }
  {
    std::lock_guard lock(recorder.mu);
    EXPECT_EQ(recorder.count, 0);
  }
  auto allowed = HttpPost("http://localhost:" + port + "/n", "text/plain", "x", kTimeout, {},
                          AddressPolicy::kAny);
  ASSERT_TRUE(allowed) << allowed.error().ToString();
  std::lock_guard lock(recorder.mu);
  EXPECT_EQ(recorder.count, 1);
  EXPECT_EQ(recorder.last.Header("Host"), "localhost:" + port) << "the Host header keeps the name";
}

}  // namespace
}  // namespace sotto::net
