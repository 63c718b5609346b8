// The media service's HTTP side: one synchronous Beast exchange per connection, streamed
// through a fixed kMediaChunkBytes buffer in both directions (docs/media.md).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "net/blocking_stream.h"
#include "net/http_range.h"
#include "net/http_server.h"
#include "server/media.h"

namespace sotto::server {

namespace beast = boost::beast;
namespace http = beast::http;

struct MediaService::Connection {
  Connection(int fd, uint32_t idle_timeout_ms) : stream(fd, idle_timeout_ms) {}
  net::BlockingStream stream;
  beast::flat_buffer buffer;
  http::request_parser<http::buffer_body> parser;
};

namespace {

constexpr std::string_view kPrefix = "/v1/media/";

const char* ReasonPhrase(unsigned status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 416: return "Range Not Satisfiable";
    default: return "Internal Server Error";
  }
}

// Writes a response head (and a short text body); `extra` is CRLF-terminated headers.
void WriteHead(net::BlockingStream& stream, unsigned status, uint64_t content_length,
               std::string_view content_type, std::string_view extra) {
  const std::string head = fmt::format(
      "HTTP/1.1 {} {}\r\nServer: sottod\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
      "Accept-Ranges: bytes\r\nConnection: close\r\n{}\r\n",
      status, ReasonPhrase(status), content_type, content_length, extra);
  boost::system::error_code ec;
  stream.WriteAll(head, ec);
}

void Reply(net::BlockingStream& stream, unsigned status, std::string_view text,
           std::string_view extra = {}) {
  const std::string body = std::string(text) + "\n";
  WriteHead(stream, status, body.size(), "text/plain; charset=utf-8", extra);
  boost::system::error_code ec;
  stream.WriteAll(body, ec);
}

// Closes `fd` on scope exit.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

void MediaService::Serve(uint64_t id, int fd) {
  auto c = std::make_unique<Connection>(fd, config_.idle_timeout_ms);
  c->parser.header_limit(net::kMaxHttpHeaderBytes);
  c->parser.body_limit(config_.max_blob_bytes);
  // The whole head within media.header_timeout_ms of the accept, however the bytes
  // trickle in; then the body (either way) at media.min_transfer_bytes_per_s after a
  // grace of media.idle_timeout_ms.
  c->stream.SetDeadline(std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(config_.header_timeout_ms));
  beast::error_code ec;
  http::read_header(c->stream, c->buffer, c->parser, ec);
  c->stream.SetDeadline({});
  c->stream.SetMinRate(config_.min_transfer_bytes_per_s, config_.idle_timeout_ms);
  if (ec == boost::asio::error::timed_out) {
    metrics_.slow_clients.fetch_add(1, std::memory_order_relaxed);
  } else if (ec == http::error::body_limit) {
    metrics_.rejected.fetch_add(1, std::memory_order_relaxed);
    Reply(c->stream, 413, "blob larger than media.max_blob_bytes");
  } else if (ec) {
    if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      Reply(c->stream, 400, "bad request");
    }
  } else {
    const auto& req = c->parser.get();
    const auto auth = req[http::field::authorization];
    MediaRequestHead head;
    head.method = std::string_view(req.method_string().data(), req.method_string().size());
    head.target = std::string_view(req.target().data(), req.target().size());
    head.authorization = std::string_view(auth.data(), auth.size());
    if (const auto length = c->parser.content_length()) head.content_length = *length;
    head.chunked = c->parser.chunked();
    const MediaDecision d = Decide(head);
    switch (d.action) {
      case MediaAction::kReply: Reply(c->stream, d.status, d.text, d.extra); break;
      case MediaAction::kUpload: HandleUpload(*c, d.blob_id); break;
      case MediaAction::kDownload: HandleDownload(*c, d.blob_id); break;
    }
  }
  {
    std::lock_guard<std::mutex> lock(conn_mu_);
    fds_.erase(id);  // before the stream closes the fd: Stop() must not shut a reused one
  }
  c.reset();
}

