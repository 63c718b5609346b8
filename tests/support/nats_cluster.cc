#include "tests/support/nats_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace sotto::testing {
namespace {

// How often a wait re-checks (ports file, /jsz): short against every deadline.
constexpr auto kPollInterval = std::chrono::milliseconds(10);
// Attempts at a start whose reserved cluster port was taken in between.
constexpr int kStartAttempts = 3;
constexpr int kHttpTimeoutMs = 1'000;

long NowMs() {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count());
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A free TCP port on 127.0.0.1 (bound to port 0, then released).
uint16_t ReservePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// The port of the first URL in the ports file's array `key`, e.g. "nats": ["nats://h:P"].
uint16_t PortsFilePort(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\"");
  if (at == std::string::npos) return 0;
  const size_t url = json.find("://", at);
  if (url == std::string::npos) return 0;
  const size_t colon = json.find(':', url + 3);
  if (colon == std::string::npos) return 0;
  return static_cast<uint16_t>(std::strtoul(json.c_str() + colon + 1, nullptr, 10));
}

std::string HttpGet(uint16_t port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  timeval tv{kHttpTimeoutMs / 1000, (kHttpTimeoutMs % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n = 0;
      while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  const size_t body = out.find("\r\n\r\n");
  return body == std::string::npos ? std::string() : out.substr(body + 4);
}

// The string value of `"key": "..."` in `json`, or "".
std::string JsonString(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\"");
  if (at == std::string::npos) return {};
  const size_t open = json.find('"', json.find(':', at) + 1);
  const size_t close_quote = open == std::string::npos ? open : json.find('"', open + 1);
  if (close_quote == std::string::npos) return {};
  return json.substr(open + 1, close_quote - open - 1);
}

long JsonNumber(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\"");
  if (at == std::string::npos) return -1;
  return std::strtol(json.c_str() + json.find(':', at) + 1, nullptr, 10);
}

}  // namespace

NatsCluster::NatsCluster(const NatsClusterOptions& options) : options_(options) {
  std::string tmpl =
      (options.base_dir.empty() ? std::string("/tmp") : options.base_dir) + "/nats-cluster-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    Fail("cannot create the temp dir");
    return;
  }
  dir_ = tmpl;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    error_.clear();
    if (StartAll() && AwaitReady()) return;
    for (int i = 0; i < size(); ++i) Kill(i);
  }
}

