// Fuzzes HTTP request parsing as the /metrics (and later media) server configures it:
// Beast's request parser with kMaxHttpHeaderBytes and no body, fed in one or two pieces.
#include <cstddef>
#include <cstdint>

#include <boost/beast/http.hpp>

#include "net/http_server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = boost::beast::http;
  if (size == 0) return 0;
  const size_t split = size > 1 ? data[0] % size : 0;
  http::request_parser<http::string_body> parser;
  parser.header_limit(sotto::net::kMaxHttpHeaderBytes);
  parser.body_limit(0);
  parser.eager(true);
  boost::beast::error_code ec;
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const size_t n = size - 1;
  // Beast asserts that put() is not called on a finished parser, as our server never does.
  size_t used = parser.put(boost::asio::buffer(bytes, split), ec);
  if (!ec && !parser.is_done() && used <= n) {
    parser.put(boost::asio::buffer(bytes + used, n - used), ec);
  }
  if (!ec && parser.is_header_done()) {
    const auto& req = parser.get();
    (void)req.method_string();
    (void)req.target();
  }
  return 0;
}