MediaDecision MediaService::Decide(const MediaRequestHead& head) {
  auto reject = [this](unsigned status, const char* text, const char* extra = "") {
    metrics_.rejected.fetch_add(1, std::memory_order_relaxed);
    MediaDecision d;
    d.status = status;
    d.text = text;
    d.extra = extra;
    return d;
  };
  std::string_view target = head.target;
  if (const size_t q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  const std::string_view blob_id =
      target.substr(0, kPrefix.size()) == kPrefix ? target.substr(kPrefix.size()) : "";
  if (!IsBlobId(blob_id)) return reject(404, "not found");
  const std::string_view m = head.method;
  if (m == "GET" || m == "HEAD") {
    return MediaDecision{MediaAction::kDownload, 0, "", "", std::string(blob_id)};
  }
  if (m != "PUT" && m != "POST") {
    return reject(405, "method not allowed", "Allow: GET, HEAD, PUT, POST\r\n");
  }
  if (!head.content_length || head.chunked) return reject(411, "Content-Length required");
  const uint64_t declared = *head.content_length;
  if (declared > config_.max_blob_bytes) return reject(413, "blob larger than media.max_blob_bytes");
  constexpr std::string_view kBearer = "Bearer ";
  if (head.authorization.substr(0, kBearer.size()) != kBearer) {
    return reject(401, "upload token required");
  }
  switch (ConsumeToken(blob_id, head.authorization.substr(kBearer.size()), declared)) {
    case TokenCheck::kOk: break;
    case TokenCheck::kMissing: return reject(403, "unknown, used or expired upload token");
    case TokenCheck::kWrong: return reject(403, "wrong upload token");
    case TokenCheck::kWrongSize:
      return reject(400, "Content-Length differs from the size the token was issued for");
  }
  return MediaDecision{MediaAction::kUpload, 0, "", "", std::string(blob_id)};
}

MediaRangePlan PlanDownload(std::string_view range_header, uint64_t size) {
  const net::ByteRange range = net::ParseRangeHeader(range_header, size);
  MediaRangePlan plan;
  plan.length = size;
  switch (range.kind) {
    case net::RangeKind::kNone:
      break;
    case net::RangeKind::kUnsatisfiable:
      plan.status = 416;
      plan.length = 0;
      plan.content_range = fmt::format("Content-Range: bytes */{}\r\n", size);
      break;
    case net::RangeKind::kSatisfiable:
      plan.status = 206;
      plan.first = range.first;
      plan.length = range.last - range.first + 1;
      plan.content_range =
          fmt::format("Content-Range: bytes {}-{}/{}\r\n", range.first, range.last, size);
      break;
  }
  return plan;
}

void MediaService::HandleUpload(Connection& c, std::string_view blob_id) {
  auto reject = [&](unsigned status, const char* text) {
    metrics_.rejected.fetch_add(1, std::memory_order_relaxed);
    Reply(c.stream, status, text);
  };
  const auto& req = c.parser.get();
  const uint64_t declared = *c.parser.content_length();  // Decide() required it
  const std::string path = BlobPath(blob_id);
  const std::string part = path + ".part";
  if (::access(path.c_str(), F_OK) == 0) return reject(409, "blob exists");
  if (beast::iequals(req[http::field::expect], "100-continue")) {
    boost::system::error_code ignored;
    c.stream.WriteAll(std::string_view("HTTP/1.1 100 Continue\r\n\r\n"), ignored);
  }
  const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    spdlog::warn("media: cannot create a partial upload file");
    return reject(500, "storage failure");
  }
  FdCloser closer{fd};
  std::vector<char> chunk(kMediaChunkBytes);
  uint64_t received = 0;
  bool ok = true;
  while (ok && !c.parser.is_done()) {
    c.parser.get().body().data = chunk.data();
    c.parser.get().body().size = chunk.size();
    beast::error_code ec;
    http::read(c.stream, c.buffer, c.parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec == boost::asio::error::timed_out) {
      metrics_.slow_clients.fetch_add(1, std::memory_order_relaxed);
    }
    if (ec) {
      ok = false;
      break;
    }
    const size_t n = chunk.size() - c.parser.get().body().size;
    for (size_t at = 0; at < n;) {
      const ssize_t w = ::write(fd, chunk.data() + at, n - at);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        ok = false;
        break;
      }
      at += static_cast<size_t>(w);
    }
    received += n;
  }
  if (!ok || received != declared || ::fsync(fd) != 0 ||
      ::rename(part.c_str(), path.c_str()) != 0) {
    ::unlink(part.c_str());
    return reject(400, "upload incomplete");
  }
  metrics_.uploads.fetch_add(1, std::memory_order_relaxed);
  metrics_.bytes_uploaded.fetch_add(received, std::memory_order_relaxed);
  spdlog::debug("media: stored a blob {}.. of {} bytes", blob_id.substr(0, 4), received);
  Reply(c.stream, 201, "stored");
}

void MediaService::HandleDownload(Connection& c, std::string_view blob_id) {
  const std::string path = BlobPath(blob_id);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  FdCloser closer{fd};
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    metrics_.rejected.fetch_add(1, std::memory_order_relaxed);
    return Reply(c.stream, 404, "no such blob");
  }
  const uint64_t modified = static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000 +
                            static_cast<uint64_t>(st.st_mtim.tv_nsec) / 1'000'000;
  if (now_() >= modified + uint64_t{config_.blob_ttl_s} * 1000) {
    metrics_.rejected.fetch_add(1, std::memory_order_relaxed);
    return Reply(c.stream, 404, "no such blob");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const auto range_header = c.parser.get()[http::field::range];
  const MediaRangePlan plan =
      PlanDownload(std::string_view(range_header.data(), range_header.size()), size);
  if (plan.status == 416) {
    metrics_.rejected.fetch_add(1, std::memory_order_relaxed);
    return Reply(c.stream, 416, "range not satisfiable", plan.content_range);
  }
  const uint64_t first = plan.first;
  const uint64_t length = plan.length;
  WriteHead(c.stream, plan.status, length, "application/octet-stream", plan.content_range);
  if (c.parser.get().method() == http::verb::head) return;
  std::vector<char> chunk(kMediaChunkBytes);
  uint64_t sent = 0;
  while (sent < length) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), length - sent));
    const ssize_t n = ::pread(fd, chunk.data(), want, static_cast<off_t>(first + sent));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // truncated under us: the client sees a short body
    // Counted before the write, so a client that has every byte also sees the counters.
    metrics_.bytes_downloaded.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    if (sent + static_cast<uint64_t>(n) == length) {
      metrics_.downloads.fetch_add(1, std::memory_order_relaxed);
    }
    boost::system::error_code ec;
    c.stream.WriteAll(std::span<const char>(chunk.data(), static_cast<size_t>(n)), ec);
    if (ec == boost::asio::error::timed_out) {
      metrics_.slow_clients.fetch_add(1, std::memory_order_relaxed);
    }
    if (ec) break;
    sent += static_cast<uint64_t>(n);
  }
}

}  // namespace sotto::server
