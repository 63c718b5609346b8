#include "net/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

namespace sotto::net {

tl::unexpected<Error> NetError(Code code, NetErr detail, const char* message) {
  return MakeError(code, Module::kNet, static_cast<uint16_t>(detail), message);
}

namespace {
uint64_t MonotonicMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}
}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::Create() {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return NetError(Code::kInternal, NetErr::kSyscall, "epoll_create1 failed");
  const int wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0) {
    close(ep);
    return NetError(Code::kInternal, NetErr::kSyscall, "eventfd failed");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the wake fd is recognised by its null handler
  if (epoll_ctl(ep, EPOLL_CTL_ADD, wake, &ev) != 0) {
    close(ep);
    close(wake);
    return NetError(Code::kInternal, NetErr::kSyscall, "epoll_ctl(wake) failed");
  }
  return std::unique_ptr<EventLoop>(new EventLoop(ep, wake));
}

EventLoop::EventLoop(int epoll_fd, int wake_fd)
    : epoll_fd_(epoll_fd),
      wake_fd_(wake_fd),
      thread_id_(std::this_thread::get_id()),
      now_ms_(MonotonicMs()),
      scratch_(new uint8_t[kScratchSize]),
      head_(&stub_),
      tail_(&stub_) {}

EventLoop::~EventLoop() {
  DrainPosted();  // run nothing twice; drop what is left
  close(wake_fd_);
  close(epoll_fd_);
}

void EventLoop::UpdateNow() { now_ms_ = MonotonicMs(); }

void EventLoop::Stop() {
  stop_.store(true, std::memory_order_release);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
}

void EventLoop::Post(std::function<void()> fn) {
  auto* node = new PostNode;
  node->fn = std::move(fn);
  PostNode* prev = head_.exchange(node, std::memory_order_acq_rel);
  prev->next.store(node, std::memory_order_release);
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
  }
}

void EventLoop::DrainPosted() {
  wake_pending_.store(false, std::memory_order_release);
  for (;;) {
    PostNode* tail = tail_;
    PostNode* next = tail->next.load(std::memory_order_acquire);
    if (tail == &stub_) {
      if (next == nullptr) return;
      tail_ = next;
      tail = next;
      next = next->next.load(std::memory_order_acquire);
    }
    if (next != nullptr) {
      tail_ = next;
      std::function<void()> fn = std::move(tail->fn);
      delete tail;
      fn();
      continue;
    }
    if (tail != head_.load(std::memory_order_acquire)) return;  // a producer is mid-push
    // Re-insert the stub so the last real node can be popped.
    stub_.next.store(nullptr, std::memory_order_relaxed);
    PostNode* prev = head_.exchange(&stub_, std::memory_order_acq_rel);
    prev->next.store(&stub_, std::memory_order_release);
    next = tail->next.load(std::memory_order_acquire);
    if (next == nullptr) return;
    tail_ = next;
    std::function<void()> fn = std::move(tail->fn);
    delete tail;
    fn();
  }
}

namespace {
Status EpollCtl(int epoll_fd, int op, int fd, uint32_t events, IoHandler* handler,
                const char* failure) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_fd, op, fd, &ev) != 0) return NetError(Code::kInternal, NetErr::kSyscall, failure);
  return Ok();
}
}  // namespace

Status EventLoop::Add(int fd, uint32_t events, IoHandler* handler) {
  return EpollCtl(epoll_fd_, EPOLL_CTL_ADD, fd, events, handler, "epoll_ctl(ADD) failed");
}

Status EventLoop::Modify(int fd, uint32_t events, IoHandler* handler) {
  return EpollCtl(epoll_fd_, EPOLL_CTL_MOD, fd, events, handler, "epoll_ctl(MOD) failed");
}

void EventLoop::Remove(int fd) { epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

TimerId EventLoop::RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) {
  const TimerId id = next_timer_id_++;
  timers_.push_back({id, TimerEntry{std::move(fn), 0}});
  timer_heap_.push(Timer{now_ms_ + static_cast<uint64_t>(delay.count()), id});
  return id;
}

TimerId EventLoop::RunEvery(std::chrono::milliseconds period, std::function<void()> fn) {
  const TimerId id = next_timer_id_++;
  const auto p = static_cast<uint64_t>(std::max<int64_t>(1, period.count()));
  timers_.push_back({id, TimerEntry{std::move(fn), p}});
  timer_heap_.push(Timer{now_ms_ + p, id});
  return id;
}

void EventLoop::Cancel(TimerId id) {
  std::erase_if(timers_, [id](const auto& t) { return t.first == id; });
}

int EventLoop::NextTimeoutMs() const {
  if (timer_heap_.empty()) return 1000;
  const uint64_t due = timer_heap_.top().due_ms;
  if (due <= now_ms_) return 0;
  return static_cast<int>(std::min<uint64_t>(due - now_ms_, 1000));
}

void EventLoop::RunTimers() {
  while (!timer_heap_.empty() && timer_heap_.top().due_ms <= now_ms_) {
    const Timer t = timer_heap_.top();
    timer_heap_.pop();
    auto it = std::find_if(timers_.begin(), timers_.end(),
                           [&](const auto& e) { return e.first == t.id; });
    if (it == timers_.end()) continue;  // cancelled
    if (it->second.period_ms == 0) {
      std::function<void()> fn = std::move(it->second.fn);
      timers_.erase(it);
      fn();
    } else {
      timer_heap_.push(Timer{now_ms_ + it->second.period_ms, t.id});
      std::function<void()> fn = it->second.fn;  // the callback may cancel itself
      fn();
    }
  }
}

void EventLoop::Run() {
  thread_id_ = std::this_thread::get_id();
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (!stop_.load(std::memory_order_acquire)) {
    UpdateNow();
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents, NextTimeoutMs());
    UpdateNow();
    for (int i = 0; i < n; ++i) {
      auto* handler = static_cast<IoHandler*>(events[i].data.ptr);
      if (handler == nullptr) {
        uint64_t v = 0;
        [[maybe_unused]] ssize_t r = read(wake_fd_, &v, sizeof v);
        continue;
      }
      handler->OnIo(events[i].events);
    }
    DrainPosted();
    RunTimers();
  }
  DrainPosted();
}

}  // namespace sotto::net
