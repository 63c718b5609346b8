// A thin RAII wrapper over the NATS C client (nats.c 3.4.1, Debian libnats-dev): one
// connection to a NATS cluster with reconnect, its JetStream context, and the few
// JetStream calls the cluster store needs (docs/cluster.md): stream add/update, publish
// with a message id and an expected last subject sequence (the compare-and-set every
// record and queue write uses), direct get, delete by sequence (the atomic one-time
// claim), and key-value buckets whose updates carry the expected revision.
//
// Every failure is an Error of Module::kNats with a NatsErr detail; the server's error
// text is never copied into it (it can name subjects, which carry identifiers).
//
// Thread-safety: NatsClient is thread-safe (nats.c locks internally); any thread may call
// any method. A KvBucket is a value naming a bucket and must not outlive its NatsClient.
// Calls block on the network: never call them from an event-loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace sotto::store::nats {

enum class NatsErr : uint16_t {
  kConnect = 9001,            // no server of the list could be reached (Code::kUnavailable)
  kTimeout = 9002,            // no reply in time; the request may or may not have been applied
  kNoResponders = 9003,       // nobody serves the subject (no stream leader, no JetStream)
  kClosed = 9004,             // the connection is closed
  kWrongLastSequence = 9005,  // an expected (subject) sequence or revision did not match
  kNotFound = 9006,           // no such message, key, sequence or stream
  kSubjectFull = 9007,        // the subject holds MaxMsgsPerSubject with DiscardNewPerSubject
  kStreamConfig = 9008,       // a stream could not be created or updated as asked
  kInsufficientPeers = 9009,  // not enough servers for the replicas asked
  kInvalid = 9010,            // an argument the client library refused (e.g. empty subject)
  kServer = 9011,             // any other JetStream API error
  kLibrary = 9012,            // any other nats.c failure (e.g. out of memory)
  kBadReply = 9013,           // a reply without the headers it must carry
};

// True if `error` is the NatsErr `detail`.
bool IsNatsErr(const Error& error, NatsErr detail);

struct ClientOptions {
  std::vector<std::string> servers;  // "nats://host:port"; tried in this order
  std::string name;                  // shown by the server's monitoring; no identifiers
  int64_t connect_timeout_ms = 2'000;
  int64_t reconnect_wait_ms = 100;
  int max_reconnect = -1;              // attempts per server after a loss; -1 = forever
  int64_t request_timeout_ms = 5'000;  // JetStream API requests and sync publish acks
  // Async publishes in flight before PublishAsync waits (jsOptions.PublishAsync.MaxPending).
  int64_t max_pending_async = 4'000;
};

enum class Storage : uint8_t { kFile, kMemory };

struct StreamConfig {
  std::string name;
  std::vector<std::string> subjects;
  Storage storage = Storage::kFile;
  int replicas = 3;
  int64_t max_msgs_per_subject = -1;     // -1 = unlimited
  bool discard_new_per_subject = false;  // a full subject refuses (kSubjectFull)
  int64_t max_bytes = -1;
  int64_t max_age_ms = 0;           // 0 = keep forever
  int64_t duplicate_window_ms = 0;  // 0 = server default (2 min)
  bool allow_direct = true;         // DirectGet served by every replica
  // RePublish: each stored message is also sent on core NATS to `republish_destination`,
  // with headers Nats-Stream, Nats-Subject, Nats-Sequence, Nats-Last-Sequence; a trailing
  // ">" maps the tokens the source's ">" matched (source "q.>", destination "n.>": q.d1 ->
  // n.d1; nats_cluster_test shows it). Empty = none.
  std::string republish_source;
  std::string republish_destination;
  bool republish_headers_only = false;
};

struct StreamState {
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint64_t first_sequence = 0;
  uint64_t last_sequence = 0;
  int64_t subjects = 0;
  int replicas = 0;          // the leader and its followers (1 on a single server)
  int replicas_current = 0;  // the leader and the followers that are current
  std::string leader;        // the leader's server name, empty if none
};

struct PublishOptions {
  std::string msg_id;  // Nats-Msg-Id: a second publish in the duplicate window is a no-op
  // The subject's last sequence must be this (Nats-Expected-Last-Subject-Sequence):
  // std::nullopt = no expectation, 0 = the subject must hold no message.
  std::optional<uint64_t> expected_last_subject_sequence;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct PubAck {
  uint64_t sequence = 0;
  bool duplicate = false;  // the msg_id was seen in the window; nothing new was stored
};

struct StoredMsg {
  std::string subject;
  uint64_t sequence = 0;
  std::vector<uint8_t> data;
  std::vector<std::pair<std::string, std::string>> headers;
  // The value of header `name`, or empty.
  std::string_view Header(std::string_view name) const;
};

// What DirectGet returns: exactly one of the three is set.
struct DirectGetRequest {
  uint64_t sequence = 0;
  std::string last_by_subject;
  std::string next_by_subject;  // the first message on it at or after `sequence`
};

// Called on a nats.c thread for every PublishAsync, with the message's msg_id.
using AsyncAckHandler = std::function<void(std::string_view msg_id, Result<PubAck> ack)>;

// Called on a nats.c thread for each message of a Subscription.
using MessageHandler = std::function<void(StoredMsg msg)>;

class KvBucket;
class Subscription;

class NatsClient {
 public:
  // Connects to the first reachable server of options.servers; reconnects on its own
  // after a loss (buffering publishes meanwhile). Errors: kConnect, kInvalid.
  static Result<std::unique_ptr<NatsClient>> Connect(const ClientOptions& options,
                                                     AsyncAckHandler on_async_ack = {});
  ~NatsClient();
  NatsClient(const NatsClient&) = delete;
  NatsClient& operator=(const NatsClient&) = delete;

