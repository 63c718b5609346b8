// Client SDK figures through a real sottod (started by bench/client_bench.sh):
//  - first-message latency: SendText to a new contact (lookup, bundle fetch, X3DH,
//    encrypt, Send, ack) until the message is decrypted and stored on the recipient;
//  - steady state: one sender sends --messages texts back to back (each waits for the
//    server's ack, as `sotto send` does), a receiver polls in another thread; messages
//    per second and send->arrival latency p50/p99.
// Every Client has its own home and SQLite store (synchronous=FULL), as real devices do.
//
// Usage: client_bench --server HOST:PORT --server-key HEX --codes FILE [--messages N]
//                     [--pairs N] [--json FILE]
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "base/histogram.h"
#include "client/client.h"

namespace {

using namespace sotto;          // NOLINT(google-build-using-namespace)
using namespace sotto::client;  // NOLINT(google-build-using-namespace)
using Clock = std::chrono::steady_clock;

struct Args {
  std::string server;
  std::string server_key;
  std::string codes;
  size_t messages = 2000;
  size_t pairs = 20;
  std::string json;
};

std::string CodeFor(const std::string& codes, const std::string& handle) {
  std::ifstream in(codes);
  std::string line;
  std::string code;
  while (std::getline(in, line)) {
    if (line.rfind(handle + " ", 0) == 0) code = line.substr(handle.size() + 1);
  }
  return code;
}

[[noreturn]] void Die(const std::string& what, const Error& error) {
  std::fprintf(stderr, "client_bench: %s: %s\n", what.c_str(), error.ToString().c_str());
  std::exit(1);
}

std::unique_ptr<Client> NewUser(const Args& args, const std::filesystem::path& root,
                                const std::string& handle) {
  ClientConfig config;
  config.home = root / handle;
  auto client = Client::Open(std::move(config));
  if (!client) Die("open", client.error());
  auto key = ParseServerKey(args.server_key);
  if (!key) Die("server key", key.error());
  if (auto st = (*client)->StartRegistration(args.server, *key, handle); !st)
    Die("register", st.error());
  if (auto st = (*client)->FinishRegistration(CodeFor(args.codes, handle)); !st) {
    Die("verify", st.error());
  }
  if (auto st = (*client)->Connect(); !st) Die("connect", st.error());
  return std::move(*client);
}

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// Polls `receiver` in a thread until `want` messages arrived; records each arrival time.
class Receiver {
 public:
  Receiver(Client& client, size_t want) : client_(client), arrivals_(want) {
    client_.SetEventSink([this](const Event& e) {
      if (const auto* m = std::get_if<MessageEvent>(&e)) {
        const size_t index = std::stoul(m->message.body.substr(0, m->message.body.find(' ')));
        if (index < arrivals_.size()) arrivals_[index] = Clock::now();
        got_.fetch_add(1);
      }
    });
    thread_ = std::thread([this] {
      while (got_.load() < arrivals_.size() && !stop_.load()) {
        if (auto st = client_.Poll(std::chrono::milliseconds(50)); !st) Die("poll", st.error());
      }
    });
  }
  ~Receiver() {
    stop_ = true;
    Join();
    client_.SetEventSink(nullptr);
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  Clock::time_point at(size_t i) const { return arrivals_[i]; }

 private:
  Client& client_;
  std::vector<Clock::time_point> arrivals_;
  std::atomic<size_t> got_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--server")
      args.server = value;
    else if (flag == "--server-key")
      args.server_key = value;
    else if (flag == "--codes")
      args.codes = value;
    else if (flag == "--messages")
      args.messages = std::stoul(value);
    else if (flag == "--pairs")
      args.pairs = std::stoul(value);
    else if (flag == "--json")
      args.json = value;
  }
  if (args.server.empty() || args.server_key.empty() || args.codes.empty()) {
    std::fprintf(stderr,
                 "usage: client_bench --server HOST:PORT --server-key HEX --codes FILE "
                 "[--messages N] [--pairs N] [--json FILE]\n");
    return 2;
  }
  char tmpl[] = "/tmp/client-bench-XXXXXX";
  const std::filesystem::path root = mkdtemp(tmpl);

