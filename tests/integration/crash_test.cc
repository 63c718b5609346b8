// Crash test of the delivery promise (docs/wire.md, `send` and DeliveryAck): senders
// pipeline Sends at full speed while the server is killed with SIGKILL at random moments
// and restarted on the same data directory. Afterwards every message a sender saw acked
// (one tick) must have reached its recipient device exactly once after de-duplication by
// (source, message_id), in order per sender device; no message may be stored twice (all
// wire copies of one message carry one queue seq); every delivered receipt must name a
// message its recipient recorded before acking it.
//
// Labelled "crash" (ctest -L crash). SOTTO_CRASH_KILLS=N raises the number of kills for a
// longer soak; SOTTO_CRASH_SEED=S repeats a kill schedule (the timing of the traffic
// around the kills still varies from run to run).
#include <poll.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/sottod_process.h"
#include "tests/integration/test_account.h"

namespace sotto {
namespace {

using Clock = std::chrono::steady_clock;
using testing::SottodProcess;
using testing::TestDevice;

constexpr int kDefaultKills = 20;  // the minimum; SOTTO_CRASH_KILLS may ask for more
constexpr size_t kSenders = 2;
constexpr size_t kReceivers = 2;
constexpr size_t kDevices = kSenders + kReceivers;
constexpr size_t kPipeline = 32;  // outstanding Sends per sender
// Messages a sender created that no receiver has recorded yet. Bounds every device queue
// far below store.max_queue_depth (10,000), so no Send meets STATUS_QUEUE_FULL.
constexpr uint64_t kMaxBacklog = 1'000;
constexpr size_t kAckBatch = 16;  // DeliveryAck batches (below store.delivery_window)
constexpr uint32_t kMinKillDelayMs = 20;
constexpr uint32_t kMaxKillDelayMs = 300;
// Generous for sanitizer builds on a loaded 2-core machine.
constexpr auto kReconnectDeadline = std::chrono::seconds(60);
constexpr auto kDrainDeadline = std::chrono::seconds(300);
constexpr auto kStallDeadline = std::chrono::seconds(60);  // the drain made no progress
constexpr int kMaxConnectFailures = 50;  // in a row, against a server published as up
constexpr size_t kMaxProblemsKept = 50;

// The default durable configuration (store.sync = true), without the per-connection
// request rate limit: the senders run at full speed.
constexpr const char* kConfig = "[limits]\nrequest_rate_per_s = 0\n";

// Message n of sender k goes to receiver (k + n) % kReceivers: each receiver hears from
// every sender, interleaved.
size_t ReceiverOf(size_t sender, uint64_t n) { return (sender + n) % kReceivers; }

std::string MessageId(size_t sender, uint64_t n) {
  return "s" + std::to_string(sender) + "-" + std::to_string(n);
}

std::string Body(size_t sender, uint64_t n) { return "body of " + MessageId(sender, n); }

// n from "s<sender>-<n>", or nullopt if `id` is not one of `sender`'s ids.
std::optional<uint64_t> ParseMessageId(const std::string& id, size_t sender) {
  const std::string prefix = "s" + std::to_string(sender) + "-";
  if (id.size() <= prefix.size() || id.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  uint64_t n = 0;
  for (size_t i = prefix.size(); i < id.size(); ++i) {
    if (id[i] < '0' || id[i] > '9' || i - prefix.size() >= 18) return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(id[i] - '0');
  }
  return n;
}

// Called before any thread starts.
uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): no threads yet
  if (value == nullptr || *value == '\0') return fallback;
  return std::strtoull(value, nullptr, 10);
}

bool IsTimeout(const Error& e) {
  return e.module == Module::kClient &&
         e.detail == static_cast<uint16_t>(client::ClientErr::kTimeout);
}

// True if the socket has bytes to read now (the client may also hold a buffered frame,
// which only makes an ack batch smaller).
bool Readable(const client::GatewayClient& c) {
  pollfd p{c.fd(), POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

struct Endpoint {
  uint64_t generation = 0;
  net::SocketAddress address;
  crypto::X25519Public key{};
};

struct SenderLog {
  uint64_t generated = 0;      // ids 0..generated-1 exist
  std::vector<uint8_t> acked;  // per n: the sender saw STATUS_OK
  uint64_t acked_count = 0;
  uint64_t received = 0;           // distinct ids of this sender some receiver recorded
  std::vector<uint32_t> receipts;  // per n: delivered receipts on the wire
  uint64_t receipt_count = 0;      // distinct
  uint64_t receipt_copies = 0;
};

struct ReceiverLog {
  std::array<std::unordered_map<uint64_t, uint64_t>, kSenders> seq_of;  // n -> queue seq
  std::array<std::vector<uint64_t>, kSenders> order;  // first copies, in arrival order
  uint64_t copies = 0;
  uint64_t duplicates = 0;  // copies after the first (redeliveries)
};

// Everything the device threads and the controller share: where the server listens now,
// what was sent, acked, received and receipted, and the problems seen. Thread-safe.
class Ledger {
 public:
  Ledger(std::vector<std::string> sender_accounts, std::vector<std::string> receiver_accounts)
      : sender_accounts_(std::move(sender_accounts)),
        receiver_accounts_(std::move(receiver_accounts)) {}

  // --- The server's lifecycle (controller). ---
  void ServerDown() {
    std::lock_guard lock(mu_);
    up_ = false;
  }
  void ServerUp(const net::SocketAddress& address, const crypto::X25519Public& key) {
    {
      std::lock_guard lock(mu_);
      up_ = true;
      endpoint_ = Endpoint{endpoint_.generation + 1, address, key};
      connected_ = 0;
      acks_at_restart_ = total_acked_;
    }
    cv_.notify_all();
  }
  void StopGenerating() {
    std::lock_guard lock(mu_);
    generating_ = false;
  }
  void Finish() {
    {
      std::lock_guard lock(mu_);
      finished_ = true;
    }
    cv_.notify_all();
  }
  bool AwaitAllConnected(Clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline, [this] { return connected_ >= kDevices; });
  }
  // Acks the senders saw since the last restart (traffic the next kill interrupts).
  uint64_t AcksSinceRestart() {
    std::lock_guard lock(mu_);
    return total_acked_ - acks_at_restart_;
  }
  // After StopGenerating: every id acked, received and receipted; false at the deadline
  // or once nothing changed for kStallDeadline (a lost message never comes).
  bool AwaitDrained(Clock::time_point deadline) {
    std::unique_lock lock(mu_);
    for (;;) {
      const uint64_t seen = changes_;
      const Clock::time_point until = std::min(deadline, Clock::now() + kStallDeadline);
      if (cv_.wait_until(lock, until, [&] { return Drained() || changes_ != seen; })) {
        if (Drained()) return true;
        continue;
      }
      return false;
    }
  }
  std::string DrainState() {
    std::lock_guard lock(mu_);
    std::string out;
    for (size_t k = 0; k < kSenders; ++k) {
      const SenderLog& s = senders_[k];
      out += "sender " + std::to_string(k) + ": generated " + std::to_string(s.generated) +
             ", acked " + std::to_string(s.acked_count) + ", received " +
             std::to_string(s.received) + ", receipted " + std::to_string(s.receipt_count) + "; ";
    }
    return out;
  }

  // --- Device threads. ---
  // Waits until the server is up in `min_generation` or later; nullopt once finished.
  std::optional<Endpoint> AwaitUp(uint64_t min_generation) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return finished_ || (up_ && endpoint_.generation >= min_generation); });
    if (finished_) return std::nullopt;
    return endpoint_;
  }
  void Connected(uint64_t generation) {
    {
      std::lock_guard lock(mu_);
      if (generation == endpoint_.generation) ++connected_;
    }
    cv_.notify_all();
  }
  // After a connection of `generation` ended: the generation to wait for next. A
  // connection lost while its server is still up was closed by the server: counted,
  // and the device reconnects to the same server.
  uint64_t NextGeneration(uint64_t generation) {
    std::lock_guard lock(mu_);
    if (up_ && endpoint_.generation == generation && !finished_) {
      ++unexpected_disconnects_;
      return generation;
    }
    return generation + 1;
  }
  bool finished() {
    std::lock_guard lock(mu_);
    return finished_;
  }

  // A new message id for sender k, unless generation stopped or its backlog is full.
  std::optional<uint64_t> Generate(size_t k) {
    std::lock_guard lock(mu_);
    SenderLog& s = senders_[k];
    if (!generating_ || s.generated - s.received >= kMaxBacklog) return std::nullopt;
    s.acked.push_back(0);
    s.receipts.push_back(0);
    return s.generated++;
  }

  // Sender k sends n again on a new connection.
  void Resent(size_t k, uint64_t n) {
    std::lock_guard lock(mu_);
    ++resends_;
    // Already delivered: it was committed, but the kill took its ack (the one-tick window).
    if (receivers_[ReceiverOf(k, n)].seq_of[k].count(n) != 0) ++resends_delivered_;
  }

  void Acked(size_t k, uint64_t n) {
    {
      std::lock_guard lock(mu_);
      ++changes_;
      SenderLog& s = senders_[k];
      if (s.acked[n] == 0) {
        s.acked[n] = 1;
        ++s.acked_count;
        ++total_acked_;
      }
    }
    cv_.notify_all();
  }

  // Receiver r recorded envelope `e` (before acking it).
  void Received(size_t r, const wire::Envelope& e) {
    {
      std::lock_guard lock(mu_);
      ++changes_;
      ReceiverLog& log = receivers_[r];
      ++log.copies;
      const std::optional<size_t> k = SenderIndex(e.source_account());
      if (e.type() != wire::ENVELOPE_MESSAGE || !k || e.source_device() != 1) {
        ProblemLocked("receiver " + std::to_string(r) +
                      " got an envelope that no sender sent (type " + std::to_string(e.type()) +
                      ", id " + e.message_id() + ")");
        return;
      }
      const std::optional<uint64_t> n = ParseMessageId(e.message_id(), *k);
      SenderLog& s = senders_[*k];
      if (!n || *n >= s.generated || ReceiverOf(*k, *n) != r) {
        ProblemLocked("receiver " + std::to_string(r) + " got " + e.message_id() +
                      ", which was never sent to it");
        return;
      }
      if (e.ciphertext() != Body(*k, *n)) {
        ProblemLocked("receiver " + std::to_string(r) + " got " + e.message_id() +
                      " with a wrong body");
      }
      auto [it, first] = log.seq_of[*k].emplace(*n, e.seq());
      if (!first) {
        ++log.duplicates;
        if (it->second != e.seq()) {
          ProblemLocked(e.message_id() + " was stored twice: delivered with queue seqs " +
                        std::to_string(it->second) + " and " + std::to_string(e.seq()));
        }
        return;
      }
      std::vector<uint64_t>& order = log.order[*k];
      if (!order.empty() && order.back() >= *n) {
        ProblemLocked("receiver " + std::to_string(r) + " got " + e.message_id() + " after " +
                      MessageId(*k, order.back()) + ": out of order");
      }
      order.push_back(*n);
      ++s.received;
    }
    cv_.notify_all();
  }

  // Sender k got delivered receipt `e`.
  void Receipt(size_t k, const wire::Envelope& e) {
    {
      std::lock_guard lock(mu_);
      ++changes_;
      SenderLog& s = senders_[k];
      const std::optional<size_t> r = ReceiverIndex(e.source_account());
      const std::optional<uint64_t> n = ParseMessageId(e.message_id(), k);
      if (e.type() != wire::ENVELOPE_DELIVERED || !r || !n || *n >= s.generated ||
          ReceiverOf(k, *n) != *r) {
        ProblemLocked("sender " + std::to_string(k) + " got a receipt (type " +
                      std::to_string(e.type()) + ") for " + e.message_id() +
                      ", which it never sent to that device");
        return;
      }
      // The receiver records before it acks, and only an ack makes a receipt.
      if (receivers_[*r].seq_of[k].count(*n) == 0) {
        ProblemLocked("receipt for " + e.message_id() + ", which its recipient never recorded");
      }
      ++s.receipt_copies;
      if (s.receipts[*n]++ == 0) ++s.receipt_count;
    }
    cv_.notify_all();
  }

  void Problem(const std::string& what) {
    std::lock_guard lock(mu_);
    ProblemLocked(what);
  }

  // --- After every thread has ended. ---
  void FinalChecks() {
    std::lock_guard lock(mu_);
    for (size_t k = 0; k < kSenders; ++k) {
      const SenderLog& s = senders_[k];
      for (uint64_t n = 0; n < s.generated; ++n) {
        const ReceiverLog& r = receivers_[ReceiverOf(k, n)];
        const bool received = r.seq_of[k].count(n) != 0;
        if (s.acked[n] != 0 && !received) {
          ProblemLocked(MessageId(k, n) + " was acked but never delivered");
        }
        if (s.receipts[n] != 0 && s.acked[n] == 0) {
          ProblemLocked(MessageId(k, n) + " was reported delivered but never acked");
        }
      }
    }
    for (size_t r = 0; r < kReceivers; ++r) {
      for (size_t k = 0; k < kSenders; ++k) {
        const std::vector<uint64_t>& order = receivers_[r].order[k];
        if (!std::is_sorted(order.begin(), order.end()) ||
            std::adjacent_find(order.begin(), order.end()) != order.end()) {
          ProblemLocked("receiver " + std::to_string(r) + ": messages of sender " +
                        std::to_string(k) + " out of order");
        }
      }
    }
  }

  struct Totals {
    uint64_t generated = 0, acked = 0, received = 0, copies = 0, duplicates = 0;
    uint64_t receipts = 0, receipt_copies = 0, unexpected_disconnects = 0;
    uint64_t resends = 0, resends_delivered = 0;
  };
  Totals totals() {
    std::lock_guard lock(mu_);
    Totals t;
    for (const SenderLog& s : senders_) {
      t.generated += s.generated;
      t.acked += s.acked_count;
      t.received += s.received;
      t.receipts += s.receipt_count;
      t.receipt_copies += s.receipt_copies;
    }
    for (const ReceiverLog& r : receivers_) {
      t.copies += r.copies;
      t.duplicates += r.duplicates;
    }
    t.unexpected_disconnects = unexpected_disconnects_;
    t.resends = resends_;
    t.resends_delivered = resends_delivered_;
    return t;
  }
  std::vector<std::string> problems(uint64_t& total) {
    std::lock_guard lock(mu_);
    total = problem_count_;
    return problems_;
  }

 private:
  bool Drained() const {
    if (finished_) return true;
    if (generating_) return false;
    for (const SenderLog& s : senders_) {
      if (s.acked_count != s.generated || s.received != s.generated ||
          s.receipt_count != s.generated) {
        return false;
      }
    }
    return true;
  }
  std::optional<size_t> SenderIndex(const std::string& account) const {
    for (size_t i = 0; i < sender_accounts_.size(); ++i) {
      if (sender_accounts_[i] == account) return i;
    }
    return std::nullopt;
  }
  std::optional<size_t> ReceiverIndex(const std::string& account) const {
    for (size_t i = 0; i < receiver_accounts_.size(); ++i) {
      if (receiver_accounts_[i] == account) return i;
    }
    return std::nullopt;
  }
  void ProblemLocked(const std::string& what) {
    ++problem_count_;
    if (problems_.size() < kMaxProblemsKept) problems_.push_back(what);
  }

  const std::vector<std::string> sender_accounts_;
  const std::vector<std::string> receiver_accounts_;
  std::mutex mu_;
  std::condition_variable cv_;
  // All below GUARDED_BY(mu_).
  bool up_ = false;
  bool finished_ = false;
  bool generating_ = true;
  Endpoint endpoint_;
  size_t connected_ = 0;  // devices connected in endpoint_.generation
  uint64_t total_acked_ = 0;
  uint64_t acks_at_restart_ = 0;
  uint64_t unexpected_disconnects_ = 0;
  uint64_t changes_ = 0;  // acks, envelopes and receipts recorded: drain progress
  uint64_t resends_ = 0;
  uint64_t resends_delivered_ = 0;
  std::array<SenderLog, kSenders> senders_;
  std::array<ReceiverLog, kReceivers> receivers_;
  std::vector<std::string> problems_;
  uint64_t problem_count_ = 0;
};

