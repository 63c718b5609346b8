// The load client behind sotto-load: one net::EventLoop driving thousands of gateway
// connections (TCP, Noise Pipes, wire frames), in idle, ping or handshake mode. The
// command line is in apps/sotto_load.cc.
//
// Thread-safety: single-threaded; every object here is Loop-affine.
#pragma once

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>


#include "base/bytes.h"
#include "base/histogram.h"
#include "base/result.h"
#include "crypto/random.h"
#include "net/event_loop.h"
#include "net/socket.h"
#include "noise/cipher_state.h"
#include "noise/pipes.h"
#include "wire/wire.h"

namespace sotto::load {

// One process holds at most this many connections: the open-file cap is 20,000.
constexpr uint32_t kMaxConnections = 19'000;
constexpr uint32_t kFdReserve = 32;             // stdio, epoll, eventfd, signalfd, ...
constexpr uint32_t kAttemptTimeoutMs = 10'000;  // connect -> registered (or handshaken)
constexpr uint64_t kTimeoutScanMs = 250;
constexpr uint64_t kDrainMs = 3'000;  // ping mode: wait for outstanding responses
constexpr size_t kEchoPayload = 16;   // send time (ns) and sequence number
constexpr size_t kMaxPendingBytes = size_t{256} * 1024;  // per connection; past it, skip sends
constexpr int kMaxReadsPerWakeup = 4;
constexpr uint64_t kMinSendsPerTick = 64;  // and 4 ms' worth of --rate
constexpr long kPaceIntervalUs = 100;      // ping mode: send what is due every 100 us
constexpr uint64_t kRegisterId = 1;
constexpr double kMaxDurationS = 3'600;
constexpr double kMaxRate = 10'000'000;
constexpr const char* kUserAgent = "sotto-load/0.1";

enum class Mode : uint8_t { kIdle, kPing, kHandshake };

struct Options {
  net::SocketAddress server;
  std::optional<crypto::X25519Public> server_key;  // pinned: IK; absent: XX
  std::vector<net::SocketAddress> sources;         // empty: the kernel chooses
  uint32_t connections = 0;
  uint32_t concurrency = 256;
  Mode mode = Mode::kIdle;
  double rate = 1'000;
  double duration_s = 10;
  double hold_s = 600;
  double setup_timeout_s = 120;
  std::string json_path;
};

inline uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

inline double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

enum class ConnState : uint8_t { kConnecting, kHandshaking, kRegistering, kReady, kClosed };
// Why a connection ends: kError is counted by the state it was in.
enum class EndCause : uint8_t { kCompleted, kError, kTimeout, kShutdown };
enum class Phase : uint8_t { kSetup, kRun, kDrain, kDone };
enum class WantWrite : uint8_t { kNo, kYes };

class LoadClient;

// Bytes the socket did not take yet.
struct WriteQueue {
  Bytes data;
  size_t offset = 0;
  size_t size() const { return data.size() - offset; }
};

// Exists only from connect to the end of the handshake.
struct Handshake {
  noise::NoisePipe pipe;
  uint64_t started_ns;
};

// One gateway connection, kept small: an idle one holds its two ciphers and nothing else.
struct Connection final : net::IoHandler {
  Connection(LoadClient& owner_in, int fd_in) : owner(&owner_in), fd(fd_in) {}
  void OnIo(uint32_t events) override;

  LoadClient* owner;
  int fd;
  ConnState state = ConnState::kConnecting;
  WantWrite want_write = WantWrite::kNo;
  uint32_t started_ms = 0;  // loop clock relative to the client's start
  uint32_t slot = 0;        // index in LoadClient::live_
  Bytes partial;            // an incomplete incoming message only
  std::unique_ptr<WriteQueue> pending;
  std::unique_ptr<Handshake> handshake;
  noise::CipherState send;
  noise::CipherState receive;
};

// A registered fd that is not a connection (signalfd, stdin).
class FdWatcher final : public net::IoHandler {
 public:
  explicit FdWatcher(std::function<void()> on_ready) : on_ready_(std::move(on_ready)) {}
  void OnIo(uint32_t /*events*/) override { on_ready_(); }

