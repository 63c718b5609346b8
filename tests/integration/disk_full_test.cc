// sottod on a full disk (docs/store.md, "Disk full"; docs/server.md, "Readiness"): its
// data directory is on a 16 MiB tmpfs that the test fills to the last byte. Sends must
// be refused with STATUS_STORAGE_FULL, /metrics and /ready must show it, and one log line
// must say it; once the space is freed, sends must work again without a restart, and
// every message acked before must still be delivered (also after a crash and restart).
#include <poll.h>
#include <stdlib.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/content.h"
#include "tests/integration/sottod_process.h"
#include "tests/integration/test_account.h"
#include "tests/small_filesystem.h"

namespace sotto {
namespace {

using testing::SottodOptions;
using testing::SottodProcess;
using testing::TestDevice;

constexpr size_t kFilesystemBytes = 16 << 20;
// Larger than a page, so that the send cannot fit in the WAL's last partial page.
constexpr size_t kBigBody = 32 * 1024;

Result<TestDevice> Ready(const SottodProcess& server, const std::string& handle,
                         uint32_t reg_id) {
  SOTTO_ASSIGN_OR_RETURN(TestDevice d, testing::RegisterDevice(server, handle));
  SOTTO_ASSIGN_OR_RETURN(wire::Response up, testing::UploadKeys(d, reg_id, 5));
  if (up.status() != wire::STATUS_OK) {
    return MakeError(Code::kInternal, Module::kBase, 0, "key upload refused");
  }
  return d;
}

// Polls /metrics: the server's own state has no other outside view.
bool AwaitMetric(const SottodProcess& server, const std::string& series, long value) {
  for (int attempt = 0; attempt < 2'000; ++attempt) {
    if (server.Metric(series) == value) return true;
    pollfd none{-1, 0, 0};
    poll(&none, 0, 10);
  }
  return false;
}

TEST(DiskFull, SendsAreRefusedAsStorageFullAndWorkAgainOnceSpaceIsFree) {
  testing::SmallFilesystem fs(kFilesystemBytes);
  ASSERT_TRUE(fs.ok()) << fs.error();
  SottodOptions options;
  options.data_dir = fs.path() + "/data";
  SottodProcess server(options);
  ASSERT_TRUE(server.running());
  auto alice = Ready(server, "+15551239001", 201);
  ASSERT_TRUE(alice) << alice.error().ToString();
  auto bob = Ready(server, "+15551239002", 202);
  ASSERT_TRUE(bob) << bob.error().ToString();
  bob->conn.reset();  // offline: what alice sends waits in bob's queue

  auto send = [&](const std::string& id, const std::string& body) {
    auto r = alice->conn->Call(testing::SendTo(*bob, {1}, id, body));
    EXPECT_TRUE(r) << r.error().ToString();
    return r ? *r : wire::Response();
  };
  std::vector<std::string> acked;
  for (int i = 0; i < 3; ++i) {
    const std::string id = "before-" + std::to_string(i);
    ASSERT_EQ(send(id, "hello " + id).status(), wire::STATUS_OK);
    acked.push_back(id);
  }
  EXPECT_EQ(server.HttpStatus("/ready"), 200);
  EXPECT_EQ(server.Metric("sotto_store_disk_full"), 0);

  ASSERT_GT(fs.Fill(), 0);
  for (int i = 0; i < 2; ++i) {
    wire::Response refused = send("refused-" + std::to_string(i), std::string(kBigBody, 'x'));
    EXPECT_EQ(refused.status(), wire::STATUS_STORAGE_FULL);
    EXPECT_NE(refused.reason().find("storage full"), std::string::npos) << refused.reason();
  }
  EXPECT_EQ(server.Metric("sotto_store_disk_full"), 1);
  EXPECT_EQ(server.Metric("sotto_requests_refused_storage_full_total"), 2) << "exact: two sends";
  EXPECT_GE(server.Metric("sotto_store_writes_refused_no_space_total"), 1);
  EXPECT_EQ(server.Metric("sotto_store_disk_full_episodes_total"), 1);
  EXPECT_EQ(server.HttpStatus("/ready"), 503);
  EXPECT_TRUE(server.AwaitOutput("the disk is full")) << "no log line on entering";

  fs.Free();
  ASSERT_TRUE(AwaitMetric(server, "sotto_store_disk_full", 0)) << "never recovered";
  EXPECT_TRUE(server.AwaitOutput("disk space is available again")) << "no log line on recovery";
  EXPECT_EQ(server.HttpStatus("/ready"), 200);
  EXPECT_EQ(server.Metric("sotto_store_disk_recoveries_total"), 1);
  ASSERT_EQ(send("after", std::string(kBigBody, 'y')).status(), wire::STATUS_OK);
  acked.push_back("after");

  // A crash right now: the acked messages must survive it, the refused ones never appear.
  ASSERT_TRUE(server.Kill());
  ASSERT_TRUE(server.Restart());
  ASSERT_TRUE(testing::Reconnect(server, *bob));
  std::vector<std::string> delivered;
  while (delivered.size() < acked.size()) {
    auto f = testing::NextOf(*bob->conn, wire::Frame::kEnvelope);
    ASSERT_TRUE(f) << f.error().ToString() << " after " << delivered.size() << " envelopes";
    delivered.push_back(f->envelope().message_id());
  }
  EXPECT_EQ(delivered, acked);
  auto rest = testing::NextOf(*bob->conn, wire::Frame::kQueueEmpty);
  EXPECT_TRUE(rest) << "a refused message was stored";
}

// The SDK shows the refusal as what it is (SdkErr::kServerStorageFull, not "offline" or
// "internal"), keeps the message in its outbox, and sends it once the server has room.
TEST(DiskFull, SdkNamesTheRefusalAndSendsTheQueuedMessageLater) {
  testing::SmallFilesystem fs(kFilesystemBytes);
  ASSERT_TRUE(fs.ok()) << fs.error();
  SottodOptions options;
  options.data_dir = fs.path() + "/data";
  SottodProcess server(options);
  ASSERT_TRUE(server.running());
  char tmpl[] = "/tmp/sotto-diskfull-XXXXXX";  // the clients' homes: not on the small disk
  const std::filesystem::path homes = mkdtemp(tmpl);
  struct Cleanup {
    std::filesystem::path path;
    ~Cleanup() { std::filesystem::remove_all(path); }
  } cleanup{homes};
  const std::string address = "127.0.0.1:" + std::to_string(server.tcp_address().port());
  auto open = [&](const std::string& name,
                  const std::string& handle) -> Result<std::unique_ptr<client::Client>> {
    client::ClientConfig config;
    config.home = homes / name;
    SOTTO_ASSIGN_OR_RETURN(std::unique_ptr<client::Client> c, client::Client::Open(config));
    SOTTO_RETURN_IF_ERROR(c->StartRegistration(address, server.server_key(), handle));
    SOTTO_RETURN_IF_ERROR(c->FinishRegistration(server.VerificationCode(handle)));
    return c;
  };
  auto alice = open("alice", "+15551239011");
  ASSERT_TRUE(alice) << alice.error().ToString();
  auto bob = open("bob", "+15551239012");
  ASSERT_TRUE(bob) << bob.error().ToString();
  std::vector<std::string> bodies;
  (*bob)->SetEventSink([&](const client::Event& e) {
    if (auto* m = std::get_if<client::MessageEvent>(&e)) bodies.push_back(m->message.body);
  });
  auto first = (*alice)->SendText("+15551239012", "first");
  ASSERT_TRUE(first) << first.error().ToString();
  ASSERT_EQ(first->tick, client::Tick::kSent);

  ASSERT_GT(fs.Fill(), 0);
  const std::string big(client::kMaxBodyBytes, 'z');
  auto refused = (*alice)->SendText("+15551239012", big);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().detail, static_cast<uint16_t>(client::SdkErr::kServerStorageFull))
      << refused.error().ToString();
  EXPECT_NE(std::string(refused.error().message).find("server storage full"), std::string::npos);
  auto pending = (*alice)->PendingCount();
  ASSERT_TRUE(pending);
  EXPECT_EQ(*pending, 1u) << "the refused message stays queued";

  fs.Free();
  ASSERT_TRUE(AwaitMetric(server, "sotto_store_disk_full", 0)) << "never recovered";
  auto after = (*alice)->SendText("+15551239012", "after");
  ASSERT_TRUE(after) << after.error().ToString();
  EXPECT_EQ(after->tick, client::Tick::kSent);
  pending = (*alice)->PendingCount();
  ASSERT_TRUE(pending);
  EXPECT_EQ(*pending, 0u);
  ASSERT_TRUE((*bob)->Connect());
  ASSERT_TRUE((*bob)->Poll(std::chrono::seconds(10), [&] { return bodies.size() >= 3; }));
  EXPECT_EQ(bodies, (std::vector<std::string>{"first", big, "after"}));
}

}  // namespace
}  // namespace sotto
