// The media blob service in-process over real HTTP on 127.0.0.1: upload tokens (required,
// single-use, bound to the blob and its size, expiring), the size limit at and past its
// edge, downloads with Range (206/416) and HEAD, resume, and expiry by the sweep. The
// clock is the test's, so nothing waits for time to pass.
#include <unistd.h>

#include <atomic>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
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

}  // namespace
}  // namespace sotto::server