// Connects `d` to the current server, again and again across restarts, and runs
// `session` on each connection until the ledger is finished.
template <typename Session>
void RunDevice(Ledger& ledger, TestDevice& d, const std::string& name, Session session) {
  uint64_t generation = 1;
  int failures = 0;
  for (;;) {
    const std::optional<Endpoint> endpoint = ledger.AwaitUp(generation);
    if (!endpoint) return;
    if (!testing::Reconnect(endpoint->address, endpoint->key, d)) {
      if (++failures >= kMaxConnectFailures) {
        ledger.Problem(name + " could not connect to a running server " +
                       std::to_string(kMaxConnectFailures) + " times in a row");
        failures = 0;
        generation = endpoint->generation + 1;
      }
      continue;  // a server being killed is published as down first: then AwaitUp waits
    }
    failures = 0;
    ledger.Connected(endpoint->generation);
    session(*d.conn);
    d.conn.reset();
    generation = ledger.NextGeneration(endpoint->generation);
  }
}

// The client outbox: sends ids in order with up to kPipeline outstanding; after a
// reconnect re-sends every unacked id, oldest first, with the same id.
// Externally synchronized: used by its device thread only.
class Sender {
 public:
  Sender(Ledger& ledger, size_t index, std::vector<TestDevice> targets)
      : ledger_(ledger), index_(index), targets_(std::move(targets)) {}

