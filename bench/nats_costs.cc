// What the JetStream primitives of the cluster store cost on this machine
// (docs/cluster.md quotes these figures), against a real 3-node nats-server cluster on
// 127.0.0.1 that this program starts (tests/support/nats_cluster.h), all streams R3 on
// file storage:
//  - sync publish: one publisher waits for each ack (closed loop): p50/p99 and msg/s;
//  - async publish at saturation (up to --window in flight): msg/s, and the CPU of the
//    three nats-servers and of this client per message;
//  - async publish open loop: a fixed rate (half the saturation rate), latency from each
//    message's scheduled send time to its ack (no coordinated omission);
//  - direct get (any replica), leader get, delete by sequence (the prekey claim), KV
//    update with the expected revision: p50/p99 each;
//  - notification: a sync publish on node 1 until its headers-only RePublish reaches a
//    core subscriber on node 3 (how a node hears that a device's queue grew);
//  - memory: the nats-servers' RSS growth for --subjects distinct subjects in one stream,
//    beside the same number of messages on one subject (on a second cluster run with
//    GOGC=10, so RSS tracks live data);
//  - the design docs/cluster.md rejects: --consumers durable R3 consumers (one per
//    device): the time to create each, and the servers' idle CPU with them vs without.
// Payloads 200 B and 4 KiB. bench/nats_costs.sh runs it and names the filesystem.
//
// Usage: nats_costs [--ops N] [--async N] [--window N] [--subjects N] [--consumers N]
//                   [--idle-s N] [--dir DIR] [--fs TEXT] [--json FILE]
#include <nats/nats.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/histogram.h"
#include "store/nats/nats_client.h"
#include "tests/support/nats_cluster.h"

namespace {

using namespace sotto;               // NOLINT(google-build-using-namespace)
using namespace sotto::store::nats;  // NOLINT(google-build-using-namespace)
using Clock = std::chrono::steady_clock;

// Device subjects the queue figures spread over (one stream, many subjects).
constexpr int kDevices = 1'000;
constexpr int64_t kCompleteTimeoutMs = 120'000;
constexpr double kOpenLoopFraction = 0.5;  // open-loop rate = this x saturation rate

struct Args {
  size_t ops = 2'000;
  size_t async = 20'000;
  int64_t window = 1'000;
  size_t subjects = 10'000;
  size_t consumers = 100;
  int idle_s = 5;
  std::string dir;
  std::string fs = "unknown";
  std::string json;
};

[[noreturn]] void Die(const std::string& what, const Error& error) {
  std::fprintf(stderr, "nats_costs: %s: %s\n", what.c_str(), error.ToString().c_str());
  std::exit(1);
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "nats_costs: %s\n", what.c_str());
  std::exit(1);
}

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// utime + stime of `pid` in seconds (from /proc/PID/stat).
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double ClusterCpu(const testing::NatsCluster& cluster) {
  double sum = 0;
  for (int i = 0; i < cluster.size(); ++i) sum += CpuSeconds(cluster.pid(i));
  return sum;
}

double SelfCpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// VmRSS of `pid` in bytes.
long RssBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6)) * 1024;
  }
  return 0;
}

long ClusterRss(const testing::NatsCluster& cluster) {
  long sum = 0;
  for (int i = 0; i < cluster.size(); ++i) sum += RssBytes(cluster.pid(i));
  return sum;
}

// Acks of async publishes whose msg_id is "<phase><index>", recorded by index.
class AckTimes {
 public:
  void Reset(char phase, size_t n) {
    phase_.store(phase);
    times_ = std::vector<std::atomic<int64_t>>(n);
    acked_.store(0);
  }
  void OnAck(std::string_view msg_id, const Result<PubAck>& ack) {
    if (!ack) {
      errors_.fetch_add(1);
      return;
    }
    if (msg_id.empty() || msg_id[0] != phase_.load()) return;
    const size_t index = std::stoul(std::string(msg_id.substr(1)));
    if (index < times_.size()) times_[index].store(NowNs(), std::memory_order_release);
    acked_.fetch_add(1, std::memory_order_acq_rel);
  }
  size_t acked() const { return acked_.load(std::memory_order_acquire); }
  int64_t at(size_t i) const { return times_[i].load(std::memory_order_acquire); }
  uint64_t errors() const { return errors_.load(); }

