// The server's side of linked devices through the real wire protocol against a real
// sottod: the provisioning relay, link tokens and the device limit, pending devices,
// the checks on a published device list, unlinking. docs/devices.md.
#include <gtest/gtest.h>

#include "tests/integration/sottod_process.h"
#include "tests/integration/test_account.h"
#include "wire/device_list.h"

namespace sotto {
namespace {

using testing::NextOf;
using testing::RegisterDevice;
using testing::SottodOptions;
using testing::SottodProcess;
using testing::TestDevice;
using testing::UploadKeys;

// A call that fails is the test's failure and answers STATUS_INTERNAL (a default
// Response would say STATUS_OK), so no later check for success passes on it.
wire::Response MustCall(client::GatewayClient& c, const wire::Request& r) {
  auto resp = c.Call(r);
  if (resp) return *resp;
  ADD_FAILURE() << resp.error().ToString();
  wire::Response failed;
  failed.set_status(wire::STATUS_INTERNAL);
  failed.set_reason("the call failed");
  return failed;
}

// A connection with a fresh, unregistered key; without a connection (and the test's
// failure) if it cannot connect: callers check `conn`.
TestDevice Fresh(const SottodProcess& server) {
  TestDevice d;
  d.noise = noise::KeyPair::Generate(crypto::SystemRandom());
  auto c = client::GatewayClient::Connect(testing::DeviceOptions(server, d.noise));
  if (!c) {
    ADD_FAILURE() << "connect: " << c.error().ToString();
    return d;
  }
  d.conn = std::move(*c);
  return d;
}

std::string IdentityKey(const TestDevice& d) {
  const crypto::X25519Public pub = crypto::PublicKeyOf(*d.identity);
  std::string out(1, '\x05');
  out.append(reinterpret_cast<const char*>(pub.data()), pub.size());
  return out;
}

wire::Request Token() {
  wire::Request r;
  r.mutable_link_token();
  return r;
}

wire::Request LinkWith(const std::string& token) {
  wire::Request r;
  r.mutable_link_device()->set_token(token);
  return r;
}

// Links a fresh device to `primary`'s account and uploads its keys; on any failure (the
// test's) the device comes back without a connection: callers check `conn`.
TestDevice LinkCompanion(const SottodProcess& server, TestDevice& primary, uint32_t reg_id) {
  TestDevice d = Fresh(server);
  if (!d.conn) return d;
  auto failed = [&d](const std::string& what) {
    ADD_FAILURE() << "linking: " << what;
    d.conn.reset();
    return std::move(d);
  };
  wire::Response token = MustCall(*primary.conn, Token());
  if (token.status() != wire::STATUS_OK) return failed("link_token: " + token.reason());
  wire::Response linked = MustCall(*d.conn, LinkWith(token.link_token().token()));
  if (linked.status() != wire::STATUS_OK) return failed("link_device: " + linked.reason());
  d.account_id = linked.link_device().account_id();
  d.device_id = linked.link_device().device_id();
  auto up = UploadKeys(d, reg_id, 2);
  if (!up || up->status() != wire::STATUS_OK) return failed("upload_keys");
  return d;
}

// A signed list of (device id, identity key) entries, signed with `signer`.
wire::Request Publish(const std::string& account, uint64_t version,
                      const std::vector<std::pair<uint32_t, std::string>>& entries,
                      const crypto::X25519Private& signer) {
  wire::DeviceList list;
  list.set_account_id(account);
  list.set_version(version);
  list.set_timestamp_ms(1);
  for (const auto& [id, key] : entries) {
    auto* e = list.add_devices();
    e->set_device_id(id);
    e->set_identity_key(key);
  }
  wire::Request r;
  auto* signed_list = r.mutable_publish_device_list()->mutable_list();
  signed_list->set_list(list.SerializeAsString());
  const Bytes message = wire::DeviceListSignedBytes(signed_list->list());
  const crypto::Signature sig = crypto::Sign(signer, message, crypto::SystemRandom());
  signed_list->set_signature(reinterpret_cast<const char*>(sig.data()), sig.size());
  return r;
}

std::vector<uint32_t> LookupDevices(TestDevice& asker, const std::string& handle) {
  wire::Request r;
  r.mutable_lookup()->set_handle(handle);
  wire::Response resp = MustCall(*asker.conn, r);
  return {resp.lookup().device_ids().begin(), resp.lookup().device_ids().end()};
}

TEST(DevicesServer, ProvisioningRelaysOpaqueBytesToTheOpenConnectionOnly) {
  SottodOptions options;
  options.config_toml = "[devices]\nmax_provision_body_bytes = 256\n";
  SottodProcess server(options);
  auto primary = RegisterDevice(server, "+15552220001");
  ASSERT_TRUE(primary);
  TestDevice waiting = Fresh(server);  // unregistered: provisioning needs no account
  ASSERT_TRUE(waiting.conn) << "setting up waiting";
  wire::Request open;
  open.mutable_provision_open();
  wire::Response opened = MustCall(*waiting.conn, open);
  ASSERT_EQ(opened.status(), wire::STATUS_OK) << opened.reason();
  const std::string id = opened.provision_open().provision_id();
  ASSERT_EQ(id.size(), 16u);
  EXPECT_EQ(opened.provision_open().expires_in_s(), 600u);

  auto send = [&](const std::string& to, const std::string& body) {
    wire::Request r;
    r.mutable_provision_send()->set_provision_id(to);
    r.mutable_provision_send()->set_body(body);
    return MustCall(*primary->conn, r);
  };
  const std::string body(256, '\xA5');  // at devices.max_provision_body_bytes
  ASSERT_EQ(send(id, body).status(), wire::STATUS_OK);
  auto frame = NextOf(*waiting.conn, wire::Frame::kProvision);
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->provision().provision_id(), id);
  EXPECT_EQ(frame->provision().body(), body);  // relayed byte for byte, nothing added