  // Runs until the connection is lost.
  void Session(client::GatewayClient& c) {
    uint64_t cursor = 0;  // the next id to consider sending on this connection
    std::unordered_map<uint64_t, uint64_t> in_flight;  // request id -> n
    std::vector<uint64_t> receipt_acks;
    for (;;) {
      while (in_flight.size() < kPipeline) {
        std::optional<uint64_t> n;
        if (auto it = unacked_.lower_bound(cursor); it != unacked_.end()) {
          n = *it;
          ledger_.Resent(index_, *n);
        } else if ((n = ledger_.Generate(index_))) {
          unacked_.insert(*n);
        } else {
          break;
        }
        cursor = *n + 1;
        const TestDevice& to = targets_[ReceiverOf(index_, *n)];
        wire::Frame frame;
        *frame.mutable_request() =
            testing::SendTo(to, {to.device_id}, MessageId(index_, *n), Body(index_, *n));
        frame.mutable_request()->set_id(++request_id_);
        if (!c.Send(frame)) return;
        in_flight.emplace(request_id_, *n);
      }
      if (!receipt_acks.empty() && (receipt_acks.size() >= kAckBatch || !Readable(c))) {
        if (!testing::Ack(c, receipt_acks)) return;
        receipt_acks.clear();
      }
      auto f = c.Receive();
      if (!f) {
        // Quiet for the client's timeout (nothing to send, no receipts): keep waiting.
        if (IsTimeout(f.error()) && !ledger_.finished()) continue;
        return;
      }
      if (f->has_response()) {
        const wire::Response& r = f->response();
        auto it = in_flight.find(r.id());
        if (it == in_flight.end()) {
          ledger_.Problem("a response to an unknown request");
          continue;
        }
        const uint64_t n = it->second;
        in_flight.erase(it);
        if (r.status() == wire::STATUS_OK) {
          unacked_.erase(n);
          ledger_.Acked(index_, n);
        } else {  // stays unacked: re-sent on the next connection
          ledger_.Problem("Send of " + MessageId(index_, n) + " answered " +
                          std::to_string(r.status()) + ": " + r.reason());
        }
      } else if (f->has_envelope()) {
        ledger_.Receipt(index_, f->envelope());
        receipt_acks.push_back(f->envelope().seq());
      } else if (f->has_ping()) {
        wire::Frame pong;
        pong.mutable_pong()->set_nonce(f->ping().nonce());
        if (!c.Send(pong)) return;
      } else if (f->has_close()) {
        return;
      }
    }
  }