 private:
  std::atomic<char> phase_{0};
  std::vector<std::atomic<int64_t>> times_;
  std::atomic<size_t> acked_{0};
  std::atomic<uint64_t> errors_{0};
};

std::string DeviceSubject(const std::string& stream, size_t i) {
  return stream + ".dev" + std::to_string(i % kDevices);
}

void AwaitAcks(NatsClient& client, const AckTimes& acks, size_t n) {
  if (auto done = client.PublishAsyncComplete(kCompleteTimeoutMs); !done) {
    Die("async publishes did not complete", done.error());
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(kCompleteTimeoutMs);
  while (acks.acked() < n && Clock::now() < deadline) std::this_thread::yield();
}

struct PayloadFigures {
  size_t bytes = 0;
  Histogram sync;
  double sync_rate = 0;
  double async_rate = 0;
  double server_cpu_us_per_msg = 0;
  double client_cpu_us_per_msg = 0;
  double open_rate = 0;
  Histogram open;
};

PayloadFigures MeasurePublish(NatsClient& client, AckTimes& acks,
                              const testing::NatsCluster& cluster, const Args& args, size_t bytes) {
  PayloadFigures f;
  f.bytes = bytes;
  const std::string stream = "pub" + std::to_string(bytes);
  StreamConfig config;
  config.name = stream;
  config.subjects = {stream + ".>"};
  if (auto added = client.AddOrUpdateStream(config); !added) Die("stream", added.error());
  const std::vector<uint8_t> payload(bytes, 0x5a);

  auto start = Clock::now();
  for (size_t i = 0; i < args.ops; ++i) {
    const auto t = Clock::now();
    PublishOptions po;
    po.msg_id = "y" + std::to_string(i);
    if (auto ack = client.Publish(DeviceSubject(stream, i), payload, po); !ack) {
      Die("sync publish", ack.error());
    }
    f.sync.Record(static_cast<uint64_t>((Clock::now() - t).count()));
  }
  f.sync_rate =
      static_cast<double>(args.ops) / std::chrono::duration<double>(Clock::now() - start).count();

  acks.Reset('s', args.async);
  const double cpu0 = ClusterCpu(cluster);
  const double self0 = SelfCpu();
  start = Clock::now();
  for (size_t i = 0; i < args.async; ++i) {
    PublishOptions po;
    po.msg_id = "s" + std::to_string(i);
    if (auto sent = client.PublishAsync(DeviceSubject(stream, i), payload, po); !sent) {
      Die("async publish", sent.error());
    }
  }
  AwaitAcks(client, acks, args.async);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  f.async_rate = static_cast<double>(args.async) / seconds;
  f.server_cpu_us_per_msg = (ClusterCpu(cluster) - cpu0) * 1e6 / static_cast<double>(args.async);
  f.client_cpu_us_per_msg = (SelfCpu() - self0) * 1e6 / static_cast<double>(args.async);

  // Open loop: message i is due at t0 + i / rate whatever happened to the others.
  f.open_rate = f.async_rate * kOpenLoopFraction;
  const size_t n = args.async / 2;
  acks.Reset('o', n);
  std::vector<int64_t> due(n);
  const int64_t t0 = NowNs();
  const double period_ns = 1e9 / f.open_rate;
  for (size_t i = 0; i < n; ++i) {
    due[i] = t0 + static_cast<int64_t>(static_cast<double>(i) * period_ns);
    while (NowNs() < due[i]) std::this_thread::yield();
    PublishOptions po;
    po.msg_id = "o" + std::to_string(i);
    if (auto sent = client.PublishAsync(DeviceSubject(stream, i), payload, po); !sent) {
      Die("open-loop publish", sent.error());
    }
  }
  AwaitAcks(client, acks, n);
  for (size_t i = 0; i < n; ++i) {
    if (acks.at(i) > 0) f.open.Record(static_cast<uint64_t>(acks.at(i) - due[i]));
  }
  return f;
}

template <typename Op>
Histogram Time(size_t n, Op op) {
  Histogram h;
  for (size_t i = 0; i < n; ++i) {
    const auto t = Clock::now();
    op(i);
    h.Record(static_cast<uint64_t>((Clock::now() - t).count()));
  }
  return h;
}

// RSS growth of the cluster (bytes, all three nodes together) for `n` messages of 200 B
// on `distinct` subjects of a new stream.
long RssGrowth(NatsClient& client, AckTimes& acks, const testing::NatsCluster& cluster,
               const std::string& stream, size_t n, bool distinct) {
  StreamConfig config;
  config.name = stream;
  config.subjects = {stream + ".>"};
  if (auto added = client.AddOrUpdateStream(config); !added) Die("stream", added.error());
  const std::vector<uint8_t> payload(200, 0x5a);
  const long before = ClusterRss(cluster);
  acks.Reset('m', n);
  for (size_t i = 0; i < n; ++i) {
    const std::string subject = stream + (distinct ? ".dev" + std::to_string(i) : ".one");
    PublishOptions po;
    po.msg_id = "m" + std::to_string(i);
    if (auto sent = client.PublishAsync(subject, payload, po); !sent) Die("publish", sent.error());
  }
  AwaitAcks(client, acks, n);
  return ClusterRss(cluster) - before;
}

// Sync publish on `writer` until the stream's headers-only RePublish reaches `watcher`.
// `prober` is connected to the stream leader's node (see AwaitInterest below).
Histogram NotifyLatency(NatsClient& writer, NatsClient& watcher, NatsClient& prober, size_t n) {
  StreamConfig config;
  config.name = "inbox";
  config.subjects = {"inbox.>"};
  config.republish_source = "inbox.>";
  config.republish_destination = "note.>";
  config.republish_headers_only = true;
  if (auto added = writer.AddOrUpdateStream(config); !added) Die("stream", added.error());
  std::mutex mu;
  std::condition_variable cv;
  uint64_t last_seen = 0;
  bool probe_seen = false;
  auto sub = watcher.Subscribe("note.dev1", [&](StoredMsg msg) {
    std::lock_guard<std::mutex> lock(mu);
    if (msg.sequence == 0) probe_seen = true;  // a core probe carries no Nats-Sequence
    last_seen = std::max(last_seen, msg.sequence);
    cv.notify_all();
  });
  if (!sub) Die("subscribe", sub.error());
  // The interest reaches the leader's node over a route asynchronously: probe from there
  // until a probe arrives, so the first note is not published to no one.
  {
    const std::vector<uint8_t> probe(1, 0);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    std::unique_lock<std::mutex> lock(mu);
    while (!probe_seen) {
      if (Clock::now() > deadline) Die("the subscription never reached the stream leader");
      lock.unlock();
      if (auto sent = prober.PublishCore("note.dev1", probe); !sent) Die("probe", sent.error());
      lock.lock();
      cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return probe_seen; });
    }
  }
  const std::vector<uint8_t> payload(200, 0x5a);
  return Time(n, [&](size_t) {
    auto ack = writer.Publish("inbox.dev1", payload);
    if (!ack) Die("publish", ack.error());
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return last_seen >= ack->sequence; })) {
      Die("no notification within 10 s");
    }
  });
}

