// One sotto-load connection and the small types around it: its write queue, its
// handshake, the watchers of other fds, and the counters of connection outcomes.
//
// Thread-safety: Loop-affine (LoadClient's loop).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "apps/load/messaging.h"
#include "base/bytes.h"
#include "net/event_loop.h"
#include "noise/cipher_state.h"
#include "noise/pipes.h"

namespace sotto::load {

enum class ConnState : uint8_t { kConnecting, kHandshaking, kRegistering, kReady, kClosed };
// Why a connection ends: kError is counted by the state it was in.
enum class EndCause : uint8_t { kCompleted, kError, kTimeout, kShutdown };
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
  uint32_t index = 0;       // attempt number; names the handle it registers
  Bytes partial;            // an incomplete incoming message only
  std::unique_ptr<WriteQueue> pending;
  std::unique_ptr<Handshake> handshake;
  noise::CipherState send;
  noise::CipherState receive;
  std::unique_ptr<Peer> peer;  // messaging modes only
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
  uint64_t aborted_at_end = 0;  // attempts cut off by the end of a phase
  uint64_t code_refusals = 0;   // request_code answered with an error (rate limit, ...)
  uint64_t requests_sent = 0;
  uint64_t requests_in_window = 0;
  uint64_t responses_ok = 0;
  uint64_t responses_in_window = 0;
  uint64_t response_errors = 0;  // non-OK status or a wrong echo
  uint64_t sends_skipped = 0;    // the connection's write queue was full
  uint64_t behind = 0;           // due in the window but not sent: the client lagged
  uint64_t dropped_no_sender = 0;  // due, but every sender connection had closed
  uint64_t failures() const {
    return connect_failures + handshake_failures + register_failures + timeouts;
  }
};

}  // namespace sotto::load