 private:
  Ledger& ledger_;
  const size_t index_;
  std::vector<TestDevice> targets_;  // the receivers' addresses (no connections)
  std::set<uint64_t> unacked_;       // ids generated and not yet acked, in order
  uint64_t request_id_ = 0;
};

// Records every envelope, then acks it in batches.
void ReceiverSession(Ledger& ledger, size_t index, client::GatewayClient& c) {
  std::vector<uint64_t> pending;
  for (;;) {
    if (!pending.empty() && (pending.size() >= kAckBatch || !Readable(c))) {
      if (!testing::Ack(c, pending)) return;
      pending.clear();
    }
    auto f = c.Receive();
    if (!f) {
      if (IsTimeout(f.error()) && !ledger.finished()) continue;
      return;
    }
    if (f->has_envelope()) {
      ledger.Received(index, f->envelope());
      pending.push_back(f->envelope().seq());
    } else if (f->has_ping()) {
      wire::Frame pong;
      pong.mutable_pong()->set_nonce(f->ping().nonce());
      if (!c.Send(pong)) return;
    } else if (f->has_close()) {
      return;
    }
  }
}

TestDevice Ready(const SottodProcess& server, const std::string& handle, uint32_t reg_id) {
  auto d = testing::RegisterDevice(server, handle);
  EXPECT_TRUE(d) << handle << ": " << (d ? "" : d.error().ToString());
  if (!d) return {};
  auto up = testing::UploadKeys(*d, reg_id, 20);  // above prekeys.low_watermark
  EXPECT_TRUE(up && up->status() == wire::STATUS_OK) << handle;
  return std::move(*d);
}

