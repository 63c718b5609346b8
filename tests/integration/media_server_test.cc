// The media blob service in-process over real HTTP on 127.0.0.1: upload tokens (required,
// single-use, bound to the blob and its size, expiring), the size limit at and past its
// edge, downloads with Range (206/416) and HEAD, resume, and expiry by the sweep. The
// clock is the test's, so nothing waits for time to pass.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "client/media.h"
#include "net/blocking_stream.h"
#include "server/media.h"

namespace sotto::server {
namespace {

namespace fs = std::filesystem;
namespace http = boost::beast::http;

struct Reply {
  unsigned status = 0;
  std::string body;
  std::string content_range;
  std::string content_length;
};

uint64_t RealNowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

class MediaServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sotto-media-server-XXXXXX";
    dir_ = mkdtemp(tmpl);
    config_.listen = "127.0.0.1:0";
    config_.max_blob_bytes = 1000;
    config_.blob_ttl_s = 60;
    config_.upload_token_ttl_s = 10;
    config_.sweep_interval_ms = 3'600'000;  // the test runs sweeps itself
    ASSERT_NO_FATAL_FAILURE(Start());
  }
  void TearDown() override {
    service_.reset();
    fs::remove_all(dir_);
  }
  void Start() {
    now_ = RealNowMs();
    auto started = MediaService::Start(config_, dir_ + "/media", [this] { return now_.load(); });
    ASSERT_TRUE(started) << started.error().ToString();
    service_ = std::move(*started);
  }

  // One HTTP exchange: `head` gets Host/Connection added; `body` follows it. A failure to
  // connect is the test's failure, and gives status 0, which no check expects.
  Reply Exchange(const std::string& request_line, const std::string& headers,
                 const std::string& body = "") {
    auto address = net::ParseHostPort("127.0.0.1:" + std::to_string(service_->port()));
    if (!address) {
      ADD_FAILURE() << address.error().ToString();
      return Reply{};
    }
    auto stream = net::BlockingStream::Connect(*address, 5'000);
    if (!stream) {
      ADD_FAILURE() << stream.error().ToString();
      return Reply{};
    }
    const std::string request = request_line + " HTTP/1.1\r\nHost: test\r\n" + headers +
                                "Connection: close\r\n\r\n" + body;
    boost::system::error_code ec;
    stream->WriteAll(request, ec);
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    if (request_line.rfind("HEAD", 0) == 0) parser.skip(true);
    http::read(*stream, buffer, parser, ec);
    Reply r;
    if (ec) return r;
    r.status = parser.get().result_int();
    r.body = parser.get().body();
    r.content_range = std::string(parser.get()[http::field::content_range]);
    r.content_length = std::string(parser.get()[http::field::content_length]);
    return r;
  }
  Reply Put(const std::string& id, const std::string& token, const std::string& body,
            std::optional<size_t> declared = std::nullopt) {
    const std::string auth = token.empty() ? "" : "Authorization: Bearer " + token + "\r\n";
    return Exchange("PUT /v1/media/" + id,
                    auth + fmt::format("Content-Length: {}\r\n", declared.value_or(body.size())),
                    body);
  }
  Reply Get(const std::string& id, const std::string& range = "") {
    return Exchange("GET /v1/media/" + id, range.empty() ? "" : "Range: " + range + "\r\n");
  }
  // Uploads `body` with a fresh token; its blob id, or "" (and the test's failure).
  std::string Stored(const std::string& body) {
    auto grant = service_->IssueUpload(body.size());
    if (!grant) {
      ADD_FAILURE() << grant.error().ToString();
      return "";
    }
    const unsigned status = Put(grant->blob_id, grant->token, body).status;
    if (status != 201u) {
      ADD_FAILURE() << "upload answered " << status;
      return "";
    }
    return grant->blob_id;
  }

  // Awaits the service's open-connection gauge reaching `n` (5 s at most).
  bool AwaitActive(uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (service_->metrics().active_transfers.load() != n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::yield();
    }
    return true;
  }

  std::string dir_;
  MediaConfig config_;
  std::atomic<uint64_t> now_{0};
  std::unique_ptr<MediaService> service_;
};

TEST_F(MediaServerTest, UploadNeedsTheSingleUseTokenForThatBlobAndSize) {
  const std::string body(100, 'x');
  auto grant = service_->IssueUpload(body.size());
  ASSERT_TRUE(grant);
  EXPECT_TRUE(IsBlobId(grant->blob_id));
  EXPECT_EQ(grant->token.size(), 64u);
  EXPECT_EQ(Put(grant->blob_id, "", body).status, 401u);                       // no token
  EXPECT_EQ(Put(grant->blob_id, std::string(64, '0'), body).status, 403u);     // wrong token
  auto other = service_->IssueUpload(body.size());
  ASSERT_TRUE(other);
  EXPECT_EQ(Put(other->blob_id, grant->token, body).status, 403u);  // bound to its blob id
  EXPECT_EQ(Put(grant->blob_id, grant->token, body.substr(1)).status, 400u);  // wrong size
  EXPECT_EQ(Put(grant->blob_id, grant->token, body).status, 403u);  // that consumed it
  EXPECT_EQ(Get(grant->blob_id).status, 404u);

  EXPECT_EQ(Put(other->blob_id, other->token, body).status, 201u);
  EXPECT_EQ(Put(other->blob_id, other->token, body).status, 403u);  // single use
  const Reply got = Get(other->blob_id);
  EXPECT_EQ(got.status, 200u);
  EXPECT_EQ(got.body, body);
  EXPECT_EQ(service_->metrics().uploads.load(), 1u);
  // Exactly the seven refusals above: the 401, the four 403s, the 400 and the 404.
  EXPECT_EQ(service_->metrics().rejected.load(), 7u);
}

TEST_F(MediaServerTest, ExpiredTokenIsRefused) {
  auto grant = service_->IssueUpload(10);
  ASSERT_TRUE(grant);
  now_ += uint64_t{config_.upload_token_ttl_s} * 1000;  // exactly at the TTL: expired
  EXPECT_EQ(Put(grant->blob_id, grant->token, std::string(10, 'a')).status, 403u);
}

TEST_F(MediaServerTest, SizeLimitAtAndPastTheEdge) {
  const std::string at_edge = Stored(std::string(config_.max_blob_bytes, 'm'));
  ASSERT_FALSE(at_edge.empty());
  EXPECT_EQ(Get(at_edge).body.size(), config_.max_blob_bytes);
  auto past = service_->IssueUpload(config_.max_blob_bytes + 1);
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().detail, static_cast<uint16_t>(MediaErr::kTooLarge));
  // Refused up front from Content-Length, before any token check or body byte.
  auto grant = service_->IssueUpload(10);
  ASSERT_TRUE(grant);
  const Reply r = Put(grant->blob_id, grant->token, "", config_.max_blob_bytes + 1);
  EXPECT_EQ(r.status, 413u);
  EXPECT_NE(r.body.find("max_blob_bytes"), std::string::npos);
  EXPECT_EQ(Exchange("PUT /v1/media/" + grant->blob_id, "Transfer-Encoding: chunked\r\n"
                     "Authorization: Bearer " + grant->token + "\r\n", "0\r\n\r\n").status, 411u);
}

