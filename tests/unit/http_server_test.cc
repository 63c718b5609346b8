// Tests of net::HttpServer: a real socket on 127.0.0.1 with a free port, a good request,
// a malformed one and one past the header limit.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "net/http_server.h"

namespace sotto::net {
namespace {

std::string Exchange(uint16_t port, const std::string& request) {
  auto addr = *ParseHostPort("127.0.0.1:" + std::to_string(port));
  auto fd = ConnectBlocking(addr);
  if (!fd) {
    ADD_FAILURE() << "connect: " << fd.error().ToString();
    return "";  // no response: every check of one fails
  }
  size_t off = 0;
  while (off < request.size()) {
    const ssize_t n = send(*fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  std::string response;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(*fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    response.append(buf, static_cast<size_t>(n));
  }
  close(*fd);
  return response;
}

TEST(HttpServer, ServesHandlerAndRejectsBadRequests) {
  auto server = HttpServer::Start(*ParseHostPort("127.0.0.1:0"), [](const HttpRequest& r) {
    if (r.method == "GET" && r.target == "/metrics") return HttpResponse{200, "text/plain", "up 1\n"};
    return HttpResponse{404, "text/plain", "not found\n"};
  });
  ASSERT_TRUE(server);
  const uint16_t port = (*server)->port();
  ASSERT_NE(port, 0);
  std::string ok = Exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << ok;
  EXPECT_NE(ok.find("up 1\n"), std::string::npos);
  EXPECT_EQ(Exchange(port, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(Exchange(port, "NOT HTTP AT ALL\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  // Exactly at the header limit is refused only past it.
  const std::string big(kMaxHttpHeaderBytes + 10, 'a');
  EXPECT_EQ(Exchange(port, "GET / HTTP/1.1\r\nX: " + big + "\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  (*server)->Stop();
}

}  // namespace
}  // namespace sotto::net
