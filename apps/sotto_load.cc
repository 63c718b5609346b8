// sotto-load: a load generator for the Sotto gateway, and a real client of it: TCP, the
// Noise Pipes handshake (IK with --server-key, XX without) and encrypted wire frames,
// exactly as client/gateway_client.cc speaks them, but asynchronous: one net::EventLoop,
// non-blocking sockets, thousands of connections per process. Every connection registers
// a new account (request_code, the code read from the server's log given by --codes,
// register) under a handle unique to the run. Modes:
//   idle          open N registered connections, print "ready N", hold them (answering the
//                 server's pings) until stdin reaches EOF, SIGINT/SIGTERM or --hold ends;
//   ping          open N connections, print "ready N", then send echo requests open-loop
//                 at --rate per second (round-robin) for --duration, recording round trips;
//   handshake     connect, handshake, close, with --concurrency in flight, for --duration;
//   send-online   N/2 senders send messages open-loop at --rate (all together) for
//                 --duration, each to its own online receiver, which acks in batches:
//                 send -> server ack, send -> delivery, delivered receipts;
//   send-offline  the receivers go offline first, so every message goes to a durable
//                 queue: send -> server ack; with --drain the receivers then reconnect
//                 and drain their queues.
// Open loop: every latency counts from the send's planned time on the --rate schedule,
// and a planned send that is dropped (in-flight cap, full write queue) or never sent
// makes the run's latency invalid ("latency_valid": false); docs/load.md.
// A JSON summary goes to --json, a readable one to stderr. bench/gateway_bench.sh and
// bench/messaging_bench.sh drive it.
//
// Thread-safety: single-threaded; every object below is Loop-affine.
#include <sys/resource.h>

#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "apps/load/load_client.h"

