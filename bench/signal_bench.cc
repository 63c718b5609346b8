// Signal Protocol benchmark: Sotto (src/signal/) against libsignal-protocol-c 2.3.3
// (tests/oracle/, GPL-3.0, test/bench-only), both in this process on the same inputs.
// Sotto talks to Sotto and libsignal to libsignal; every body is 160 bytes.
//
// Each figure is the median over --repeats rounds of the mean time per operation in a
// batch timed with std::chrono::steady_clock (rounds interleave the contenders):
//   1. steady stream on an acknowledged session (SignalMessages): encrypt and decrypt per
//      message. Sotto twice: "store round trip" = SessionCipher over the in-memory stores,
//      which parse and serialize the record on every message as libsignal does (like for
//      like), and "record API" = EncryptWithRecord/DecryptWithRecord on a record in memory;
//   2. alternating conversation, every message a reply, so every decrypt is a DH ratchet
//      step: per decrypt, and per round (one encrypt + one decrypt);
//   3. session setup with fresh parties: process the bundle, encrypt the first message,
//      decrypt the first PreKeySignalMessage (identity and bundle keys generated untimed);
//   4. sender keys: encrypt and decrypt;
//   5. operator new calls per steady-state Sotto message (not in sanitizer builds).
// Prints a table (ratio = libsignal time / Sotto time) and writes every figure as JSON.
//
// Run: signal_bench [--repeats N] [--batch N] [--json PATH] [--smoke]
//        --smoke: tiny counts (CI); writes JSON only when --json is given.
//      signal_bench --gbench [Google Benchmark flags]: steady-stream micro cases only.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "signal/group.h"
#include "signal/in_memory_store.h"
#include "signal/session_builder.h"
#include "signal/session_cipher.h"
#include "tests/oracle/signal_oracle.h"

#if defined(__SANITIZE_ADDRESS__)
#define SOTTO_BENCH_COUNT_NEW 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SOTTO_BENCH_COUNT_NEW 0
#endif
#endif
#ifndef SOTTO_BENCH_COUNT_NEW
#define SOTTO_BENCH_COUNT_NEW 1
#endif

namespace {
bool g_counting = false;
size_t g_new_calls = 0;
}  // namespace