double IdleCpuPercent(const testing::NatsCluster& cluster, int seconds) {
  const double cpu0 = ClusterCpu(cluster);
  std::this_thread::sleep_for(std::chrono::seconds(seconds));  // measuring idle load
  return (ClusterCpu(cluster) - cpu0) * 100.0 / seconds;
}

struct ConsumerFigures {
  Histogram create;
  double idle_cpu_without = 0;  // % of one core, all nodes together
  double idle_cpu_with = 0;
};

// One durable pull consumer per "device" (filtered on its subject), R3 like the stream,
// through nats.c directly: the wrapper has no consumer calls because the design uses none.
ConsumerFigures MeasureConsumers(const testing::NatsCluster& cluster, const Args& args) {
  ConsumerFigures f;
  f.idle_cpu_without = IdleCpuPercent(cluster, args.idle_s);
  natsConnection* nc = nullptr;
  const std::string url = cluster.ClientUrl(0);
  if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK) Die("consumer connect");
  jsCtx* js = nullptr;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 30'000;
  if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK) Die("consumer jetstream");
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  const char* subjects[] = {"perdev.>"};
  sc.Name = "perdev";
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Storage = js_FileStorage;
  sc.Replicas = 3;
  jsStreamInfo* si = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  if (js_AddStream(&si, js, &sc, nullptr, &err) != NATS_OK) Die("consumer stream");
  jsStreamInfo_Destroy(si);
  f.create = Time(args.consumers, [&](size_t i) {
    const std::string name = "dev" + std::to_string(i);
    const std::string filter = "perdev." + name;
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = name.c_str();
    cc.FilterSubject = filter.c_str();
    cc.AckPolicy = js_AckExplicit;
    jsConsumerInfo* ci = nullptr;
    if (js_AddConsumer(&ci, js, "perdev", &cc, nullptr, &err) != NATS_OK) {
      Die("add consumer " + std::to_string(static_cast<int>(err)));
    }
    jsConsumerInfo_Destroy(ci);
  });
  f.idle_cpu_with = IdleCpuPercent(cluster, args.idle_s);
  js_DeleteStream(js, "perdev", nullptr, &err);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return f;
}

