#include "net/blocking_stream.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/error.hpp>
#include <cerrno>
#include <utility>

#include "net/event_loop.h"

namespace sotto::net {

namespace asio_error = boost::asio::error;

BlockingStream::BlockingStream(int fd, uint32_t idle_timeout_ms)
    : fd_(fd), idle_timeout_ms_(idle_timeout_ms) {
  (void)SetNonBlocking(fd_);
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    wake_[0] = -1;
    wake_[1] = -1;
  }
}

Result<BlockingStream> BlockingStream::Connect(const SocketAddress& to, uint32_t timeout_ms) {
  SOTTO_ASSIGN_OR_RETURN(int fd, ConnectNonBlocking(to, nullptr));
  BlockingStream stream(fd, timeout_ms);
  boost::system::error_code ec;
  if (!stream.Wait(POLLOUT, ec) || SocketError(fd) != 0) {
    return NetError(Code::kUnavailable, NetErr::kSyscall, "connect failed or timed out");
  }
  (void)SetNoDelay(fd);
  return stream;
}

BlockingStream::~BlockingStream() {
  if (fd_ >= 0) ::close(fd_);
  if (wake_[0] >= 0) ::close(wake_[0]);
  if (wake_[1] >= 0) ::close(wake_[1]);
}

BlockingStream::BlockingStream(BlockingStream&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      deadline_(other.deadline_),
      rate_start_(other.rate_start_),
      min_bytes_per_s_(other.min_bytes_per_s_),
      rate_grace_ms_(other.rate_grace_ms_),
      moved_(other.moved_),
      idle_timeout_ms_(other.idle_timeout_ms_) {
  wake_[0] = std::exchange(other.wake_[0], -1);
  wake_[1] = std::exchange(other.wake_[1], -1);
}

BlockingStream& BlockingStream::operator=(BlockingStream&& other) noexcept {
  if (this != &other) {
    this->~BlockingStream();
    fd_ = std::exchange(other.fd_, -1);
    wake_[0] = std::exchange(other.wake_[0], -1);
    wake_[1] = std::exchange(other.wake_[1], -1);
    idle_timeout_ms_ = other.idle_timeout_ms_;
    deadline_ = other.deadline_;
    rate_start_ = other.rate_start_;
    min_bytes_per_s_ = other.min_bytes_per_s_;
    rate_grace_ms_ = other.rate_grace_ms_;
    moved_ = other.moved_;
  }
  return *this;
}

void BlockingStream::Shutdown() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  if (wake_[1] >= 0) {
    const char byte = 1;
    (void)!::write(wake_[1], &byte, 1);
  }
}

void BlockingStream::SetMinRate(uint32_t bytes_per_s, uint32_t grace_ms) {
  min_bytes_per_s_ = bytes_per_s;
  rate_grace_ms_ = grace_ms;
  rate_start_ = std::chrono::steady_clock::now();
  moved_ = 0;
}

int64_t BlockingStream::WaitBudgetMs() const {
  int64_t budget = idle_timeout_ms_;
  if (deadline_ == std::chrono::steady_clock::time_point{} && min_bytes_per_s_ == 0) {
    return budget;
  }
  const auto now = std::chrono::steady_clock::now();
  auto ms_until = [&](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count();
  };
  if (deadline_ != std::chrono::steady_clock::time_point{}) {
    budget = std::min<int64_t>(budget, ms_until(deadline_));
  }
  if (min_bytes_per_s_ != 0) {
    // The moment the bytes moved so far stop being enough.
    const uint64_t owed_ms = moved_ * 1000 / min_bytes_per_s_;
    const auto due = rate_start_ + std::chrono::milliseconds(rate_grace_ms_) +
                     std::chrono::milliseconds(
                         static_cast<int64_t>(std::min<uint64_t>(owed_ms, uint64_t{1} << 40)));
    budget = std::min<int64_t>(budget, ms_until(due));
  }
  return std::max<int64_t>(budget, 0);
}

bool BlockingStream::Wait(short events, boost::system::error_code& ec) {
  pollfd fds[2] = {{fd_, events, 0}, {wake_[0], POLLIN, 0}};
  for (;;) {
    const int64_t budget = WaitBudgetMs();
    if (budget == 0 && idle_timeout_ms_ != 0) {
      ec = asio_error::timed_out;
      return false;
    }
    const int n = ::poll(fds, wake_[0] >= 0 ? 2 : 1, static_cast<int>(budget));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ec = boost::system::error_code(errno, boost::system::system_category());
      return false;
    }
    if (n == 0) {
      ec = asio_error::timed_out;
      return false;
    }
    if (wake_[0] >= 0 && fds[1].revents != 0) {
      ec = asio_error::shut_down;
      return false;
    }
    return true;
  }
}

size_t BlockingStream::ReadSome(std::span<char> out, boost::system::error_code& ec) {
  ec = {};
  if (out.empty()) return 0;
  for (;;) {
    const ssize_t n = ::recv(fd_, out.data(), out.size(), 0);
    if (n > 0) {
      moved_ += static_cast<uint64_t>(n);
      return static_cast<size_t>(n);
    }
    if (n == 0) {
      ec = asio_error::eof;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      ec = boost::system::error_code(errno, boost::system::system_category());
      return 0;
    }
    if (!Wait(POLLIN, ec)) return 0;
  }
}

void BlockingStream::WriteAll(std::span<const char> data, boost::system::error_code& ec) {
  ec = {};
  while (!data.empty()) {
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      moved_ += static_cast<uint64_t>(n);
      data = data.subspan(static_cast<size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      ec = boost::system::error_code(errno, boost::system::system_category());
      return;
    }
    if (!Wait(POLLOUT, ec)) return;
  }
}

}  // namespace sotto::net
