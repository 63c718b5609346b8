// Store work off the event loops (docs/server.md "Threads"): a real gateway with one loop
// on 127.0.0.1 and the server core on an in-memory store whose key uploads block until the
// test lets them go. While one connection's upload waits in the store, another connection
// of the same loop is still answered; when the blocking-work queue is full, a request is
// refused at once with STATUS_BUSY and a reason naming store.io_queue_depth.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "client/gateway_client.h"
#include "server/core.h"
#include "server/gateway.h"
#include "store/memory_store.h"
#include "tests/support/in_process_server.h"

namespace sotto {
namespace {

using client::GatewayClient;

constexpr auto kWait = std::chrono::seconds(10);  // bounds a wait for the server, not a sleep

// The in-memory store whose PutDeviceKeys waits, while the gate is closed, until Open().
class GatedStore final : public store::Store, public store::KeyStore {
 public:
  GatedStore() : inner_(store::NewMemoryStore()) {}
  store::AccountStore& accounts() override { return inner_->accounts(); }
  store::KeyStore& keys() override { return *this; }
  store::MessageQueue& queue() override { return inner_->queue(); }
  store::GroupStore& groups() override { return inner_->groups(); }
  void Close() override { inner_->Close(); }

  Status PutDeviceKeys(const store::DeviceAddress& device, const store::DeviceKeys& keys) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (closed_) {
        ++waiting_;
        cv_.notify_all();
        cv_.wait(lock, [this] { return !closed_; });
        --waiting_;
      }
    }
    return inner_->keys().PutDeviceKeys(device, keys);
  }
  Result<std::optional<store::DeviceKeys>> GetDeviceKeys(
      const store::DeviceAddress& device) override {
    return inner_->keys().GetDeviceKeys(device);
  }
  Status AddOneTimePreKeys(const store::DeviceAddress& device,
                           std::span<const store::OneTimePreKey> keys) override {
    return inner_->keys().AddOneTimePreKeys(device, keys);
  }
  Result<std::optional<store::OneTimePreKey>> ClaimOneTimePreKey(
      const store::DeviceAddress& device) override {
    return inner_->keys().ClaimOneTimePreKey(device);
  }
  Result<uint32_t> CountOneTimePreKeys(const store::DeviceAddress& device) override {
    return inner_->keys().CountOneTimePreKeys(device);
  }
  Status DeleteDevice(const store::DeviceAddress& device) override {
    return inner_->keys().DeleteDevice(device);
  }

  void CloseGate() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = false;
    cv_.notify_all();
  }
  // Waits until an upload waits at the closed gate; false after kWait.
  bool AwaitWaiter() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [this] { return waiting_ > 0; });
  }

 private:
  std::unique_ptr<store::Store> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;  // GUARDED_BY(mu_)
  int waiting_ = 0;      // GUARDED_BY(mu_)
};

// Keeps the last code; the loop thread writes it, the test thread reads it.
class LockedCodeSender final : public server::CodeSender {
 public:
  Status Send(const std::string& /*handle*/, const std::string& code) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_ = code;
    return Ok();
  }
  std::string last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }

 private:
  std::mutex mu_;
  std::string last_;  // GUARDED_BY(mu_)
};

struct Device {
  std::unique_ptr<GatewayClient> conn;
  std::string account_id;
  crypto::X25519Private identity{};
};

class BlockingWork : public ::testing::Test {
 protected:
  void StartServer(uint32_t io_threads, uint32_t io_queue_depth) {
    codes_ = std::move(*server::VerificationCodes::Create(server::CodeOptions{}));
    server::CoreOptions options;
    options.store.io_threads = io_threads;
    options.store.io_queue_depth = io_queue_depth;
    core_ = std::make_unique<server::ServerCore>(options, store_, *codes_, sender_, nullptr);
    server::GatewayOptions g;
    g.loops = 1;  // every connection on the same loop
    g.listen = *net::ParseHostPort("127.0.0.1:0");
    g.server_static = noise::KeyPair::Generate(crypto::SystemRandom());
    g.core = core_.get();
    server_key_ = g.server_static.public_key;
    auto started = server::Gateway::Start(std::move(g));
    ASSERT_TRUE(started) << started.error().ToString();
    gateway_ = std::move(*started);
  }