 private:
  std::function<void()> on_ready_;
};

struct Counters {
  uint64_t attempts = 0;
  uint64_t connect_failures = 0;    // socket, bind or connect failed
  uint64_t handshake_failures = 0;  // closed or refused during the handshake
  uint64_t register_failures = 0;
  uint64_t timeouts = 0;         // an attempt exceeded kAttemptTimeoutMs
  uint64_t dropped = 0;          // a ready connection ended by the server or I/O
  uint64_t close_frames = 0;     // Close frames received
  uint64_t protocol_errors = 0;  // bad decrypt, frame or message from the server
  uint64_t key_mismatches = 0;   // the server proved another key than --server-key
  uint64_t pings_answered = 0;
  uint64_t handshakes = 0;
  uint64_t handshakes_ik = 0;
  uint64_t handshakes_xx = 0;
  uint64_t handshakes_fallback = 0;
  uint64_t aborted_at_end = 0;  // handshake mode: attempts cut off by --duration
  uint64_t requests_sent = 0;
  uint64_t requests_in_window = 0;
  uint64_t responses_ok = 0;
  uint64_t responses_in_window = 0;
  uint64_t response_errors = 0;  // non-OK status or a wrong echo
  uint64_t sends_skipped = 0;    // the connection's write queue was full
  uint64_t behind = 0;           // due in the window but not sent: the client lagged
  uint64_t failures() const {
    return connect_failures + handshake_failures + register_failures + timeouts;
  }
};

class LoadClient {
 public:
  static Result<std::unique_ptr<LoadClient>> Create(Options options);
  LoadClient(const LoadClient&) = delete;
  LoadClient& operator=(const LoadClient&) = delete;
  ~LoadClient();

  // Runs every phase to the end; returns the process exit code.
  int Run();
  void OnConnectionIo(Connection& c, uint32_t events);

 private:
  LoadClient(Options options, std::unique_ptr<net::EventLoop> loop);

  void OnSignal();
  void OnStdin();
  void Tick();
  void SendDue(uint64_t now);
  void StartAttempts();
  bool StartOne();
  void OnConnected(Connection& c, uint32_t events);
  void ReadFrom(Connection& c);
  bool HandleMessage(Connection& c, ByteSpan message);
  bool HandleHandshake(Connection& c, ByteSpan message);
  bool WriteHandshake(Connection& c);
  bool FinishHandshake(Connection& c);
  bool HandleFrame(Connection& c, ByteSpan plaintext);
  bool HandleResponse(Connection& c, const wire::Response& response);
  void SendEcho(Connection& c);
  bool SendFrame(Connection& c, const wire::Frame& frame);
  bool SendRaw(Connection& c, ByteSpan framed);
  void Flush(Connection& c);
  void SetWriteInterest(Connection& c, WantWrite want);
  void Close(Connection& c, EndCause cause);
  void ScanTimeouts();
  void SetupProgress();
  void EnterRun();
  void EndWindow();
  void Finish();
  uint32_t RelativeMs() const { return static_cast<uint32_t>(loop_->NowMs() - base_ms_); }
  void Report(std::ostream& human, std::ostream& json) const;

  Options options_;
  std::unique_ptr<net::EventLoop> loop_;
  Phase phase_ = Phase::kSetup;
  uint64_t base_ms_;
  uint64_t last_scan_ms_ = 0;
  std::vector<std::unique_ptr<Connection>> live_;
  std::vector<std::unique_ptr<Connection>> graveyard_;  // closed; deleted on a later turn
  bool reap_posted_ = false;
  uint32_t in_flight_ = 0;  // connecting, handshaking or registering
  uint32_t ready_ = 0;
  uint32_t ready_at_setup_end_ = 0;
  size_t next_source_ = 0;
  size_t round_robin_ = 0;
  uint64_t seq_ = kRegisterId;
  Counters n_;
  Histogram latency_ns_;    // ping: send -> response
  Histogram handshake_ns_;  // connect started -> handshake done (client side)

  int signal_fd_ = -1;
  FdWatcher signal_watcher_;
  FdWatcher stdin_watcher_;
  // Ping mode paces sends with a kPaceIntervalUs timerfd: the loop's 1 ms timers would
  // send in 1 ms bursts and measure the burst, not the server.
  int pace_fd_ = -1;
  FdWatcher pace_watcher_;
  bool stdin_watched_ = false;
  bool stop_requested_ = false;  // signal, or stdin EOF in idle mode
  bool setup_complete_ = false;

  // Phase clocks (steady ns) and CPU.
  uint64_t setup_start_ns_ = 0;
  uint64_t setup_end_ns_ = 0;
  uint64_t run_start_ns_ = 0;
  uint64_t run_end_ns_ = 0;     // planned end of the window (ping, handshake) or hold
  uint64_t window_end_ns_ = 0;  // when the window actually closed
  uint64_t drain_end_ns_ = 0;
  uint64_t max_send_lag_ns_ = 0;
  double run_cpu_start_ = 0;
  double run_cpu_s_ = 0;

  // Per-process scratch.
  std::string hello_;
  Bytes plain_;
  Bytes framed_;
  Bytes frame_bytes_;
  wire::Frame frame_in_;
  wire::Frame frame_out_;
  wire::Frame echo_frame_;
};

}  // namespace sotto::load