TEST_F(MediaServerTest, RangesHeadAndNotFound) {
  std::string body;
  for (int i = 0; i < 100; ++i) body.push_back(static_cast<char>('a' + i % 26));
  const std::string id = Stored(body);
  ASSERT_FALSE(id.empty());
  Reply r = Get(id, "bytes=10-");
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, body.substr(10));
  EXPECT_EQ(r.content_range, "bytes 10-99/100");
  r = Get(id, "bytes=10-19");
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, body.substr(10, 10));
  r = Get(id, "bytes=-5");
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, body.substr(95));
  r = Get(id, "bytes=99-");  // the last byte: the edge
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, body.substr(99));
  r = Get(id, "bytes=100-");  // past the end
  EXPECT_EQ(r.status, 416u);
  EXPECT_EQ(r.content_range, "bytes */100");
  r = Get(id, "bytes=99999999999999999999-");  // past 2^64-1: still past the end
  EXPECT_EQ(r.status, 416u);
  EXPECT_EQ(r.content_range, "bytes */100");
  r = Get(id, "bytes=5-2");  // invalid: ignored, the whole blob
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, body);
  r = Exchange("HEAD /v1/media/" + id, "");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_length, "100");
  EXPECT_EQ(Get("AAAAAAAAAAAAAAAAAAAAAA").status, 404u);  // well-formed, unknown
  EXPECT_EQ(Get("../../etc/passwd").status, 404u);
  EXPECT_EQ(Exchange("DELETE /v1/media/" + id, "").status, 405u);
}