  // First contact: a fresh pair each time, so every send needs a bundle and X3DH.
  Histogram first_arrival, first_ack;
  for (size_t p = 0; p < args.pairs; ++p) {
    auto alice = NewUser(args, root, "+1555100" + std::to_string(1000 + 2 * p));
    auto bob = NewUser(args, root, "+1555100" + std::to_string(1001 + 2 * p));
    Receiver receiver(*bob, 1);
    const auto t0 = Clock::now();
    auto sent = alice->SendText(bob->account()->handle, "0 first contact");
    if (!sent) Die("send", sent.error());
    const auto t1 = Clock::now();
    receiver.Join();
    first_ack.Record(static_cast<uint64_t>((t1 - t0).count()));
    first_arrival.Record(static_cast<uint64_t>((receiver.at(0) - t0).count()));
  }

  // Steady state over an established session.
  auto sender = NewUser(args, root, "+15552000001");
  auto target = NewUser(args, root, "+15552000002");
  if (!sender->SendText(target->account()->handle, "warm up")) return 1;
  if (!target->Sync(std::chrono::seconds(10))) return 1;
  std::vector<Clock::time_point> sent_at(args.messages);
  Histogram latency, ack;
  const auto start = Clock::now();
  {
    Receiver receiver(*target, args.messages);
    for (size_t i = 0; i < args.messages; ++i) {
      sent_at[i] = Clock::now();
      auto sent = sender->SendText(target->account()->handle, std::to_string(i) + " steady");
      if (!sent) Die("send", sent.error());
      ack.Record(static_cast<uint64_t>((Clock::now() - sent_at[i]).count()));
    }
    receiver.Join();
    Clock::time_point last = start;
    for (size_t i = 0; i < args.messages; ++i) {
      latency.Record(static_cast<uint64_t>((receiver.at(i) - sent_at[i]).count()));
      last = std::max(last, receiver.at(i));
    }
    const double seconds = std::chrono::duration<double>(last - start).count();
    const double rate = static_cast<double>(args.messages) / seconds;
    std::printf(
        "first message (new contact: lookup, bundle, X3DH, send, ack): p50 %.2f ms, "
        "p99 %.2f ms (send returns after p50 %.2f ms); %zu pairs\n",
        Ms(first_arrival.Quantile(0.5)), Ms(first_arrival.Quantile(0.99)),
        Ms(first_ack.Quantile(0.5)), args.pairs);
    std::printf(
        "steady: %zu messages in %.2f s = %.0f messages/s; send->arrival p50 %.2f ms, "
        "p99 %.2f ms; send->server ack p50 %.2f ms, p99 %.2f ms\n",
        args.messages, seconds, rate, Ms(latency.Quantile(0.5)), Ms(latency.Quantile(0.99)),
        Ms(ack.Quantile(0.5)), Ms(ack.Quantile(0.99)));
    if (!args.json.empty()) {
      std::ofstream out(args.json);
      out << "{\"first_message_p50_ms\":" << Ms(first_arrival.Quantile(0.5))
          << ",\"first_message_p99_ms\":" << Ms(first_arrival.Quantile(0.99))
          << ",\"first_send_ack_p50_ms\":" << Ms(first_ack.Quantile(0.5))
          << ",\"pairs\":" << args.pairs << ",\"messages\":" << args.messages
          << ",\"messages_per_s\":" << rate << ",\"latency_p50_ms\":" << Ms(latency.Quantile(0.5))
          << ",\"latency_p99_ms\":" << Ms(latency.Quantile(0.99))
          << ",\"ack_p50_ms\":" << Ms(ack.Quantile(0.5))
          << ",\"ack_p99_ms\":" << Ms(ack.Quantile(0.99)) << "}\n";
    }
  }
  sender.reset();
  target.reset();
  std::filesystem::remove_all(root);
  return 0;
}