  // The URL of the server it is connected to now, or empty while reconnecting.
  std::string ConnectedUrl() const;
  // Times the connection was re-established after a loss.
  uint64_t reconnects() const;

  // Creates the stream, or updates it to `config` if it exists. kStreamConfig,
  // kInsufficientPeers, kTimeout, kNoResponders.
  Status AddOrUpdateStream(const StreamConfig& config);
  Status DeleteStream(std::string_view name);
  Result<StreamState> GetStreamState(std::string_view name);

  // Publishes and waits for the stream's ack, which the leader sends once a quorum of the
  // replicas stored the message. kWrongLastSequence if expected_last_subject_sequence did
  // not match, kSubjectFull, kTimeout (the message may still be stored: publish again with
  // the same msg_id), kNoResponders.
  Result<PubAck> Publish(std::string_view subject, std::span<const uint8_t> data,
                         const PublishOptions& options = {});
  // Publishes without waiting; the ack (or error) goes to the AsyncAckHandler given to
  // Connect, keyed by options.msg_id. Waits while max_pending_async are in flight.
  Status PublishAsync(std::string_view subject, std::span<const uint8_t> data,
                      const PublishOptions& options = {});
  // Waits until every async publish has its ack, up to `timeout_ms`. kTimeout.
  Status PublishAsyncComplete(int64_t timeout_ms);

  // Reads one message from any replica (the stream needs allow_direct; a follower may lag
  // the leader by the replication delay). kNotFound.
  Result<StoredMsg> DirectGet(std::string_view stream, const DirectGetRequest& request);
  // Reads one message through the stream leader (never stale). kNotFound.
  Result<StoredMsg> GetMsg(std::string_view stream, uint64_t sequence);
  // Deletes one message. kNotFound if it is already gone: of two concurrent deletes of one
  // sequence exactly one succeeds, which makes this an atomic claim.
  Status DeleteMsg(std::string_view stream, uint64_t sequence);

  // Publishes on core NATS (no JetStream, no ack: at most once), e.g. "connected
  // elsewhere" to a device's subject. Returns once nats.c has buffered it.
  Status PublishCore(std::string_view subject, std::span<const uint8_t> data);

  // Subscribes on core NATS (no JetStream: at most once, nothing stored) to `subject`
  // (wildcards allowed), e.g. the RePublish destination of a stream; returns once the
  // server has the interest. The handler runs on a nats.c thread, one message at a time.
  Result<Subscription> Subscribe(std::string_view subject, MessageHandler handler);

  // Creates (or binds to) a key-value bucket with `replicas` copies and `history` values
  // kept per key (1..64).
  Result<KvBucket> CreateKeyValue(std::string_view bucket, int replicas, int history,
                                  Storage storage = Storage::kFile);

 private:
  struct State;
  explicit NatsClient(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// An active core subscription; unsubscribes when destroyed (after which its handler is not
// called again). Must not outlive its NatsClient. Move-only.
class Subscription {
 public:
  Subscription(Subscription&& other) noexcept;
  Subscription& operator=(Subscription&& other) noexcept;
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription();

 private:
  friend class NatsClient;
  struct Impl;
  explicit Subscription(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct KvEntry {
  std::vector<uint8_t> value;
  uint64_t revision = 0;  // the stream sequence of this value
};

// One bucket of a NatsClient. Reads use DirectGet (any replica; may lag), writes go to the
// leader and carry the revision they expect, so a lost race is kWrongLastSequence.
class KvBucket {
 public:
  const std::string& name() const { return name_; }
  // The current value. kNotFound if absent or deleted.
  Result<KvEntry> Get(std::string_view key);
  // Stores `value` only if the key is absent (or deleted); its revision.
  // kWrongLastSequence if it exists.
  Result<uint64_t> Create(std::string_view key, std::span<const uint8_t> value);
  // Stores `value` only if the key's last revision is `expected_revision`; the new
  // revision. kWrongLastSequence otherwise.
  Result<uint64_t> Update(std::string_view key, std::span<const uint8_t> value,
                          uint64_t expected_revision);
  // Stores `value` unconditionally; its revision.
  Result<uint64_t> Put(std::string_view key, std::span<const uint8_t> value);
  // Deletes the key only if its last revision is `expected_revision` (a delete marker, as
  // kvStore_Delete writes). kWrongLastSequence otherwise.
  Status Delete(std::string_view key, uint64_t expected_revision);

 private:
  friend class NatsClient;
  KvBucket(NatsClient* client, std::string name) : client_(client), name_(std::move(name)) {}
  std::string Subject(std::string_view key) const;
  std::string Stream() const;
  NatsClient* client_;
  std::string name_;
};

}  // namespace sotto::store::nats
