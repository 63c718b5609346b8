// Tests of server/accounts.h over a shared store (docs/store.md, "Compare-and-set"): two
// Accounts objects over one store, as two sottod nodes would be, lose no update; a Get of
// a cached account never waits for another change's store write; the cache never goes
// back to an older revision.
#include "server/accounts.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "crypto/random.h"
#include "store/memory_store.h"

namespace sotto::server {
namespace {

StaticKey Key(uint8_t b) {
  StaticKey k{};
  k.fill(b);
  return k;
}

bool IsStale(const Error& e) {
  return e.module == Module::kStore && e.detail == static_cast<uint16_t>(store::StoreErr::kStale);
}

// Gates for one call: the call blocks, after reaching the inner store, until Release().
class Gate {
 public:
  // Called by the gated call: says it arrived, then waits for Release().
  void Pass() {
    std::unique_lock lock(mu_);
    arrived_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return released_; });
  }
  void AwaitArrival() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return arrived_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool arrived_ = false;
  bool released_ = false;
};

// Passes every call to `inner`; the decorators below override what they change.
class ForwardingAccountStore : public store::AccountStore {
 public:
  explicit ForwardingAccountStore(store::AccountStore& inner) : inner_(inner) {}

  Result<std::optional<store::AccountRecord>> Get(const AccountId& id) override {
    return inner_.Get(id);
  }
  Result<std::optional<AccountId>> FindByHandle(std::string_view handle) override {
    return inner_.FindByHandle(handle);
  }
  Result<std::optional<DeviceAddress>> FindByNoiseKey(const StaticKey& key) override {
    return inner_.FindByNoiseKey(key);
  }
  Result<uint64_t> Put(const store::AccountRecord& account) override { return inner_.Put(account); }
  Status AddContact(const AccountId& owner, const AccountId& contact) override {
    return inner_.AddContact(owner, contact);
  }
  Status RemoveContact(const AccountId& owner, const AccountId& contact) override {
    return inner_.RemoveContact(owner, contact);
  }
  Result<bool> HasContact(const AccountId& owner, const AccountId& contact) override {
    return inner_.HasContact(owner, contact);
  }

 protected:
  store::AccountStore& inner_;
};

// Passes everything to the memory store; the next Put or Get after ArmPut/ArmGet stops at
// the gate (a Put before its write, a Get after its read), standing in for a slow fsync
// or a slow read.
class GatedStore final : public ForwardingAccountStore {
 public:
  using ForwardingAccountStore::ForwardingAccountStore;

  void ArmPut(Gate* gate) { put_gate_.store(gate); }
  void ArmGet(Gate* gate) { get_gate_.store(gate); }

  Result<std::optional<store::AccountRecord>> Get(const AccountId& id) override {
    auto record = inner_.Get(id);
    if (Gate* gate = get_gate_.exchange(nullptr)) gate->Pass();
    return record;
  }
  Result<uint64_t> Put(const store::AccountRecord& account) override {
    if (Gate* gate = put_gate_.exchange(nullptr)) gate->Pass();
    auto put = inner_.Put(account);
    if (!put && IsStale(put.error())) ++stale_puts;
    return put;
  }

  std::atomic<int> stale_puts{0};  // compare-and-sets that lost

 private:
  std::atomic<Gate*> put_gate_{nullptr};
  std::atomic<Gate*> get_gate_{nullptr};
};

class AccountsTest : public ::testing::Test {
 protected:
  DeviceAddress Register(Accounts& accounts, const std::string& handle, uint8_t key) {
    auto r = accounts.RegisterPrimary(handle, Key(key), 1000, random_);
    EXPECT_TRUE(r) << r.error().ToString();
    return r ? r->device : DeviceAddress{};
  }

  std::unique_ptr<store::Store> store_ = store::NewMemoryStore();
  crypto::DeterministicRandom random_{13};
};

// Two nodes (two Accounts objects, each with its own cache) change different fields of
// one device concurrently. Without compare-and-set, each would write back its cached
// copy and undo the other's changes; with it, both fields end at their last values.
TEST_F(AccountsTest, TwoNodesOverOneStoreLoseNoUpdate) {
  GatedStore counted(store_->accounts());  // no gate armed: counts lost compare-and-sets
  Accounts node1(counted);
  Accounts node2(counted);
  const DeviceAddress device = Register(node1, "+15550000001", 1);
  ASSERT_TRUE(node2.Get(device.account).value() != nullptr);  // both caches warm

  constexpr uint32_t kRounds = 300;
  std::atomic<int> reported{0};  // conflicts reported after kMaxCasAttempts: retried here
  std::atomic<int> errors{0};
  auto until_done = [&](auto&& call) {
    for (;;) {
      Status s = call();
      if (s) return;
      if (!IsStale(s.error())) {
        ++errors;
        return;
      }
      ++reported;
    }
  };
  std::latch start(2);
  std::thread endpoints([&] {
    start.arrive_and_wait();
    for (uint32_t i = 1; i <= kRounds; ++i) {
      until_done([&] {
        return node1.SetPushEndpoint(device, "https://push.example/" + std::to_string(i));
      });
    }
  });
  std::thread registrations([&] {
    start.arrive_and_wait();
    for (uint32_t i = 1; i <= kRounds; ++i) {
      until_done([&] { return node2.SetRegistrationId(device, i); });
    }
  });
  endpoints.join();
  registrations.join();
  EXPECT_EQ(errors.load(), 0);

  auto stored = store_->accounts().Get(device.account);
  ASSERT_TRUE(stored && stored->has_value());
  const store::DeviceRecord* d = (*stored)->FindDevice(device.device_id);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->push_endpoint, "https://push.example/" + std::to_string(kRounds));
  EXPECT_EQ(d->registration_id, kRounds);
  EXPECT_EQ((*stored)->revision, 1u + 2 * kRounds) << "one stored revision per change";
  // Each node's cache holds at least its own last write.
  EXPECT_EQ(node1.Get(device.account).value()->FindDevice(1)->push_endpoint,
            "https://push.example/" + std::to_string(kRounds));
  EXPECT_EQ(node2.Get(device.account).value()->FindDevice(1)->registration_id, kRounds);
  RecordProperty("reported_conflicts", reported.load());
  RecordProperty("retried_conflicts", counted.stale_puts.load());
}

