// One user cannot deny service to another through a server-wide table or a shared budget
// (issue 12, findings 2, 4, 5 and 10): against a real sottod, an abuser at full rate (one
// account, or many unauthenticated connections from 127.0.0.1) is refused by a status
// naming its per-account or per-source limit, while a second user connecting from
// another source (127.0.0.2) is still served. Each test starts its own server.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "crypto/x25519.h"
#include "tests/integration/sottod_process.h"
#include "tests/integration/test_account.h"

namespace sotto {
namespace {

using testing::RegisterHandle;
using testing::SottodOptions;
using testing::SottodProcess;
using testing::TestDevice;
using testing::UploadKeys;

constexpr int kAbuserRequests = 50;  // "full rate": far past every limit under test

SottodOptions Production(std::string toml, bool media = false) {
  SottodOptions o;
  o.config_toml = std::move(toml);
  o.production_source_limits = true;
  o.media = media;
  return o;
}

net::SocketAddress Source(const char* ip) {
  auto a = net::ParseHostPort(std::string(ip) + ":0");
  EXPECT_TRUE(a) << ip;
  return a ? *a : net::SocketAddress{};
}

// A new connection (new key) to `server` from local address `ip`.
std::unique_ptr<client::GatewayClient> ConnectFrom(const SottodProcess& server, const char* ip) {
  client::ClientOptions o =
      testing::DeviceOptions(server, noise::KeyPair::Generate(crypto::SystemRandom()));
  o.source = Source(ip);
  auto c = client::GatewayClient::Connect(o);
  EXPECT_TRUE(c) << ip << ": " << (c ? "" : c.error().ToString());
  return c ? std::move(*c) : nullptr;
}

// Registers `handle` on a new connection from `ip`; no conn if that failed.
TestDevice RegisterFrom(const SottodProcess& server, const char* ip, const std::string& handle) {
  TestDevice d;
  d.handle = handle;
  d.conn = ConnectFrom(server, ip);
  if (!d.conn) return d;
  auto r = RegisterHandle(*d.conn, server, handle);
  EXPECT_TRUE(r && r->status() == wire::STATUS_OK)
      << handle << ": " << (r ? r->reason() : r.error().ToString());
  if (!r || r->status() != wire::STATUS_OK) {
    d.conn.reset();
    return d;
  }
  d.account_id = r->register_().account_id();
  d.device_id = r->register_().device_id();
  return d;
}

#define REGISTERED(var, ...)                  \
  TestDevice var = RegisterFrom(__VA_ARGS__); \
  ASSERT_TRUE(var.conn) << "registering " #var

Result<wire::Response> Call(client::GatewayClient& c, const wire::Request& r) { return c.Call(r); }

// Expects `r` to be refused as rate limited with a reason naming `limit`.
void ExpectRefused(const Result<wire::Response>& r, const std::string& limit) {
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status(), wire::STATUS_RATE_LIMITED) << r->reason();
  EXPECT_NE(r->reason().find(limit), std::string::npos) << r->reason();
}

void ExpectStatus(const Result<wire::Response>& r, wire::StatusCode status) {
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status(), status) << r->reason();
}

void ExpectOk(const Result<wire::Response>& r) { ExpectStatus(r, wire::STATUS_OK); }

// Stops the test unless `r` (a variable) is an OK response.
#define ASSERT_OK(r)                                   \
  ASSERT_TRUE((r) && (r)->status() == wire::STATUS_OK) \
      << ((r) ? (r)->reason() : (r).error().ToString())

wire::Request AskCode(const std::string& handle) {
  wire::Request r;
  r.mutable_request_code()->set_handle(handle);
  return r;
}

wire::Request Register(const std::string& handle, const std::string& code) {
  wire::Request r;
  r.mutable_register_()->set_handle(handle);
  r.mutable_register_()->set_code(code);
  return r;
}

std::string Handle(int i) { return "+1555777" + std::to_string(1000 + i); }

