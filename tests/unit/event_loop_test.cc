// Tests of net/: the epoll loop's Post() from many threads, timers, fd readiness, and
// address parsing / listening on port 0.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "net/event_loop.h"
#include "net/socket.h"

namespace sotto::net {
namespace {

TEST(EventLoop, PostFromManyThreadsRunsEveryTaskOnTheLoop) {
  auto loop = *EventLoop::Create();
  constexpr int kThreads = 4, kPerThread = 5000;
  std::atomic<int> ran{0};
  int on_loop = 0;  // touched only on the loop thread
  std::thread runner([&] { loop->Run(); });
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        loop->Post([&] {
          ++on_loop;
          if (ran.fetch_add(1) + 1 == kThreads * kPerThread) loop->Stop();
        });
      }
    });
  }
  for (auto& p : producers) p.join();
  runner.join();
  EXPECT_EQ(ran.load(), kThreads * kPerThread);
  EXPECT_EQ(on_loop, kThreads * kPerThread);
}

TEST(EventLoop, TimersFireInOrderAndCancel) {
  auto loop = *EventLoop::Create();
  std::vector<int> order;
  loop->RunAfter(std::chrono::milliseconds(20), [&] { order.push_back(2); });
  loop->RunAfter(std::chrono::milliseconds(1), [&] { order.push_back(1); });
  TimerId cancelled = loop->RunAfter(std::chrono::milliseconds(5), [&] { order.push_back(99); });
  loop->Cancel(cancelled);
  int ticks = 0;
  TimerId every = 0;
  every = loop->RunEvery(std::chrono::milliseconds(2), [&] {
    if (++ticks == 3) loop->Cancel(every);
  });
  loop->RunAfter(std::chrono::milliseconds(40), [&] { loop->Stop(); });
  loop->Run();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_EQ(ticks, 3);
}

class PipeReader : public IoHandler {
 public:
  PipeReader(EventLoop& loop, int fd) : loop_(loop), fd_(fd) {}
  void OnIo(uint32_t events) override {
    if (events & EPOLLIN) {
      auto buf = loop_.scratch();
      const ssize_t n = read(fd_, buf.data(), buf.size());
      if (n > 0) got_ += static_cast<size_t>(n);
      if (got_ >= 3) loop_.Stop();
    }
  }
  size_t got_ = 0;

 private:
  EventLoop& loop_;
  int fd_;
};

TEST(EventLoop, DeliversReadiness) {
  auto loop = *EventLoop::Create();
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  PipeReader reader(*loop, fds[0]);
  ASSERT_TRUE(loop->Add(fds[0], EPOLLIN, &reader));
  ASSERT_EQ(write(fds[1], "abc", 3), 3);
  loop->Run();
  EXPECT_EQ(reader.got_, 3u);
  loop->Remove(fds[0]);
  close(fds[0]);
  close(fds[1]);
}

TEST(Socket, SourceKeysAreIpv4OrAnIpv6Slash64) {
  auto key = [](const char* text) { return ParseHostPort(text).value().Key(); };
  EXPECT_EQ(key("10.1.2.3:1").ToString(), "10.1.2.3");
  EXPECT_EQ(key("10.1.2.3:1"), key("10.1.2.3:2"));  // the port is not part of it
  EXPECT_NE(key("10.1.2.3:1"), key("10.1.2.4:1"));
  // Every address of one /64 is one source; the next /64 is another.
  EXPECT_EQ(key("[2001:db8:1:2::1]:1"), key("[2001:db8:1:2:ffff:ffff:ffff:ffff]:1"));
  EXPECT_NE(key("[2001:db8:1:2::1]:1"), key("[2001:db8:1:3::1]:1"));
  EXPECT_EQ(key("[2001:db8:1:2::9]:1").ToString(), "2001:db8:1:2::/64");
  // An IPv4-mapped peer of a dual-stack socket is its IPv4 address.
  EXPECT_EQ(key("[::ffff:10.1.2.3]:1"), key("10.1.2.3:1"));
  EXPECT_TRUE(key("10.1.2.3:1").known());
  EXPECT_FALSE(SocketAddress{}.Key().known());
  EXPECT_EQ(IpKeyHash{}(key("10.1.2.3:1")), IpKeyHash{}(key("10.1.2.3:9")));
}

TEST(Socket, ParseAndListenOnPortZero) {
  auto v4 = ParseHostPort("127.0.0.1:0");
  ASSERT_TRUE(v4);
  auto v6 = ParseHostPort("[::1]:8080");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->port(), 8080);
  EXPECT_EQ(v6->ToString(), "[::1]:8080");
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "host:80",
                          "127.0.0.1:8x", "[::1:80"}) {
    EXPECT_FALSE(ParseHostPort(bad)) << bad;
  }
  auto fd = Listen(*v4, 16, ReusePort::kYes);
  ASSERT_TRUE(fd);
  auto bound = LocalAddress(*fd);
  ASSERT_TRUE(bound);
  EXPECT_NE(bound->port(), 0);
  auto client = ConnectBlocking(*bound);
  ASSERT_TRUE(client);
  close(*client);
  close(*fd);
}

}  // namespace
}  // namespace sotto::net
