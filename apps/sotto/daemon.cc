#include "apps/sotto/daemon.h"

#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "apps/sotto/json_rpc.h"
#include "apps/sotto/output.h"
#include "apps/sotto/rpc_methods.h"
#include "client/client.h"

namespace sotto::cli {
namespace {

using std::chrono::milliseconds;

constexpr size_t kReadChunk = size_t{64} * 1024;
constexpr int kListenBacklog = 16;
// poll() timeout when the Client has no timer at all.
constexpr milliseconds kIdleWakeup{60'000};

std::string ErrnoText(int error) {
  return std::error_code(error, std::generic_category()).message();
}

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) close(fd_);
  }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

enum class ConnState : uint8_t {
  kOpen,     // reading requests
  kClosing,  // no more reading; closed once the output is written
  kDead,     // to be removed (error, or dropped for not reading)
};

struct Connection {
  UniqueFd fd;
  LineFramer framer;
  std::string out;
  ConnState state = ConnState::kOpen;
};

bool FillAddress(const std::filesystem::path& path, sockaddr_un& address) {
  const std::string text = path.string();
  if (text.empty() || text.size() >= sizeof(address.sun_path)) return false;
  address = {};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, text.c_str(), text.size() + 1);
  return true;
}

// Whether a daemon answers on the socket at `address`.
bool SomeoneListens(const sockaddr_un& address) {
  UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (probe.get() < 0) return false;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API.
  return connect(probe.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
}

class Daemon {
 public:
  Daemon(client::Client& client, std::filesystem::path socket_path)
      : client_(client), methods_(client), socket_path_(std::move(socket_path)) {}

  ExitCode Listen();
  ExitCode Run();
  void Shutdown();

 private:
  void Broadcast(const std::string& line);
  void Queue(Connection& connection, const std::string& line);
  void Accept();
  void Read(Connection& connection);
  void Write(Connection& connection);
  void HandleLine(Connection& connection, std::string_view line);
  void Reap();

  client::Client& client_;
  RpcMethods methods_;
  std::filesystem::path socket_path_;
  UniqueFd listen_fd_;
  UniqueFd signal_fd_;
  bool created_socket_ = false;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::deque<std::string> held_;  // notifications while no client is connected
};

ExitCode Daemon::Listen() {
  sockaddr_un address{};
  if (!FillAddress(socket_path_, address)) {
    std::cerr << "sotto: daemon: the socket path is empty or too long (at most "
              << sizeof(address.sun_path) - 1 << " bytes)\n";
    return ExitCode::kUsage;
  }
  struct stat existing {};
  if (lstat(socket_path_.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode)) {
      std::cerr << "sotto: daemon: " << socket_path_.string()
                << " exists and is not a socket; not touching it\n";
      return ExitCode::kError;
    }
    if (SomeoneListens(address)) {
      std::cerr << "sotto: daemon: another daemon is listening on " << socket_path_.string()
                << "\n";
      return ExitCode::kError;
    }
    unlink(socket_path_.c_str());  // stale: its daemon is gone
  }
  listen_fd_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (listen_fd_.get() < 0) {
    std::cerr << "sotto: daemon: socket: " << ErrnoText(errno) << "\n";
    return ExitCode::kError;
  }
  // The umask makes bind() create the file as 0600 already: no window where another
  // user could connect before a chmod.
  const mode_t old_mask = umask(0177);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API.
  const int bound =
      bind(listen_fd_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const int bind_errno = errno;
  umask(old_mask);
  if (bound != 0) {
    std::cerr << "sotto: daemon: bind " << socket_path_.string() << ": " << ErrnoText(bind_errno)
              << "\n";
    return ExitCode::kError;
  }
  created_socket_ = true;
  if (listen(listen_fd_.get(), kListenBacklog) != 0) {
    std::cerr << "sotto: daemon: listen: " << ErrnoText(errno) << "\n";
    return ExitCode::kError;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  // The daemon is single-threaded: the process mask is this thread's.
  sigprocmask(SIG_BLOCK, &signals, nullptr);  // NOLINT(concurrency-mt-unsafe)
  (void)std::signal(SIGPIPE, SIG_IGN);
  signal_fd_ = UniqueFd(signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (signal_fd_.get() < 0) {
    std::cerr << "sotto: daemon: signalfd: " << ErrnoText(errno) << "\n";
    return ExitCode::kError;
  }
  return ExitCode::kOk;
}

void Daemon::Shutdown() {
  // The Client outlives this object and may still report events (the disconnect).
  client_.SetEventSink([](const client::Event& /*event*/) {});
  connections_.clear();
  listen_fd_ = UniqueFd();
  if (created_socket_) unlink(socket_path_.c_str());
  client_.Disconnect();
}

void Daemon::Queue(Connection& connection, const std::string& line) {
  if (connection.state == ConnState::kDead) return;
  if (connection.out.size() + line.size() > kMaxRpcPendingBytes) {
    std::cerr << "sotto: daemon: dropping a socket client that does not read its output\n";
    connection.state = ConnState::kDead;
    return;
  }
  connection.out += line;
}

void Daemon::Broadcast(const std::string& line) {
  bool delivered = false;
  for (auto& connection : connections_) {
    if (connection->state != ConnState::kOpen) continue;
    Queue(*connection, line);
    delivered = true;
  }
  if (delivered) return;
  // Nobody listens yet (e.g. the queue drained right after start): keep it for the first
  // client rather than lose the event.
  if (held_.size() >= kMaxHeldNotifications) held_.pop_front();
  held_.push_back(line);
}

void Daemon::Accept() {
  for (;;) {
    UniqueFd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (fd.get() < 0) return;  // EAGAIN, or a connection that went away meanwhile
    if (connections_.size() >= kMaxRpcClients) {
      // Best effort: tell it why before closing; it may not even read.
      const std::string line = ErrorLine(
          nullptr, MakeAppError(ExitCode::kError, "too many clients (at most " +
                                                      std::to_string(kMaxRpcClients) + ")"));
      const ssize_t sent = send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      static_cast<void>(sent);
      continue;
    }
    auto connection = std::make_unique<Connection>();
    connection->fd = std::move(fd);
    for (const std::string& line : held_) Queue(*connection, line);
    held_.clear();
    connections_.push_back(std::move(connection));
  }
}

void Daemon::Read(Connection& connection) {
  char buffer[kReadChunk];
  const ssize_t n = recv(connection.fd.get(), buffer, sizeof buffer, 0);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      connection.state = ConnState::kDead;
    return;
  }
  if (n == 0) {
    // The client half-closed: answer what it sent, then close.
    connection.state = ConnState::kClosing;
    return;
  }
  std::vector<std::string> lines;
  const LineFramer::Outcome outcome =
      connection.framer.Feed(std::string_view(buffer, static_cast<size_t>(n)), lines);
  for (const std::string& line : lines) {
    if (connection.state != ConnState::kOpen) break;
    HandleLine(connection, line);
  }
  if (outcome == LineFramer::Outcome::kLineTooLong && connection.state == ConnState::kOpen) {
    Queue(connection,
          ErrorLine(nullptr, MakeRpcError(RpcCode::kInvalidRequest,
                                          "request line longer than " +
                                              std::to_string(kMaxRpcLineBytes) + " bytes")));
    if (connection.state != ConnState::kDead) connection.state = ConnState::kClosing;
  }
}

void Daemon::HandleLine(Connection& connection, std::string_view line) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;
  auto request = ParseRequest(line);
  if (!request) {
    Queue(connection, ErrorLine(request.error().id, request.error().error));
    return;
  }
  auto call = ParseCall(*request);
  RpcResult<nlohmann::json> result =
      call ? methods_.Call(*call) : RpcResult<nlohmann::json>(tl::unexpected(call.error()));
  if (!request->id) return;  // a notification: no response, even for errors
  Queue(connection,
        result ? ResultLine(*request->id, *result) : ErrorLine(*request->id, result.error()));
}

void Daemon::Write(Connection& connection) {
  while (!connection.out.empty()) {
    const ssize_t n = send(connection.fd.get(), connection.out.data(), connection.out.size(),
                           MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        connection.state = ConnState::kDead;
      }
      return;
    }
    connection.out.erase(0, static_cast<size_t>(n));
  }
}