// A Send's Get of a cached account returns while another change of the same account
// waits in its store write (a slow fsync): no lock is held across store I/O.
TEST_F(AccountsTest, GetDoesNotWaitForASlowPut) {
  GatedStore gated(store_->accounts());
  Accounts accounts(gated);
  const DeviceAddress alice = Register(accounts, "+15550000001", 1);
  const DeviceAddress bob = Register(accounts, "+15550000002", 2);

  Gate gate;
  gated.ArmPut(&gate);
  std::thread writer(
      [&] { EXPECT_TRUE(accounts.SetPushEndpoint(alice, "https://push.example/a")); });
  gate.AwaitArrival();  // the writer is inside the store's Put

  // Bounded only so that a regression fails instead of hanging the suite.
  auto get = std::async(std::launch::async, [&] {
    auto a = accounts.Get(alice.account);
    auto b = accounts.Get(bob.account);
    return a && *a != nullptr && b && *b != nullptr &&
           (*a)->FindDevice(1)->push_endpoint.empty();  // the snapshot before the change
  });
  const bool returned = get.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  gate.Release();
  writer.join();
  ASSERT_TRUE(returned) << "Get waited for another change's store write";
  EXPECT_TRUE(get.get());
  EXPECT_EQ(accounts.Get(alice.account).value()->FindDevice(1)->push_endpoint,
            "https://push.example/a");
}

// A cache miss whose store read returns after a change cached a newer revision must not
// replace it with the older record it read.
TEST_F(AccountsTest, SlowReadDoesNotReplaceANewerCachedRevision) {
  Accounts node1(store_->accounts());
  const DeviceAddress device = Register(node1, "+15550000001", 1);

  GatedStore gated(store_->accounts());
  Accounts node2(gated);  // cold cache
  Gate gate;
  gated.ArmGet(&gate);
  std::promise<uint32_t> seen;
  std::thread reader([&] {
    auto r = node2.Get(device.account);  // reads revision 1, then stops at the gate
    seen.set_value(r && *r != nullptr ? (*r)->FindDevice(1)->registration_id : 0);
  });
  gate.AwaitArrival();
  ASSERT_TRUE(node2.SetRegistrationId(device, 77));  // reads again, writes revision 2
  gate.Release();
  reader.join();
  EXPECT_EQ(seen.get_future().get(), 77u) << "the slow reader gets the newer cached record";
  auto cached = node2.Get(device.account);
  ASSERT_TRUE(cached && *cached != nullptr);
  EXPECT_EQ((*cached)->revision, 2u);
  EXPECT_EQ((*cached)->FindDevice(1)->registration_id, 77u);
}

// A change that keeps losing reports kStale (Code::kAborted) after kMaxCasAttempts and
// writes nothing.
TEST_F(AccountsTest, ChangeThatKeepsLosingReportsTheConflict) {
  Accounts node1(store_->accounts());
  const DeviceAddress device = Register(node1, "+15550000001", 1);
  int attempts = 0;
  // Every attempt, another writer changes the account between the read and the Put.
  class Racer final : public ForwardingAccountStore {
   public:
    Racer(store::AccountStore& inner, int& attempts)
        : ForwardingAccountStore(inner), attempts_(attempts) {}
    Result<uint64_t> Put(const store::AccountRecord& account) override {
      ++attempts_;
      auto current = inner_.Get(account.id);
      if (current && current->has_value()) {
        store::AccountRecord other = **current;
        other.presence = store::PresenceVisibility::kNobody;
        if (!inner_.Put(other))
          return store::StoreError(Code::kInternal, store::StoreErr::kBackend, "racer");
      }
      return inner_.Put(account);
    }

   private:
    int& attempts_;
  } racer(store_->accounts(), attempts);
  Accounts node2(racer);
  auto s = node2.SetRegistrationId(device, 5);
  ASSERT_FALSE(s);
  EXPECT_TRUE(IsStale(s.error()));
  EXPECT_EQ(s.error().code, Code::kAborted);
  EXPECT_EQ(attempts, kMaxCasAttempts);
  EXPECT_EQ((*store_->accounts().Get(device.account))->FindDevice(1)->registration_id, 0u)
      << "a lost change wrote nothing";
}

}  // namespace
}  // namespace sotto::server
