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

class HttpServer {
 public:
  // Binds `address` (port 0 picks one) and starts serving on a new thread.
  static Result<std::unique_ptr<HttpServer>> Start(const SocketAddress& address,
                                                    HttpHandler handler,
                                                    uint32_t max_body_bytes = 0);
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
