// A small, bounded pool of threads for the server's blocking store work (docs/server.md,
// "Threads"): request handlers that write to the store (and so wait for an fsync, or later
// a network round trip) run here instead of on a gateway loop, so one slow disk does not
// stall every connection of a loop. A fixed number of threads (store.io_threads) take jobs
// from one queue of at most store.io_queue_depth jobs that have not started yet; a job that
// does not fit is refused at once, and the caller tells the client so.
//
// A job is reserved first (Reserve: refused when the queue is full) and submitted after
// (Submit: cannot fail), so a handler can take its room before it does anything it could
// not undo (e.g. consume a verification code).
//
// With zero threads, Submit runs the job inline on the caller's thread: for the
// single-threaded in-process test harness, never for sottod (ValidateConfig refuses 0).
//
// Thread-safety: thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace sotto::server::internal {

class BlockingPool {
 public:
  // Starts `threads` threads (0: jobs run inline) with room for `max_queued` waiting jobs.
  BlockingPool(uint32_t threads, uint32_t max_queued);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Room for one job in the queue, held until Submit or destruction. Move-only.
  class Slot {
   public:
    Slot(Slot&& other) noexcept : pool_(other.pool_) { other.pool_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    Slot(const Slot&) = delete;
    ~Slot();

   private:
    friend class BlockingPool;
    explicit Slot(BlockingPool* pool) : pool_(pool) {}
    BlockingPool* pool_;
  };

  // A slot, or nothing if max_queued jobs are reserved or waiting already, or the pool
  // has stopped.
  std::optional<Slot> Reserve();
  // Queues `job` in the room `slot` holds (after Stop: runs it inline, as Stop drains).
  void Submit(Slot slot, std::function<void()> job);

  // Runs every job already queued, then joins the threads; later jobs run inline and
  // Reserve refuses. Idempotent.
  void Stop();

  uint32_t max_queued() const { return max_queued_; }
  // Jobs reserved or waiting (not yet started), and jobs running now.
  size_t queued() const;
  size_t running() const;
  uint64_t refused() const;  // Reserve calls that found the queue full

 private:
  void Worker();
  void Release();  // a slot given back unused

  const uint32_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // GUARDED_BY(mu_)
  size_t reserved_ = 0;                     // slots taken, not yet submitted; GUARDED_BY(mu_)
  size_t running_ = 0;                      // GUARDED_BY(mu_)
  uint64_t refused_ = 0;                    // GUARDED_BY(mu_)
  bool stopping_ = false;                   // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace sotto::server::internal