// --- Finding 2: server-wide tables ------------------------------------------------------

TEST(SourceLimits, MediaUploadTokensAreBoundedPerAccount) {
  SottodProcess server(Production("[media]\nmax_tokens_per_account = 3\n", /*media=*/true));
  REGISTERED(abuser, server, "127.0.0.1", Handle(1));
  REGISTERED(user, server, "127.0.0.2", Handle(2));
  wire::Request upload;
  upload.mutable_media_upload()->set_size(100);
  for (int i = 0; i < 3; ++i) ExpectOk(Call(*abuser.conn, upload));  // at the limit
  for (int i = 0; i < kAbuserRequests; ++i) {
    ExpectRefused(Call(*abuser.conn, upload), "media.max_tokens_per_account");
  }
  ExpectOk(Call(*user.conn, upload));
  EXPECT_EQ(server.Metric("sotto_media_tokens_refused_total"), kAbuserRequests);
}

TEST(SourceLimits, ProvisioningIdsAreBoundedPerSource) {
  SottodProcess server(Production("[devices]\nmax_provision_ids_per_ip = 2\n"));
  wire::Request open;
  open.mutable_provision_open();
  // Many unauthenticated connections from one address: two get an id, the rest are refused.
  std::vector<std::unique_ptr<client::GatewayClient>> abusers;
  for (int i = 0; i < 20; ++i) {
    abusers.push_back(ConnectFrom(server, "127.0.0.1"));
    ASSERT_TRUE(abusers.back());
    auto r = Call(*abusers.back(), open);
    if (i < 2) {
      ASSERT_OK(r);
    } else {
      ExpectRefused(r, "devices.max_provision_ids_per_ip");
    }
  }
  auto user = ConnectFrom(server, "127.0.0.2");
  ASSERT_TRUE(user);
  auto opened = Call(*user, open);
  ASSERT_OK(opened);
  EXPECT_EQ(opened->provision_open().provision_id().size(), 16u);
  // Reopening on a connection that has an id keeps the source at its share.
  ExpectOk(Call(*abusers[0], open));
  // A closed connection's id frees its slot (the server forgets it when it sees the close,
  // so the next open from that source is retried until then).
  abusers[0].reset();
  bool reopened = false;
  for (int attempt = 0; attempt < 100 && !reopened; ++attempt) {
    auto again = ConnectFrom(server, "127.0.0.1");
    ASSERT_TRUE(again);
    auto r = Call(*again, open);
    ASSERT_TRUE(r);
    reopened = r->status() == wire::STATUS_OK;
  }
  EXPECT_TRUE(reopened);
}

TEST(SourceLimits, LinkTokensAreBoundedPerAccount) {
  SottodProcess server(Production("[devices]\nmax_link_tokens_per_account = 2\n"));
  REGISTERED(abuser, server, "127.0.0.1", Handle(1));
  REGISTERED(user, server, "127.0.0.2", Handle(2));
  wire::Request token;
  token.mutable_link_token();
  ExpectOk(Call(*abuser.conn, token));
  ExpectOk(Call(*abuser.conn, token));
  for (int i = 0; i < kAbuserRequests; ++i) {
    ExpectRefused(Call(*abuser.conn, token), "devices.max_link_tokens_per_account");
  }
  ExpectOk(Call(*user.conn, token));
  EXPECT_EQ(server.Metric("sotto_link_tokens_refused_total"), kAbuserRequests);
}

// --- Finding 5: code requests and guesses ----------------------------------------------