std::vector<std::string> AccountIds(const std::vector<TestDevice>& devices) {
  std::vector<std::string> ids;
  ids.reserve(devices.size());
  for (const TestDevice& d : devices) ids.push_back(d.account_id);
  return ids;
}

// What a sender needs to address each device: copies without the connections.
std::vector<TestDevice> Addresses(const std::vector<TestDevice>& devices) {
  std::vector<TestDevice> out(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    out[i].account_id = devices[i].account_id;
    out[i].device_id = devices[i].device_id;
    out[i].registration_id = devices[i].registration_id;
  }
  return out;
}

TEST(Crash, AckedMessagesSurviveKillNineExactlyOnceInOrder) {
  const uint64_t seed = EnvNumber("SOTTO_CRASH_SEED", std::random_device{}());
  const int kills = static_cast<int>(std::max<uint64_t>(
      kDefaultKills, std::min<uint64_t>(EnvNumber("SOTTO_CRASH_KILLS", kDefaultKills), 100'000)));
  std::cout << "crash test: seed " << seed << " (SOTTO_CRASH_SEED=" << seed << " repeats it), "
            << kills << " kills\n";
  const Clock::time_point start = Clock::now();

  testing::SottodOptions options;
  options.config_toml = kConfig;
  SottodProcess server(options);
  ASSERT_TRUE(server.running());
  std::vector<TestDevice> senders;
  std::vector<TestDevice> receivers;
  for (size_t i = 0; i < kSenders; ++i) {
    senders.push_back(
        Ready(server, "+1555777000" + std::to_string(i), 100 + static_cast<uint32_t>(i)));
  }
  for (size_t i = 0; i < kReceivers; ++i) {
    receivers.push_back(
        Ready(server, "+1555777100" + std::to_string(i), 200 + static_cast<uint32_t>(i)));
  }
  ASSERT_FALSE(::testing::Test::HasFailure()) << "registration failed";
  Ledger ledger(AccountIds(senders), AccountIds(receivers));
  std::vector<Sender> outboxes;
  outboxes.reserve(kSenders);  // the device threads hold references into it
  for (size_t k = 0; k < kSenders; ++k) outboxes.emplace_back(ledger, k, Addresses(receivers));
  std::vector<std::thread> threads;
  // Ends the device threads on every way out of the test: Finish, then end the server so
  // that a device blocked in Receive sees its connection close.
  struct Stopper {
    Ledger& ledger;
    SottodProcess& server;
    std::vector<std::thread>& threads;
    int exit_status = 0;
    void Stop() {
      ledger.Finish();
      if (server.running()) exit_status = server.Terminate();
      for (std::thread& t : threads) {
        if (t.joinable()) t.join();
      }
    }
    ~Stopper() { Stop(); }
  } stopper{ledger, server, threads};

  ledger.ServerUp(server.tcp_address(), server.server_key());
  for (size_t k = 0; k < kSenders; ++k) {
    threads.emplace_back([&, k] {
      RunDevice(ledger, senders[k], "sender " + std::to_string(k),
                [&, k](client::GatewayClient& c) { outboxes[k].Session(c); });
    });
  }
  for (size_t r = 0; r < kReceivers; ++r) {
    threads.emplace_back([&, r] {
      RunDevice(ledger, receivers[r], "receiver " + std::to_string(r),
                [&, r](client::GatewayClient& c) { ReceiverSession(ledger, r, c); });
    });
  }

  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint32_t> delay_ms(kMinKillDelayMs, kMaxKillDelayMs);
  int killed = 0;
  int idle_kills = 0;  // kills with no Send acked since the restart before
  for (int i = 0; i < kills; ++i) {
    if (!ledger.AwaitAllConnected(Clock::now() + kReconnectDeadline)) {
      ledger.Problem("the devices did not all reconnect within the deadline before kill " +
                     std::to_string(i + 1));
    }
    // The chaos schedule itself, not a wait for an event: traffic flows meanwhile.
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    if (ledger.AcksSinceRestart() == 0) ++idle_kills;
    ledger.ServerDown();  // before the kill: a device that sees its connection drop waits
    if (!server.Kill()) {
      ledger.Problem("sottod had died on its own before kill " + std::to_string(i + 1));
    }
    ++killed;
    if (i + 1 == kills) ledger.StopGenerating();  // after the last restart, only re-sends
    ASSERT_TRUE(server.Restart()) << "restart " << killed << " failed";
    ledger.ServerUp(server.tcp_address(), server.server_key());
  }

  const bool drained = ledger.AwaitDrained(Clock::now() + kDrainDeadline);
  EXPECT_TRUE(drained) << "not every message was acked, delivered and receipted in time: "
                       << ledger.DrainState();
  stopper.Stop();
  EXPECT_EQ(stopper.exit_status, 0) << "sottod did not stop cleanly";
  ledger.FinalChecks();

  const Ledger::Totals t = ledger.totals();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::cout << "crash test: " << killed << " kills (" << idle_kills
            << " with no ack since the restart), " << t.acked << " of " << t.generated
            << " messages acked, " << t.received << " delivered (" << t.copies << " envelopes, "
            << t.duplicates << " wire duplicates), " << t.resends << " re-sends ("
            << t.resends_delivered << " of them already delivered: acks lost to a kill), "
            << t.receipts << " receipts (" << t.receipt_copies << " on the wire), "
            << t.unexpected_disconnects << " unexpected disconnects, " << seconds << " s, seed "
            << seed << "\n";

  uint64_t problem_count = 0;
  const std::vector<std::string> problems = ledger.problems(problem_count);
  for (const std::string& p : problems) ADD_FAILURE() << p;
  EXPECT_EQ(problem_count, 0u) << "(the first " << problems.size() << " are listed above)";
  EXPECT_GE(killed, kDefaultKills);
  EXPECT_GT(t.acked, 0u);
  EXPECT_EQ(t.acked, t.generated);    // senders retry until everything is acked
  EXPECT_EQ(t.received, t.acked);     // (1): every acked message delivered (and no others)
  EXPECT_EQ(t.receipts, t.received);  // every delivered message receipted once
}

}  // namespace
}  // namespace sotto
