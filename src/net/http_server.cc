#include "net/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>

#include "net/event_loop.h"

namespace sotto::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr int kAcceptRetryMs = 50;

using RequestParser = http::request_parser<http::string_body>;

void ConfigureParser(RequestParser& parser, uint32_t max_body) {
  parser.header_limit(kMaxHttpHeaderBytes);
  parser.body_limit(max_body);
}

HttpRequest FromParsed(const http::request<http::string_body>& req) {
  HttpRequest request{std::string(req.method_string()), std::string(req.target()), req.body(), {}};
  for (const auto& field : req) {
    request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  return request;
}

// Open connections of one server; lives on its io thread only.
struct OpenCount {
  uint32_t open = 0;
  FdBudget* fd_budget = nullptr;
};

// One request/response exchange; owns itself through the async chain.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, const HttpHandler& handler, uint32_t max_body, OpenCount& count)
      : stream_(std::move(socket)), handler_(handler), count_(count) {
    ConfigureParser(parser_, max_body);
  }
  ~HttpSession() {
    --count_.open;
    if (count_.fd_budget != nullptr) count_.fd_budget->Release();
  }
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  void Run() {
    stream_.expires_after(std::chrono::milliseconds(kHttpTimeoutMs));
    // shared_ptr: the async operations share ownership of the session until done.
    http::async_read(stream_, buffer_, parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec) {
      // A request that does not parse or breaks a limit gets a 400; a peer that went
      // away or timed out gets nothing.
      if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        Respond(HttpResponse{400, "text/plain; charset=utf-8", "bad request\n"}, 11);
      }
      return;
    }
    const auto& req = parser_.get();
    Respond(handler_(FromParsed(req)), req.version());
  }

  void Respond(HttpResponse r, unsigned version) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), version);
    res->set(http::field::server, "sottod");
    res->set(http::field::content_type, r.content_type);
    res->keep_alive(false);
    res->body() = std::move(r.body);
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code, size_t) {
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                      });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  RequestParser parser_;
  const HttpHandler& handler_;
  OpenCount& count_;
};

}  // namespace

Result<HttpRequest> ParseHttpRequest(std::string_view bytes, uint32_t max_body_bytes) {
  RequestParser parser;
  ConfigureParser(parser, max_body_bytes);
  parser.eager(true);
  beast::error_code ec;
  parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) {
    return NetError(Code::kInvalidArgument, NetErr::kParse, "HTTP request does not parse");
  }
  return FromParsed(parser.get());
}

std::string_view HttpRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(beast::string_view(key.data(), key.size()),
                       beast::string_view(name.data(), name.size()))) {
      return value;
    }
  }
  return {};
}

struct HttpServer::Impl {
  OpenCount count;  // before io: sessions destroyed with io's handlers still count down
  std::atomic<uint64_t> refused{0};
  uint32_t max_connections = 0;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  HttpHandler handler;
  uint32_t max_body = 0;
  std::thread thread;

  asio::steady_timer backoff{io};

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        if ((max_connections != 0 && count.open >= max_connections) ||
            (count.fd_budget != nullptr && !count.fd_budget->TryAcquire())) {
          refused.fetch_add(1, std::memory_order_relaxed);
          beast::error_code ignored;
          socket.close(ignored);  // at once: a refused connection holds nothing
        } else {
          ++count.open;
          std::make_shared<HttpSession>(std::move(socket), handler, max_body, count)->Run();
        }
        Accept();
        return;
      }
      // E.g. EMFILE: the pending connection stays queued; retry shortly instead of
      // spinning on the error.
      backoff.expires_after(std::chrono::milliseconds(kAcceptRetryMs));
      backoff.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) Accept();
      });
    });
  }
};

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const SocketAddress& address,
                                                      HttpHandler handler,
                                                      uint32_t max_body_bytes) {
  HttpServerLimits limits;
  limits.max_body_bytes = max_body_bytes;
  return Start(address, std::move(handler), limits);
}

uint64_t HttpServer::refused() const { return impl_->refused.load(std::memory_order_relaxed); }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const SocketAddress& address,
                                                      HttpHandler handler,
                                                      const HttpServerLimits& limits) {
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  impl->max_body = limits.max_body_bytes;
  impl->max_connections = limits.max_connections;
  impl->count.fd_budget = limits.fd_budget;
  SOTTO_ASSIGN_OR_RETURN(int fd, Listen(address, 128, ReusePort::kNo));
  SOTTO_ASSIGN_OR_RETURN(SocketAddress bound, LocalAddress(fd));
  beast::error_code ec;
  const tcp protocol = address.storage.ss_family == AF_INET6 ? tcp::v6() : tcp::v4();
  impl->acceptor.assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return NetError(Code::kInternal, NetErr::kSyscall, "HTTP acceptor setup failed");
  }
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl), bound.port()));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl, uint16_t port)
    : impl_(std::move(impl)), port_(port) {}

void HttpServer::Stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  asio::post(impl_->io, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->backoff.cancel();
    impl_->io.stop();
  });
  impl_->thread.join();
}

HttpServer::~HttpServer() { Stop(); }

}  // namespace sotto::net
