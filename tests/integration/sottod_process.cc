#include "tests/integration/sottod_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "server/server_key.h"

namespace sotto::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

uint16_t JsonPort(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\"");
  if (at == std::string::npos) return 0;
  return static_cast<uint16_t>(std::strtoul(json.c_str() + json.find(':', at) + 1, nullptr, 10));
}

}  // namespace

SottodProcess::SottodProcess(const SottodOptions& options) : options_(options) {
  if (!options.data_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.data_dir, ec);
    data_dir_ = options.data_dir;
  } else {
    char tmpl[] = "/tmp/sottod-test-XXXXXX";
    data_dir_ = mkdtemp(tmpl);
  }
  Start();
}

bool SottodProcess::Restart() {
  if (pid_ > 0) return false;
  if (stdout_fd_ >= 0) close(stdout_fd_);
  stdout_fd_ = -1;
  Start();
  return pid_ > 0;
}

bool SottodProcess::Kill() {
  if (pid_ <= 0) return false;
  kill(pid_, SIGKILL);
  int status = 0;
  const pid_t waited = waitpid(pid_, &status, 0);
  pid_ = -1;
  return waited > 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

std::string SottodProcess::VerificationCode(const std::string& handle) const {
  std::ifstream in(data_dir_ + "/verification-codes.log");
  std::string line;
  std::string code;
  while (std::getline(in, line)) {
    if (line.size() > handle.size() && line.compare(0, handle.size(), handle) == 0 &&
        line[handle.size()] == ' ') {
      code = line.substr(handle.size() + 1);
    }
  }
  return code;
}

std::string WithoutSourceLimits(const std::string& toml) {
  struct Key {
    const char* table;
    const char* key;
  };
  static constexpr Key kOff[] = {
      {"registration", "ip_code_rate_per_s"},  {"registration", "global_code_rate_per_s"},
      {"registration", "ip_guess_rate_per_s"}, {"registration", "global_guess_rate_per_s"},
      {"lookups", "account_rate_per_s"},       {"lookups", "ip_rate_per_s"},
      {"lookups", "global_rate_per_s"},        {"prekeys", "new_account_bundle_rate_per_s"},
  };
  std::string out = toml;
  auto line_starting = [&out](const std::string& text) {
    for (size_t at = out.find(text); at != std::string::npos; at = out.find(text, at + 1)) {
      if (at == 0 || out[at - 1] == '\n') return at;
    }
    return std::string::npos;
  };
  for (const Key& k : kOff) {
    const std::string key = k.key;
    if (line_starting(key + " ") != std::string::npos ||
        line_starting(key + "=") != std::string::npos) {
      continue;  // the test sets it
    }
    const std::string header = "[" + std::string(k.table) + "]\n";
    const size_t table = line_starting(header);
    if (table != std::string::npos) {
      out.insert(table + header.size(), key + " = 0\n");
    } else {
      if (!out.empty() && out.back() != '\n') out += '\n';
      out += header + key + " = 0\n";
    }
  }
  return out;
}

void SottodProcess::Start() {
  const SottodOptions& options = options_;
  const std::string listen =
      options.keep_tcp_port && tcp_port_ != 0 ? "127.0.0.1:" + std::to_string(tcp_port_) : "127.0.0.1:0";
  std::vector<std::string> args = {SOTTOD_PATH, "--data", data_dir_, "--listen", listen,
                                   "--ws-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--loops",
                                   std::to_string(options.loops), "--log-level", "warn"};
  if (options.media) {
    args.push_back("--media-listen");
    args.push_back("127.0.0.1:0");
  }
  const std::string config_toml = options.production_source_limits
                                      ? options.config_toml
                                      : WithoutSourceLimits(options.config_toml);
  if (!config_toml.empty()) {
    const std::string path = data_dir_ + "/sottod.toml";
    if (!std::filesystem::exists(path)) std::ofstream(path) << config_toml;
    args.push_back("--config");
    args.push_back(path);
  }
  std::vector<char*> argv;  // built before fork: the child only calls async-signal-safe code
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(pipe_fds[1], STDOUT_FILENO);
    if (options.open_file_limit) {
      rlimit lim{*options.open_file_limit, *options.open_file_limit};
      setrlimit(RLIMIT_NOFILE, &lim);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  stdout_fd_ = pipe_fds[0];
  // sottod prints its "data in" line once everything listens and ports.json is written.
  std::string out;
  char buf[512];
  while (out.find("data in") == std::string::npos) {
    const ssize_t n = read(stdout_fd_, buf, sizeof buf);
    if (n <= 0) {
      ADD_FAILURE() << "sottod exited before listening: " << out;
      pid_ = -1;
      return;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  const std::string ports = ReadFile(data_dir_ + "/ports.json");
  tcp_port_ = JsonPort(ports, "listen");
  http_port_ = JsonPort(ports, "http_listen");
  ws_port_ = JsonPort(ports, "ws_listen");
  media_port_ = options_.media ? JsonPort(ports, "media_listen") : 0;
  auto key = server::ParseServerKeyText(ReadFile(data_dir_ + "/server.pub"));
  EXPECT_TRUE(key);
  if (key) server_key_ = *key;
}

SottodProcess::~SottodProcess() {
  if (pid_ > 0) Terminate();
  if (stdout_fd_ >= 0) close(stdout_fd_);
  std::error_code ec;
  std::filesystem::remove_all(data_dir_, ec);
}

net::SocketAddress SottodProcess::tcp_address() const {
  return *net::ParseHostPort("127.0.0.1:" + std::to_string(tcp_port_));
}

int SottodProcess::Terminate() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

long SottodProcess::Metric(const std::string& series) const {
  auto fd = net::ConnectBlocking(*net::ParseHostPort("127.0.0.1:" + std::to_string(http_port_)));
  if (!fd) return -1;
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  (void)!write(*fd, req.data(), req.size());
  std::string body;
  char buf[4096];
  for (ssize_t n; (n = read(*fd, buf, sizeof buf)) > 0;) body.append(buf, static_cast<size_t>(n));
  close(*fd);
  const size_t at = body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::strtol(body.c_str() + at + series.size() + 2, nullptr, 10);
}

int SottodProcess::HttpStatus(const std::string& path) const {
  auto fd = net::ConnectBlocking(*net::ParseHostPort("127.0.0.1:" + std::to_string(http_port_)));
  if (!fd) return -1;
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
  (void)!write(*fd, req.data(), req.size());
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = read(*fd, buf, sizeof buf)) > 0;) response.append(buf, static_cast<size_t>(n));
  close(*fd);
  // "HTTP/1.1 200 OK"
  const size_t space = response.find(' ');
  if (response.rfind("HTTP/", 0) != 0 || space == std::string::npos) return -1;
  return std::atoi(response.c_str() + space + 1);
}

bool SottodProcess::AwaitOutput(const std::string& needle, int timeout_ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  while (output_.find(needle) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0 || stdout_fd_ < 0) return false;
    pollfd p{stdout_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = read(stdout_fd_, buf, sizeof buf);
    if (n <= 0) return false;
    output_.append(buf, static_cast<size_t>(n));
  }
  return true;
}

}  // namespace sotto::testing