TEST_F(MediaServerTest, ClientResumesAPartialDownload) {
  std::string body(900, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 7);
  const std::string id = Stored(body);
  ASSERT_FALSE(id.empty());
  const fs::path part = fs::path(dir_) / "part";
  std::ofstream(part, std::ios::binary) << body.substr(0, 300);
  const client::MediaEndpoint endpoint{"127.0.0.1", service_->port(), ""};
  auto fetched = client::DownloadBlob(endpoint, id, body.size(), part);
  ASSERT_TRUE(fetched) << fetched.error().ToString();
  EXPECT_EQ(*fetched, 600u);
  std::ifstream in(part, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), body);
  // A wrong expected size is refused, not silently accepted.
  fs::remove(part);
  auto wrong = client::DownloadBlob(endpoint, id, body.size() + 16, part);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().detail, static_cast<uint16_t>(client::MediaErr::kRejected));
}

TEST_F(MediaServerTest, BlobsExpireAndTheSweepDeletesThemAndStaleParts) {
  const std::string id = Stored("expiring");
  ASSERT_FALSE(id.empty());
  const fs::path stale_part = fs::path(dir_) / "media" / "BBBBBBBBBBBBBBBBBBBBBB.part";
  std::ofstream(stale_part) << "half an upload";
  service_->Sweep();
  EXPECT_EQ(Get(id).status, 200u);  // before its TTL
  EXPECT_TRUE(fs::exists(stale_part));
  now_ += uint64_t{config_.blob_ttl_s} * 1000 + 1'000;
  EXPECT_EQ(Get(id).status, 404u);  // expired: gone even before the sweep
  service_->Sweep();
  EXPECT_EQ(service_->metrics().blobs_expired.load(), 1u);
  EXPECT_EQ(service_->metrics().parts_removed.load(), 1u);
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "media" / id));
  EXPECT_FALSE(fs::exists(stale_part));
  EXPECT_NE(service_->RenderPrometheus().find("sotto_media_blobs_expired_total 1"), std::string::npos);
}

TEST_F(MediaServerTest, TooManyTokensIsRefusedByName) {
  service_.reset();
  config_.max_pending_tokens = 2;
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_TRUE(service_->IssueUpload(1));
  ASSERT_TRUE(service_->IssueUpload(1));
  auto third = service_->IssueUpload(1);
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().detail, static_cast<uint16_t>(MediaErr::kTooManyTokens));
  now_ += uint64_t{config_.upload_token_ttl_s} * 1000;  // the old ones expire
  EXPECT_TRUE(service_->IssueUpload(1));
}

// One account at media.max_tokens_per_account cannot take the others' room; its used and
// expired tokens free its slots; the server-wide bound stays the last resort.
TEST_F(MediaServerTest, TokensAreBoundedPerOwnerBeforeTheServer) {
  service_.reset();
  config_.max_tokens_per_account = 2;
  config_.max_pending_tokens = 4;
  Start();
  auto first = service_->IssueUpload(1, "abuser");
  ASSERT_TRUE(first);
  ASSERT_TRUE(service_->IssueUpload(1, "abuser"));  // at the limit
  for (int i = 0; i < 50; ++i) {
    auto refused = service_->IssueUpload(1, "abuser");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().detail, static_cast<uint16_t>(MediaErr::kTooManyForOwner));
  }
  EXPECT_TRUE(service_->IssueUpload(1, "user"));  // another account is served
  EXPECT_EQ(Put(first->blob_id, first->token, "x").status, 201u);  // a used token frees a slot
  auto third = service_->IssueUpload(1, "abuser");
  ASSERT_TRUE(third);
  EXPECT_FALSE(service_->IssueUpload(1, "abuser"));
  now_ += uint64_t{config_.upload_token_ttl_s} * 1000;  // every token expires
  EXPECT_TRUE(service_->IssueUpload(1, "abuser"));
  EXPECT_TRUE(service_->IssueUpload(1, "abuser"));
  EXPECT_TRUE(service_->IssueUpload(1, "user"));
  EXPECT_TRUE(service_->IssueUpload(1, "other"));
  auto full = service_->IssueUpload(1, "fifth");  // 4 unused: the whole server's bound
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().detail, static_cast<uint16_t>(MediaErr::kTooManyTokens));
}

