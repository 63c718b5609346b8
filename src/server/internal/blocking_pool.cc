#include "server/internal/blocking_pool.h"

#include <utility>

namespace sotto::server::internal {

BlockingPool::BlockingPool(uint32_t threads, uint32_t max_queued) : max_queued_(max_queued) {
  threads_.reserve(threads);
  for (uint32_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Worker(); });
}

BlockingPool::~BlockingPool() { Stop(); }

BlockingPool::Slot::~Slot() {
  if (pool_ != nullptr) pool_->Release();
}

std::optional<BlockingPool::Slot> BlockingPool::Reserve() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || jobs_.size() + reserved_ >= max_queued_) {
    ++refused_;
    return std::nullopt;
  }
  ++reserved_;
  return Slot(this);
}

void BlockingPool::Release() {
  std::lock_guard<std::mutex> lock(mu_);
  --reserved_;
}

void BlockingPool::Submit(Slot slot, std::function<void()> job) {
  slot.pool_ = nullptr;  // its room passes to the job
  {
    std::lock_guard<std::mutex> lock(mu_);
    --reserved_;
    if (!threads_.empty() && !stopping_) {
      jobs_.push_back(std::move(job));
      cv_.notify_one();
      return;
    }
    ++running_;
  }
  job();  // inline: no threads, or stopped (Stop drains, so the job still runs)
  std::lock_guard<std::mutex> lock(mu_);
  --running_;
}

void BlockingPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void BlockingPool::Worker() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and everything queued has run
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    job();
    job = nullptr;  // what it captured goes before the next job, outside the lock
    lock.lock();
    --running_;
  }
}

size_t BlockingPool::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size() + reserved_;
}

size_t BlockingPool::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

uint64_t BlockingPool::refused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_;
}

}  // namespace sotto::server::internal