NatsCluster::~NatsCluster() {
  for (int i = 0; i < size(); ++i) Kill(i);
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

void NatsCluster::Fail(const std::string& why) {
  if (error_.empty()) error_ = why;
}

bool NatsCluster::StartAll() {
  nodes_.assign(static_cast<size_t>(options_.nodes), Node{});
  for (int i = 0; i < size(); ++i) {
    Node& node = nodes_[static_cast<size_t>(i)];
    node.cluster_port = ReservePort();
    node.dir = dir_ + "/" + NodeName(i) + "-" + std::to_string(NowMs());
    if (node.cluster_port == 0) {
      Fail("no free port for the cluster routes");
      return false;
    }
  }
  for (int i = 0; i < size(); ++i) {
    if (!StartNode(i)) return false;
  }
  return true;
}

bool NatsCluster::StartNode(int index) {
  Node& node = nodes_.at(static_cast<size_t>(index));
  std::error_code ec;
  std::filesystem::create_directories(node.dir + "/ports", ec);
  for (const auto& entry : std::filesystem::directory_iterator(node.dir + "/ports", ec)) {
    std::filesystem::remove(entry.path(), ec);  // a ports file of an earlier run
  }
  std::string routes;
  for (int j = 0; j < size(); ++j) {
    if (j == index) continue;
    if (!routes.empty()) routes += ", ";
    routes +=
        "nats-route://127.0.0.1:" + std::to_string(nodes_[static_cast<size_t>(j)].cluster_port);
  }
  auto port_or_random = [](uint16_t port) {
    return port == 0 ? std::string("-1") : std::to_string(port);
  };
  const std::string conf = node.dir + "/nats.conf";
  std::ofstream(conf) << "server_name: " << NodeName(index) << "\n"
                      << "listen: 127.0.0.1:" << port_or_random(node.client_port) << "\n"
                      << "http: 127.0.0.1:" << port_or_random(node.http_port) << "\n"
                      << "ports_file_dir: \"" << node.dir << "/ports\"\n"
                      << "jetstream { store_dir: \"" << node.dir << "/js\"\n"
                      << "  max_memory_store: 268435456\n  max_file_store: 4294967296 }\n"
                      << "cluster { name: " << options_.cluster_name
                      << "\n  listen: 127.0.0.1:" << node.cluster_port << "\n"
                      << "  routes: [" << routes << "] }\n";
  const std::string log = node.dir + "/server.log";
  std::vector<std::string> args = {NATS_SERVER_PATH, "-c", conf};
  std::vector<char*> argv;  // built before fork: the child only calls async-signal-safe code
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage = options_.env;
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    Fail("cannot open the server log");
    return false;
  }
  const pid_t parent = getpid();
  const rlimit lim{options_.open_file_limit, options_.open_file_limit};
  node.pid = fork();
  if (node.pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);  // the test died before the prctl took effect
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    setrlimit(RLIMIT_NOFILE, &lim);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(log_fd);
  if (node.pid < 0) {
    Fail("fork failed");
    return false;
  }
  // The server writes its ports file once every listener is up.
  const long deadline = NowMs() + options_.timeout_ms;
  const std::string ports_file =
      node.dir + "/ports/nats-server_" + std::to_string(node.pid) + ".ports";
  while (true) {
    int status = 0;
    if (waitpid(node.pid, &status, WNOHANG) == node.pid) {
      node.pid = -1;
      Fail(NodeName(index) + " exited at start: " + LogTail(index));
      return false;
    }
    const std::string ports = ReadFile(ports_file);
    if (!ports.empty() && ports.back() == '}') {
      node.client_port = PortsFilePort(ports, "nats");
      node.http_port = PortsFilePort(ports, "monitoring");
      if (node.client_port != 0 && node.http_port != 0) return true;
    }
    if (NowMs() > deadline) {
      Fail(NodeName(index) + " wrote no ports file in time: " + LogTail(index));
      return false;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

bool NatsCluster::AwaitNodeReady(int index, long deadline_ms) {
  while (true) {
    const std::string jsz = Monitor(index, "/jsz");
    if (!JsonString(jsz, "leader").empty() && JsonNumber(jsz, "cluster_size") == size() &&
        Monitor(index, "/healthz").find("\"ok\"") != std::string::npos) {
      return true;
    }
    int status = 0;
    Node& node = nodes_.at(static_cast<size_t>(index));
    if (node.pid > 0 && waitpid(node.pid, &status, WNOHANG) == node.pid) {
      node.pid = -1;
      Fail(NodeName(index) + " died while joining: " + LogTail(index));
      return false;
    }
    if (NowMs() > deadline_ms) {
      Fail(NodeName(index) + " reported no JetStream meta leader in time: " + LogTail(index));
      return false;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

bool NatsCluster::AwaitReady() {
  const long deadline = NowMs() + options_.timeout_ms;
  for (int i = 0; i < size(); ++i) {
    if (running(i) && !AwaitNodeReady(i, deadline)) return false;
  }
  return true;
}

bool NatsCluster::Kill(int index) {
  Node& node = nodes_.at(static_cast<size_t>(index));
  if (node.pid <= 0) return false;
  kill(node.pid, SIGKILL);
  int status = 0;
  const pid_t waited = waitpid(node.pid, &status, 0);
  node.pid = -1;
  return waited > 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

bool NatsCluster::Restart(int index) {
  if (running(index)) return false;
  if (!StartNode(index)) return false;
  return AwaitNodeReady(index, NowMs() + options_.timeout_ms);
}

std::string NatsCluster::ClientUrl(int node) const {
  return "nats://127.0.0.1:" + std::to_string(nodes_.at(static_cast<size_t>(node)).client_port);
}

std::vector<std::string> NatsCluster::ClientUrls() const {
  std::vector<std::string> urls;
  for (int i = 0; i < size(); ++i) urls.push_back(ClientUrl(i));
  return urls;
}

std::string NatsCluster::Monitor(int node, const std::string& path) const {
  return HttpGet(nodes_.at(static_cast<size_t>(node)).http_port, path);
}

long NatsCluster::Jsz(int node, const std::string& key) const {
  return JsonNumber(Monitor(node, "/jsz"), key);
}

std::string NatsCluster::LogTail(int index) const {
  constexpr size_t kTailBytes = 600;
  const std::string log = ReadFile(nodes_.at(static_cast<size_t>(index)).dir + "/server.log");
  return log.size() > kTailBytes ? log.substr(log.size() - kTailBytes) : log;
}

}  // namespace sotto::testing
