// One epoll event loop per thread (the redis `ae` / envoy dispatcher model).
//
// A loop owns the file descriptors registered with it and runs their handlers on its
// own thread. Other threads reach it only through Post(), a lock-free multi-producer
// queue drained once per iteration; Wake-ups use an eventfd. Timers are coarse
// (millisecond) and kept in a min-heap; connections that need per-connection deadlines
// should use a TimerWheel (timer_wheel.h) driven from a periodic timer instead of one
// heap entry each.
//
// Thread-safety: Loop-affine, except Post(), Stop() and IsInLoopThread(), which are
// thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace sotto::net {

// Detail codes for Module::kNet errors.
enum class NetErr : uint16_t {
  kSyscall = 5001,  // a system call failed; see errno in logs
  kAddress = 5002,  // an address did not parse
  kLimit = 5003,    // a configured limit was reached
  kParse = 5004,    // bytes from a peer did not parse (e.g. an HTTP request)
};

tl::unexpected<Error> NetError(Code code, NetErr detail, const char* message);

// Receives readiness events for one registered fd. Must outlive its registration.
class IoHandler {
 public:
  virtual ~IoHandler() = default;
  // `events` is a mask of EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP/EPOLLRDHUP.
  virtual void OnIo(uint32_t events) = 0;
};

using TimerId = uint64_t;

class EventLoop {
 public:
  // Size of the per-loop scratch buffer handlers read into (the gateway keeps no
  // per-connection read buffer for idle connections).
  static constexpr size_t kScratchSize = size_t{128} * 1024;

  static Result<std::unique_ptr<EventLoop>> Create();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs until Stop(). Binds the loop to the calling thread.
  void Run();
  // Thread-safe: makes Run() return after the current iteration.
  void Stop();
  // Thread-safe: runs `fn` on the loop thread during a later iteration.
  void Post(std::function<void()> fn);
  bool IsInLoopThread() const { return std::this_thread::get_id() == thread_id_; }

  // Registration; `handler` must outlive it. Level-triggered unless EPOLLET is in events.
  Status Add(int fd, uint32_t events, IoHandler* handler);
  Status Modify(int fd, uint32_t events, IoHandler* handler);
  void Remove(int fd);

  // Runs `fn` once after `delay` (on this loop). Returns an id for Cancel().
  TimerId RunAfter(std::chrono::milliseconds delay, std::function<void()> fn);
  // Runs `fn` every `period` until cancelled.
  TimerId RunEvery(std::chrono::milliseconds period, std::function<void()> fn);
  void Cancel(TimerId id);

  // Monotonic milliseconds, refreshed once per iteration (cheap to call).
  uint64_t NowMs() const { return now_ms_; }
  MutableByteSpan scratch() { return {scratch_.get(), kScratchSize}; }

 private:
  struct PostNode {
    std::function<void()> fn;
    std::atomic<PostNode*> next{nullptr};
  };
  struct Timer {
    uint64_t due_ms;
    TimerId id;
    bool operator>(const Timer& o) const { return due_ms > o.due_ms; }
  };
  struct TimerEntry {
    std::function<void()> fn;
    uint64_t period_ms;  // 0 = one-shot
  };

  EventLoop(int epoll_fd, int wake_fd);
  void DrainPosted();
  void RunTimers();
  int NextTimeoutMs() const;
  void UpdateNow();

  int epoll_fd_;
  int wake_fd_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> wake_pending_{false};
  std::thread::id thread_id_;
  uint64_t now_ms_ = 0;
  std::unique_ptr<uint8_t[]> scratch_;

  // Vyukov MPSC queue: producers exchange head_, the loop pops from tail_.
  std::atomic<PostNode*> head_;
  PostNode* tail_;
  PostNode stub_;

  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timer_heap_;
  std::vector<std::pair<TimerId, TimerEntry>> timers_;  // small; linear lookup
  TimerId next_timer_id_ = 1;
};

}  // namespace sotto::net