  void TearDown() override {
    store_.Open();  // a job still waiting finishes
    if (gateway_) gateway_->Shutdown();
    if (core_) core_->Stop();  // before the gateway's loops go: jobs post to them
  }

  // A connection registered as the primary of a fresh handle.
  Device Register() {
    static int next = 0;
    const std::string handle = "+1555010" + std::to_string(1000 + next++);
    Device d;
    client::ClientOptions o;
    o.server = *net::ParseHostPort("127.0.0.1:" + std::to_string(gateway_->port()));
    o.device_static = noise::KeyPair::Generate(crypto::SystemRandom());
    o.server_static = server_key_;
    o.timeout = std::chrono::milliseconds(3000);
    auto c = GatewayClient::Connect(o);
    EXPECT_TRUE(c) << c.error().ToString();
    if (!c) return d;
    d.conn = std::move(*c);
    wire::Request ask;
    ask.mutable_request_code()->set_handle(handle);
    auto asked = d.conn->Call(ask);
    EXPECT_TRUE(asked && asked->status() == wire::STATUS_OK);
    wire::Request reg;
    reg.mutable_register_()->set_handle(handle);
    reg.mutable_register_()->set_code(sender_.last());
    auto registered = d.conn->Call(reg);
    EXPECT_TRUE(registered && registered->status() == wire::STATUS_OK);
    if (registered) d.account_id = registered->register_().account_id();
    d.identity = crypto::GeneratePrivateKey(crypto::SystemRandom());
    return d;
  }

  wire::Request Upload(const Device& d, uint64_t id) {
    wire::Request r = testing::UploadKeysRequest(d.identity, 7, 3, crypto::SystemRandom());
    r.set_id(id);
    return r;
  }

  // Sends `request` without waiting for its answer.
  static void SendRequest(GatewayClient& c, const wire::Request& request) {
    wire::Frame f;
    *f.mutable_request() = request;
    ASSERT_TRUE(c.Send(f));
  }

  // The next response on `c` (other frames are skipped).
  static Result<wire::Response> NextResponse(GatewayClient& c) {
    for (;;) {
      auto f = c.Receive();
      if (!f) return tl::unexpected(f.error());
      if (f->has_response()) return f->response();
    }
  }

  GatedStore store_;
  LockedCodeSender sender_;
  std::unique_ptr<server::VerificationCodes> codes_;
  std::unique_ptr<server::ServerCore> core_;
  std::unique_ptr<server::Gateway> gateway_;
  crypto::X25519Public server_key_{};
};

// Fails before the handlers moved to the pool: the upload waiting in the store held the
// only loop, so the other connection's bundle fetch timed out.
TEST_F(BlockingWork, LoopAnswersOthersWhileAnUploadWaitsInTheStore) {
  StartServer(/*io_threads=*/2, /*io_queue_depth=*/16);
  Device alice = Register();
  Device bob = Register();
  Device carol = Register();
  ASSERT_TRUE(alice.conn && bob.conn && carol.conn);
  auto up = alice.conn->Call(Upload(alice, 0));
  ASSERT_TRUE(up);
  ASSERT_EQ(up->status(), wire::STATUS_OK) << up->reason();

  store_.CloseGate();
  SendRequest(*bob.conn, Upload(bob, 77));
  ASSERT_TRUE(store_.AwaitWaiter()) << "bob's upload never reached the store";

  // Same loop, another connection: answered while bob's upload still waits.
  wire::Request fetch;
  fetch.mutable_get_bundle()->set_account_id(alice.account_id);
  auto bundle = carol.conn->Call(fetch);
  ASSERT_TRUE(bundle) << "the loop waited for the store: " << bundle.error().ToString();
  EXPECT_EQ(bundle->status(), wire::STATUS_OK) << bundle->reason();
  EXPECT_EQ(bundle->get_bundle().bundles_size(), 1);
  wire::Request echo;
  echo.mutable_echo()->set_data("still here");
  auto echoed = carol.conn->Call(echo);
  ASSERT_TRUE(echoed);
  EXPECT_EQ(echoed->echo().data(), "still here");

  store_.Open();
  auto answer = NextResponse(*bob.conn);
  ASSERT_TRUE(answer) << answer.error().ToString();
  EXPECT_EQ(answer->id(), 77u);
  EXPECT_EQ(answer->status(), wire::STATUS_OK) << answer->reason();
  EXPECT_EQ(answer->upload_keys().one_time_prekeys(), 3u);
}

