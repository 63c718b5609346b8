// Proves "no heap allocation per steady-state message beyond the output buffer": counts
// every malloc in the process (operator new, OpenSSL, libsodium all go through it) around
// EncryptWithRecord / DecryptWithRecord and the sender-key equivalents.
// Built only without sanitizers, which interpose malloc themselves.
#include <gtest/gtest.h>

#include <cstdlib>

#include "signal/group.h"
#include "tests/unit/signal_test_util.h"

extern "C" void* __libc_malloc(size_t size);  // NOLINT(bugprone-reserved-identifier)

namespace {
thread_local bool counting = false;
thread_local size_t allocations = 0;
}  // namespace

// A place for a debugger breakpoint: `break OnCountedAllocation` shows who allocated.
extern "C" __attribute__((noinline)) void OnCountedAllocation() { asm volatile(""); }

extern "C" void* malloc(size_t size) {  // NOLINT(cert-dcl58-cpp): deliberate interposition
  if (counting) {
    ++allocations;
    OnCountedAllocation();
  }
  return __libc_malloc(size);
}

namespace sotto::signal {
namespace {

using testing::Device;

class AllocationTest : public ::testing::Test {
 protected:
  AllocationTest() : random_(5), alice_("alice", random_), bob_("bob", random_) {}

  template <typename F>
  size_t Count(F&& f) {
    allocations = 0;
    counting = true;
    f();
    counting = false;
    return allocations;
  }

  crypto::DeterministicRandom random_;
  Device alice_;
  Device bob_;
};

TEST_F(AllocationTest, SteadyStatePairwiseMessageAllocatesOnlyItsOutput) {
  PreKeyBundle bundle = bob_.MakeBundle(1, 1, true);
  ASSERT_TRUE(ProcessPreKeyBundle(alice_.store.stores(), bob_.address(), bundle, random_));
  auto first = alice_.CipherFor(bob_).Encrypt(AsBytes("x"));
  ASSERT_TRUE(bob_.CipherFor(alice_).Decrypt(first->bytes, first->type));
  auto reply = bob_.CipherFor(alice_).Encrypt(AsBytes("y"));
  ASSERT_TRUE(alice_.CipherFor(bob_).Decrypt(reply->bytes, reply->type));
  SessionRecord sender = **alice_.store.sessions.LoadSession(bob_.address());
  SessionRecord receiver = **bob_.store.sessions.LoadSession(alice_.address());
  const Bytes body(160, 0x61);
  // Warm up thread-local cipher contexts and lazily fetched algorithms.
  for (int i = 0; i < 3; ++i) {
    auto m = EncryptWithRecord(sender, body);
    ASSERT_TRUE(DecryptWithRecord(receiver, m->bytes, random_));
  }
  for (int i = 0; i < 50; ++i) {
    Result<CiphertextMessage> m;
    EXPECT_EQ(Count([&] { m = EncryptWithRecord(sender, body); }), 1u);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->type, MessageType::kSignal);
    Result<Bytes> p;
    EXPECT_EQ(Count([&] { p = DecryptWithRecord(receiver, m->bytes, random_); }), 1u);
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, body);
  }
}

TEST_F(AllocationTest, SteadyStateSenderKeyMessageAllocatesOnlyItsOutput) {
  const SenderKeyName name{"g", alice_.address()};
  auto skdm = CreateSenderKeyDistribution(alice_.store.sender_keys, name, random_);
  ASSERT_TRUE(ProcessSenderKeyDistribution(bob_.store.sender_keys, name, *skdm));
  SenderKeyRecord out = **alice_.store.sender_keys.LoadSenderKey(name);
  SenderKeyRecord in = **bob_.store.sender_keys.LoadSenderKey(name);
  const Bytes body(160, 0x62);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(GroupDecryptWithRecord(in, *GroupEncryptWithRecord(out, body, random_)));
  }
  for (int i = 0; i < 20; ++i) {
    Result<Bytes> m;
    EXPECT_EQ(Count([&] { m = GroupEncryptWithRecord(out, body, random_); }), 1u);
    Result<Bytes> p;
    EXPECT_EQ(Count([&] { p = GroupDecryptWithRecord(in, *m); }), 1u);
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, body);
  }
}

}  // namespace
}  // namespace sotto::signal
