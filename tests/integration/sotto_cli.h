// Helpers for the tests that drive the real `sotto` binary (cli_e2e_test, daemon_test):
// one `sotto` process per command, a `sotto daemon` process, and JSON-RPC clients on
// the daemon's Unix socket. Every wait is on a process exit, an output line or a socket
// read (with a 20 s safety limit), never a sleep. sotto_cli.cc needs SOTTO_PATH (the
// binary) defined by the build.
//
// Thread-safety: externally synchronized (each test uses them from its own thread).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/sottod_process.h"

namespace sotto::testing {

struct ProcessRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Reads `fd` to end of file.
std::string ReadAll(int fd);
// Starts `sotto ARGS...` with stdin /dev/null, stdout to `out_fd` (/dev/null if -1) and
// stderr to `err_fd`; returns the pid.
pid_t SpawnSotto(const std::vector<std::string>& args, int out_fd, int err_fd);
// The exit status of `pid` once it ends (-1 if it did not exit normally).
int WaitExit(pid_t pid);
// Runs `sotto ARGS...` to completion, capturing stdout and stderr.
ProcessRun Sotto(const std::vector<std::string>& args);
// The lines of `text` that parse as JSON.
std::vector<nlohmann::json> JsonLines(const std::string& text);
// The objects among `lines` whose "type" is `type`.
std::vector<nlohmann::json> OfType(const std::vector<nlohmann::json>& lines,
                                   const std::string& type);
// Exit code, stdout and stderr, for failure messages.
std::string Describe(const ProcessRun& r);

inline constexpr const char* kAlice = "+15551110001";
inline constexpr const char* kBob = "+15551110002";

// A real sottod and a temporary directory for the users' homes.
class CliTest : public ::testing::Test {
 protected:
  CliTest() {
    char tmpl[] = "/tmp/sotto-cli-XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  ~CliTest() override { std::filesystem::remove_all(root_); }

  std::string Home(const std::string& name) { return root_ + "/" + name; }
  std::string Server() { return "127.0.0.1:" + std::to_string(sottod_.tcp_address().port()); }
  std::string ServerKey() {
    static const char* kDigits = "0123456789abcdef";
    std::string hex;
    for (uint8_t b : sottod_.server_key()) {
      hex += kDigits[b >> 4];
      hex += kDigits[b & 15];
    }
    return hex;
  }
  void Register(const std::string& home, const std::string& number) {
    ProcessRun r = Sotto({"--home", home, "register", "--server", Server(), "--server-key",
                          ServerKey(), "--number", number});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    const std::string code = sottod_.VerificationCode(number);
    ASSERT_EQ(code.size(), 6u);
    r = Sotto({"--home", home, "verify", code});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
  }
  std::vector<nlohmann::json> Receive(const std::string& home) {
    ProcessRun r = Sotto({"--home", home, "receive", "--timeout", "0", "--json"});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return JsonLines(r.out);
  }

  static SottodOptions WithMedia() {
    SottodOptions options;
    options.media = true;  // for send-file
    return options;
  }

  std::string root_;
  SottodProcess sottod_{WithMedia()};
};

// One JSON-RPC client on a daemon's socket.
class RpcClient {
 public:
  explicit RpcClient(const std::string& socket_path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~RpcClient() {
    if (fd_ >= 0) close(fd_);
  }
  RpcClient(const RpcClient&) = delete;
  RpcClient& operator=(const RpcClient&) = delete;

  bool connected() const { return fd_ >= 0; }

  // Sends raw bytes; false if the daemon closed the connection meanwhile.
  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  void Write(const nlohmann::json& request) {
    ASSERT_TRUE(Send(request.dump() + "\n")) << "the daemon closed the connection";
  }
  // The next line from the daemon (response or notification), waiting up to 20 s; null
  // on end of stream, error or timeout.
  nlohmann::json Next() {
    for (;;) {
      const size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        nlohmann::json j = nlohmann::json::parse(buffer_.substr(0, nl), nullptr, false);
        buffer_.erase(0, nl + 1);
        return j;
      }
      if (!Fill()) return nlohmann::json();
    }
  }
  // The next response (a line with "result" or "error"); notifications meanwhile are kept.
  nlohmann::json NextResponse() {
    for (;;) {
      nlohmann::json j = Next();
      if (j.is_null() || !j.contains("method")) return j;
      notifications_.push_back(std::move(j));
    }
  }
  // True once the daemon closes the connection without sending anything more (a reset
  // counts as closed: the daemon dropped unread input).
  bool AwaitClose() {
    while (Fill()) {
    }
    return closed_ && buffer_.empty();
  }
  // Sends a request and returns its response; notifications meanwhile are kept.
  nlohmann::json Call(const std::string& method, const nlohmann::json& params) {
    const int id = ++next_id_;
    Write({{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}});
    for (;;) {
      nlohmann::json j = Next();
      if (j.is_null()) return j;
      if (j.contains("id") && j["id"] == id) return j;
      notifications_.push_back(std::move(j));
    }
  }
  // The next notification with `method`, waiting for it if needed.
  nlohmann::json Await(const std::string& method) {
    for (;;) {
      for (auto it = notifications_.begin(); it != notifications_.end(); ++it) {
        if (it->value("method", "") == method) {
          nlohmann::json j = *it;
          notifications_.erase(it);
          return j;
        }
      }
      nlohmann::json j = Next();
      if (j.is_null()) return j;
      notifications_.push_back(std::move(j));
    }
  }