// One thread, room for one waiting job: with the thread held by an upload and one more
// waiting, the next request is refused at once, naming the limit; later ones go through.
TEST_F(BlockingWork, FullQueueIsRefusedWithTheLimitNamed) {
  StartServer(/*io_threads=*/1, /*io_queue_depth=*/1);
  Device bob = Register();
  ASSERT_TRUE(bob.conn);
  store_.CloseGate();
  SendRequest(*bob.conn, Upload(bob, 1));
  ASSERT_TRUE(store_.AwaitWaiter());       // the one thread is busy
  SendRequest(*bob.conn, Upload(bob, 2));  // waits in the queue (its whole room)
  SendRequest(*bob.conn, Upload(bob, 3));  // no room left
  auto refused = NextResponse(*bob.conn);
  ASSERT_TRUE(refused) << refused.error().ToString();
  EXPECT_EQ(refused->id(), 3u);
  EXPECT_EQ(refused->status(), wire::STATUS_BUSY);
  EXPECT_NE(refused->reason().find("store.io_queue_depth"), std::string::npos) << refused->reason();
  EXPECT_NE(core_->RenderPrometheus().find("sotto_blocking_jobs_refused_total 1\n"),
            std::string::npos);

  store_.Open();
  for (uint64_t id : {1u, 2u}) {
    auto answer = NextResponse(*bob.conn);
    ASSERT_TRUE(answer) << answer.error().ToString();
    EXPECT_EQ(answer->id(), id);  // one thread: in order
    EXPECT_EQ(answer->status(), wire::STATUS_OK) << answer->reason();
  }
  auto again = bob.conn->Call(Upload(bob, 0));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status(), wire::STATUS_OK) << again->reason();
}

// A register refused for a full queue has not used up its code: the room is taken before
// the code is checked, so the same code registers once there is room again.
TEST_F(BlockingWork, RegisterRefusedAsBusyKeepsItsCode) {
  StartServer(/*io_threads=*/1, /*io_queue_depth=*/1);
  Device bob = Register();
  ASSERT_TRUE(bob.conn);
  store_.CloseGate();
  SendRequest(*bob.conn, Upload(bob, 1));
  ASSERT_TRUE(store_.AwaitWaiter());
  SendRequest(*bob.conn, Upload(bob, 2));
  SendRequest(*bob.conn, Upload(bob, 3));
  auto full = NextResponse(*bob.conn);  // the queue is full now
  ASSERT_TRUE(full);
  ASSERT_EQ(full->status(), wire::STATUS_BUSY);

  client::ClientOptions o;
  o.server = *net::ParseHostPort("127.0.0.1:" + std::to_string(gateway_->port()));
  o.device_static = noise::KeyPair::Generate(crypto::SystemRandom());
  o.server_static = server_key_;
  auto dave = GatewayClient::Connect(o);
  ASSERT_TRUE(dave) << dave.error().ToString();
  wire::Request ask;
  ask.mutable_request_code()->set_handle("+15550209999");
  auto asked = (*dave)->Call(ask);
  ASSERT_TRUE(asked);
  ASSERT_EQ(asked->status(), wire::STATUS_OK);
  wire::Request reg;
  reg.mutable_register_()->set_handle("+15550209999");
  reg.mutable_register_()->set_code(sender_.last());
  auto busy = (*dave)->Call(reg);
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status(), wire::STATUS_BUSY);
  EXPECT_NE(busy->reason().find("store.io_queue_depth"), std::string::npos) << busy->reason();

  store_.Open();
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(NextResponse(*bob.conn));  // the queue drained
  auto registered = (*dave)->Call(reg);
  ASSERT_TRUE(registered);
  EXPECT_EQ(registered->status(), wire::STATUS_OK) << registered->reason();
  wire::Request who;
  who.mutable_whoami();
  auto w = (*dave)->Call(who);
  ASSERT_TRUE(w);
  EXPECT_TRUE(w->whoami().registered());
}

}  // namespace
}  // namespace sotto