namespace sotto::load {
namespace {

tl::unexpected<Error> UsageError(const char* message) {
  return MakeError(Code::kInvalidArgument, Module::kClient, 0, message);
}

// "A", "A-B" (inclusive IPv4 range) or a comma-separated list of those.
Result<std::vector<net::SocketAddress>> ParseSources(std::string_view text) {
  std::vector<net::SocketAddress> out;
  auto parse_ip = [](std::string_view ip) -> std::optional<uint32_t> {
    in_addr a{};
    if (inet_pton(AF_INET, std::string(ip).c_str(), &a) != 1) return std::nullopt;
    return ntohl(a.s_addr);
  };
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t dash = item.find('-');
    const auto first = parse_ip(item.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : parse_ip(item.substr(dash + 1));
    if (!first || !last || *last < *first) {
      return UsageError("--sources takes IPv4 addresses or ranges A-B, comma-separated");
    }
    if (*last - *first >= 1024 || out.size() > 4096) {
      return UsageError("--sources names too many addresses (at most 1024 per range)");
    }
    for (uint32_t ip = *first;; ++ip) {
      net::SocketAddress s;
      auto* a = reinterpret_cast<sockaddr_in*>(&s.storage);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(ip);
      s.length = sizeof(sockaddr_in);
      out.push_back(s);
      if (ip == *last) break;
    }
  }
  return out;
}

Result<crypto::X25519Public> ParseKey(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  const Bytes raw = FromHex(text);
  if (raw.size() != crypto::kX25519KeySize) {
    return UsageError("--server-key must be 64 hex digits (DIR/server.pub)");
  }
  crypto::X25519Public key{};
  std::copy(raw.begin(), raw.end(), key.begin());
  return key;
}

// Raises the soft open-file limit to the hard one; false if `needed` still does not fit.
bool EnsureOpenFiles(uint64_t needed, uint64_t& limit) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  limit = lim.rlim_cur;
  return needed <= lim.rlim_cur;
}

int Main(int argc, char** argv) {
  CLI::App app{"sotto-load: connections, echo round trips and handshakes against sottod"};
  std::string server, server_key, sources, mode = "idle";
  Options o;
  app.add_option("--server", server, "gateway address, HOST:PORT")->required();
  app.add_option("--server-key", server_key, "server key (64 hex digits): IK; without: XX");
  app.add_option("--connections", o.connections, "connections held by this process (ping, idle)");
  app.add_option("--sources", sources, "source addresses, e.g. 127.0.0.2-127.0.0.9 (round-robin)");
  app.add_option("--concurrency", o.concurrency, "connects/handshakes in flight (default 256)");
  app.add_option("--mode", mode, "idle|ping|handshake|send-online|send-offline")
      ->check(CLI::IsMember({"idle", "ping", "handshake", "send-online", "send-offline"}));
  app.add_option("--codes", o.codes_path,
                 "the server's DATA/verification-codes.log (all modes but handshake)");
  app.add_option("--rate", o.rate, "ping, send-*: requests per second, all connections together");
  app.add_option("--duration", o.duration_s, "ping, handshake, send-*: seconds (default 10)");
  app.add_option("--payload", o.payload_bytes, "send-*: ciphertext bytes (default 100)");
  app.add_option("--ack-batch", o.ack_batch, "send-*: envelopes per DeliveryAck (default 32)");
  app.add_option(
      "--max-in-flight", o.max_in_flight,
      "send-*: messages per sender not yet answered (send-offline) or receipted "
      "(send-online) before it drops one, which invalidates the run's latency (default 64)");
  app.add_flag("--drain", o.drain, "send-offline: then reconnect the receivers and drain");
  app.add_option("--server-pid", o.server_pid,
                 "send-*: read this process's CPU time (/proc/PID/stat) around each window");
  app.add_option("--hold", o.hold_s, "idle: longest hold in seconds (default 600)");
  app.add_option("--setup-timeout", o.setup_timeout_s, "seconds to open the connections (120)");
  app.add_option("--json", o.json_path, "write the summary as JSON to this file");
  CLI11_PARSE(app, argc, argv);

  auto fail = [](const std::string& why) {
    std::cerr << "sotto-load: " << why << "\n";
    return 2;
  };
  o.mode = mode == "ping"           ? Mode::kPing
           : mode == "handshake"    ? Mode::kHandshake
           : mode == "send-online"  ? Mode::kSendOnline
           : mode == "send-offline" ? Mode::kSendOffline
                                    : Mode::kIdle;
  auto address = net::ParseHostPort(server);
  if (!address) return fail("--server must be IPv4:PORT or [IPv6]:PORT");
  o.server = *address;
  if (!server_key.empty()) {
    auto key = ParseKey(server_key);
    if (!key) return fail(key.error().message);
    o.server_key = *key;
  } else {
    std::cerr << "sotto-load: warning: no --server-key, so every connection trusts whatever "
                 "static key the server proves (XX, trust on first use)\n";
  }
  if (!sources.empty()) {
    auto parsed = ParseSources(sources);
    if (!parsed) return fail(parsed.error().message);
    if (o.server.storage.ss_family != AF_INET) return fail("--sources needs an IPv4 --server");
    o.sources = std::move(*parsed);
  }
  if (o.mode != Mode::kHandshake && (o.connections == 0 || o.connections > kMaxConnections)) {
    return fail("--connections must be 1.." + std::to_string(kMaxConnections) +
                " per process (the open-file cap is 20,000); run more processes with other "
                "--sources for more");
  }
  if (o.mode == Mode::kHandshake && o.connections != 0) {
    return fail("--connections does not apply to --mode handshake; use --concurrency");
  }
  if (o.mode != Mode::kHandshake && o.codes_path.empty()) {
    return fail("--codes FILE is needed to register (the server's DATA/verification-codes.log)");
  }
  if (IsMessaging(o.mode)) {
    if (o.connections < 2 || o.connections % 2 != 0) {
      return fail("send-* modes pair senders with receivers: --connections must be even");
    }
    if (o.payload_bytes < kMinPayload || o.payload_bytes > kMaxPayload) {
      return fail("--payload must be in " + std::to_string(kMinPayload) + ".." +
                  std::to_string(kMaxPayload) + " bytes");
    }
    if (o.ack_batch == 0 || o.ack_batch > 4'096) return fail("--ack-batch must be in 1..4096");
    if (o.max_in_flight == 0) return fail("--max-in-flight must be at least 1");
  }
  if (o.drain && o.mode != Mode::kSendOffline) return fail("--drain needs --mode send-offline");
  if (o.concurrency == 0 || o.concurrency > kMaxConnections) {
    return fail("--concurrency must be 1.." + std::to_string(kMaxConnections));
  }
  if (!(o.rate > 0 && o.rate <= kMaxRate)) return fail("--rate must be in (0, 10000000]");
  for (const double s : {o.duration_s, o.hold_s, o.setup_timeout_s}) {
    if (!(s > 0 && s <= kMaxDurationS)) {
      return fail("--duration, --hold and --setup-timeout must be in (0, 3600] seconds");
    }
  }
  const uint64_t fds = uint64_t{std::max(o.connections, o.concurrency)} + kFdReserve;
  uint64_t limit = 0;
  if (!EnsureOpenFiles(fds, limit)) {
    return fail("--connections/--concurrency need " + std::to_string(fds) +
                " open files; the limit is " + std::to_string(limit));
  }
  (void)std::signal(SIGPIPE, SIG_IGN);
  auto client = LoadClient::Create(std::move(o));
  if (!client) return fail(client.error().ToString());
  return (*client)->Run();
}

}  // namespace
}  // namespace sotto::load

int main(int argc, char** argv) {
  try {
    return sotto::load::Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "sotto-load: fatal: " << e.what() << "\n";
    return 1;
  }
}
