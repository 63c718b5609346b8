// Starts a real sottod on 127.0.0.1 with free ports and a fresh data directory, waits
// (by reading its stdout, never by sleeping) until it listens, and stops it.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <map>
#include <optional>
#include <string>

#include "crypto/x25519.h"
#include "net/socket.h"

namespace sotto::testing {

struct SottodOptions {
  std::string config_toml;              // written to DIR/sottod.toml if not empty
  uint32_t loops = 2;
  std::optional<rlim_t> open_file_limit;  // soft and hard RLIMIT_NOFILE for the child
  // Restart() listens on the same TCP port again (clients keep their server address).
  bool keep_tcp_port = false;
  // Runs the media blob service on a free port (--media-listen 127.0.0.1:0); its other
  // [media] settings come from config_toml.
  bool media = false;
  // Every test device connects from 127.0.0.1, so by default the per-source and server-wide
  // registration and lookup limits and prekeys.new_account_bundle_rate are turned off
  // (rate 0) unless config_toml sets them; true keeps sottod's production defaults.
  bool production_source_limits = false;
  // The data directory to use (created if missing, e.g. on a small filesystem); empty =
  // a fresh one under /tmp. Removed by the destructor either way.
  std::string data_dir;
};

// `toml` with each of those limits that it does not set turned off.
std::string WithoutSourceLimits(const std::string& toml);

class SottodProcess {
 public:
  explicit SottodProcess(const SottodOptions& options = {});
  ~SottodProcess();
  SottodProcess(const SottodProcess&) = delete;
  SottodProcess& operator=(const SottodProcess&) = delete;

  bool running() const { return pid_ > 0; }
  net::SocketAddress tcp_address() const;
  uint16_t http_port() const { return http_port_; }
  uint16_t ws_port() const { return ws_port_; }
  uint16_t media_port() const { return media_port_; }  // 0 without options.media
  const crypto::X25519Public& server_key() const { return server_key_; }
  const std::string& data_dir() const { return data_dir_; }
  // GET /metrics; returns the value of one series (e.g.
  // sotto_handshakes_total{pattern="IK"}), or -1 if absent.
  long Metric(const std::string& series) const;
  // SIGTERM and wait; returns the exit status (-1 if it did not exit normally).
  int Terminate();
  // SIGKILL and wait: a crash, nothing flushed. True if sottod was running until this
  // SIGKILL ended it; false if it was not running or had already died of something else.
  bool Kill();
  // Starts sottod again on the same data directory (new free ports); false on failure.
  bool Restart();
  // GET `path` on the HTTP (metrics) port; the response's status code, or -1.
  int HttpStatus(const std::string& path) const;
  // Reads sottod's stdout (its log lines) until `needle` appears or about `timeout`
  // passes; returns whether it appeared. What was read is kept for later calls.
  bool AwaitOutput(const std::string& needle, int timeout_ms = 10'000);
  // The last verification code the log code sender wrote for `handle`, or "".
  std::string VerificationCode(const std::string& handle) const;

 private:
  void Start();

  SottodOptions options_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string output_;  // stdout read by AwaitOutput
  std::string data_dir_;
  uint16_t tcp_port_ = 0;
  uint16_t http_port_ = 0;
  uint16_t ws_port_ = 0;
  uint16_t media_port_ = 0;
  crypto::X25519Public server_key_{};
};

}  // namespace sotto::testing
