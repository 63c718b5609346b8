// Tests of net::HttpServer: a real socket on 127.0.0.1 with a free port, a good request,
// a malformed one and one past the header limit.
#include <poll.h>
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

TEST(HttpServer, ConnectionCapAndDescriptorBudgetRefuseTheNext) {
  FdBudget budget(3);
  HttpServerLimits limits;
  limits.max_connections = 2;
  limits.fd_budget = &budget;
  auto server = HttpServer::Start(
      *ParseHostPort("127.0.0.1:0"),
      [](const HttpRequest&) {
        return HttpResponse{200, "text/plain", "up 1\n"};
      },
      limits);
  ASSERT_TRUE(server);
  const auto addr = *ParseHostPort("127.0.0.1:" + std::to_string((*server)->port()));
  // Two idle connections hold both slots (the server's 5 s request timeout is far off).
  auto a = ConnectBlocking(addr);
  auto b = ConnectBlocking(addr);
  ASSERT_TRUE(a && b);
  // The third is closed at once: EOF without a response.
  EXPECT_EQ(Exchange((*server)->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), "");
  EXPECT_EQ((*server)->refused(), 1u);
  EXPECT_EQ(budget.in_use(), 2u);
  close(*a);  // its slot comes back once the server sees the close
  std::string ok;
  for (int i = 0; i < 500 && ok.empty(); ++i) {
    ok = Exchange((*server)->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    if (ok.empty()) ::poll(nullptr, 0, 10);
  }
  EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << ok;
  // The shared budget binds too: another listener holding 2 of its 3 leaves this one 1.
  close(*b);
  for (int i = 0; i < 500 && budget.in_use() != 0; ++i) ::poll(nullptr, 0, 10);
  ASSERT_EQ(budget.in_use(), 0u);
  ASSERT_TRUE(budget.TryAcquire(2));
  auto c = ConnectBlocking(addr);
  ASSERT_TRUE(c);
  for (int i = 0; i < 200 && budget.in_use() != 3; ++i) ::poll(nullptr, 0, 10);
  ASSERT_EQ(budget.in_use(), 3u);
  EXPECT_EQ(Exchange((*server)->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), "");
  close(*c);
  budget.Release(2);
  (*server)->Stop();
}

TEST(FdBudget, TakesAndGivesBackAtTheEdge) {
  FdBudget budget(5);
  EXPECT_TRUE(budget.TryAcquire(4));
  EXPECT_FALSE(budget.TryAcquire(2));  // past the edge: nothing taken
  EXPECT_EQ(budget.in_use(), 4u);
  EXPECT_TRUE(budget.TryAcquire(1));  // at the edge
  EXPECT_FALSE(budget.TryAcquire(1));
  budget.Release(5);
  EXPECT_EQ(budget.in_use(), 0u);
}

}  // namespace
}  // namespace sotto::net