  EXPECT_EQ(send(id, std::string(257, 'x')).status(), wire::STATUS_TOO_LARGE);  // past it
  EXPECT_EQ(send(id, "").status(), wire::STATUS_TOO_LARGE);
  EXPECT_EQ(send("short", "x").status(), wire::STATUS_BAD_REQUEST);
  EXPECT_EQ(send(std::string(16, '\0'), "x").status(), wire::STATUS_NOT_FOUND);

  // Opening again replaces the connection's id; closing the connection forgets it.
  wire::Response reopened = MustCall(*waiting.conn, open);
  ASSERT_EQ(reopened.status(), wire::STATUS_OK);
  EXPECT_EQ(send(id, "x").status(), wire::STATUS_NOT_FOUND);
  const std::string id2 = reopened.provision_open().provision_id();
  waiting.conn.reset();
  wire::StatusCode status = wire::STATUS_OK;
  for (int i = 0; i < 1000 && status == wire::STATUS_OK; ++i) status = send(id2, "x").status();
  EXPECT_EQ(status, wire::STATUS_NOT_FOUND);
}

TEST(DevicesServer, LinkTokensAreSingleUsePrimaryOnlyAndTheDeviceLimitHolds) {
  SottodOptions options;
  options.config_toml = "[devices]\nmax_devices_per_account = 3\n";
  SottodProcess server(options);
  auto primary = RegisterDevice(server, "+15552230001");
  ASSERT_TRUE(primary);
  ASSERT_TRUE(UploadKeys(*primary, 11, 2));
  auto other = RegisterDevice(server, "+15552230002");
  ASSERT_TRUE(other);

  TestDevice fresh = Fresh(server);
  ASSERT_TRUE(fresh.conn) << "setting up fresh";
  EXPECT_EQ(MustCall(*fresh.conn, Token()).status(), wire::STATUS_UNAUTHENTICATED);
  EXPECT_EQ(MustCall(*fresh.conn, LinkWith("no such token")).status(), wire::STATUS_BAD_CODE);
  const std::string token = MustCall(*primary->conn, Token()).link_token().token();
  ASSERT_EQ(token.size(), 32u);
  wire::Response linked = MustCall(*fresh.conn, LinkWith(token));
  ASSERT_EQ(linked.status(), wire::STATUS_OK) << linked.reason();
  EXPECT_EQ(linked.link_device().device_id(), 2u);
  EXPECT_EQ(linked.link_device().account_id(), primary->account_id);
  // Single use.
  TestDevice second = Fresh(server);
  ASSERT_TRUE(second.conn) << "setting up second";
  EXPECT_EQ(MustCall(*second.conn, LinkWith(token)).status(), wire::STATUS_BAD_CODE);
  // Companions do not issue tokens.
  EXPECT_EQ(MustCall(*fresh.conn, Token()).status(), wire::STATUS_PERMISSION_DENIED);

  // Pending until listed: not in lookups, not required in a Send.
  EXPECT_EQ(LookupDevices(*other, "+15552230001"), (std::vector<uint32_t>{1}));
  primary->registration_id = 11;
  EXPECT_EQ(MustCall(*other->conn, testing::SendTo(*primary, {1}, "m1", "x")).status(),
            wire::STATUS_OK);
  wire::Response extra = MustCall(*other->conn, testing::SendTo(*primary, {1, 2}, "m2", "x"));
  EXPECT_EQ(extra.status(), wire::STATUS_STALE_DEVICES);
  ASSERT_EQ(extra.send().extra_devices_size(), 1);

  // Up to the limit (3 devices here), then refused at token time and at link time.
  const std::string early = MustCall(*primary->conn, Token()).link_token().token();
  TestDevice third = Fresh(server);
  ASSERT_TRUE(third.conn) << "setting up third";
  ASSERT_EQ(MustCall(*third.conn, LinkWith(MustCall(*primary->conn, Token()).link_token().token()))
                .status(),
            wire::STATUS_OK);
  wire::Response full = MustCall(*primary->conn, Token());
  EXPECT_EQ(full.status(), wire::STATUS_TOO_MANY_DEVICES);
  EXPECT_NE(full.reason().find("max_devices_per_account"), std::string::npos);
  TestDevice fourth = Fresh(server);
  ASSERT_TRUE(fourth.conn) << "setting up fourth";
  wire::Response refused = MustCall(*fourth.conn, LinkWith(early));
  EXPECT_EQ(refused.status(), wire::STATUS_TOO_MANY_DEVICES);
  EXPECT_NE(refused.reason().find("max_devices_per_account"), std::string::npos);
}

TEST(DevicesServer, APublishedListIsCheckedThenActivatesItsDevices) {
  SottodProcess server;
  auto primary = RegisterDevice(server, "+15552240001");
  ASSERT_TRUE(primary);
  ASSERT_TRUE(UploadKeys(*primary, 21, 2));
  auto other = RegisterDevice(server, "+15552240002");
  ASSERT_TRUE(other);
  TestDevice companion = LinkCompanion(server, *primary, 22);
  ASSERT_TRUE(companion.conn) << "setting up companion";
  ASSERT_TRUE(companion.conn);
  const std::string& account = primary->account_id;
  const std::vector<std::pair<uint32_t, std::string>> both{{1, IdentityKey(*primary)},
                                                           {2, IdentityKey(companion)}};
  const crypto::X25519Private mallory = crypto::GeneratePrivateKey(crypto::SystemRandom());

  // Signed by another key (e.g. injected by a compromised server's client): refused.
  EXPECT_EQ(MustCall(*primary->conn, Publish(account, 1, both, mallory)).status(),
            wire::STATUS_PERMISSION_DENIED);
  // Only the primary publishes, even a list it signed.
  EXPECT_EQ(MustCall(*companion.conn, Publish(account, 1, both, *primary->identity)).status(),
            wire::STATUS_PERMISSION_DENIED);
  // A key that is not the one the device uploaded.
  EXPECT_EQ(MustCall(*primary->conn,
                     Publish(account, 1, {{1, IdentityKey(*primary)}, {2, IdentityKey(*primary)}},
                             *primary->identity))
                .status(),
            wire::STATUS_CONFLICT);
  // A device the account does not have; another account; malformed bytes.
  EXPECT_EQ(MustCall(*primary->conn,
                     Publish(account, 1, {{1, IdentityKey(*primary)}, {7, IdentityKey(companion)}},
                             *primary->identity))
                .status(),
            wire::STATUS_CONFLICT);
  EXPECT_EQ(
      MustCall(*primary->conn, Publish(other->account_id, 1, both, *primary->identity)).status(),
      wire::STATUS_BAD_REQUEST);
  wire::Request garbage = Publish(account, 1, both, *primary->identity);
  garbage.mutable_publish_device_list()->mutable_list()->set_list("\xff\xff");
  EXPECT_EQ(MustCall(*primary->conn, garbage).status(), wire::STATUS_BAD_REQUEST);
  EXPECT_EQ(LookupDevices(*other, "+15552240001"), (std::vector<uint32_t>{1}));

  ASSERT_EQ(MustCall(*primary->conn, Publish(account, 1, both, *primary->identity)).status(),
            wire::STATUS_OK);
  EXPECT_EQ(LookupDevices(*other, "+15552240001"), (std::vector<uint32_t>{1, 2}));
  // Now required in a Send to the account.
  primary->registration_id = 21;
  wire::Response missing = MustCall(*other->conn, testing::SendTo(*primary, {1}, "m1", "x"));
  EXPECT_EQ(missing.status(), wire::STATUS_STALE_DEVICES);
  ASSERT_EQ(missing.send().missing_devices_size(), 1);
  EXPECT_EQ(missing.send().missing_devices(0), 2u);
  // Bundles carry the list.
  wire::Request bundle;
  bundle.mutable_get_bundle()->set_account_id(account);
  wire::Response bundles = MustCall(*other->conn, bundle);
  ASSERT_EQ(bundles.status(), wire::STATUS_OK);
  EXPECT_EQ(bundles.get_bundle().bundles_size(), 2);
  wire::DeviceList parsed;
  ASSERT_TRUE(wire::ParseDeviceList(bundles.get_bundle().device_list().list(), parsed));
  EXPECT_EQ(parsed.version(), 1u);

  // The version only goes up; an active device cannot be left out.
  EXPECT_EQ(MustCall(*primary->conn, Publish(account, 1, both, *primary->identity)).status(),
            wire::STATUS_STALE_DEVICE_LIST);
  EXPECT_EQ(MustCall(*primary->conn,
                     Publish(account, 2, {{1, IdentityKey(*primary)}}, *primary->identity))
                .status(),
            wire::STATUS_CONFLICT);
  wire::Request get;
  get.mutable_get_device_list()->set_account_id(account);
  wire::Response seen = MustCall(*other->conn, get);
  ASSERT_EQ(seen.status(), wire::STATUS_OK);
  EXPECT_EQ(seen.device_list().version(), 1u);
  EXPECT_EQ(seen.device_list().devices_size(), 0);  // device details only for the owner
}

TEST(DevicesServer, UnlinkRemovesTheDeviceEverywhere) {
  SottodProcess server;
  auto primary = RegisterDevice(server, "+15552250001");
  ASSERT_TRUE(primary);
  ASSERT_TRUE(UploadKeys(*primary, 31, 2));
  auto other = RegisterDevice(server, "+15552250002");
  ASSERT_TRUE(other);
  TestDevice c2 = LinkCompanion(server, *primary, 32);
  ASSERT_TRUE(c2.conn) << "setting up c2";
  TestDevice c3 = LinkCompanion(server, *primary, 33);
  ASSERT_TRUE(c3.conn) << "setting up c3";
  ASSERT_EQ(
      MustCall(*primary->conn,
               Publish(primary->account_id, 1,
                       {{1, IdentityKey(*primary)}, {2, IdentityKey(c2)}, {3, IdentityKey(c3)}},
                       *primary->identity))
          .status(),
      wire::STATUS_OK);
  auto unlink = [](TestDevice& by, uint32_t id) {
    wire::Request r;
    r.mutable_unlink_device()->set_device_id(id);
    return MustCall(*by.conn, r).status();
  };
  EXPECT_EQ(unlink(c2, 1), wire::STATUS_BAD_REQUEST);
  EXPECT_EQ(unlink(c2, 3), wire::STATUS_PERMISSION_DENIED);
  EXPECT_EQ(unlink(*primary, 9), wire::STATUS_NOT_FOUND);
  ASSERT_EQ(unlink(*primary, 3), wire::STATUS_OK);
  auto closed = NextOf(*c3.conn, wire::Frame::kClose);
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->close().reason(), wire::CLOSE_REPLACED);
  EXPECT_EQ(LookupDevices(*other, "+15552250001"), (std::vector<uint32_t>{1, 2}));
  primary->registration_id = 31;
  wire::Request send = testing::SendTo(*primary, {1, 2, 3}, "m1", "x");
  send.mutable_send()->mutable_messages(1)->set_registration_id(32);
  send.mutable_send()->mutable_messages(2)->set_registration_id(33);
  wire::Response extra = MustCall(*other->conn, send);
  EXPECT_EQ(extra.status(), wire::STATUS_STALE_DEVICES);
  ASSERT_EQ(extra.send().extra_devices_size(), 1);
  EXPECT_EQ(extra.send().extra_devices(0), 3u);
  // Its key no longer authenticates.
  ASSERT_TRUE(testing::Reconnect(server, c3));
  wire::Request who;
  who.mutable_whoami();
  EXPECT_FALSE(MustCall(*c3.conn, who).whoami().registered());
  // A companion unlinks itself.
  EXPECT_EQ(unlink(c2, 2), wire::STATUS_OK);
  EXPECT_EQ(LookupDevices(*other, "+15552250001"), (std::vector<uint32_t>{1}));
}

