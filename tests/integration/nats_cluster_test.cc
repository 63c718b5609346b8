// The JetStream primitives the cluster store will rest on (docs/cluster.md), against a
// real 3-node nats-server cluster on 127.0.0.1 (tests/support/nats_cluster.h): the R3
// publish ack needs a quorum, expected-last-subject-sequence is a compare-and-set,
// Nats-Msg-Id de-duplicates, KV create/update conflict on a stale revision, deleting a
// sequence twice fails the second time, and an acked message survives kill -9 of a node,
// which then rejoins and catches up.
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "store/nats/nats_client.h"
#include "tests/support/nats_cluster.h"

namespace sotto::store::nats {
namespace {

using sotto::testing::NatsCluster;

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string Text(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

long NowMs() {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count());
}

// The bound on each wait for the cluster to settle after a fault.
constexpr long kSettleMs = 20'000;
constexpr auto kPoll = std::chrono::milliseconds(20);

class NatsClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new NatsCluster();
    ASSERT_TRUE(cluster_->ok()) << cluster_->error();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(cluster_ != nullptr && cluster_->ok());
    for (int i = 0; i < cluster_->size(); ++i) {
      if (!cluster_->running(i)) {
        ASSERT_TRUE(cluster_->Restart(i)) << cluster_->error();
      }
    }
  }

  static std::unique_ptr<NatsClient> Connect(std::vector<std::string> servers,
                                             int64_t request_timeout_ms = 5'000) {
    ClientOptions options;
    options.servers = std::move(servers);
    options.name = "nats_cluster_test";
    options.request_timeout_ms = request_timeout_ms;
    auto client = NatsClient::Connect(options);
    EXPECT_TRUE(client) << client.error().ToString();
    return client ? std::move(*client) : nullptr;
  }

  static StreamConfig R3Stream(const std::string& name) {
    StreamConfig config;
    config.name = name;
    config.subjects = {name + ".>"};
    config.replicas = 3;
    config.storage = Storage::kFile;
    return config;
  }

  static int NodeIndex(const std::string& server_name) {
    for (int i = 0; i < cluster_->size(); ++i) {
      if (NatsCluster::NodeName(i) == server_name) return i;
    }
    return -1;
  }

  static NatsCluster* cluster_;
};

NatsCluster* NatsClusterTest::cluster_ = nullptr;

TEST_F(NatsClusterTest, R3PublishIsAckedByTheQuorumAndFailsWithoutIt) {
  auto client = Connect(cluster_->ClientUrls());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->AddOrUpdateStream(R3Stream("quorum")));
  auto ack = client->Publish("quorum.a", Bytes("one"));
  ASSERT_TRUE(ack) << ack.error().ToString();
  EXPECT_EQ(ack->sequence, 1u);
  auto state = client->GetStreamState("quorum");
  ASSERT_TRUE(state) << state.error().ToString();
  EXPECT_FALSE(state->leader.empty());
  EXPECT_EQ(state->replicas, 3);  // a leader and two followers: the ack needed one of them
  EXPECT_EQ(state->messages, 1u);

  // With two of three nodes gone there is no quorum: the surviving node cannot ack.
  const int survivor = 0;
  ASSERT_TRUE(cluster_->Kill(1));
  ASSERT_TRUE(cluster_->Kill(2));
  auto lone = Connect({cluster_->ClientUrl(survivor)}, /*request_timeout_ms=*/1'000);
  ASSERT_TRUE(lone);
  auto refused = lone->Publish("quorum.a", Bytes("two"));
  ASSERT_FALSE(refused);
  EXPECT_TRUE(IsNatsErr(refused.error(), NatsErr::kTimeout) ||
              IsNatsErr(refused.error(), NatsErr::kNoResponders))
      << refused.error().ToString();
  ASSERT_TRUE(cluster_->Restart(1)) << cluster_->error();
  ASSERT_TRUE(cluster_->Restart(2)) << cluster_->error();
}

