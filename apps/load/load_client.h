// The load client behind sotto-load: one net::EventLoop driving thousands of gateway
// connections (TCP, Noise Pipes, wire frames), in idle, ping, handshake, send-online or
// send-offline mode. The command line is in apps/sotto_load.cc. The code is split by
// concern: load_client.cc (connections, handshakes, registration, idle/ping/handshake),
// messaging.cc (the send-* modes, messaging.h), report.cc (the summaries), code_log.cc.
//
// Thread-safety: single-threaded; every object here is Loop-affine.
#pragma once

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
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

#include "apps/load/code_log.h"
#include "apps/load/connection.h"
#include "apps/load/messaging.h"
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
constexpr uint64_t kDrainMs = 3'000;            // ping mode: wait for outstanding responses
constexpr uint64_t kMessagingDrainMs = 15'000;  // send-*: responses and deliveries
constexpr size_t kEchoPayload = 16;             // send time (ns) and sequence number
constexpr size_t kMaxPendingBytes = size_t{256} * 1024;  // per connection; past it, skip sends
constexpr int kMaxReadsPerWakeup = 4;
constexpr uint64_t kMinSendsPerTick = 64;  // and 4 ms' worth of --rate
constexpr long kPaceIntervalUs = 100;      // ping mode: send what is due every 100 us
constexpr uint64_t kRequestCodeId = 1;     // request ids of the registration
constexpr uint64_t kRegisterId = 2;
constexpr uint64_t kCodePollMs = 5;  // how often the code log is read while codes are due
constexpr uint64_t kSettleMs = 500;  // send-offline: receivers' closes reach the server
constexpr uint64_t kQueueDrainTimeoutMs = 120'000;  // send-offline --drain
constexpr double kMaxDurationS = 3'600;
constexpr double kMaxRate = 10'000'000;
constexpr const char* kUserAgent = "sotto-load/0.1";

enum class Mode : uint8_t { kIdle, kPing, kHandshake, kSendOnline, kSendOffline };

inline bool IsMessaging(Mode m) { return m == Mode::kSendOnline || m == Mode::kSendOffline; }

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
  std::string codes_path;       // the server's DATA/verification-codes.log; needed to register
  size_t payload_bytes = 100;   // send-*: ciphertext size
  uint32_t ack_batch = 32;      // send-*: envelopes per DeliveryAck (or a read burst's)
  uint32_t max_in_flight = 64;  // send-*: unfinished messages per sender; past it, skip
  bool drain = false;           // send-offline: reconnect receivers and drain after
  int server_pid = 0;           // read this process's CPU time around the windows
};

inline uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Open-loop schedule: the planned send time (steady ns) of send `k` of a window that
// started at `start_ns` with `rate` sends per second.
inline uint64_t PlannedSendNs(uint64_t start_ns, uint64_t k, double rate) {
  return start_ns + static_cast<uint64_t>(static_cast<double>(k) * 1e9 / rate);
}

inline double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

// kSettle: send-offline's pause between the receivers' closes and the window. kDrain: the
// window is over, answers still come. kQueueDrain: send-offline --drain.
enum class Phase : uint8_t { kSetup, kSettle, kRun, kDrain, kQueueDrain, kDone };

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
  // The run's latency figures are valid: every planned send of the window was sent.
  bool LatencyValid() const;
  void StartAttempts();
  bool StartOne(std::optional<uint32_t> reconnect_pair);
  void OnConnected(Connection& c, uint32_t events);
  void ReadFrom(Connection& c);
  void ReadBurst(Connection& c);
  bool HandleMessage(Connection& c, ByteSpan message);
  bool HandleHandshake(Connection& c, ByteSpan message);
  bool WriteHandshake(Connection& c);
  bool FinishHandshake(Connection& c);
  bool HandleFrame(Connection& c, ByteSpan plaintext);
  bool HandleResponse(Connection& c, const wire::Response& response);
  bool HandleRegistration(Connection& c, const wire::Response& response);
  void PollCodes();
  void SendEcho(Connection& c, uint64_t planned_ns);
  bool SendFrame(Connection& c, const wire::Frame& frame);
  bool SendRaw(Connection& c, ByteSpan framed);
  void Flush(Connection& c);
  void SetWriteInterest(Connection& c, WantWrite want);
  void Close(Connection& c, EndCause cause);
  void ScanTimeouts();
  void SetupProgress();
  void EnterRun();
  void StartWindow();
  void EndWindow();
  void Settled();
  void Finish();
  // messaging.cc
  void PairUp();
  Connection* NextSender();
  void SendMessage(Connection& c, uint64_t planned_ns);
  void HandleSendResponse(Connection& c, const wire::Response& response);
  bool HandleEnvelope(Connection& c, const wire::Envelope& envelope);
  void OnQueueEmpty(Connection& c);
  void FlushAcks(Connection& c);
  void ForgetPeer(Connection& c);
  bool AnswersOutstanding() const;
  void EnterQueueDrain();
  void StartReconnects();
  void CheckQueueDrained();
  void ReportMessaging(std::ostream& human, std::ostream& json) const;
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

  // Registration.
  std::optional<CodeLog> codes_;
  uint64_t handle_prefix_ = 0;  // random per run
  uint64_t last_code_poll_ms_ = 0;

  // Messaging modes.
  std::vector<Pair> pairs_;
  size_t live_senders_ = 0;
  size_t next_reconnect_ = 0;
  size_t caught_up_ = 0;
  uint64_t outstanding_ = 0;  // sends not answered, all senders
  uint64_t message_seq_ = 0;
  MessagingCounters m_;
  MessagingLatency latency_;
  MessagingClock clock_;
  double queue_drain_client_cpu_start_ = 0;
  double queue_drain_server_cpu_start_ = -1;

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
  wire::Frame send_frame_;
  wire::Frame ack_frame_;
  std::string payload_;
  std::string message_id_;
};

}  // namespace sotto::load
