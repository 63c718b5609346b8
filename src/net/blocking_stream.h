// A blocking TCP stream with an idle timeout, shaped as a Boost.Asio SyncReadStream and
// SyncWriteStream so Beast's synchronous HTTP parser and serializer can run on it. Used for
// streaming media transfers (one thread per transfer, bounded by the caller): every read
// or write waits at most `idle_timeout_ms` for the socket to become ready, so a peer that
// stops moving bytes is cut off; Shutdown() from another thread wakes a blocked call.
//
// Thread-safety: externally synchronized, except Shutdown(), which is thread-safe.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

#include "base/result.h"
#include "net/socket.h"

namespace sotto::net {

class BlockingStream {
 public:
  // Takes ownership of a connected socket (blocking or not; it is made non-blocking).
  BlockingStream(int fd, uint32_t idle_timeout_ms);
  // Connects to `to` within `timeout_ms`. NetErr::kSyscall (kUnavailable) on failure.
  static Result<BlockingStream> Connect(const SocketAddress& to, uint32_t timeout_ms);
  ~BlockingStream();
  BlockingStream(BlockingStream&& other) noexcept;
  BlockingStream& operator=(BlockingStream&& other) noexcept;
  BlockingStream(const BlockingStream&) = delete;
  BlockingStream& operator=(const BlockingStream&) = delete;

  int fd() const { return fd_; }
  // Wakes any blocked call (it fails) and refuses further I/O. Thread-safe.
  void Shutdown();

  // Deadlines a peer that dribbles bytes cannot extend (the idle timeout restarts with
  // every byte; these do not). Every read or write fails with timed_out once `deadline`
  // has passed; time_point{} clears it.
  void SetDeadline(std::chrono::steady_clock::time_point deadline) { deadline_ = deadline; }
  // From now on, the bytes read and written together must keep up with `bytes_per_s`
  // after `grace_ms`: by time t they must be at least bytes_per_s * (t - now - grace), or
  // the waiting call fails with timed_out. 0 turns it off.
  void SetMinRate(uint32_t bytes_per_s, uint32_t grace_ms);

  // Reads at most out.size() bytes, at least one; 0 bytes with `ec` = eof at the end.
  size_t ReadSome(std::span<char> out, boost::system::error_code& ec);
  // Writes all of `data` or fails (timeout: boost::asio::error::timed_out).
  void WriteAll(std::span<const char> data, boost::system::error_code& ec);

  // --- the Asio stream concepts, for Beast (which calls only the error_code overloads;
  // the throwing ones exist because the concept checks require them) ---
  template <typename MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::mutable_buffer b = *it;
      if (b.size() == 0) continue;
      return ReadSome(std::span<char>(static_cast<char*>(b.data()), b.size()), ec);
    }
    ec = {};
    return 0;
  }
  template <typename MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers) {
    boost::system::error_code ec;
    const size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <typename ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
    size_t total = 0;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::const_buffer b = *it;
      WriteAll(std::span<const char>(static_cast<const char*>(b.data()), b.size()), ec);
      if (ec) return total;
      total += b.size();
    }
    return total;
  }
  template <typename ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& buffers) {
    boost::system::error_code ec;
    const size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  // Waits until `events` (POLLIN/POLLOUT) or the idle timeout; false on timeout/error.
  bool Wait(short events, boost::system::error_code& ec);
  // Milliseconds the next wait may last within the deadline and the rate; 0 if either
  // has already run out. The idle timeout if neither is set.
  int64_t WaitBudgetMs() const;
  int fd_ = -1;
  std::chrono::steady_clock::time_point deadline_{};
  std::chrono::steady_clock::time_point rate_start_{};
  uint32_t min_bytes_per_s_ = 0;
  uint32_t rate_grace_ms_ = 0;
  uint64_t moved_ = 0;      // bytes read and written since SetMinRate
  int wake_[2] = {-1, -1};  // a pipe: Shutdown() writes to wake a blocked poll
  uint32_t idle_timeout_ms_ = 0;
};

}  // namespace sotto::net