Args ParseArgs(int argc, char** argv) {
  Args args;
  if (argc % 2 == 0) Die("every flag takes a value (see the usage at the top of nats_costs.cc)");
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--ops") {
      args.ops = std::stoul(value);
    } else if (flag == "--async") {
      args.async = std::stoul(value);
    } else if (flag == "--window") {
      args.window = std::stol(value);
    } else if (flag == "--subjects") {
      args.subjects = std::stoul(value);
    } else if (flag == "--consumers") {
      args.consumers = std::stoul(value);
    } else if (flag == "--idle-s") {
      args.idle_s = std::stoi(value);
    } else if (flag == "--dir") {
      args.dir = value;
    } else if (flag == "--fs") {
      args.fs = value;
    } else if (flag == "--json") {
      args.json = value;
    } else {
      Die("usage: nats_costs [--ops N] [--async N] [--window N] [--subjects N] "
          "[--consumers N] [--idle-s N] [--dir DIR] [--fs TEXT] [--json FILE]");
    }
  }
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  testing::NatsClusterOptions cluster_options;
  cluster_options.base_dir = args.dir;
  cluster_options.cluster_name = "sotto-bench";
  testing::NatsCluster cluster(cluster_options);
  if (!cluster.ok()) Die("cluster: " + cluster.error());

  AckTimes acks;
  ClientOptions options;
  options.servers = cluster.ClientUrls();
  options.name = "nats_costs";
  options.max_pending_async = args.window;
  auto connected = NatsClient::Connect(
      options, [&acks](std::string_view id, Result<PubAck> ack) { acks.OnAck(id, ack); });
  if (!connected) Die("connect", connected.error());
  NatsClient& client = **connected;

  std::vector<PayloadFigures> pubs;
  for (size_t bytes : {size_t{200}, size_t{4096}}) {
    pubs.push_back(MeasurePublish(client, acks, cluster, args, bytes));
  }

  // Reads and claims on the 200 B stream (its sync messages are at sequences 1..ops).
  std::mt19937_64 rng(42);
  const Histogram direct = Time(args.ops, [&](size_t) {
    DirectGetRequest req;
    req.last_by_subject = DeviceSubject("pub200", rng() % kDevices);
    if (auto got = client.DirectGet("pub200", req); !got) Die("direct get", got.error());
  });
  const Histogram leader = Time(args.ops, [&](size_t i) {
    if (auto got = client.GetMsg("pub200", i + 1); !got) Die("leader get", got.error());
  });
  const Histogram claim = Time(args.ops, [&](size_t i) {
    if (auto gone = client.DeleteMsg("pub200", i + 1); !gone) Die("delete", gone.error());
  });

  auto bucket = client.CreateKeyValue("bench", /*replicas=*/3, /*history=*/1);
  if (!bucket) Die("bucket", bucket.error());
  std::map<size_t, uint64_t> revision;
  const std::vector<uint8_t> record(200, 0x33);
  for (size_t k = 0; k < kDevices; ++k) {
    auto rev = bucket->Create("acct" + std::to_string(k), record);
    if (!rev) Die("kv create", rev.error());
    revision[k] = *rev;
  }
  const Histogram kv_update = Time(args.ops, [&](size_t) {
    const size_t k = rng() % kDevices;
    auto rev = bucket->Update("acct" + std::to_string(k), record, revision[k]);
    if (!rev) Die("kv update", rev.error());
    revision[k] = *rev;
  });
  const Histogram kv_get = Time(args.ops, [&](size_t) {
    if (auto got = bucket->Get("acct" + std::to_string(rng() % kDevices)); !got) {
      Die("kv get", got.error());
    }
  });

  options.servers = {cluster.ClientUrl(2)};
  auto watcher = NatsClient::Connect(options);
  if (!watcher) Die("connect", watcher.error());
  options.servers = {cluster.ClientUrl(0)};
  auto writer = NatsClient::Connect(options);
  if (!writer) Die("connect", writer.error());
  StreamConfig inbox;  // created here too, to learn its leader before NotifyLatency
  inbox.name = "inbox";
  inbox.subjects = {"inbox.>"};
  inbox.republish_source = "inbox.>";
  inbox.republish_destination = "note.>";
  inbox.republish_headers_only = true;
  if (auto added = (*writer)->AddOrUpdateStream(inbox); !added) Die("stream", added.error());
  auto inbox_state = (*writer)->GetStreamState("inbox");
  if (!inbox_state || inbox_state->leader.size() < 2) Die("inbox stream has no leader");
  options.servers = {cluster.ClientUrl(std::stoi(inbox_state->leader.substr(1)) - 1)};
  auto prober = NatsClient::Connect(options);
  if (!prober) Die("connect", prober.error());
  const Histogram notify = NotifyLatency(**writer, **watcher, **prober, args.ops);

  // Memory on a cluster of its own whose Go heap is collected eagerly (GOGC=10, freed pages
  // returned at once), so RSS follows the live data instead of the garbage of the runs above.
  long one_subject = 0;
  long many_subjects = 0;
  {
    testing::NatsClusterOptions mem_options = cluster_options;
    mem_options.cluster_name = "sotto-bench-mem";
    mem_options.env = {"GOGC=10", "GODEBUG=madvdontneed=1"};
    testing::NatsCluster mem_cluster(mem_options);
    if (!mem_cluster.ok()) Die("memory cluster: " + mem_cluster.error());
    options.servers = mem_cluster.ClientUrls();
    auto mem_client = NatsClient::Connect(
        options, [&acks](std::string_view id, Result<PubAck> ack) { acks.OnAck(id, ack); });
    if (!mem_client) Die("connect", mem_client.error());
    one_subject = RssGrowth(**mem_client, acks, mem_cluster, "memone", args.subjects, false);
    many_subjects = RssGrowth(**mem_client, acks, mem_cluster, "memmany", args.subjects, true);
  }
  const double per_10k = 1e4 / static_cast<double>(args.subjects) / 3.0;  // per node
  if (acks.errors() != 0) Die("async publishes failed: " + std::to_string(acks.errors()));
  const ConsumerFigures consumers = MeasureConsumers(cluster, args);

  std::printf("nats-server 3 nodes, R3 file streams, store on %s, %ld cores\n", args.fs.c_str(),
              sysconf(_SC_NPROCESSORS_ONLN));
  for (const PayloadFigures& f : pubs) {
    std::printf(
        "%zu B: sync publish p50 %.2f ms p99 %.2f ms (%.0f msg/s, 1 publisher); async "
        "saturation %.0f msg/s (window %ld), nats-server CPU %.1f us/msg (3 nodes), client "
        "%.1f us/msg; open loop at %.0f msg/s: ack p50 %.2f ms p99 %.2f ms\n",
        f.bytes, Ms(f.sync.Quantile(0.5)), Ms(f.sync.Quantile(0.99)), f.sync_rate, f.async_rate,
        static_cast<long>(args.window), f.server_cpu_us_per_msg, f.client_cpu_us_per_msg,
        f.open_rate, Ms(f.open.Quantile(0.5)), Ms(f.open.Quantile(0.99)));
  }
  std::printf(
      "direct get p50 %.2f ms p99 %.2f ms; leader get p50 %.2f ms p99 %.2f ms; delete "
      "by sequence p50 %.2f ms p99 %.2f ms\n",
      Ms(direct.Quantile(0.5)), Ms(direct.Quantile(0.99)), Ms(leader.Quantile(0.5)),
      Ms(leader.Quantile(0.99)), Ms(claim.Quantile(0.5)), Ms(claim.Quantile(0.99)));
  std::printf(
      "kv update (expected revision) p50 %.2f ms p99 %.2f ms; kv get p50 %.2f ms p99 "
      "%.2f ms\n",
      Ms(kv_update.Quantile(0.5)), Ms(kv_update.Quantile(0.99)), Ms(kv_get.Quantile(0.5)),
      Ms(kv_get.Quantile(0.99)));
  std::printf("publish -> RePublish note on another node p50 %.2f ms p99 %.2f ms\n",
              Ms(notify.Quantile(0.5)), Ms(notify.Quantile(0.99)));
  std::printf(
      "%zu durable R3 consumers (one per device): create p50 %.1f ms p99 %.1f ms; "
      "idle nats-server CPU (3 nodes) %.1f%% of a core with them, %.1f%% without\n",
      args.consumers, Ms(consumers.create.Quantile(0.5)), Ms(consumers.create.Quantile(0.99)),
      consumers.idle_cpu_with, consumers.idle_cpu_without);
  std::printf("memory per node per 10k messages: %zu subjects %.2f MiB, one subject %.2f MiB\n",
              args.subjects, static_cast<double>(many_subjects) * per_10k / 1048576.0,
              static_cast<double>(one_subject) * per_10k / 1048576.0);

  if (!args.json.empty()) {
    std::ofstream out(args.json);
    out << "{\"filesystem\":\"" << args.fs << "\",\"nodes\":3,\"replicas\":3,\"ops\":" << args.ops
        << ",\"async\":" << args.async << ",\"window\":" << args.window << ",\"publish\":[";
    for (size_t i = 0; i < pubs.size(); ++i) {
      const PayloadFigures& f = pubs[i];
      out << (i ? "," : "") << "{\"bytes\":" << f.bytes
          << ",\"sync_p50_ms\":" << Ms(f.sync.Quantile(0.5))
          << ",\"sync_p99_ms\":" << Ms(f.sync.Quantile(0.99))
          << ",\"sync_msgs_per_s\":" << f.sync_rate << ",\"async_msgs_per_s\":" << f.async_rate
          << ",\"server_cpu_us_per_msg\":" << f.server_cpu_us_per_msg
          << ",\"client_cpu_us_per_msg\":" << f.client_cpu_us_per_msg
          << ",\"open_loop_msgs_per_s\":" << f.open_rate
          << ",\"open_loop_ack_p50_ms\":" << Ms(f.open.Quantile(0.5))
          << ",\"open_loop_ack_p99_ms\":" << Ms(f.open.Quantile(0.99)) << "}";
    }
    out << "],\"direct_get_p50_ms\":" << Ms(direct.Quantile(0.5))
        << ",\"direct_get_p99_ms\":" << Ms(direct.Quantile(0.99))
        << ",\"leader_get_p50_ms\":" << Ms(leader.Quantile(0.5))
        << ",\"leader_get_p99_ms\":" << Ms(leader.Quantile(0.99))
        << ",\"delete_p50_ms\":" << Ms(claim.Quantile(0.5))
        << ",\"delete_p99_ms\":" << Ms(claim.Quantile(0.99))
        << ",\"kv_update_p50_ms\":" << Ms(kv_update.Quantile(0.5))
        << ",\"kv_update_p99_ms\":" << Ms(kv_update.Quantile(0.99))
        << ",\"kv_get_p50_ms\":" << Ms(kv_get.Quantile(0.5))
        << ",\"kv_get_p99_ms\":" << Ms(kv_get.Quantile(0.99))
        << ",\"notify_p50_ms\":" << Ms(notify.Quantile(0.5))
        << ",\"notify_p99_ms\":" << Ms(notify.Quantile(0.99)) << ",\"consumers\":" << args.consumers
        << ",\"consumer_create_p50_ms\":" << Ms(consumers.create.Quantile(0.5))
        << ",\"consumer_create_p99_ms\":" << Ms(consumers.create.Quantile(0.99))
        << ",\"idle_cpu_pct_with_consumers\":" << consumers.idle_cpu_with
        << ",\"idle_cpu_pct_without_consumers\":" << consumers.idle_cpu_without
        << ",\"subjects\":" << args.subjects << ",\"rss_mib_per_node_per_10k_distinct_subjects\":"
        << static_cast<double>(many_subjects) * per_10k / 1048576.0
        << ",\"rss_mib_per_node_per_10k_msgs_one_subject\":"
        << static_cast<double>(one_subject) * per_10k / 1048576.0 << "}\n";
  }
  return 0;
}