TEST(SourceLimits, CodeRequestsAreLimitedPerSource) {
  SottodProcess server(
      Production("[registration]\nip_code_rate_per_s = 0.001\nip_code_burst = 3\n"));
  auto abuser = ConnectFrom(server, "127.0.0.1");
  ASSERT_TRUE(abuser);
  // Codes to many strangers' numbers from one address: the burst, then refusals by name.
  for (int i = 0; i < 3; ++i) ExpectOk(Call(*abuser, AskCode(Handle(i))));
  for (int i = 3; i < 3 + kAbuserRequests; ++i) {
    ExpectRefused(Call(*abuser, AskCode(Handle(i))), "registration.ip_code_rate");
    EXPECT_EQ(server.VerificationCode(Handle(i)), "") << "no code was sent";
  }
  REGISTERED(user, server, "127.0.0.2", Handle(999));  // another source registers
}

TEST(SourceLimits, CodeRequestsAreLimitedServerWide) {
  SottodProcess server(
      Production("[registration]\nglobal_code_rate_per_s = 0.001\nglobal_code_burst = 2\n"));
  auto a = ConnectFrom(server, "127.0.0.1");
  auto b = ConnectFrom(server, "127.0.0.2");
  ASSERT_TRUE(a && b);
  ExpectOk(Call(*a, AskCode(Handle(1))));
  ExpectOk(Call(*b, AskCode(Handle(2))));  // at the burst
  ExpectRefused(Call(*b, AskCode(Handle(3))), "registration.global_code_rate");
}

