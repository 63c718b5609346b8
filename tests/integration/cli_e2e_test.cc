// End to end through the real binaries: a real sottod and real `sotto` processes (one per
// command, as a user runs them) and the `sotto daemon` over its Unix socket (JSON-RPC).
// Waits are on process exits, output lines and socket reads, never sleeps.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/sottod_process.h"

namespace sotto {
namespace {

using nlohmann::json;

struct ProcessRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

// Runs `sotto ARGS...` to completion (stdin /dev/null), capturing stdout and stderr.
ProcessRun Sotto(const std::vector<std::string>& args) {
  std::vector<std::string> all = {SOTTO_PATH};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    const int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  ProcessRun run;
  // stderr is small; read stdout to EOF first, then stderr (no deadlock for our sizes).
  run.out = ReadAll(out[0]);
  run.err = ReadAll(err[0]);
  close(out[0]);
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

std::vector<json> OfType(const std::vector<json>& lines, const std::string& type) {
  std::vector<json> out;
  for (const json& j : lines) {
    if (j.value("type", "") == type) out.push_back(j);
  }
  return out;
}

std::string Describe(const ProcessRun& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

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
    std::string hex;
    for (uint8_t b : sottod_.server_key()) {
      static const char* kDigits = "0123456789abcdef";
      hex += kDigits[b >> 4];
      hex += kDigits[b & 15];
    }
    return hex;
  }
  void Register(const std::string& home, const std::string& number) {
    ProcessRun r = Sotto({"--home", home, "register", "--server", Server(), "--server-key", ServerKey(),
                   "--number", number});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    const std::string code = sottod_.VerificationCode(number);
    ASSERT_EQ(code.size(), 6u);
    r = Sotto({"--home", home, "verify", code});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
  }
  std::vector<json> Receive(const std::string& home) {
    ProcessRun r = Sotto({"--home", home, "receive", "--timeout", "0", "--json"});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    return JsonLines(r.out);
  }

  std::string root_;
  testing::SottodProcess sottod_;
};

constexpr const char* kAlice = "+15551110001";
constexpr const char* kBob = "+15551110002";

TEST_F(CliTest, TwoUsersChatWithTicksSearchAndSafetyNumbers) {
  const std::string alice = Home("alice"), bob = Home("bob");
  Register(alice, kAlice);
  Register(bob, kBob);

  // Bob is offline (no process): three messages wait on the server, in order.
  for (int i = 1; i <= 3; ++i) {
    ProcessRun r = Sotto({"--home", alice, "send", kBob, "hello bob " + std::to_string(i)});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
  }
  std::vector<json> got = OfType(Receive(bob), "message");
  ASSERT_EQ(got.size(), 3u);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(got[static_cast<size_t>(i - 1)]["body"], "hello bob " + std::to_string(i));
    EXPECT_EQ(got[static_cast<size_t>(i - 1)]["from"], kAlice);
  }
  // Nothing is delivered twice.
  EXPECT_TRUE(OfType(Receive(bob), "message").empty());

  ProcessRun reply = Sotto({"--home", bob, "send", kAlice, "hi alice, got them"});
  ASSERT_EQ(reply.exit_code, 0) << Describe(reply);
  std::vector<json> alice_in = Receive(alice);
  ASSERT_EQ(OfType(alice_in, "message").size(), 1u);
  EXPECT_EQ(OfType(alice_in, "message")[0]["body"], "hi alice, got them");
  // The server's delivered receipts for her three messages: two ticks.
  EXPECT_EQ(OfType(alice_in, "receipt").size(), 3u);

  ProcessRun conv = Sotto({"--home", alice, "messages", kBob, "--json", "--no-mark-read"});
  ASSERT_EQ(conv.exit_code, 0) << Describe(conv);
  std::vector<json> lines = JsonLines(conv.out);
  ASSERT_EQ(lines.size(), 4u) << conv.out;
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(lines[i]["status"], "delivered") << lines[i];