#if SOTTO_BENCH_COUNT_NEW
// Counting replacements of the global allocation functions (the sanitizers bring their own).
// Not inlined, or GCC pairs the inlined free() with operator new (-Wmismatched-new-delete).
[[gnu::noinline]] void* operator new(std::size_t size) {
  if (g_counting) ++g_new_calls;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t size) { return ::operator new(size); }
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace sotto::signal {
namespace {

using Clock = std::chrono::steady_clock;
using oracle::OracleParty;

constexpr size_t kBodySize = 160;
const Bytes& Body() {
  static const Bytes body(kBodySize, 0x61);
  return body;
}

[[noreturn]] void Die(const std::string& what) {
  (void)std::fprintf(stderr, "signal_bench: %s\n", what.c_str());
  (void)std::fflush(nullptr);
  std::_Exit(1);
}
template <typename T>
T Check(Result<T> r, const char* what) {
  if (!r) Die(std::string(what) + ": " + r.error().ToString());
  return std::move(*r);
}
void Check(const Status& s, const char* what) {
  if (!s) Die(std::string(what) + ": " + s.error().ToString());
}
void CheckRc(int rc, const char* what) {
  if (rc != oracle::kOk) Die(std::string(what) + ": libsignal rc " + std::to_string(rc));
}
double Ns(Clock::duration d) { return std::chrono::duration<double, std::nano>(d).count(); }

// libsignal through the oracle, failing loudly; `type` is the expected/given message type.
Bytes OracleEncrypt(OracleParty& from, const std::string& to, ByteSpan body, int type) {
  oracle::OracleCiphertext c = from.Encrypt(to, 1, body);
  CheckRc(c.rc, "libsignal encrypt");
  if (c.type != type) Die("libsignal encrypt: unexpected message type");
  return std::move(c.bytes);
}
size_t OracleDecrypt(OracleParty& to, const std::string& from, ByteSpan message, int type) {
  const oracle::OraclePlaintext p = to.Decrypt(from, 1, message, type);
  CheckRc(p.rc, "libsignal decrypt");
  return p.plaintext.size();
}

// ----- Parties -----------------------------------------------------------------------------

struct SottoDevice {
  SottoDevice(std::string name, crypto::Random& random)
      : address{std::move(name), 1},
        store(IdentityKeyPair::Generate(random), GenerateRegistrationId(random)) {}

  // Stores a fresh signed prekey and one-time prekey, and returns the bundle naming them.
  PreKeyBundle PublishBundle(crypto::Random& random) {
    const IdentityKeyPair identity = Check(store.identity.GetIdentityKeyPair(), "identity");
    const SignedPreKeyRecord spk = GenerateSignedPreKey(identity, 1, 0, random);
    const PreKeyRecord opk{1, KeyPair::Generate(random)};
    Check(store.signed_prekeys.StoreSignedPreKey(spk), "store signed prekey");
    Check(store.prekeys.StorePreKey(opk), "store prekey");
    return {.registration_id = Check(store.identity.GetLocalRegistrationId(), "registration id"),
            .device_id = 1,
            .prekey_id = opk.id,
            .prekey = opk.key_pair.public_key,
            .signed_prekey_id = spk.id,
            .signed_prekey = spk.key_pair.public_key,
            .signed_prekey_signature = spk.signature,
            .identity_key = identity.public_key};
  }
  SessionCipher CipherFor(const SottoDevice& peer, crypto::Random& random) {
    return SessionCipher(store.stores(), peer.address, random);
  }

  ProtocolAddress address;
  InMemoryProtocolStore store;
};

// Alice and Bob with an acknowledged session (bundle, PreKey message, reply), plus copies
// of both records for the record API.
struct SottoPair {
  explicit SottoPair(crypto::Random& random) : alice("alice", random), bob("bob", random) {
    Check(ProcessPreKeyBundle(alice.store.stores(), bob.address, bob.PublishBundle(random), random),
          "process bundle");
    const CiphertextMessage first = Check(alice.CipherFor(bob, random).Encrypt(Body()), "encrypt");
    Check(bob.CipherFor(alice, random).Decrypt(first.bytes, first.type), "decrypt prekey");
    const CiphertextMessage reply = Check(bob.CipherFor(alice, random).Encrypt(Body()), "encrypt");
    Check(alice.CipherFor(bob, random).Decrypt(reply.bytes, reply.type), "decrypt reply");
    alice_record = *Check(alice.store.sessions.LoadSession(bob.address), "load");
    bob_record = *Check(bob.store.sessions.LoadSession(alice.address), "load");
  }
  SottoDevice alice;
  SottoDevice bob;
  SessionRecord alice_record;
  SessionRecord bob_record;
};

// The same with libsignal (system randomness, like Sotto's SystemRandom).
struct OraclePair {
  OraclePair() : alice(OracleParty::Create(1001)), bob(OracleParty::Create(1002)) {
    if (!alice || !bob) Die("OracleParty::Create failed");
    CheckRc(alice->ProcessBundle("bob", 1, bob->GenerateBundle(1, 1, 1, true)), "process bundle");
    const Bytes first = OracleEncrypt(*alice, "bob", Body(), oracle::kTypePreKey);
    OracleDecrypt(*bob, "alice", first, oracle::kTypePreKey);
    OracleDecrypt(*alice, "bob", OracleEncrypt(*bob, "alice", Body(), oracle::kTypeSignal),
                  oracle::kTypeSignal);
  }
  std::unique_ptr<OracleParty> alice;
  std::unique_ptr<OracleParty> bob;
};

// ----- Channels: one direction of a conversation, whatever the implementation ---------------

struct Channel {
  std::function<Bytes(ByteSpan)> encrypt;   // by the sender: the wire bytes
  std::function<size_t(ByteSpan)> decrypt;  // by the receiver: the plaintext size
};

Channel SottoStore(SottoDevice& from, SottoDevice& to, crypto::Random& random) {
  return {[c = from.CipherFor(to, random)](ByteSpan p) mutable {
            CiphertextMessage m = Check(c.Encrypt(p), "encrypt");
            if (m.type != MessageType::kSignal) Die("expected a SignalMessage");
            return std::move(m.bytes);
          },
          [c = to.CipherFor(from, random)](ByteSpan m) mutable {
            return Check(c.DecryptSignalMessage(m), "decrypt").size();
          }};
}
Channel SottoRecord(SessionRecord& from, SessionRecord& to, crypto::Random& random) {
  return {[&from](ByteSpan p) { return Check(EncryptWithRecord(from, p), "encrypt").bytes; },
          [&to, &random](ByteSpan m) {
            return Check(DecryptWithRecord(to, m, random), "decrypt").size();
          }};
}
Channel Libsignal(OracleParty& from, const std::string& from_name, OracleParty& to,
                  const std::string& to_name) {
  return {
      [&from, to_name](ByteSpan p) { return OracleEncrypt(from, to_name, p, oracle::kTypeSignal); },
      [&to, from_name](ByteSpan m) {
        return OracleDecrypt(to, from_name, m, oracle::kTypeSignal);
      }};
}

// Sender keys: Alice's own key, distributed to Bob.
struct SottoGroup {
  explicit SottoGroup(crypto::Random& random) {
    auto skdm = Check(CreateSenderKeyDistribution(alice, name, random), "create sender key");
    Check(ProcessSenderKeyDistribution(bob, name, skdm), "process sender key");
    out = **alice.LoadSenderKey(name);
    in = **bob.LoadSenderKey(name);
  }
  const SenderKeyName name{"group", {"alice", 1}};
  InMemorySenderKeyStore alice;
  InMemorySenderKeyStore bob;
  SenderKeyRecord out;  // record-API copies of the same keys
  SenderKeyRecord in;
};

Channel SottoGroupStore(SottoGroup& g, crypto::Random& random) {
  return {[c = GroupCipher(g.alice, g.name, random)](ByteSpan p) mutable {
            return Check(c.Encrypt(p), "group encrypt");
          },
          [c = GroupCipher(g.bob, g.name, random)](ByteSpan m) mutable {
            return Check(c.Decrypt(m), "group decrypt").size();
          }};
}
Channel SottoGroupRecord(SottoGroup& g, crypto::Random& random) {
  return {
      [&g, &random](ByteSpan p) {
        return Check(GroupEncryptWithRecord(g.out, p, random), "group encrypt");
      },
      [&g](ByteSpan m) { return Check(GroupDecryptWithRecord(g.in, m), "group decrypt").size(); }};
}
Channel LibsignalGroup(OraclePair& p) {
  const Bytes skdm = p.alice->CreateSenderKeyDistribution("group", "alice", 1);
  if (skdm.empty()) Die("libsignal sender key");
  CheckRc(p.bob->ProcessSenderKeyDistribution("group", "alice", 1, skdm), "process sender key");
  return {[&p](ByteSpan b) {
            oracle::OracleCiphertext c = p.alice->GroupEncrypt("group", "alice", 1, b);
            CheckRc(c.rc, "group encrypt");
            return std::move(c.bytes);
          },
          [&p](ByteSpan m) {
            oracle::OraclePlaintext r = p.bob->GroupDecrypt("group", "alice", 1, m);
            CheckRc(r.rc, "group decrypt");
            return r.plaintext.size();
          }};
}

// ----- Timed loops ---------------------------------------------------------------------------

// Two figures per case: ns per encrypt and per decrypt (or, for the ratchet, per round and
// per decrypt; for allocation counts, calls per encrypt and per decrypt).
struct PerOp {
  double encrypt = 0;
  double decrypt = 0;
};

// Encrypts n messages (timed), then decrypts them in order (timed); ns per message.
PerOp TimeStream(Channel& ch, size_t n) {
  std::vector<Bytes> wire;
  wire.reserve(n);
  const auto t0 = Clock::now();
  for (size_t i = 0; i < n; ++i) wire.push_back(ch.encrypt(Body()));
  const auto t1 = Clock::now();
  size_t total = 0;
  for (const Bytes& m : wire) total += ch.decrypt(m);
  const auto t2 = Clock::now();
  benchmark::DoNotOptimize(total);
  if (total != n * kBodySize) Die("stream: wrong plaintext size");
  const double count = static_cast<double>(n);
  return {Ns(t1 - t0) / count, Ns(t2 - t1) / count};
}

// n alternating messages (a->b, b->a, ...): each decrypt is a DH ratchet step. Returns
// {per round = encrypt + decrypt, per decrypt}.
PerOp TimeRatchet(Channel& ab, Channel& ba, size_t n) {
  double decrypt_ns = 0;
  const auto start = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    Channel& ch = i % 2 == 0 ? ab : ba;
    const Bytes m = ch.encrypt(Body());
    const auto t0 = Clock::now();
    if (ch.decrypt(m) != kBodySize) Die("ratchet: wrong plaintext size");
    decrypt_ns += Ns(Clock::now() - t0);
  }
  const double count = static_cast<double>(n);
  return {Ns(Clock::now() - start) / count, decrypt_ns / count};
}

// Summed ns of {process bundle, first encrypt, first decrypt} over n fresh sessions; the
// parties' identity keys and the bundle are generated outside the timing.
using SetupTimes = std::array<double, 3>;

SetupTimes TimeSottoSetup(size_t n, crypto::Random& random) {
  SetupTimes t{};
  for (size_t i = 0; i < n; ++i) {
    SottoDevice alice("alice", random);
    SottoDevice bob("bob", random);
    const PreKeyBundle bundle = bob.PublishBundle(random);
    SessionCipher to_bob = alice.CipherFor(bob, random);
    SessionCipher to_alice = bob.CipherFor(alice, random);
    const auto t0 = Clock::now();
    Check(ProcessPreKeyBundle(alice.store.stores(), bob.address, bundle, random), "bundle");
    const auto t1 = Clock::now();
    const CiphertextMessage first = Check(to_bob.Encrypt(Body()), "first encrypt");
    const auto t2 = Clock::now();
    const Bytes plain = Check(to_alice.DecryptPreKeySignalMessage(first.bytes), "first decrypt");
    const auto t3 = Clock::now();
    if (first.type != MessageType::kPreKey || plain.size() != kBodySize) Die("setup");
    t = {t[0] + Ns(t1 - t0), t[1] + Ns(t2 - t1), t[2] + Ns(t3 - t2)};
  }
  return t;
}

SetupTimes TimeLibsignalSetup(size_t n) {
  SetupTimes t{};
  for (size_t i = 0; i < n; ++i) {
    auto alice = OracleParty::Create(1001);
    auto bob = OracleParty::Create(1002);
    if (!alice || !bob) Die("OracleParty::Create failed");
    const oracle::OracleBundle bundle = bob->GenerateBundle(1, 1, 1, true);
    const auto t0 = Clock::now();
    CheckRc(alice->ProcessBundle("bob", 1, bundle), "bundle");
    const auto t1 = Clock::now();
    const Bytes first = OracleEncrypt(*alice, "bob", Body(), oracle::kTypePreKey);
    const auto t2 = Clock::now();
    const size_t plain_size = OracleDecrypt(*bob, "alice", first, oracle::kTypePreKey);
    const auto t3 = Clock::now();
    if (plain_size != kBodySize) Die("setup");
    t = {t[0] + Ns(t1 - t0), t[1] + Ns(t2 - t1), t[2] + Ns(t3 - t2)};
  }
  return t;
}

// ----- Everything under test -----------------------------------------------------------------

struct Fixtures {
  explicit Fixtures(crypto::Random& r)
      : random(r),
        stream_store(r),
        stream_record(r),
        ratchet_store(r),
        ratchet_record(r),
        group(r) {
    auto& rr = ratchet_record;
    auto& rs = ratchet_store;
    stream["sotto_store"] = SottoStore(stream_store.alice, stream_store.bob, r);
    stream["sotto_record"] = SottoRecord(stream_record.alice_record, stream_record.bob_record, r);
    stream["libsignal"] = Libsignal(*stream_lib.alice, "alice", *stream_lib.bob, "bob");
    ratchet["sotto_store"] = {SottoStore(rs.alice, rs.bob, r), SottoStore(rs.bob, rs.alice, r)};
    ratchet["sotto_record"] = {SottoRecord(rr.alice_record, rr.bob_record, r),
                               SottoRecord(rr.bob_record, rr.alice_record, r)};
    ratchet["libsignal"] = {Libsignal(*ratchet_lib.alice, "alice", *ratchet_lib.bob, "bob"),
                            Libsignal(*ratchet_lib.bob, "bob", *ratchet_lib.alice, "alice")};
    sender_key["sotto_store"] = SottoGroupStore(group, r);
    sender_key["sotto_record"] = SottoGroupRecord(group, r);
    sender_key["libsignal"] = LibsignalGroup(libsignal_group_pair);
  }
  crypto::Random& random;
  SottoPair stream_store, stream_record, ratchet_store, ratchet_record;
  OraclePair stream_lib, ratchet_lib;
  SottoGroup group;
  OraclePair libsignal_group_pair;
  std::map<std::string, Channel> stream;
  std::map<std::string, std::pair<Channel, Channel>> ratchet;
  std::map<std::string, Channel> sender_key;
};

struct Counts {
  size_t batch = 200;    // messages per steady-stream and sender-key round
  size_t ratchet = 100;  // alternating messages per round
  size_t setups = 10;    // fresh sessions per round
};

using Samples = std::map<std::string, std::vector<double>>;  // "<impl>.<metric>" -> ns/op

// One round of every case; appends one sample per figure when `keep`.
void RunRound(Fixtures& f, const Counts& c, bool keep, Samples& s) {
  auto add = [&](const std::string& key, double ns) {
    if (keep) s[key].push_back(ns);
  };
  for (auto& [impl, ch] : f.stream) {
    const PerOp t = TimeStream(ch, c.batch);
    add(impl + ".steady_encrypt", t.encrypt);
    add(impl + ".steady_decrypt", t.decrypt);
  }
  for (auto& [impl, chs] : f.ratchet) {
    const PerOp t = TimeRatchet(chs.first, chs.second, c.ratchet);
    add(impl + ".ratchet_round", t.encrypt);
    add(impl + ".ratchet_decrypt", t.decrypt);
  }
  auto add_setup = [&](const std::string& impl, const SetupTimes& t) {
    const double n = static_cast<double>(c.setups);
    add(impl + ".setup_bundle", t[0] / n);
    add(impl + ".setup_encrypt", t[1] / n);
    add(impl + ".setup_decrypt", t[2] / n);
    add(impl + ".setup_total", (t[0] + t[1] + t[2]) / n);
  };
  add_setup("sotto_store", TimeSottoSetup(c.setups, f.random));
  add_setup("libsignal", TimeLibsignalSetup(c.setups));
  for (auto& [impl, ch] : f.sender_key) {
    const PerOp t = TimeStream(ch, c.batch);
    add(impl + ".sender_key_encrypt", t.encrypt);
    add(impl + ".sender_key_decrypt", t.decrypt);
  }
}

// operator new calls per message over n messages; -1 when not counted (sanitizers).
PerOp CountNew(Channel& ch, size_t n) {
  if (!SOTTO_BENCH_COUNT_NEW) return {-1, -1};
  std::vector<Bytes> wire(n);
  g_new_calls = 0;
  for (Bytes& m : wire) {
    Bytes out;
    g_counting = true;
    out = ch.encrypt(Body());
    g_counting = false;
    m = std::move(out);
  }
  const double encrypt_calls = static_cast<double>(g_new_calls);
  g_new_calls = 0;
  for (const Bytes& m : wire) {
    g_counting = true;
    benchmark::DoNotOptimize(ch.decrypt(m));
    g_counting = false;
  }
  const double count = static_cast<double>(n);
  return {encrypt_calls / count, static_cast<double>(g_new_calls) / count};
}

// ----- Reporting -----------------------------------------------------------------------------

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t mid = v.size() / 2;
  return v.size() % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

std::string Us(double ns) {
  char buf[32];
  if (ns < 10000) {
    (void)std::snprintf(buf, sizeof buf, "%.2f us", ns / 1000);
  } else {
    (void)std::snprintf(buf, sizeof buf, "%.1f us", ns / 1000);
  }
  return buf;
}

struct Row {
  const char* label;
  const char* metric;
  const char* sotto_impl;  // compared with "libsignal.<metric>"
};
constexpr Row kRows[] = {
    {"steady encrypt (store round trip)", "steady_encrypt", "sotto_store"},
    {"steady encrypt (record API)", "steady_encrypt", "sotto_record"},
    {"steady decrypt (store round trip)", "steady_decrypt", "sotto_store"},
    {"steady decrypt (record API)", "steady_decrypt", "sotto_record"},
    {"ratchet-step decrypt (store round trip)", "ratchet_decrypt", "sotto_store"},
    {"ratchet-step decrypt (record API)", "ratchet_decrypt", "sotto_record"},
    {"ratchet round enc+dec (store round trip)", "ratchet_round", "sotto_store"},
    {"ratchet round enc+dec (record API)", "ratchet_round", "sotto_record"},
    {"setup: process bundle", "setup_bundle", "sotto_store"},
    {"setup: first encrypt (PreKey)", "setup_encrypt", "sotto_store"},
    {"setup: first decrypt (PreKey)", "setup_decrypt", "sotto_store"},
    {"setup: total", "setup_total", "sotto_store"},
    {"sender-key encrypt (store round trip)", "sender_key_encrypt", "sotto_store"},
    {"sender-key encrypt (record API)", "sender_key_encrypt", "sotto_record"},
    {"sender-key decrypt (store round trip)", "sender_key_decrypt", "sotto_store"},
    {"sender-key decrypt (record API)", "sender_key_decrypt", "sotto_record"},
};

std::string JsonArray(const std::vector<double>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

// Prints the table and returns the JSON document.
std::string Report(Samples& s, const std::map<std::string, PerOp>& allocs, const Counts& c,
                   int repeats, bool smoke) {
  std::string json =
      "{\n  \"unit\": \"ns per operation\", \"figure\": \"median of repeats\", "
      "\"ratio\": \"libsignal_ns / sotto_ns\",\n  \"body_bytes\": " +
      std::to_string(kBodySize) + ", \"repeats\": " + std::to_string(repeats) +
      ", \"batch\": " + std::to_string(c.batch) +
      ", \"ratchet_messages\": " + std::to_string(c.ratchet) +
      ", \"setups\": " + std::to_string(c.setups) + ", \"smoke\": " + (smoke ? "true" : "false") +
      ",\n  \"results\": [\n";
  std::printf("%-42s %16s %20s %11s\n", "operation (median per op)", "sotto", "libsignal", "ratio");
  for (size_t i = 0; i < std::size(kRows); ++i) {
    const Row& row = kRows[i];
    const std::vector<double>& mine = s[std::string(row.sotto_impl) + "." + row.metric];
    const std::vector<double>& theirs = s[std::string("libsignal.") + row.metric];
    const double sotto = Median(mine);
    const double lib = Median(theirs);
    const double ratio = sotto > 0 ? lib / sotto : 0;
    std::printf("%-42s sotto %10s   libsignal %10s   ratio %5.1fx\n", row.label, Us(sotto).c_str(),
                Us(lib).c_str(), ratio);
    json += "    {\"name\": \"" + std::string(row.label) + "\", \"metric\": \"" + row.metric +
            "\", \"sotto_impl\": \"" + row.sotto_impl +
            "\", \"sotto_ns\": " + std::to_string(sotto) +
            ", \"libsignal_ns\": " + std::to_string(lib) + ", \"ratio\": " + std::to_string(ratio) +
            ",\n     \"sotto_samples_ns\": " + JsonArray(mine) +
            ", \"libsignal_samples_ns\": " + JsonArray(theirs) +
            (i + 1 < std::size(kRows) ? "},\n" : "}\n");
  }
  json += "  ],\n  \"sotto_operator_new_per_message\": {";
  std::printf("\nSotto operator new calls per steady-state message (target 1 = the output):\n");
  bool first = true;
  for (const auto& [name, a] : allocs) {
    const bool counted = a.encrypt >= 0;
    if (counted) {
      std::printf("  %-30s encrypt %.2f   decrypt %.2f\n", name.c_str(), a.encrypt, a.decrypt);
    } else {
      std::printf("  %-30s not counted (sanitizer build)\n", name.c_str());
    }
    json += std::string(first ? "\n" : ",\n") + "    \"" + name + "\": " +
            (counted ? "{\"encrypt\": " + std::to_string(a.encrypt) +
                           ", \"decrypt\": " + std::to_string(a.decrypt) + "}"
                     : std::string("null"));
    first = false;
  }
  return json + "\n  }\n}\n";
}

// Google Benchmark mode (--gbench): the steady-stream micro cases, one per implementation
// (argument 0 = sotto_store, 1 = sotto_record, 2 = libsignal). Statically registered so
// the registry owns them; they only run in that mode, on these fixtures.
Fixtures* g_fixtures = nullptr;
constexpr const char* kImpls[] = {"sotto_store", "sotto_record", "libsignal"};

Channel& GbenchChannel(benchmark::State& st) {
  const char* impl = kImpls[st.range(0)];
  st.SetLabel(impl);
  return g_fixtures->stream[impl];
}

// Times one side of each message; the other side runs untimed once per 200 messages (and
// after the loop), so sender and receiver stay in step across runs.
void SteadyStream(benchmark::State& st, bool time_encrypt) {
  Channel& c = GbenchChannel(st);
  std::vector<Bytes> wire;
  size_t next = 0;  // next message to decrypt
  wire.reserve(200);
  auto catch_up = [&] {  // decrypts what is pending; in decrypt mode encrypts a new batch
    for (; next < wire.size(); ++next) c.decrypt(wire[next]);
    wire.clear();
    next = 0;
    for (int i = 0; !time_encrypt && i < 200; ++i) wire.push_back(c.encrypt(Body()));
  };
  for (auto _ : st) {  // NOLINT(clang-analyzer-deadcode.DeadStores): the idiom
    if (time_encrypt ? wire.size() == 200 : next == wire.size()) {
      st.PauseTiming();
      catch_up();
      st.ResumeTiming();
    }
    if (time_encrypt) {
      wire.push_back(c.encrypt(Body()));
    } else {
      benchmark::DoNotOptimize(c.decrypt(wire[next++]));
    }
  }
  for (; next < wire.size(); ++next) c.decrypt(wire[next]);
}
BENCHMARK_CAPTURE(SteadyStream, encrypt, true)->DenseRange(0, 2);
BENCHMARK_CAPTURE(SteadyStream, decrypt, false)->DenseRange(0, 2);

// A count in 1..1000000; exits on anything else.
size_t ParseCount(const char* text) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value < 1 || value > 1000000) {
    Die(std::string("not a count in 1..1000000: ") + text);
  }
  return static_cast<size_t>(value);
}