TEST_F(NatsClusterTest, ExpectedLastSubjectSequenceIsACompareAndSet) {
  auto client = Connect(cluster_->ClientUrls());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->AddOrUpdateStream(R3Stream("cas")));
  PublishOptions first;
  first.expected_last_subject_sequence = 0;  // the subject must be empty
  auto a = client->Publish("cas.dev1", Bytes("a"), first);
  ASSERT_TRUE(a) << a.error().ToString();
  auto again = client->Publish("cas.dev1", Bytes("a2"), first);
  ASSERT_FALSE(again);
  EXPECT_TRUE(IsNatsErr(again.error(), NatsErr::kWrongLastSequence)) << again.error().ToString();
  EXPECT_EQ(again.error().code, Code::kFailedPrecondition);

  // Another subject of the stream moves the stream's sequence, not dev1's.
  ASSERT_TRUE(client->Publish("cas.dev2", Bytes("x")));
  PublishOptions next;
  next.expected_last_subject_sequence = a->sequence;
  auto b = client->Publish("cas.dev1", Bytes("b"), next);
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_GT(b->sequence, a->sequence);
  // The same expectation again lost the race: b is now dev1's last.
  auto stale = client->Publish("cas.dev1", Bytes("c"), next);
  ASSERT_FALSE(stale);
  EXPECT_TRUE(IsNatsErr(stale.error(), NatsErr::kWrongLastSequence));
  DirectGetRequest last;
  last.last_by_subject = "cas.dev1";
  auto read = client->DirectGet("cas", last);
  ASSERT_TRUE(read) << read.error().ToString();
  EXPECT_EQ(Text(read->data), "b");
  EXPECT_EQ(read->sequence, b->sequence);
}

TEST_F(NatsClusterTest, DirectGetNextBySubjectWalksOneDevicesQueue) {
  auto client = Connect(cluster_->ClientUrls());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->AddOrUpdateStream(R3Stream("walk")));
  auto a = client->Publish("walk.dev1", Bytes("a"));
  ASSERT_TRUE(a);
  ASSERT_TRUE(client->Publish("walk.dev2", Bytes("other device")));
  auto b = client->Publish("walk.dev1", Bytes("b"));
  ASSERT_TRUE(b);
  DirectGetRequest next;
  next.next_by_subject = "walk.dev1";
  next.sequence = 1;
  auto first = client->DirectGet("walk", next);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(Text(first->data), "a");
  next.sequence = first->sequence + 1;  // skips dev2's message
  auto second = client->DirectGet("walk", next);
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(Text(second->data), "b");
  EXPECT_EQ(second->sequence, b->sequence);
  EXPECT_EQ(second->subject, "walk.dev1");
  next.sequence = second->sequence + 1;
  auto end = client->DirectGet("walk", next);
  ASSERT_FALSE(end);
  EXPECT_TRUE(IsNatsErr(end.error(), NatsErr::kNotFound)) << end.error().ToString();
}

TEST_F(NatsClusterTest, MsgIdDeduplicatesARetriedPublish) {
  auto client = Connect(cluster_->ClientUrls());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->AddOrUpdateStream(R3Stream("dedupe")));
  PublishOptions options;
  options.msg_id = "sender-1-42";
  auto first = client->Publish("dedupe.dev1", Bytes("m"), options);
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->duplicate);
  auto retry = client->Publish("dedupe.dev1", Bytes("m"), options);
  ASSERT_TRUE(retry);
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->sequence, first->sequence);
  auto state = client->GetStreamState("dedupe");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->messages, 1u);
}

TEST_F(NatsClusterTest, KvCreateAndUpdateConflictOnAStaleRevision) {
  auto client = Connect(cluster_->ClientUrls());
  ASSERT_TRUE(client);
  auto bucket = client->CreateKeyValue("accounts", /*replicas=*/3, /*history=*/1);
  ASSERT_TRUE(bucket) << bucket.error().ToString();
  auto r1 = bucket->Create("alice", Bytes("v1"));
  ASSERT_TRUE(r1) << r1.error().ToString();
  auto twice = bucket->Create("alice", Bytes("other"));
  ASSERT_FALSE(twice);
  EXPECT_TRUE(IsNatsErr(twice.error(), NatsErr::kWrongLastSequence));
  auto r2 = bucket->Update("alice", Bytes("v2"), *r1);
  ASSERT_TRUE(r2) << r2.error().ToString();
  auto lost = bucket->Update("alice", Bytes("v2-lost"), *r1);
  ASSERT_FALSE(lost);
  EXPECT_TRUE(IsNatsErr(lost.error(), NatsErr::kWrongLastSequence));
  auto got = bucket->Get("alice");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(Text(got->value), "v2");
  EXPECT_EQ(got->revision, *r2);

  auto stale_delete = bucket->Delete("alice", *r1);
  ASSERT_FALSE(stale_delete);
  EXPECT_TRUE(IsNatsErr(stale_delete.error(), NatsErr::kWrongLastSequence));
  ASSERT_TRUE(bucket->Delete("alice", *r2));
  auto gone = bucket->Get("alice");
  ASSERT_FALSE(gone);
  EXPECT_TRUE(IsNatsErr(gone.error(), NatsErr::kNotFound));
  auto reborn = bucket->Create("alice", Bytes("v3"));
  ASSERT_TRUE(reborn) << reborn.error().ToString();
  auto missing = bucket->Get("bob");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(IsNatsErr(missing.error(), NatsErr::kNotFound));
}

