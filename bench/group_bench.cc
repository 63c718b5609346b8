// Group fan-out figures through a real sottod (started by bench/group_bench.sh):
//  - registers --members accounts at the wire level (one raw Noise connection each, kept
//    open: every member device is online), creates one group of all of them;
//  - --messages times: member 0 group-sends one real Sender Key ciphertext (src/signal
//    GroupCipher; the server treats it as opaque) and the time from the send until every
//    other member device has its copy is measured (p50/p99), plus each copy's latency,
//    the server's ack (one tick) latency, copies/s, and sottod's CPU (utime+stime from
//    /proc/PID/stat) per delivered copy, including the acks and delivery receipts;
//  - in-process: the cost of the membership lookup + devices digest one group_send pays
//    (server/groups.h over the memory store), for 1024 members with 1 and 5 devices.
// Every member acks what it receives (so queues drain and the sender gets its receipts).
//
// Usage: group_bench --server HOST:PORT --server-key HEX --codes FILE --server-pid PID
//                    [--members N] [--messages N] [--json FILE]
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "client/gateway_client.h"
#include "crypto/random.h"
#include "server/groups.h"
#include "signal/group.h"
#include "signal/in_memory_store.h"
#include "store/memory_store.h"

namespace {

using namespace sotto;  // NOLINT(google-build-using-namespace)
using Clock = std::chrono::steady_clock;

struct Args {
  std::string server;
  std::string server_key;
  std::string codes;
  int server_pid = 0;
  size_t members = 1024;
  size_t messages = 20;
  std::string json;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "group_bench: %s\n", what.c_str());
  std::exit(1);
}
[[noreturn]] void Die(const std::string& what, const Error& error) {
  Die(what + ": " + error.ToString());
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

// utime + stime of `pid` in seconds.
double ProcessCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) Die("cannot read /proc/PID/stat of sottod");
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {  // field 3 is the state
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string CodeFor(const std::string& codes, const std::string& handle) {
  std::ifstream in(codes);
  std::string line;
  std::string code;
  while (std::getline(in, line)) {
    if (line.rfind(handle + " ", 0) == 0) code = line.substr(handle.size() + 1);
  }
  return code;
}

struct Member {
  std::unique_ptr<client::GatewayClient> conn;
  std::string account;
  uint32_t device = 0;
};

wire::Response MustCall(client::GatewayClient& c, wire::Request r, const char* what) {
  auto resp = c.Call(std::move(r));
  if (!resp) Die(what, resp.error());
  if (resp->status() != wire::STATUS_OK) Die(std::string(what) + ": " + resp->reason());
  return *resp;
}

Member Register(const Args& args, const net::SocketAddress& server,
                const crypto::X25519Public& server_key, size_t i) {
  client::ClientOptions o;
  o.server = server;
  o.server_static = server_key;
  o.device_static = noise::KeyPair::Generate(crypto::SystemRandom());
  o.timeout = std::chrono::milliseconds(60'000);
  o.user_agent = "group-bench/0.1";
  Member m;
  auto conn = client::GatewayClient::Connect(o);
  if (!conn) Die("connect", conn.error());
  m.conn = std::move(*conn);
  char handle[32];
  std::snprintf(handle, sizeof handle, "+1666%07zu", i);
  wire::Request ask;
  ask.mutable_request_code()->set_handle(handle);
  MustCall(*m.conn, ask, "request_code");
  wire::Request reg;
  reg.mutable_register_()->set_handle(handle);
  reg.mutable_register_()->set_code(CodeFor(args.codes, handle));
  wire::Response r = MustCall(*m.conn, reg, "register");
  m.account = r.register_().account_id();
  m.device = r.register_().device_id();
  return m;
}

// Reads whatever every connection has (acking envelopes, answering pings) and calls
// on_envelope(index, envelope) for each envelope; waits up to timeout_ms for the first.
template <typename OnEnvelope>
void Pump(std::vector<Member>& members, int timeout_ms, OnEnvelope&& on_envelope) {
  std::vector<pollfd> fds(members.size());
  bool buffered = false;
  for (size_t i = 0; i < members.size(); ++i) {
    fds[i] = pollfd{members[i].conn->fd(), POLLIN, 0};
    buffered = buffered || members[i].conn->HasBufferedFrame();
  }
  if (poll(fds.data(), fds.size(), buffered ? 0 : timeout_ms) < 0) Die("poll failed");
  for (size_t i = 0; i < members.size(); ++i) {
    client::GatewayClient& c = *members[i].conn;
    if (fds[i].revents == 0 && !c.HasBufferedFrame()) continue;
    wire::Frame ack;
    for (;;) {
      auto f = c.Receive(std::chrono::milliseconds(0));
      if (!f) {
        if (f.error().detail == static_cast<uint16_t>(client::ClientErr::kTimeout)) break;
        Die("a member connection failed", f.error());
      }
      if (f->has_envelope()) {
        ack.mutable_delivery_ack()->add_seqs(f->envelope().seq());
        on_envelope(i, f->envelope());
      } else if (f->has_ping()) {
        wire::Frame pong;
        pong.mutable_pong()->set_nonce(f->ping().nonce());
        if (!c.Send(pong)) Die("pong failed");
      } else if (f->has_close()) {
        Die("sottod closed a member connection: " + f->close().detail());
      }
    }
    if (ack.has_delivery_ack() && !c.Send(ack)) Die("ack failed");
  }
}

// The membership lookup and digest one group_send computes, in process.
double DigestMicros(size_t members, uint32_t devices) {
  auto store = store::NewMemoryStore();
  server::Accounts accounts(store->accounts());
  server::Groups groups(store->groups(), accounts, server::GroupsConfig{});
  std::vector<store::AccountId> ids;
  for (size_t i = 0; i < members; ++i) {
    store::AccountRecord a;
    crypto::SystemRandom().Fill(MutableByteSpan(a.id.data(), a.id.size()));
    for (uint32_t d = 1; d <= devices; ++d) {
      store::DeviceRecord dev;
      dev.device_id = d;
      crypto::SystemRandom().Fill(MutableByteSpan(dev.noise_key.data(), dev.noise_key.size()));
      dev.registration_id = 1000 + d;
      a.devices.push_back(dev);
    }
    if (!store->accounts().Put(a)) Die("memory store put failed");
    ids.push_back(a.id);
  }
  auto created = groups.Create(ids[0], std::span(ids).subspan(1), 0, crypto::SystemRandom());
  if (!created) Die("in-process group", created.error());
  const store::DeviceAddress sender{ids[0], 1};
  constexpr int kRounds = 200;
  volatile uint8_t sink = 0;  // keeps the loop from being optimized away
  const auto start = Clock::now();
  for (int r = 0; r < kRounds; ++r) {
    auto group = groups.Get(created->after.id);
    auto member_accounts = groups.MemberAccounts(**group);
    sink = static_cast<uint8_t>(sink ^ server::GroupDevicesDigest(*member_accounts, sender)[0]);
  }
  const double us = Ms(Clock::now() - start) * 1000 / kRounds;
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const std::string v = argv[i + 1];
    if (k == "--server")
      args.server = v;
    else if (k == "--server-key")
      args.server_key = v;
    else if (k == "--codes")
      args.codes = v;
    else if (k == "--server-pid")
      args.server_pid = std::stoi(v);
    else if (k == "--members")
      args.members = std::stoul(v);
    else if (k == "--messages")
      args.messages = std::stoul(v);
    else if (k == "--json")
      args.json = v;
    else
      Die("unknown option " + k);
  }
  if (args.server.empty() || args.server_key.size() != 64 || args.codes.empty() ||
      args.server_pid <= 0 || args.members < 2 || args.messages == 0) {
    Die("usage: group_bench --server HOST:PORT --server-key HEX --codes FILE --server-pid PID "
        "[--members N>=2] [--messages N] [--json FILE]");
  }
  auto address = net::ParseHostPort(args.server);
  if (!address) Die("bad --server", address.error());
  crypto::X25519Public server_key{};
  for (size_t i = 0; i < server_key.size(); ++i) {
    server_key[i] = static_cast<uint8_t>(std::stoul(args.server_key.substr(2 * i, 2), nullptr, 16));
  }

  // Members, all online.
  const auto reg_start = Clock::now();
  std::vector<Member> members;
  members.reserve(args.members);
  for (size_t i = 0; i < args.members; ++i)
    members.push_back(Register(args, *address, server_key, i));
  const double register_s = Ms(Clock::now() - reg_start) / 1000;

  // The group; every member must hear of it.
  wire::Request create;
  for (size_t i = 1; i < members.size(); ++i)
    create.mutable_create_group()->add_members(members[i].account);
  const auto create_start = Clock::now();
  const wire::Response created = MustCall(*members[0].conn, create, "create_group");
  const double create_ms = Ms(Clock::now() - create_start);
  const std::string gid = created.group().group().group_id();
  size_t announced = 0;
  while (announced < members.size()) {
    Pump(members, 10'000, [&](size_t, const wire::Envelope& e) {
      if (e.type() == wire::ENVELOPE_GROUP_UPDATE && e.group_id() == gid) ++announced;
    });
  }
  const double announced_ms = Ms(Clock::now() - create_start);

  // The sender's devices digest, page by page.
  std::string digest;
  int pages = 0;
  for (uint32_t offset = 0;;) {
    wire::Request r;
    r.mutable_get_group_devices()->set_group_id(gid);
    r.mutable_get_group_devices()->set_offset(offset);
    const wire::Response page = MustCall(*members[0].conn, r, "get_group_devices");
    ++pages;
    digest = page.group_devices().devices_digest();
    offset = page.group_devices().next_offset();
    if (offset == 0) break;
  }

  // A real sender key; member 1 decrypts every copy it gets.
  signal::InMemorySenderKeyStore sender_keys;
  signal::InMemorySenderKeyStore receiver_keys;
  const signal::SenderKeyName name{gid, signal::ProtocolAddress{"member-0", 1}};
  auto distribution =
      signal::CreateSenderKeyDistribution(sender_keys, name, crypto::SystemRandom());
  if (!distribution) Die("sender key", distribution.error());
  if (!signal::ProcessSenderKeyDistribution(receiver_keys, name, *distribution)) {
    Die("sender key distribution");
  }
  signal::GroupCipher encrypt(sender_keys, name);
  signal::GroupCipher decrypt(receiver_keys, name);
  const std::string plaintext(120, 'p');  // a short text message in its padded content

  const size_t copies_per_message = members.size() - 1;
  std::vector<double> all_ms;
  std::vector<double> copy_ms;
  std::vector<double> ack_ms;
  size_t receipts = 0;
  size_t decrypted = 0;
  size_t ciphertext_bytes = 0;
  const double cpu_before = ProcessCpuSeconds(args.server_pid);
  const auto loop_start = Clock::now();
  for (size_t m = 0; m < args.messages; ++m) {
    auto ct = encrypt.Encrypt(AsBytes(plaintext));
    if (!ct) Die("encrypt", ct.error());
    ciphertext_bytes = ct->size();
    const std::string message_id = "bench-" + std::to_string(m);
    wire::Request send;
    wire::GroupSendRequest* g = send.mutable_group_send();
    g->set_group_id(gid);
    g->set_message_id(message_id);
    g->set_devices_digest(digest);
    g->set_ciphertext(std::string(AsString(*ct)));
    const auto t0 = Clock::now();
    const wire::Response sent = MustCall(*members[0].conn, send, "group_send");
    ack_ms.push_back(Ms(Clock::now() - t0));
    if (sent.group_send().devices() != copies_per_message) Die("group_send queued fewer copies");
    size_t got = 0;
    while (got < copies_per_message) {
      Pump(members, 10'000, [&](size_t i, const wire::Envelope& e) {
        if (e.type() == wire::ENVELOPE_DELIVERED && i == 0) ++receipts;
        if (e.type() != wire::ENVELOPE_MESSAGE || e.message_id() != message_id) return;
        ++got;
        copy_ms.push_back(Ms(Clock::now() - t0));
        if (i == 1 && decrypt.Decrypt(AsBytes(e.ciphertext()))) ++decrypted;
      });
    }
    all_ms.push_back(Ms(Clock::now() - t0));
  }
  const double loop_s = Ms(Clock::now() - loop_start) / 1000;
  const size_t copies = copies_per_message * args.messages;
  while (receipts < copies) {  // every copy's ack: the sender's receipts
    Pump(members, 10'000, [&](size_t i, const wire::Envelope& e) {
      if (e.type() == wire::ENVELOPE_DELIVERED && i == 0) ++receipts;
    });
  }
  const double cpu_s = ProcessCpuSeconds(args.server_pid) - cpu_before;
  if (decrypted != args.messages) Die("member 1 could not decrypt every copy");

  const double digest_1 = DigestMicros(1024, 1);
  const double digest_5 = DigestMicros(1024, 5);
  char json[2048];
  std::snprintf(json, sizeof json,
                "{\"members\": %zu, \"messages\": %zu, \"copies\": %zu, \"ciphertext_bytes\": %zu, "
                "\"register_s\": %.2f, \"create_ms\": %.1f, \"create_announced_ms\": %.1f, "
                "\"device_pages\": %d, "
                "\"all_delivered_ms\": {\"p50\": %.2f, \"p99\": %.2f, \"max\": %.2f}, "
                "\"copy_latency_ms\": {\"p50\": %.2f, \"p99\": %.2f}, "
                "\"ack_ms\": {\"p50\": %.2f, \"p99\": %.2f}, \"copies_per_s\": %.0f, "
                "\"server_cpu_s\": %.2f, \"server_cpu_us_per_copy\": %.2f, "
                "\"receipts\": %zu, \"digest_us_1024x1\": %.1f, \"digest_us_1024x5\": %.1f}\n",
                members.size(), args.messages, copies, ciphertext_bytes, register_s, create_ms,
                announced_ms, pages, Percentile(all_ms, 0.5), Percentile(all_ms, 0.99),
                *std::max_element(all_ms.begin(), all_ms.end()), Percentile(copy_ms, 0.5),
                Percentile(copy_ms, 0.99), Percentile(ack_ms, 0.5), Percentile(ack_ms, 0.99),
                static_cast<double>(copies) / loop_s, cpu_s,
                cpu_s * 1e6 / static_cast<double>(copies), receipts, digest_1, digest_5);
  std::printf(
      "group of %zu (one device each), %zu group sends of a %zu-byte Sender Key ciphertext\n"
      "  every copy delivered: p50 %.2f ms, p99 %.2f ms (max %.2f)\n"
      "  one copy:             p50 %.2f ms, p99 %.2f ms\n"
      "  server ack (durable): p50 %.2f ms, p99 %.2f ms\n"
      "  %.0f copies/s; sottod CPU %.2f s = %.2f us per delivered copy (incl. ack + receipt)\n"
      "  membership + digest per send (in process): %.1f us (1024x1), %.1f us (1024x5)\n"
      "  setup: %zu registrations %.1f s; create %.0f ms, announced to all %.0f ms; %d pages\n",
      members.size(), args.messages, ciphertext_bytes, Percentile(all_ms, 0.5),
      Percentile(all_ms, 0.99), *std::max_element(all_ms.begin(), all_ms.end()),
      Percentile(copy_ms, 0.5), Percentile(copy_ms, 0.99), Percentile(ack_ms, 0.5),
      Percentile(ack_ms, 0.99), static_cast<double>(copies) / loop_s, cpu_s,
      cpu_s * 1e6 / static_cast<double>(copies), digest_1, digest_5, members.size(), register_s,
      create_ms, announced_ms, pages);
  if (!args.json.empty()) {
    std::ofstream out(args.json);
    out << json;
    if (!out) Die("cannot write " + args.json);
  }
  return 0;
}
