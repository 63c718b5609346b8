// Encrypted attachment figures through a real sottod with its media service (started by
// bench/media_bench.sh): for a file of --mib MiB of random bytes,
//  - send: Client::SendFile (encrypt + streaming upload + the pointer message), MB/s;
//  - receive: Client::DownloadAttachment (streaming download + MAC/digest verification +
//    decryption to a temporary file + rename), MB/s;
// the median of --runs runs each, and the peak RSS (VmHWM) of every client process and
// of sottod. Each send and each receive runs in its own child process (this binary with
// --role), so its VmHWM is that transfer's peak and nothing else's.
//
// Usage: media_bench --server HOST:PORT --server-key HEX --codes FILE --server-pid PID
//                    [--mib N] [--runs N] [--json FILE]
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "client/client.h"
#include "crypto/random.h"

extern char** environ;

namespace {

using namespace sotto;          // NOLINT(google-build-using-namespace)
using namespace sotto::client;  // NOLINT(google-build-using-namespace)
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr char kAlice[] = "+15557770001";
constexpr char kBob[] = "+15557770002";

struct Args {
  std::string role = "main";  // main | send | receive
  std::string server, server_key, codes, json, home, file;
  long server_pid = 0;
  size_t mib = 100;
  size_t runs = 3;
};

[[noreturn]] void Die(const std::string& what, const std::string& detail) {
  std::fprintf(stderr, "media_bench: %s: %s\n", what.c_str(), detail.c_str());
  std::exit(1);
}

// VmHWM of a process in KiB (0 if unreadable).
long PeakRssKib(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

std::unique_ptr<Client> OpenUser(const std::string& home, ClientConfig::AttachmentDownload mode) {
  ClientConfig config;
  config.home = home;
  config.attachment_download = mode;
  auto client = Client::Open(std::move(config));
  if (!client) Die("open", client.error().ToString());
  return std::move(*client);
}

std::string CodeFor(const std::string& codes, const std::string& handle) {
  std::ifstream in(codes);
  std::string line, code;
  while (std::getline(in, line)) {
    if (line.rfind(handle + " ", 0) == 0) code = line.substr(handle.size() + 1);
  }
  return code;
}

void Register(const Args& a, const std::string& home, const std::string& handle) {
  auto c = OpenUser(home, ClientConfig::AttachmentDownload::kManual);
  crypto::X25519Public key{};
  const Bytes raw = FromHex(a.server_key);
  if (raw.size() != key.size()) Die("server key", "must be 64 hex digits");
  std::copy(raw.begin(), raw.end(), key.begin());
  if (auto s = c->StartRegistration(a.server, key, handle); !s) Die("register", s.error().ToString());
  if (auto s = c->FinishRegistration(CodeFor(a.codes, handle)); !s) Die("verify", s.error().ToString());
}

// Child: one send or one receive; prints "<seconds> <VmHWM KiB>".
int RunRole(const Args& a) {
  if (a.role == "send") {
    auto c = OpenUser(a.home, ClientConfig::AttachmentDownload::kManual);
    const auto start = Clock::now();
    auto sent = c->SendFile(kBob, a.file, "bench");
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    if (!sent) Die("send", sent.error().ToString());
    std::printf("%.6f %ld\n", s, PeakRssKib("self"));
    return 0;
  }
  auto c = OpenUser(a.home, ClientConfig::AttachmentDownload::kManual);
  if (auto s = c->Sync(std::chrono::seconds(60)); !s) Die("sync", s.error().ToString());
  auto conversation = c->Conversation(kAlice, 1);
  if (!conversation || conversation->empty() || !conversation->back().attachment) {
    Die("receive", "no attachment arrived");
  }
  const StoredMessage m = conversation->back();
  const auto start = Clock::now();
  auto got = c->DownloadAttachment(m.rowid);
  const double s = std::chrono::duration<double>(Clock::now() - start).count();
  if (!got) Die("download", got.error().ToString());
  if (fs::file_size(got->local_path) != fs::file_size(a.file)) Die("download", "size differs");
  fs::remove(got->local_path);  // keep the disk footprint to one copy per run
  std::printf("%.6f %ld\n", s, PeakRssKib("self"));
  return 0;
}

// Runs this binary with `role` and returns its "<seconds> <KiB>" line.
std::pair<double, long> Child(const Args& a, const std::string& role, const std::string& home) {
  int fds[2];
  if (pipe(fds) != 0) Die("pipe", std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<std::string> argv_s = {"/proc/self/exe", "--role", role, "--home", home, "--file", a.file};
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const std::string exe = fs::read_symlink("/proc/self/exe").string();
  if (posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ) != 0) {
    Die("spawn", std::strerror(errno));
  }
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  std::string out;
  char buf[256];
  ssize_t n = 0;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) Die(role, "child failed");
  double s = 0;
  long kib = 0;
  if (std::sscanf(out.c_str(), "%lf %ld", &s, &kib) != 2) Die(role, "bad child output");
  return {s, kib};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const std::string v = argv[i + 1];
    if (k == "--role") a.role = v;
    else if (k == "--server") a.server = v;
    else if (k == "--server-key") a.server_key = v;
    else if (k == "--codes") a.codes = v;
    else if (k == "--server-pid") a.server_pid = std::stol(v);
    else if (k == "--mib") a.mib = std::stoul(v);
    else if (k == "--runs") a.runs = std::stoul(v);
    else if (k == "--json") a.json = v;
    else if (k == "--home") a.home = v;
    else if (k == "--file") a.file = v;
    else Die("usage", "unknown option " + k);
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = Parse(argc, argv);
  if (a.role != "main") return RunRole(a);
  char tmpl[] = "/tmp/media-bench-XXXXXX";
  const fs::path root = mkdtemp(tmpl);
  const std::string alice = (root / "alice").string();
  const std::string bob = (root / "bob").string();
  Register(a, alice, kAlice);
  Register(a, bob, kBob);
  a.file = (root / "file.bin").string();
  const uint64_t size = uint64_t{a.mib} << 20;
  {
    std::ofstream out(a.file, std::ios::binary);
    crypto::DeterministicRandom random(42);
    std::vector<uint8_t> chunk(1 << 20);
    for (uint64_t left = size; left > 0; left -= std::min<uint64_t>(left, chunk.size())) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, chunk.size()));
      random.Fill(MutableByteSpan(chunk.data(), n));
      out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(n));
    }
  }
  const std::string server_pid = std::to_string(a.server_pid);
  const long server_before = PeakRssKib(server_pid);
  std::vector<double> up, down;
  long up_kib = 0, down_kib = 0;
  for (size_t r = 0; r < a.runs; ++r) {
    auto [us, uk] = Child(a, "send", alice);
    auto [ds, dk] = Child(a, "receive", bob);
    up.push_back(static_cast<double>(size) / 1e6 / us);
    down.push_back(static_cast<double>(size) / 1e6 / ds);
    up_kib = std::max(up_kib, uk);
    down_kib = std::max(down_kib, dk);
    std::fprintf(stderr, "media_bench: run %zu: send %.1f MB/s (peak %ld KiB), receive %.1f MB/s (peak %ld KiB)\n",
                 r + 1, up.back(), uk, down.back(), dk);
  }
  const long server_after = PeakRssKib(server_pid);
  char buf[1024];
  std::snprintf(buf, sizeof(buf),
                "{\"file_mib\": %zu, \"runs\": %zu, \"send_mb_per_s_median\": %.1f, "
                "\"receive_mb_per_s_median\": %.1f, \"client_send_peak_rss_kib\": %ld, "
                "\"client_receive_peak_rss_kib\": %ld, \"server_peak_rss_kib_before\": %ld, "
                "\"server_peak_rss_kib\": %ld}\n",
                a.mib, a.runs, Median(up), Median(down), up_kib, down_kib, server_before, server_after);
  std::fputs(buf, stdout);
  if (!a.json.empty()) std::ofstream(a.json) << buf;
  fs::remove_all(root);
  return 0;
}