void Daemon::Reap() {
  std::erase_if(connections_, [](const std::unique_ptr<Connection>& c) {
    return c->state == ConnState::kDead || (c->state == ConnState::kClosing && c->out.empty());
  });
}

ExitCode Daemon::Run() {
  client_.SetEventSink([this](const client::Event& event) {
    Broadcast(NotificationLine(EventType(event), EventJson(event)));
  });
  if (auto connected = client_.Connect();
      !connected && ExitCodeFor(connected.error()) != ExitCode::kOffline) {
    std::cerr << "sotto: daemon: " << UserMessage(connected.error()) << "\n";
    return ExitCodeFor(connected.error());
  }
  std::cerr << "sotto: daemon listening on " << socket_path_.string() << "\n";
  std::vector<pollfd> fds;
  std::vector<Connection*> polled;
  for (;;) {
    const milliseconds timer = std::clamp(client_.NextTimer(), milliseconds(0), kIdleWakeup);
    const auto due = std::chrono::steady_clock::now() + timer;
    fds.clear();
    polled.clear();
    fds.push_back({signal_fd_.get(), POLLIN, 0});
    fds.push_back({listen_fd_.get(), POLLIN, 0});
    fds.push_back({client_.fd(), POLLIN, 0});  // poll() skips a negative fd
    for (auto& connection : connections_) {
      short events = connection->state == ConnState::kOpen ? POLLIN : 0;
      if (!connection->out.empty()) events = static_cast<short>(events | POLLOUT);
      fds.push_back({connection->fd.get(), events, 0});
      polled.push_back(connection.get());
    }
    const int ready = poll(fds.data(), fds.size(), static_cast<int>(timer.count()));
    if (ready < 0 && errno != EINTR) {
      std::cerr << "sotto: daemon: poll: " << ErrnoText(errno) << "\n";
      return ExitCode::kError;
    }
    if (ready > 0 && (fds[0].revents & POLLIN) != 0) {
      signalfd_siginfo info{};
      const ssize_t got = read(signal_fd_.get(), &info, sizeof info);
      static_cast<void>(got);
      std::cerr << "sotto: daemon stopping\n";
      return ExitCode::kOk;
    }
    const bool client_ready = ready > 0 && fds[2].revents != 0;
    if (client_ready || std::chrono::steady_clock::now() >= due) {
      if (auto s = client_.Poll(milliseconds(0)); !s) {
        std::cerr << "sotto: daemon: " << UserMessage(s.error()) << "\n";
        return ExitCodeFor(s.error());
      }
    }
    if (ready > 0) {
      for (size_t i = 0; i < polled.size(); ++i) {
        Connection& connection = *polled[i];
        const short revents = fds[i + 3].revents;
        if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0 && connection.state == ConnState::kOpen) {
          Read(connection);
        } else if ((revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) {
          connection.state = ConnState::kDead;
        }
        if (connection.state != ConnState::kDead && !connection.out.empty()) Write(connection);
      }
      if ((fds[1].revents & POLLIN) != 0) {
        Reap();  // clients that closed this turn free their places before counting
        Accept();
      }
    }
    Reap();
  }
}

}  // namespace

ExitCode RunDaemon(const GlobalOptions& global, const DaemonArgs& args) {
  client::ClientConfig config;
  config.home = global.home;
  auto client = client::Client::Open(std::move(config));
  if (!client) {
    std::cerr << "sotto: daemon: " << UserMessage(client.error()) << "\n";
    return ExitCodeFor(client.error());
  }
  Daemon daemon(**client, args.socket);
  ExitCode code = daemon.Listen();
  if (code == ExitCode::kOk) code = daemon.Run();
  daemon.Shutdown();
  return code;
}

}  // namespace sotto::cli
