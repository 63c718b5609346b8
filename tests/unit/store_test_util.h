// Helpers shared by the store tests: a fixture that runs every test against both
// backends (memory, and RocksDB in a fresh temporary directory), a fake wall clock, and
// ways to wait for queue callbacks without sleeping.
#pragma once

#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/memory_store.h"
#include "store/rocksdb/rocksdb_store.h"
#include "store/store.h"

namespace sotto::store::testing {

enum class Backend { kMemory, kRocksDb };

inline std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kMemory ? "Memory" : "RocksDb";
}

// A directory that exists for the object's lifetime, under $TEST_TMPDIR if set.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const char* base = std::getenv("TEST_TMPDIR");
    std::filesystem::path root =
        base != nullptr ? std::filesystem::path(base) : std::filesystem::temp_directory_path();
    path_ = root / ("sotto_store_test_" + std::to_string(getpid()) + "_" +
                    std::to_string(counter.fetch_add(1)));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string Sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline constexpr uint64_t kT0 = 1'700'000'000'000;  // the fake clock's start
inline constexpr uint64_t kHour = 3'600'000;

inline AccountId Id(uint8_t b) {
  AccountId id{};
  id.fill(b);
  return id;
}
inline StaticKey NoiseKey(uint8_t b) {
  StaticKey key{};
  key.fill(b);
  return key;
}
inline PublicKey PubKey(uint8_t b) {
  PublicKey key{};
  key.fill(b);
  key[0] = 0x05;
  return key;
}
inline DeviceAddress Addr(uint8_t account, uint32_t device) { return {Id(account), device}; }

inline uint16_t Detail(StoreErr e) { return static_cast<uint16_t>(e); }

// What RaceReadModifyWrite counted.
struct CasRace {
  int successes = 0;
  int stale = 0;   // lost compare-and-sets, each retried
  int errors = 0;  // a read or write that failed otherwise (the thread stopped there)
};