// Group fan-out follows the same rule: a pending companion is not among a member's
// devices until the member's primary lists it.
TEST(DevicesServer, GroupDevicesLeaveOutPendingCompanions) {
  SottodProcess server;
  auto owner = RegisterDevice(server, "+15552260001");
  ASSERT_TRUE(owner);
  auto member = RegisterDevice(server, "+15552260002");
  ASSERT_TRUE(member);
  ASSERT_TRUE(UploadKeys(*member, 41, 2));
  wire::Request create;
  create.mutable_create_group()->add_members(member->account_id);
  wire::Response created = MustCall(*owner->conn, create);
  ASSERT_EQ(created.status(), wire::STATUS_OK) << created.reason();
  const std::string group = created.group().group().group_id();
  auto member_devices = [&] {
    wire::Request r;
    r.mutable_get_group_devices()->set_group_id(group);
    wire::Response resp = MustCall(*owner->conn, r);
    EXPECT_EQ(resp.status(), wire::STATUS_OK) << resp.reason();
    for (const wire::MemberDevices& m : resp.group_devices().members()) {
      if (m.account_id() == member->account_id) {
        return std::vector<uint32_t>(m.device_ids().begin(), m.device_ids().end());
      }
    }
    return std::vector<uint32_t>();
  };
  TestDevice companion = LinkCompanion(server, *member, 42);
  ASSERT_TRUE(companion.conn) << "setting up companion";
  EXPECT_EQ(member_devices(), (std::vector<uint32_t>{1}));
  ASSERT_EQ(
      MustCall(*member->conn,
               Publish(member->account_id, 1,
                       {{1, IdentityKey(*member)}, {2, IdentityKey(companion)}}, *member->identity))
          .status(),
      wire::STATUS_OK);
  EXPECT_EQ(member_devices(), (std::vector<uint32_t>{1, 2}));
}

}  // namespace
}  // namespace sotto