TEST_F(MediaServerTest, TransfersAreBoundedAndIdleOnesAreCut) {
  service_.reset();
  config_.max_transfers = 1;
  config_.idle_timeout_ms = 300;
  ASSERT_NO_FATAL_FAILURE(Start());
  auto address = net::ParseHostPort("127.0.0.1:" + std::to_string(service_->port()));
  ASSERT_TRUE(address);
  // One connection that sends half a request head and then nothing: it holds the only slot.
  auto idle = net::BlockingStream::Connect(*address, 5'000);
  ASSERT_TRUE(idle);
  boost::system::error_code ec;
  idle->WriteAll(std::string_view("GET /v1/media/AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\n"), ec);
  ASSERT_FALSE(ec);
  // Await the server taking it (the slot is counted when the connection is accepted).
  ASSERT_TRUE(AwaitActive(1));
  EXPECT_EQ(Exchange("HEAD /v1/media/AAAAAAAAAAAAAAAAAAAAAA", "").status, 503u);  // past the edge
  EXPECT_GE(service_->metrics().rejected.load(), 1u);
  // The server closes the idle connection after media.idle_timeout_ms: our blocking read
  // returns end-of-stream (its own timeout is far longer, so this is the server's doing).
  char buf[64];
  net::BlockingStream& s = *idle;
  const auto start = std::chrono::steady_clock::now();
  size_t n = 0;
  do {
    n = s.ReadSome(std::span<char>(buf, sizeof(buf)), ec);
  } while (!ec && n > 0);
  EXPECT_EQ(ec, boost::asio::error::eof);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(4'000));
  // The slot is free again once the server's thread is done with it.
  ASSERT_TRUE(AwaitActive(0));
  EXPECT_EQ(Get("AAAAAAAAAAAAAAAAAAAAAA").status, 404u);  // at the edge: one transfer is served
}

// A connection to the service from `source` (all of 127.0.0.0/8 is loopback).
std::optional<net::BlockingStream> ConnectFrom(const std::string& source, uint16_t port) {
  auto to = net::ParseHostPort("127.0.0.1:" + std::to_string(port));
  auto from = net::ParseHostPort(source + ":0");
  if (!to || !from) return std::nullopt;
  auto fd = net::ConnectNonBlocking(*to, &*from);
  if (!fd) return std::nullopt;
  net::BlockingStream stream(*fd, 5'000);
  pollfd p{*fd, POLLOUT, 0};
  if (::poll(&p, 1, 5'000) != 1 || net::SocketError(*fd) != 0) return std::nullopt;
  return stream;
}

// Sends `text` one byte every `gap_ms` until the server closes the connection (or
// `give_up_ms` pass); returns how long the server let it go on.
std::chrono::milliseconds DribbleUntilClosed(net::BlockingStream& s, const std::string& text,
                                             int gap_ms, int give_up_ms) {
  const auto start = std::chrono::steady_clock::now();
  size_t at = 0;
  for (;;) {
    pollfd p{s.fd(), POLLIN, 0};
    // Waits for the server's close for one gap; a byte the server sends (a reply) or EOF
    // ends the dribble.
    if (::poll(&p, 1, gap_ms) == 1) break;
    const auto spent = std::chrono::steady_clock::now() - start;
    if (spent > std::chrono::milliseconds(give_up_ms)) break;
    if (at < text.size()) {
      if (::send(s.fd(), text.data() + at, 1, MSG_NOSIGNAL) != 1) break;
      ++at;
    }
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

TEST_F(MediaServerTest, RequestHeadHasATotalDeadlineDribblingCannotExtend) {
  service_.reset();
  config_.idle_timeout_ms = 5'000;  // every byte comes well within it
  config_.header_timeout_ms = 300;
  Start();
  auto s = ConnectFrom("127.0.0.1", service_->port());
  ASSERT_TRUE(s);
  const std::string head =
      "GET /v1/media/AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\n"
      "X-Padding: " +
      std::string(200, 'p') + "\r\n\r\n";
  const auto lasted = DribbleUntilClosed(*s, head, 20, 4'000);
  EXPECT_LT(lasted, std::chrono::milliseconds(2'000));  // cut near 300 ms, not after 5 s
  EXPECT_EQ(service_->metrics().slow_clients.load(), 1u);
  ASSERT_TRUE(AwaitActive(0));
}

TEST_F(MediaServerTest, UploadBodyBelowTheMinimumRateIsCut) {
  service_.reset();
  config_.idle_timeout_ms = 300;             // the grace before the rate is owed
  config_.min_transfer_bytes_per_s = 1'000;  // a byte per 50 ms is 20 B/s
  Start();
  auto grant = service_->IssueUpload(1'000);
  ASSERT_TRUE(grant);
  auto s = ConnectFrom("127.0.0.1", service_->port());
  ASSERT_TRUE(s);
  boost::system::error_code ec;
  s->WriteAll(fmt::format("PUT /v1/media/{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n"
                          "Content-Length: 1000\r\n\r\n",
                          grant->blob_id, grant->token),
              ec);
  ASSERT_FALSE(ec);
  const auto lasted = DribbleUntilClosed(*s, std::string(1'000, 'b'), 50, 4'000);
  EXPECT_LT(lasted, std::chrono::milliseconds(2'000));  // each byte is within the idle timeout
  EXPECT_EQ(service_->metrics().slow_clients.load(), 1u);
  EXPECT_EQ(service_->metrics().uploads.load(), 0u);
}

TEST_F(MediaServerTest, TransfersPerSourceAreCapped) {
  service_.reset();
  config_.max_transfers = 4;
  config_.max_transfers_per_ip = 2;
  Start();
  // Two idle connections from 127.0.0.2 hold its share; a third from there gets 503.
  auto a = ConnectFrom("127.0.0.2", service_->port());
  auto b = ConnectFrom("127.0.0.2", service_->port());
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(AwaitActive(2));
  auto c = ConnectFrom("127.0.0.2", service_->port());
  ASSERT_TRUE(c);
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  boost::system::error_code ec;
  http::read(*c, buffer, parser, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(parser.get().result_int(), 503u);
  EXPECT_NE(parser.get().body().find("max_transfers_per_ip"), std::string::npos);
  EXPECT_EQ(service_->metrics().refused_per_ip.load(), 1u);
  // Another source is served meanwhile (127.0.0.1: Exchange()).
  EXPECT_EQ(Get("AAAAAAAAAAAAAAAAAAAAAA").status, 404u);
  // A closed connection gives its share back.
  a.reset();
  ASSERT_TRUE(AwaitActive(1));
  auto d = ConnectFrom("127.0.0.2", service_->port());
  ASSERT_TRUE(d);
  ASSERT_TRUE(AwaitActive(2));
  EXPECT_EQ(service_->metrics().refused_per_ip.load(), 1u);
}

TEST_F(MediaServerTest, SharedDescriptorBudgetRefusesATransferThatDoesNotFit) {
  service_.reset();
  net::FdBudget budget(kFdsPerMediaTransfer + 1);  // room for one transfer
  now_ = RealNowMs();
  auto started = MediaService::Start(
      config_, dir_ + "/media", [this] { return now_.load(); }, &budget);
  ASSERT_TRUE(started);
  service_ = std::move(*started);
  auto idle = ConnectFrom("127.0.0.1", service_->port());
  ASSERT_TRUE(idle);
  ASSERT_TRUE(AwaitActive(1));
  EXPECT_EQ(budget.in_use(), kFdsPerMediaTransfer);
  EXPECT_EQ(Get("AAAAAAAAAAAAAAAAAAAAAA").status, 503u);
  EXPECT_EQ(service_->metrics().refused_fd_budget.load(), 1u);
  idle.reset();
  ASSERT_TRUE(AwaitActive(0));
  EXPECT_EQ(budget.in_use(), 0u);
  EXPECT_EQ(Get("AAAAAAAAAAAAAAAAAAAAAA").status, 404u);
  service_.reset();
}

TEST(MediaDecide, ParsedRequestHeadsWithoutSockets) {
  MediaConfig config;
  config.max_blob_bytes = 100;
  auto service = MediaService::Offline(config, "/nonexistent");
  auto grant = service->IssueUpload(10);
  ASSERT_TRUE(grant);
  const std::string target = "/v1/media/" + grant->blob_id;
  const std::string bearer = "Bearer " + grant->token;
  auto decide = [&](std::string_view method, std::string_view t, std::string_view auth,
                    std::optional<uint64_t> length) {
    MediaRequestHead head;
    head.method = method;
    head.target = t;
    head.authorization = auth;
    head.content_length = length;
    return service->Decide(head);
  };
  EXPECT_EQ(decide("GET", "/v1/media/short", "", {}).status, 404u);
  EXPECT_EQ(decide("DELETE", target, "", {}).status, 405u);
  EXPECT_EQ(decide("PUT", target, bearer, {}).status, 411u);
  EXPECT_EQ(decide("PUT", target, bearer, 101).status, 413u);
  EXPECT_EQ(decide("PUT", target, "Basic x", 10).status, 401u);
  EXPECT_EQ(decide("GET", target + "?x=1", "", {}).action, MediaAction::kDownload);
  const MediaDecision ok = decide("PUT", target, bearer, 10);
  EXPECT_EQ(ok.action, MediaAction::kUpload);
  EXPECT_EQ(ok.blob_id, grant->blob_id);
  EXPECT_EQ(decide("PUT", target, bearer, 10).status, 403u);  // single use
  EXPECT_EQ(PlanDownload("bytes=99999999999999999999-", 10).status, 416u);
  EXPECT_EQ(PlanDownload("bytes=2-", 10).content_range, "Content-Range: bytes 2-9/10\r\n");
  EXPECT_EQ(PlanDownload("", 10).status, 200u);
}

}  // namespace
}  // namespace sotto::server