  // Bob opens the conversation: read receipts make alice's ticks blue.
  ASSERT_EQ(Sotto({"--home", bob, "messages", kAlice}).exit_code, 0);
  alice_in = Receive(alice);
  EXPECT_EQ(OfType(alice_in, "receipt").size(), 3u);
  for (const json& r : OfType(alice_in, "receipt")) EXPECT_EQ(r["status"], "read");
  lines = JsonLines(Sotto({"--home", alice, "messages", kBob, "--json", "--no-mark-read"}).out);
  ASSERT_EQ(lines.size(), 4u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(lines[i]["status"], "read") << lines[i];

  ProcessRun search = Sotto({"--home", bob, "search", "bob 2", "--json"});
  ASSERT_EQ(search.exit_code, 0) << Describe(search);
  std::vector<json> hits = JsonLines(search.out);
  ASSERT_EQ(hits.size(), 1u) << search.out;
  EXPECT_NE(hits[0].dump().find("hello bob 2"), std::string::npos);

  ProcessRun a = Sotto({"--home", alice, "safety-number", kBob});
  ProcessRun b = Sotto({"--home", bob, "safety-number", kAlice});
  ASSERT_EQ(a.exit_code, 0) << Describe(a);
  ASSERT_EQ(b.exit_code, 0) << Describe(b);
  auto digits = [](const std::string& s) {
    std::string d;
    for (char c : s) {
      if (c >= '0' && c <= '9') d += c;
    }
    return d;
  };
  // Each prints the other's number too; the safety number is the last 60 digits.
  const std::string number_a = digits(a.out), number_b = digits(b.out);
  ASSERT_GE(number_a.size(), 60u);
  ASSERT_GE(number_b.size(), 60u);
  EXPECT_EQ(number_a.substr(number_a.size() - 60), number_b.substr(number_b.size() - 60));
  ProcessRun qr = Sotto({"--home", alice, "safety-number", kBob, "--qr"});
  ASSERT_EQ(qr.exit_code, 0);
  EXPECT_NE(qr.out.find("\u2580"), std::string::npos);  // half blocks
  ProcessRun wrong = Sotto({"--home", alice, "verify-contact", kBob, "--safety-number", std::string(60, '7')});
  EXPECT_EQ(wrong.exit_code, 8) << Describe(wrong);
  ProcessRun right = Sotto({"--home", alice, "verify-contact", kBob});
  EXPECT_EQ(right.exit_code, 0) << Describe(right);
}

TEST_F(CliTest, IdentityChangeBlocksSendingUntilTrusted) {
  const std::string alice = Home("alice"), bob = Home("bob"), bob2 = Home("bob-new-phone");
  Register(alice, kAlice);
  Register(bob, kBob);
  ASSERT_EQ(Sotto({"--home", alice, "send", kBob, "hi"}).exit_code, 0);
  Register(bob2, kBob);  // bob's number on a new device: a new identity key
  ProcessRun held = Sotto({"--home", alice, "send", kBob, "is this still you?"});
  EXPECT_EQ(held.exit_code, 5) << Describe(held);
  EXPECT_NE((held.out + held.err).find("trust"), std::string::npos) << Describe(held);
  EXPECT_TRUE(OfType(Receive(bob2), "message").empty());
  ProcessRun trust = Sotto({"--home", alice, "trust", kBob});
  ASSERT_EQ(trust.exit_code, 0) << Describe(trust);
  std::vector<json> got = OfType(Receive(bob2), "message");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["body"], "is this still you?");
}

TEST_F(CliTest, ExitCodesAreDocumentedOnes) {
  const std::string alice = Home("alice");
  EXPECT_EQ(Sotto({"--home", alice, "send", kBob, "x"}).exit_code, 3);  // not registered
  EXPECT_EQ(Sotto({"--home", alice, "no-such-command"}).exit_code, 2);
  ProcessRun bad = Sotto({"--home", alice, "register", "--server", Server(), "--number", "12345"});
  EXPECT_EQ(bad.exit_code, 6) << Describe(bad);
  Register(alice, kAlice);
  ProcessRun unknown = Sotto({"--home", alice, "send", "+15559999999", "x"});
  EXPECT_EQ(unknown.exit_code, 6) << Describe(unknown);
  EXPECT_EQ(Sotto({"--home", alice, "verify", "123456"}).exit_code, 1) << "already registered";
  ProcessRun help = Sotto({"--home", alice, "send", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("send"), std::string::npos);
}

// A running `sotto daemon`: one JSON-RPC client over the Unix socket.
class Daemon {
 public:
  Daemon(const std::string& home, const std::string& socket_path) : socket_(socket_path) {
    std::vector<std::string> all = {SOTTO_PATH, "--home", home, "daemon", "--socket", socket_path};
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDERR_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    stdout_fd_ = out[0];
    // The daemon prints a line (stderr) once it listens.
    std::string seen;
    char c;
    while (seen.find("listening") == std::string::npos && read(stdout_fd_, &c, 1) == 1) seen += c;
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_.c_str());
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ADD_FAILURE() << "cannot connect to the daemon socket; it printed: " << seen;
    }
  }
  ~Daemon() { Stop(SIGTERM); }
  int Stop(int signal_number) {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    if (stdout_fd_ >= 0) close(stdout_fd_);
    stdout_fd_ = -1;
    if (pid_ <= 0) return -1;
    kill(pid_, signal_number);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  void Write(const json& request) {
    const std::string line = request.dump() + "\n";
    ASSERT_EQ(write(fd_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }
  // The next line from the daemon (response or notification), waiting up to 20 s.
  json Next() {
    for (;;) {
      const size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        json j = json::parse(buffer_.substr(0, nl), nullptr, false);
        buffer_.erase(0, nl + 1);
        return j;
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20'000) <= 0) return json();
      char buf[4096];
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) return json();
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }
  // Sends a request and returns its response; notifications meanwhile are kept.
  json Call(const std::string& method, const json& params) {
    const int id = ++next_id_;
    Write({{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}});
    for (;;) {
      json j = Next();
      if (j.is_null()) return j;
      if (j.contains("id") && j["id"] == id) return j;
      notifications_.push_back(std::move(j));
    }
  }
  // The next notification with `method`, waiting for it if needed.
  json Await(const std::string& method) {
    for (;;) {
      for (auto it = notifications_.begin(); it != notifications_.end(); ++it) {
        if (it->value("method", "") == method) {
          json j = *it;
          notifications_.erase(it);
          return j;
        }
      }
      json j = Next();
      if (j.is_null()) return j;
      notifications_.push_back(std::move(j));
    }
  }

 private:
  std::string socket_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int fd_ = -1;
  int next_id_ = 0;
  std::string buffer_;
  std::vector<json> notifications_;
};

TEST_F(CliTest, DaemonSpeaksJsonRpcAndSurvivesARestart) {
  const std::string alice = Home("alice"), bob = Home("bob");
  Register(alice, kAlice);
  Register(bob, kBob);
  const std::string socket = root_ + "/alice.sock";
  {
    Daemon daemon(alice, socket);
    json version = daemon.Call("version", json::object());
    EXPECT_TRUE(version.contains("result")) << version;
    json unknown = daemon.Call("noSuchMethod", json::object());
    EXPECT_EQ(unknown["error"]["code"], -32601) << unknown;
    json bad = daemon.Call("send", {{"to", kBob}});
    EXPECT_EQ(bad["error"]["code"], -32602) << bad;

    json sent = daemon.Call("send", {{"to", kBob}, {"text", "from the daemon"}});
    ASSERT_TRUE(sent.contains("result")) << sent;
    EXPECT_EQ(sent["result"]["status"], "sent");
    std::vector<json> got = OfType(Receive(bob), "message");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["body"], "from the daemon");
    // Delivered receipt reaches the daemon as a notification.
    json receipt = daemon.Await("receipt");  // first "sent" (one tick), then "delivered"
    if (receipt["params"]["status"] == "sent") receipt = daemon.Await("receipt");
    EXPECT_EQ(receipt["params"]["status"], "delivered") << receipt;

    ASSERT_EQ(Sotto({"--home", bob, "send", kAlice, "to the daemon 1"}).exit_code, 0);
    json message = daemon.Await("message");
    EXPECT_EQ(message["params"]["body"], "to the daemon 1") << message;
    // The daemon holds the home: a CLI command on it is refused with exit 3.
    EXPECT_EQ(Sotto({"--home", alice, "messages", kBob}).exit_code, 3);
    daemon.Stop(SIGKILL);  // crash
  }
  for (int i = 2; i <= 4; ++i) {
    ASSERT_EQ(Sotto({"--home", bob, "send", kAlice, "to the daemon " + std::to_string(i)}).exit_code, 0);
  }
  {
    Daemon daemon(alice, socket);  // the stale socket file is replaced
    for (int i = 2; i <= 4; ++i) {
      json message = daemon.Await("message");
      EXPECT_EQ(message["params"]["body"], "to the daemon " + std::to_string(i)) << message;
    }
    json conv = daemon.Call("messages", {{"with", kBob}, {"markRead", false}});
    ASSERT_TRUE(conv.contains("result")) << conv;
    EXPECT_EQ(conv["result"].dump().find("to the daemon 1"),
              conv["result"].dump().rfind("to the daemon 1"));  // once only
    json search = daemon.Call("search", {{"query", "daemon 3"}});
    EXPECT_NE(search["result"].dump().find("to the daemon 3"), std::string::npos) << search;
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  }
}

}  // namespace
}  // namespace sotto