int Main(int argc, char** argv) {
  crypto::Random& random = crypto::SystemRandom();
  if (argc > 1 && std::string(argv[1]) == "--gbench") {
    Fixtures f(random);
    g_fixtures = &f;
    argv[1] = argv[0];
    int gbench_argc = argc - 1;
    benchmark::Initialize(&gbench_argc, argv + 1);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  }
  int repeats = 9;
  bool repeats_given = false;
  bool smoke = false;
  std::string json_path;
  Counts counts;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--smoke") {
      smoke = true;
    } else if (arg == "--repeats" && has_value) {
      repeats = static_cast<int>(ParseCount(argv[++i]));
      repeats_given = true;
    } else if (arg == "--batch" && has_value) {
      counts.batch = ParseCount(argv[++i]);
    } else if (arg == "--json" && has_value) {
      json_path = argv[++i];
    } else {
      (void)std::fprintf(stderr,
                         "usage: %s [--repeats N] [--batch N] [--json PATH] [--smoke]\n"
                         "       %s --gbench [Google Benchmark flags]\n",
                         argv[0], argv[0]);
      return 2;
    }
  }
  if (smoke) {
    counts = {4, 4, 1};
    if (!repeats_given) repeats = 1;
  } else if (json_path.empty()) {
    json_path = "bench-signal.json";
  }

  Fixtures f(random);
  Samples samples;
  // Warm-up round (lazy OpenSSL fetches, thread-local contexts, receiver chains filled).
  RunRound(f, {counts.batch, std::max<size_t>(counts.ratchet, 12), 1}, false, samples);
  for (int r = 0; r < repeats; ++r) RunRound(f, counts, true, samples);

  std::map<std::string, PerOp> allocs;
  const size_t n = std::min<size_t>(counts.batch, 50);
  allocs["pairwise record API"] = CountNew(f.stream["sotto_record"], n);
  allocs["pairwise store round trip"] = CountNew(f.stream["sotto_store"], n);
  allocs["sender-key record API"] = CountNew(f.sender_key["sotto_record"], n);

  const std::string json = Report(samples, allocs, counts, repeats, smoke);
  if (!json_path.empty()) {
    std::FILE* out = std::fopen(json_path.c_str(), "w");
    if (out == nullptr || std::fputs(json.c_str(), out) < 0 || std::fclose(out) != 0) {
      Die("cannot write " + json_path);
    }
    std::printf("\nJSON: %s\n", json_path.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace sotto::signal

int main(int argc, char** argv) { return sotto::signal::Main(argc, argv); }