TEST_F(NatsClusterTest, DeletingASequenceTwiceFailsTheSecondTime) {
  auto client = Connect(cluster_->ClientUrls());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->AddOrUpdateStream(R3Stream("prekeys")));
  auto key = client->Publish("prekeys.dev1", Bytes("one-time-key"));
  ASSERT_TRUE(key);
  auto claimer = Connect({cluster_->ClientUrl(2)});
  ASSERT_TRUE(claimer);
  ASSERT_TRUE(client->DeleteMsg("prekeys", key->sequence));
  auto second = claimer->DeleteMsg("prekeys", key->sequence);
  ASSERT_FALSE(second);
  EXPECT_TRUE(IsNatsErr(second.error(), NatsErr::kNotFound)) << second.error().ToString();
  auto read = client->GetMsg("prekeys", key->sequence);
  ASSERT_FALSE(read);
  EXPECT_TRUE(IsNatsErr(read.error(), NatsErr::kNotFound));
}

TEST_F(NatsClusterTest, ConcurrentClaimsFromEveryNodeEachSucceedOnce) {
  constexpr int kKeys = 10;
  auto client = Connect(cluster_->ClientUrls());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->AddOrUpdateStream(R3Stream("claims")));
  std::vector<uint64_t> sequences;
  for (int i = 0; i < kKeys; ++i) {
    auto ack = client->Publish("claims.dev1", Bytes("key" + std::to_string(i)));
    ASSERT_TRUE(ack);
    sequences.push_back(ack->sequence);
  }
  std::vector<std::unique_ptr<NatsClient>> claimers;
  for (int node = 0; node < cluster_->size(); ++node) {
    claimers.push_back(Connect({cluster_->ClientUrl(node)}));
    ASSERT_TRUE(claimers.back());
  }
  std::vector<int> won(claimers.size(), 0);
  std::vector<int> not_found(claimers.size(), 0);
  std::vector<std::thread> threads;
  for (size_t c = 0; c < claimers.size(); ++c) {
    threads.emplace_back([&, c] {
      for (uint64_t seq : sequences) {
        auto claimed = claimers[c]->DeleteMsg("claims", seq);
        if (claimed) {
          ++won[c];
        } else if (IsNatsErr(claimed.error(), NatsErr::kNotFound)) {
          ++not_found[c];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  int total_won = 0;
  int total_not_found = 0;
  for (size_t c = 0; c < claimers.size(); ++c) {
    total_won += won[c];
    total_not_found += not_found[c];
  }
  EXPECT_EQ(total_won, kKeys);  // each key handed out exactly once
  EXPECT_EQ(total_not_found, kKeys * (cluster_->size() - 1));
}

TEST_F(NatsClusterTest, AckedMessageSurvivesKillOfANodeWhichRejoins) {
  auto client = Connect(cluster_->ClientUrls());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->AddOrUpdateStream(R3Stream("survive")));
  auto ack = client->Publish("survive.dev1", Bytes("kept"));
  ASSERT_TRUE(ack) << ack.error().ToString();
  auto state = client->GetStreamState("survive");
  ASSERT_TRUE(state);
  const int leader = NodeIndex(state->leader);
  ASSERT_GE(leader, 0) << state->leader;
  ASSERT_TRUE(cluster_->Kill(leader));

  // Read it from the others (a client that knows only them) once they elected a leader.
  std::vector<std::string> others;
  for (int i = 0; i < cluster_->size(); ++i) {
    if (i != leader) others.push_back(cluster_->ClientUrl(i));
  }
  auto reader = Connect(others, /*request_timeout_ms=*/2'000);
  ASSERT_TRUE(reader);
  Result<StoredMsg> read = reader->GetMsg("survive", ack->sequence);
  for (const long deadline = NowMs() + kSettleMs; !read && NowMs() < deadline;
       read = reader->GetMsg("survive", ack->sequence)) {
    std::this_thread::sleep_for(kPoll);
  }
  ASSERT_TRUE(read) << read.error().ToString();
  EXPECT_EQ(Text(read->data), "kept");
  // The survivors still form a quorum and accept writes.
  auto later = reader->Publish("survive.dev1", Bytes("later"));
  ASSERT_TRUE(later) << later.error().ToString();

  ASSERT_TRUE(cluster_->Restart(leader)) << cluster_->error();
  // The rejoined node catches up: its own monitoring shows both messages.
  long held = -1;
  for (const long deadline = NowMs() + kSettleMs; NowMs() < deadline;) {
    held = cluster_->Jsz(leader, "messages");
    auto now = reader->GetStreamState("survive");
    if (held >= 2 && now && now->replicas_current == 3) break;
    std::this_thread::sleep_for(kPoll);
  }
  EXPECT_GE(held, 2);
  // And the client that was connected to all of them is still usable.
  EXPECT_TRUE(client->Publish("survive.dev1", Bytes("after")));
}

TEST_F(NatsClusterTest, RePublishNotifiesTheDevicesSubjectOnAnyNode) {
  auto writer = Connect({cluster_->ClientUrl(0)});
  auto watcher = Connect({cluster_->ClientUrl(2)});  // a device connected to another node
  ASSERT_TRUE(writer && watcher);
  StreamConfig config = R3Stream("inbox");
  config.republish_source = "inbox.>";
  config.republish_destination = "notify.>";  // inbox.dev1 -> notify.dev1
  config.republish_headers_only = true;       // the note says "look", the data stays stored
  ASSERT_TRUE(writer->AddOrUpdateStream(config));
  std::mutex mu;
  std::condition_variable cv;
  std::vector<StoredMsg> notes;
  bool probe_seen = false;
  auto sub = watcher->Subscribe("notify.dev1", [&](StoredMsg msg) {
    std::lock_guard<std::mutex> lock(mu);
    if (msg.sequence == 0) {
      probe_seen = true;  // a core probe, not a note: it carries no Nats-Sequence
    } else {
      notes.push_back(std::move(msg));
    }
    cv.notify_all();
  });
  ASSERT_TRUE(sub) << sub.error().ToString();
  // The interest reaches the other nodes over the routes asynchronously; the stream leader
  // republishes only to interest it already has. Probe from the leader's node until a probe
  // arrives: after that the leader's server knows the subscription.
  auto state = writer->GetStreamState("inbox");
  ASSERT_TRUE(state);
  const int leader = NodeIndex(state->leader);
  ASSERT_GE(leader, 0);
  auto prober = Connect({cluster_->ClientUrl(leader)});
  ASSERT_TRUE(prober);
  {
    const long deadline = NowMs() + kSettleMs;
    std::unique_lock<std::mutex> lock(mu);
    while (!probe_seen && NowMs() < deadline) {
      lock.unlock();
      ASSERT_TRUE(prober->PublishCore("notify.dev1", Bytes("probe")));
      lock.lock();
      cv.wait_for(lock, kPoll, [&] { return probe_seen; });
    }
    ASSERT_TRUE(probe_seen);
  }
  ASSERT_TRUE(writer->Publish("inbox.dev2", Bytes("not for dev1")));
  auto first = writer->Publish("inbox.dev1", Bytes("for dev1"));
  auto second = writer->Publish("inbox.dev1", Bytes("again"));
  ASSERT_TRUE(first && second);
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::milliseconds(kSettleMs), [&] {
    return !notes.empty() && notes.back().sequence == second->sequence;
  }));
  // One note per stored message, in order, from the leader alone; none for dev2.
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_EQ(notes[0].sequence, first->sequence);
  EXPECT_EQ(notes[0].subject, "inbox.dev1");
  EXPECT_TRUE(notes[0].data.empty());
}

TEST_F(NatsClusterTest, ConnectFailsClearlyWhenNoServerAnswers) {
  ClientOptions options;
  options.servers = {"nats://127.0.0.1:1"};
  options.connect_timeout_ms = 200;
  auto client = NatsClient::Connect(options);
  ASSERT_FALSE(client);
  EXPECT_TRUE(IsNatsErr(client.error(), NatsErr::kConnect));
  EXPECT_EQ(client.error().code, Code::kUnavailable);
  options.servers.clear();
  auto none = NatsClient::Connect(options);
  ASSERT_FALSE(none);
  EXPECT_TRUE(IsNatsErr(none.error(), NatsErr::kInvalid));
}

}  // namespace
}  // namespace sotto::store::nats
