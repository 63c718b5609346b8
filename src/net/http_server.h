// A small HTTP/1.1 server on Boost.Beast for operational endpoints (/metrics) and,
// later, media. One thread runs an Asio io_context; each request gets a response from
// the handler, then the connection closes. Request heads are limited to
// kMaxHttpHeaderBytes and bodies to the configured maximum; slow clients time out.
//
// Thread-safety: Start/Stop from one thread; the handler runs on the server's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/result.h"
#include "net/fd_budget.h"
#include "net/socket.h"

namespace sotto::net {

inline constexpr uint32_t kMaxHttpHeaderBytes = 8 * 1024;
inline constexpr uint32_t kHttpTimeoutMs = 5'000;

struct HttpRequest {
  std::string method;
  std::string target;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order

  // The value of the first header named `name` (case-insensitive); empty if absent.
  std::string_view Header(std::string_view name) const;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Parses one complete request from `bytes` exactly as the server does (head at most
// kMaxHttpHeaderBytes, body at most `max_body_bytes`): sans-I/O, for fuzzing the handler
// on what the server would hand it. NetErr::kParse (kInvalidArgument) if it does not
// parse, breaks a limit or is incomplete.
Result<HttpRequest> ParseHttpRequest(std::string_view bytes, uint32_t max_body_bytes);

struct HttpServerLimits {
  uint32_t max_body_bytes = 0;
  // Connections open at once (0: unbounded); past it a new one is closed at once.
  uint32_t max_connections = 0;
  // Shared with the process's other listeners, one descriptor per connection; may be
  // null; must outlive the server.
  FdBudget* fd_budget = nullptr;
};

class HttpServer {
 public:
  // Binds `address` (port 0 picks one) and starts serving on a new thread.
  static Result<std::unique_ptr<HttpServer>> Start(const SocketAddress& address,
                                                    HttpHandler handler,
                                                    uint32_t max_body_bytes = 0);
  static Result<std::unique_ptr<HttpServer>> Start(const SocketAddress& address,
                                                   HttpHandler handler,
                                                   const HttpServerLimits& limits);
  // Connections refused by max_connections or the descriptor budget.
  uint64_t refused() const;
  ~HttpServer();  // stops and joins
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const { return port_; }
  void Stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl, uint16_t port);
  std::unique_ptr<Impl> impl_;
  uint16_t port_;
};

}  // namespace sotto::net