 private:
  // Reads what is there (waiting up to 20 s); false on end of stream, error or timeout.
  bool Fill() {
    if (fd_ < 0 || closed_) return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 20'000) <= 0) return false;
    char buf[4096];
    const ssize_t n = read(fd_, buf, sizeof buf);
    if (n <= 0) {
      closed_ = n == 0 || errno == ECONNRESET;
      return false;
    }
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool closed_ = false;
  int next_id_ = 0;
  std::string buffer_;
  std::vector<nlohmann::json> notifications_;
};

// A `sotto daemon` process and one JSON-RPC client on its socket.
class Daemon {
 public:
  // Starts the daemon and waits for its "daemon listening on" line (stderr) or its exit.
  Daemon(const std::string& home, const std::string& socket_path) {
    int err[2];
    if (pipe2(err, O_CLOEXEC) != 0) return;
    pid_ = SpawnSotto({"--home", home, "daemon", "--socket", socket_path}, -1, err[1]);
    close(err[1]);
    stderr_fd_ = err[0];
    char c;
    while (!listening() && read(stderr_fd_, &c, 1) == 1) stderr_ += c;
    if (!listening()) return;
    client_ = std::make_unique<RpcClient>(socket_path);
    if (!client_->connected()) ADD_FAILURE() << "cannot connect to the daemon socket";
  }
  ~Daemon() { Stop(SIGTERM); }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // "sotto: daemon listening on PATH"; not "another daemon is listening on PATH".
  bool listening() const { return stderr_.find("daemon listening on") != std::string::npos; }
  // What the daemon wrote to stderr: up to "listening", or everything once it exited.
  const std::string& stderr_text() const { return stderr_; }

  // Signals the daemon (if still running), waits for its exit and returns the status.
  int Stop(int signal_number) {
    client_.reset();
    if (pid_ <= 0) return exit_code_;
    kill(pid_, signal_number);
    return Wait();
  }
  // Waits for the daemon to exit by itself; returns its exit status.
  int Wait() {
    if (pid_ <= 0) return exit_code_;
    stderr_ += ReadAll(stderr_fd_);
    close(stderr_fd_);
    stderr_fd_ = -1;
    exit_code_ = WaitExit(pid_);
    pid_ = -1;
    return exit_code_;
  }

  // The client opened at start; requires listening().
  RpcClient& client() { return *client_; }
  nlohmann::json Call(const std::string& method, const nlohmann::json& params) {
    if (!client_) return nlohmann::json();
    return client_->Call(method, params);
  }
  nlohmann::json Await(const std::string& method) {
    if (!client_) return nlohmann::json();
    return client_->Await(method);
  }

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  int stderr_fd_ = -1;
  std::string stderr_;
  std::unique_ptr<RpcClient> client_;
};

}  // namespace sotto::testing