// `threads` threads, released together, each do `increments` read-modify-write cycles:
// `read_and_change` reads the record and returns it changed (nullopt = the read failed),
// `put` writes it by compare-and-set. A lost race (kStale) retries the whole cycle.
template <typename ReadAndChange, typename Put>
CasRace RaceReadModifyWrite(int threads, int increments, ReadAndChange read_and_change, Put put) {
  std::atomic<int> successes{0};
  std::atomic<int> stale{0};
  std::atomic<int> errors{0};
  std::latch start(threads);  // all threads race from the first increment on
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < increments; ++i) {
        for (;;) {
          auto next = read_and_change();
          if (!next) {
            ++errors;
            return;
          }
          std::this_thread::yield();  // widen the read-to-write window
          auto written = put(*next);
          if (written) {
            ++successes;
            break;
          }
          if (written.error().detail != Detail(StoreErr::kStale)) {
            ++errors;
            return;
          }
          ++stale;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  return {successes.load(), stale.load(), errors.load()};
}

// Waits for queue callbacks: counts them and records each request's result by a tag.
class Callbacks {
 public:
  MessageQueue::Done Make(size_t tag) {
    return [this, tag](WriteRequest&&, WriteResult&& result) {
      std::lock_guard lock(mu_);
      if (results_.size() <= tag) results_.resize(tag + 1);
      results_[tag].push_back(std::move(result));
      ++done_;
      cv_.notify_all();
    };
  }
  void WaitFor(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_ >= n; });
  }
  // Results by tag; each should hold exactly one.
  std::vector<std::vector<WriteResult>> Take() {
    std::lock_guard lock(mu_);
    return std::move(results_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t done_ = 0;
  std::vector<std::vector<WriteResult>> results_;
};

// Holds the RocksDB writer thread inside a callback until Release(), so that every write
// issued meanwhile is pending when it resumes and the next batch takes them together.
class WriterGate {
 public:
  explicit WriterGate(MessageQueue& queue) : released_(release_.get_future().share()) {
    std::promise<void> entered;
    std::future<void> entered_future = entered.get_future();
    queue.Write(WriteRequest{}, [entered = std::make_shared<std::promise<void>>(std::move(entered)),
                                 released = released_](WriteRequest&&, WriteResult&&) {
      entered->set_value();
      released.wait();
    });
    entered_future.wait();
  }
  ~WriterGate() { Release(); }
  WriterGate(const WriterGate&) = delete;
  WriterGate& operator=(const WriterGate&) = delete;

  void Release() {
    if (!released_flag_) release_.set_value();
    released_flag_ = true;
  }

 private:
  std::promise<void> release_;
  std::shared_future<void> released_;
  bool released_flag_ = false;
};

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { Open(); }
  void TearDown() override { store_.reset(); }

  void Open() {
    store_.reset();
    if (GetParam() == Backend::kMemory) {
      store_ = NewMemoryStore(Clock());
      return;
    }
    RocksDbOptions options;
    options.path = dir_.Sub("db");
    options.sync = false;  // durability across crashes is RocksDB's; these test semantics
    options.clock = Clock();
    auto opened = OpenRocksDbStore(options);
    ASSERT_TRUE(opened) << opened.error().ToString();
    store_ = std::move(*opened);
  }

  WallClock Clock() {
    return [this] { return now_ms_.load(); };
  }

  AccountStore& accounts() { return store_->accounts(); }
  KeyStore& keys() { return store_->keys(); }
  MessageQueue& queue() { return store_->queue(); }

  WriteResult WriteSync(WriteRequest request) {
    std::promise<WriteResult> promise;
    std::future<WriteResult> future = promise.get_future();
    queue().Write(std::move(request), [&promise](WriteRequest&&, WriteResult&& result) {
      promise.set_value(std::move(result));
    });
    return future.get();
  }

  // Writes `requests` so that the RocksDB backend commits them in one batch.
  std::vector<WriteResult> WriteOneBatch(std::vector<WriteRequest> requests) {
    Callbacks callbacks;
    {
      std::unique_ptr<WriterGate> gate;
      if (GetParam() == Backend::kRocksDb) gate = std::make_unique<WriterGate>(queue());
      for (size_t i = 0; i < requests.size(); ++i) {
        queue().Write(std::move(requests[i]), callbacks.Make(i));
      }
    }
    callbacks.WaitFor(requests.size());
    std::vector<WriteResult> out;
    for (auto& results : callbacks.Take()) {
      EXPECT_EQ(results.size(), 1u);
      if (!results.empty()) out.push_back(std::move(results[0]));
    }
    return out;
  }

  std::vector<StoredMessage> ReadAll(const DeviceAddress& device, uint64_t after_seq = 0) {
    auto read = queue().Read(device, after_seq, 1'000'000, now_ms_.load());
    EXPECT_TRUE(read) << read.error().ToString();
    return read ? *read : std::vector<StoredMessage>();
  }

  uint32_t DepthOf(const DeviceAddress& device) {
    auto depth = queue().Depth(device);
    EXPECT_TRUE(depth) << depth.error().ToString();
    return depth ? *depth : 0;
  }

  std::atomic<uint64_t> now_ms_{kT0};
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

inline Append Msg(const DeviceAddress& to, std::string payload, std::string dedupe_id = {},
                  uint64_t expires_ms = kT0 + kHour) {
  Append a;
  a.recipient = to;
  a.dedupe_id = std::move(dedupe_id);
  a.expires_ms = expires_ms;
  a.payload = std::move(payload);
  return a;
}

inline WriteRequest Req(std::vector<Append> appends, std::vector<Removal> removals = {},
                        uint32_t max_depth = 0) {
  WriteRequest r;
  r.appends = std::move(appends);
  r.removals = std::move(removals);
  r.max_depth = max_depth;
  return r;
}

}  // namespace sotto::store::testing