TEST(SourceLimits, WrongCodesAreLimitedPerSourceAndTheOwnerStillRegisters) {
  SottodProcess server(Production(
      "[registration]\ncode_attempts = 1000\nip_guess_rate_per_s = 0.001\nip_guess_burst = 3\n"));
  auto owner = ConnectFrom(server, "127.0.0.2");
  ASSERT_TRUE(owner);
  const std::string handle = Handle(1);
  ExpectOk(Call(*owner, AskCode(handle)));
  const std::string code = server.VerificationCode(handle);
  ASSERT_EQ(code.size(), 6u);
  // The abuser guesses the owner's code from many connections on one address.
  std::vector<std::unique_ptr<client::GatewayClient>> abusers;
  for (int i = 0; i < 4; ++i) {
    abusers.push_back(ConnectFrom(server, "127.0.0.1"));
    ASSERT_TRUE(abusers.back());
  }
  int guess = 0;
  auto wrong = [&] {
    std::string g = std::to_string(100'000 + guess++);
    return g == code ? std::to_string(100'000 + guess++) : g;
  };
  for (int i = 0; i < 3; ++i) {  // the burst: checked, and wrong
    ExpectStatus(Call(*abusers[static_cast<size_t>(i) % abusers.size()], Register(handle, wrong())),
                 wire::STATUS_BAD_CODE);
  }
  for (int i = 0; i < kAbuserRequests; ++i) {  // then refused before the code is looked at
    ExpectRefused(
        Call(*abusers[static_cast<size_t>(i) % abusers.size()], Register(handle, wrong())),
        "registration.ip_guess_rate");
  }
  ExpectRefused(Call(*abusers[0], Register(handle, code)), "registration.ip_guess_rate");
  EXPECT_EQ(server.Metric("sotto_guesses_refused_total"), kAbuserRequests + 1);
  auto ok = Call(*owner, Register(handle, code));  // the owner, from another source
  ASSERT_OK(ok);
  EXPECT_EQ(ok->register_().device_id(), 1u);
}

TEST(SourceLimits, WrongCodesAreLimitedServerWide) {
  SottodProcess server(
      Production("[registration]\ncode_attempts = 1000\nglobal_guess_rate_per_s = "
                 "0.001\nglobal_guess_burst = 2\n"));
  auto owner = ConnectFrom(server, "127.0.0.3");
  ASSERT_TRUE(owner);
  const std::string handle = Handle(1);
  ExpectOk(Call(*owner, AskCode(handle)));
  const std::string code = server.VerificationCode(handle);
  const std::string bad = code == "000000" ? "000001" : "000000";
  auto a = ConnectFrom(server, "127.0.0.1");
  auto b = ConnectFrom(server, "127.0.0.2");
  ASSERT_TRUE(a && b);
  ExpectStatus(Call(*a, Register(handle, bad)), wire::STATUS_BAD_CODE);
  ExpectStatus(Call(*b, Register(handle, bad)), wire::STATUS_BAD_CODE);  // the burst
  ExpectRefused(Call(*owner, Register(handle, code)), "registration.global_guess_rate");
}

// --- Finding 10: handle lookups -------------------------------------------------------

wire::Request Lookup(const std::string& handle) {
  wire::Request r;
  r.mutable_lookup()->set_handle(handle);
  return r;
}

TEST(SourceLimits, LookupsAreLimitedPerAccount) {
  SottodProcess server(Production("[lookups]\naccount_rate_per_s = 0.001\naccount_burst = 3\n"));
  REGISTERED(abuser, server, "127.0.0.1", Handle(1));
  REGISTERED(user, server, "127.0.0.2", Handle(2));
  // Enumerating numbers: the burst is answered (found or not), then refused by name.
  for (int i = 0; i < 3; ++i) {
    ExpectStatus(Call(*abuser.conn, Lookup(Handle(100 + i))), wire::STATUS_NOT_FOUND);
  }
  for (int i = 0; i < kAbuserRequests; ++i) {
    ExpectRefused(Call(*abuser.conn, Lookup(Handle(200 + i))), "lookups.account_rate");
  }
  auto found = Call(*user.conn, Lookup(Handle(1)));
  ExpectOk(found);
  EXPECT_EQ(found->lookup().account_id(), abuser.account_id);
  EXPECT_EQ(server.Metric("sotto_lookups_refused_total"), kAbuserRequests);
}

TEST(SourceLimits, LookupsAreLimitedPerSourceAcrossAccounts) {
  SottodProcess server(Production("[lookups]\nip_rate_per_s = 0.001\nip_burst = 4\n"));
  REGISTERED(a, server, "127.0.0.1", Handle(1));
  REGISTERED(b, server, "127.0.0.1", Handle(2));
  REGISTERED(user, server, "127.0.0.2", Handle(3));
  for (int i = 0; i < 2; ++i) ExpectOk(Call(*a.conn, Lookup(Handle(2))));
  for (int i = 0; i < 2; ++i) ExpectOk(Call(*b.conn, Lookup(Handle(1))));  // 4: the burst
  ExpectRefused(Call(*a.conn, Lookup(Handle(3))), "lookups.ip_rate");
  ExpectRefused(Call(*b.conn, Lookup(Handle(3))), "lookups.ip_rate");
  ExpectOk(Call(*user.conn, Lookup(Handle(1))));
}

TEST(SourceLimits, LookupsAreLimitedServerWide) {
  SottodProcess server(Production("[lookups]\nglobal_rate_per_s = 0.001\nglobal_burst = 2\n"));
  REGISTERED(a, server, "127.0.0.1", Handle(1));
  REGISTERED(b, server, "127.0.0.2", Handle(2));
  ExpectOk(Call(*a.conn, Lookup(Handle(2))));
  ExpectOk(Call(*b.conn, Lookup(Handle(1))));
  ExpectRefused(Call(*b.conn, Lookup(Handle(1))), "lookups.global_rate");
}

// --- Finding 4: prekey draining ---------------------------------------------------------

wire::Request GetBundle(const std::string& account) {
  wire::Request r;
  r.mutable_get_bundle()->set_account_id(account);
  return r;
}

// Ten Sybil accounts, each within its own bundle_rate, claim no more than the victim
// device's target budget; every later bundle carries the signed prekey only, and a
// legitimate contact still gets a bundle it can run X3DH with.
TEST(SourceLimits, SybilsCannotDrainMoreThanTheTargetBudget) {
  SottodProcess server(
      Production("[prekeys]\ntarget_rate_per_s = 0.001\ntarget_burst = "
                 "5\nnew_account_bundle_rate_per_s = 0\n"));
  REGISTERED(victim, server, "127.0.0.2", Handle(0));
  auto up = UploadKeys(victim, 4242, 20);
  ASSERT_OK(up);
  std::vector<TestDevice> sybils;
  for (int i = 1; i <= 10; ++i) {
    sybils.push_back(RegisterFrom(server, "127.0.0.1", Handle(i)));
    ASSERT_TRUE(sybils.back().conn);
  }
  int with_one_time = 0;
  std::set<uint32_t> claimed;
  for (TestDevice& s : sybils) {
    for (int i = 0; i < 3; ++i) {
      auto r = Call(*s.conn, GetBundle(victim.account_id));
      ASSERT_OK(r);
      ASSERT_EQ(r->get_bundle().bundles_size(), 1);
      const wire::DeviceBundle& b = r->get_bundle().bundles(0);
      if (b.has_one_time_prekey()) {
        ++with_one_time;
        EXPECT_TRUE(claimed.insert(b.one_time_prekey().id()).second);
      }
    }
  }
  EXPECT_EQ(with_one_time, 5);  // exactly the target budget of 30 fetches
  EXPECT_EQ(server.Metric("sotto_prekeys_withheld_total"), 25);
  wire::Request count;
  count.mutable_prekey_count();
  auto left = Call(*victim.conn, count);
  ASSERT_TRUE(left);
  EXPECT_EQ(left->prekey_count().count(), 15u);

  REGISTERED(contact, server, "127.0.0.3", Handle(50));
  auto r = Call(*contact.conn, GetBundle(victim.account_id));
  ASSERT_OK(r);
  ASSERT_EQ(r->get_bundle().bundles_size(), 1);
  const wire::DeviceBundle& b = r->get_bundle().bundles(0);
  EXPECT_FALSE(b.has_one_time_prekey());
  EXPECT_EQ(b.registration_id(), 4242u);
  // Usable: the identity key and the signed prekey whose signature it verifies (X3DH
  // without a one-time prekey, as Signal's protocol allows).
  ASSERT_EQ(b.identity_key().size(), 33u);
  crypto::X25519Public identity{};
  std::memcpy(identity.data(), b.identity_key().data() + 1, identity.size());
  EXPECT_TRUE(crypto::VerifySignature(identity, AsBytes(b.signed_prekey().public_key()),
                                      AsBytes(b.signed_prekey().signature())));
}

TEST(SourceLimits, FreshAccountsFetchBundlesAtTheLowerRate) {
  SottodProcess server(Production(
      "[prekeys]\nnew_account_bundle_rate_per_s = 0.001\nnew_account_bundle_burst = 2\n"));
  REGISTERED(victim, server, "127.0.0.2", Handle(0));
  ExpectOk(UploadKeys(victim, 7, 5));
  REGISTERED(sybil, server, "127.0.0.1", Handle(1));
  ExpectOk(Call(*sybil.conn, GetBundle(victim.account_id)));
  ExpectOk(Call(*sybil.conn, GetBundle(victim.account_id)));  // the burst
  for (int i = 0; i < kAbuserRequests; ++i) {
    ExpectRefused(Call(*sybil.conn, GetBundle(victim.account_id)),
                  "prekeys.new_account_bundle_rate");
  }
  EXPECT_EQ(server.Metric("sotto_bundles_new_account_limited_total"), kAbuserRequests);
}

TEST(SourceLimits, AnAccountAgeOfZeroTurnsTheFreshRateOff) {
  SottodProcess server(
      Production("[prekeys]\nnew_account_age_s = 0\nnew_account_bundle_rate_per_s = 0.001\n"
                 "new_account_bundle_burst = 1\n"));
  REGISTERED(victim, server, "127.0.0.2", Handle(0));
  ExpectOk(UploadKeys(victim, 7, 5));
  REGISTERED(requester, server, "127.0.0.1", Handle(1));
  for (int i = 0; i < 3; ++i) ExpectOk(Call(*requester.conn, GetBundle(victim.account_id)));
}

}  // namespace
}  // namespace sotto
