// The provisioning channel's cryptography and link codes (client/provisioning.h) and the
// device list's shape rules (wire/device_list.h). docs/devices.md.
#include "client/provisioning.h"

#include <gtest/gtest.h>

#include "client/client.h"
#include "wire/device_list.h"

namespace sotto::client {
namespace {

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(LinkCode, RoundTripsAndRefusesAnythingElse) {
  LinkCode code;
  code.provision_id = std::string(16, '\x07');
  code.companion_key.fill(0xAB);
  const std::string text = FormatLinkCode(code);
  EXPECT_EQ(text.size(), kLinkCodeSize);
  auto parsed = ParseLinkCode("  " + text + "\n");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->provision_id, code.provision_id);
  EXPECT_EQ(parsed->companion_key, code.companion_key);
  for (const std::string& bad :
       {std::string(), text.substr(1), text + "0", text.substr(0, 20),
        "sotto-link:" + std::string(96, 'g'), "other-link:" + text.substr(11)}) {
    auto r = ParseLinkCode(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().detail, static_cast<uint16_t>(SdkErr::kBadLinkCode));
  }
}

TEST(Provisioning, OnlyTheCompanionOpensAndTheRelayedBytesRevealNothing) {
  crypto::DeterministicRandom random(3);
  const crypto::X25519Private companion = crypto::GeneratePrivateKey(random);
  LinkCode code;
  code.provision_id = std::string(16, 'c');
  code.companion_key = crypto::PublicKeyOf(companion);
  content::ProvisionMessage message;
  message.set_account_id(std::string(16, '\x11'));
  message.set_handle("+15550009999");
  message.set_primary_identity("\x05" + std::string(32, '\x22'));
  message.set_link_token("THE-LINK-TOKEN-0123456789abcdef!");
  message.set_reply_provision_id(std::string(16, 'p'));
  ProvisionKeys primary_keys;
  auto sealed = SealProvisionMessage(code, message, random, primary_keys);
  ASSERT_TRUE(sealed);
  // What the server relays: no token, handle, account or identity in the clear.
  EXPECT_FALSE(Contains(*sealed, message.link_token()));
  EXPECT_FALSE(Contains(*sealed, message.handle()));
  EXPECT_FALSE(Contains(*sealed, message.account_id()));
  EXPECT_FALSE(Contains(*sealed, message.primary_identity().substr(1)));

  ProvisionKeys companion_keys;
  auto opened = OpenProvisionMessage(*sealed, companion, code.provision_id, companion_keys);
  ASSERT_TRUE(opened) << opened.error().ToString();
  EXPECT_EQ(opened->SerializeAsString(), message.SerializeAsString());
  EXPECT_TRUE(companion_keys.to_primary == primary_keys.to_primary);

  // Another key, another channel (associated data), or one flipped bit: refused.
  ProvisionKeys ignored;
  EXPECT_FALSE(OpenProvisionMessage(*sealed, crypto::GeneratePrivateKey(random), code.provision_id,
                                    ignored));
  EXPECT_FALSE(OpenProvisionMessage(*sealed, companion, std::string(16, 'x'), ignored));
  std::string tampered = *sealed;
  tampered.back() = static_cast<char>(tampered.back() ^ 1);
  EXPECT_FALSE(OpenProvisionMessage(tampered, companion, code.provision_id, ignored));
  EXPECT_FALSE(OpenProvisionMessage(std::string(kMaxProvisionEnvelopeBytes + 1, '\0'), companion,
                                    code.provision_id, ignored));

  // The reply travels the other way with the other key.
  content::ProvisionReply reply;
  reply.set_device_id(3);
  reply.set_identity_key("\x05" + std::string(32, '\x33'));
  auto sealed_reply = SealProvisionReply(reply, companion_keys, message.reply_provision_id());
  ASSERT_TRUE(sealed_reply);
  auto got = OpenProvisionReply(*sealed_reply, primary_keys, message.reply_provision_id());
  ASSERT_TRUE(got);
  EXPECT_EQ(got->device_id(), 3u);
  EXPECT_FALSE(OpenProvisionReply(*sealed_reply, primary_keys, code.provision_id));
  // The companion cannot be fooled by its own reply (keys differ per direction).
  EXPECT_FALSE(
      OpenProvisionMessage(*sealed_reply, companion, message.reply_provision_id(), ignored));
  // A reply claiming the primary's id is malformed.
  reply.set_device_id(1);
  EXPECT_FALSE(
      OpenProvisionReply(*SealProvisionReply(reply, companion_keys, "r"), primary_keys, "r"));
}

TEST(DeviceListShape, EnforcesEveryRuleAtItsEdge) {
  auto make = [](std::vector<uint32_t> ids, uint64_t version = 1) {
    wire::DeviceList list;
    list.set_account_id(std::string(16, 'a'));
    list.set_version(version);
    for (uint32_t id : ids) {
      auto* e = list.add_devices();
      e->set_device_id(id);
      e->set_identity_key("\x05" + std::string(32, static_cast<char>(id)));
    }
    return list.SerializeAsString();
  };
  wire::DeviceList out;
  EXPECT_TRUE(wire::ParseDeviceList(make({1, 2, 5}), out));
  std::vector<uint32_t> most(wire::kMaxDeviceListEntries);
  for (size_t i = 0; i < most.size(); ++i) most[i] = static_cast<uint32_t>(i + 1);
  EXPECT_TRUE(wire::ParseDeviceList(make(most), out));  // at kMaxDeviceListEntries
  most.push_back(100);
  EXPECT_FALSE(wire::ParseDeviceList(make(most), out));  // past it
  EXPECT_FALSE(wire::ParseDeviceList(make({}), out));
  EXPECT_FALSE(wire::ParseDeviceList(make({2, 3}), out));     // no primary first
  EXPECT_FALSE(wire::ParseDeviceList(make({1, 3, 3}), out));  // repeated
  EXPECT_FALSE(wire::ParseDeviceList(make({1, 4, 3}), out));  // out of order
  EXPECT_FALSE(wire::ParseDeviceList(make({1}, 0), out));     // version 0
  EXPECT_FALSE(wire::ParseDeviceList(std::string(wire::kMaxDeviceListBytes + 1, '\0'), out));
  EXPECT_FALSE(wire::ParseDeviceList("\xff\xff", out));
  wire::DeviceList short_key;
  short_key.ParseFromString(make({1}));
  short_key.mutable_devices(0)->set_identity_key("\x05short");
  EXPECT_FALSE(wire::ParseDeviceList(short_key.SerializeAsString(), out));
}

}  // namespace
}  // namespace sotto::client
