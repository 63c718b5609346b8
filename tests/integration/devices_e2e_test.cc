// Linked devices end to end through the SDK against a real sottod: an account with a
// primary and companions linked over the provisioning channel, every device seeing the
// whole conversation (sent-message sync), the companion limit, unlinking, and device
// list verification. Waits are on conditions (Client::Poll with a predicate), never sleeps.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "client/client.h"
#include "client/device_list.h"
#include "client/gateway_client.h"
#include "client/provisioning.h"
#include "tests/integration/sottod_process.h"
#include "tests/integration/test_account.h"

namespace sotto::client {
namespace {

using std::chrono::milliseconds;
using testing::SottodProcess;

constexpr milliseconds kWait{10'000};

struct Device {
  std::string name;
  std::string home;
  std::unique_ptr<Client> client;
  std::vector<Event> events;

  explicit Device(std::string n) : name(std::move(n)) {
    char tmpl[] = "/tmp/sotto-devices-XXXXXX";
    home = std::string(mkdtemp(tmpl)) + "/home";
    ClientConfig config;
    config.home = home;
    auto opened = Client::Open(config);
    if (!opened) throw std::runtime_error("open: " + opened.error().ToString());
    client = std::move(*opened);
    client->SetEventSink([this](const Event& e) { events.push_back(e); });
  }
  ~Device() {
    client.reset();
    std::filesystem::remove_all(std::filesystem::path(home).parent_path());
  }
  void PollUntil(const std::function<bool()>& pred) {
    auto polled = client->Poll(kWait, pred);
    if (!polled) throw std::runtime_error(name + ": poll failed: " + polled.error().ToString());
    if (!pred()) throw std::runtime_error(name + ": condition not reached within the wait");
  }
  size_t ConversationSize(const std::string& handle) {
    auto c = client->Conversation(handle, 1000);
    return c ? c->size() : 0;
  }
};

// What must be the same on every device of an account: order, direction, id, text.
std::vector<std::string> Summary(Device& d, const std::string& handle) {
  std::vector<std::string> out;
  auto c = d.client->Conversation(handle, 1000);
  if (!c) return {"error: " + c.error().ToString()};
  for (const StoredMessage& m : *c) {
    out.push_back(std::string(m.direction == MessageDirection::kOutgoing ? "out " : "in ") +
                  m.message_id + " " + m.body);
  }
  return out;
}

class DevicesTest : public ::testing::Test {
 protected:
  std::string Server() const { return "127.0.0.1:" + std::to_string(sottod_.tcp_address().port()); }
  void Register(Device& d, const std::string& handle) {
    ASSERT_TRUE(d.client->StartRegistration(Server(), sottod_.server_key(), handle));
    auto finished = d.client->FinishRegistration(sottod_.VerificationCode(handle));
    ASSERT_TRUE(finished) << finished.error().ToString();
  }
  // Links `companion` to `primary`'s account: the companion waits in a thread while the
  // primary approves (as `sotto link` and `sotto link-approve` do in two processes).
  Result<uint32_t> Link(Device& primary, Device& companion) {
    auto code = companion.client->StartLink(Server(), sottod_.server_key());
    if (!code) return tl::unexpected(code.error());
    Status finished = Ok();
    std::thread waiter([&] { finished = companion.client->FinishLink(kWait); });
    auto approved = primary.client->ApproveLink(*code, kWait);
    waiter.join();
    if (!finished) return tl::unexpected(finished.error());
    return approved;
  }
  SottodProcess sottod_;
};

TEST_F(DevicesTest, PrimaryAndTwoCompanionsSeeTheWholeConversation) {
  Device alice("alice"), alice2("alice2"), alice3("alice3"), bob("bob");
  const std::string a = "+15551110001", b = "+15551110002";
  ASSERT_NO_FATAL_FAILURE(Register(alice, a));
  ASSERT_NO_FATAL_FAILURE(Register(bob, b));
  auto id2 = Link(alice, alice2);
  ASSERT_TRUE(id2) << id2.error().ToString();
  auto id3 = Link(alice, alice3);
  ASSERT_TRUE(id3) << id3.error().ToString();
  EXPECT_EQ(*id2, 2u);
  EXPECT_EQ(*id3, 3u);
  EXPECT_EQ(alice2.client->account()->handle, a);
  EXPECT_EQ(alice2.client->account()->account_id, alice.client->account()->account_id);

  auto devices = alice.client->Devices();
  ASSERT_TRUE(devices) << devices.error().ToString();
  ASSERT_EQ(devices->size(), 3u);
  for (const LinkedDevice& d : *devices) {
    EXPECT_FALSE(d.pending) << d.device_id;
    EXPECT_TRUE(d.listed) << d.device_id;
  }
  ASSERT_TRUE(bob.client->Connect());
  std::vector<Device*> all{&alice, &alice2, &alice3};

  // Each of the four sends; every device of both accounts gets every message.
  auto step = [&](Device& from, const std::string& to, const std::string& text, size_t n) {
    auto sent = from.client->SendText(to, text);
    ASSERT_TRUE(sent) << from.name << ": " << sent.error().ToString();
    EXPECT_EQ(sent->tick, Tick::kSent);
    for (Device* d : all) {
      (void)d->client->Poll(kWait, [&] { return d->ConversationSize(b) == n; });
      ASSERT_EQ(d->ConversationSize(b), n) << d->name << " after: " << text;
    }
    bob.PollUntil([&] { return bob.ConversationSize(a) == n; });
  };
  ASSERT_NO_FATAL_FAILURE(step(alice, b, "from the primary", 1));
  ASSERT_NO_FATAL_FAILURE(step(bob, a, "from bob", 2));
  ASSERT_NO_FATAL_FAILURE(step(alice2, b, "from the first companion", 3));
  ASSERT_NO_FATAL_FAILURE(step(alice3, b, "from the second companion", 4));
  ASSERT_NO_FATAL_FAILURE(step(bob, a, "bob again", 5));

  const std::vector<std::string> expected = Summary(alice, b);
  ASSERT_EQ(expected.size(), 5u);
  EXPECT_EQ(Summary(alice2, b), expected);
  EXPECT_EQ(Summary(alice3, b), expected);
  // Bob's view is the mirror: the same ids and texts.
  const std::vector<std::string> bobs = Summary(bob, a);
  ASSERT_EQ(bobs.size(), 5u);
  for (size_t i = 0; i < bobs.size(); ++i) {
    const bool out = expected[i].starts_with("out ");
    EXPECT_EQ(bobs[i], (out ? "in " : "out ") + expected[i].substr(out ? 4 : 3)) << i;
  }
}

TEST_F(DevicesTest, AFifthCompanionIsRefused) {
  Device primary("primary");
  ASSERT_NO_FATAL_FAILURE(Register(primary, "+15551120001"));
  std::vector<std::unique_ptr<Device>> companions;
  for (int i = 0; i < 4; ++i) {
    companions.push_back(std::make_unique<Device>("companion" + std::to_string(i)));
    auto linked = Link(primary, *companions.back());
    ASSERT_TRUE(linked) << i << ": " << linked.error().ToString();
  }
  Device fifth("fifth");
  auto code = fifth.client->StartLink(Server(), sottod_.server_key());
  ASSERT_TRUE(code);
  auto refused = primary.client->ApproveLink(*code, kWait);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().detail, static_cast<uint16_t>(SdkErr::kTooManyDevices));
  auto devices = primary.client->Devices();
  ASSERT_TRUE(devices);
  EXPECT_EQ(devices->size(), 5u);

  // Unlinking one makes room again.
  ASSERT_TRUE(primary.client->Unlink(3));
  Device again("again");
  auto linked = Link(primary, again);
  ASSERT_TRUE(linked) << linked.error().ToString();
  EXPECT_EQ(*linked, 6u);  // ids are never reused
}

TEST_F(DevicesTest, AnUnlinkedDeviceStopsReceivingAndSendersDropIt) {
  Device alice("alice"), alice2("alice2"), alice3("alice3"), bob("bob");
  const std::string a = "+15551130001", b = "+15551130002";
  ASSERT_NO_FATAL_FAILURE(Register(alice, a));
  ASSERT_NO_FATAL_FAILURE(Register(bob, b));
  ASSERT_TRUE(Link(alice, alice2));
  ASSERT_TRUE(Link(alice, alice3));
  ASSERT_TRUE(bob.client->SendText(a, "to three devices"));
  for (Device* d : {&alice, &alice2, &alice3})
    d->PollUntil([&] { return d->ConversationSize(b) == 1; });
  const std::string alice_id = ToHex(alice.client->account()->account_id);
  auto sessions = bob.client->store().GetDeviceSessions(alice_id);
  ASSERT_TRUE(sessions);
  EXPECT_EQ(sessions->size(), 3u);

  ASSERT_TRUE(alice.client->Unlink(3));
  alice3.PollUntil([&] { return !alice3.client->connected(); });
  EXPECT_FALSE(alice3.client->Connect());  // the server no longer knows its key

  ASSERT_TRUE(bob.client->SendText(a, "to two devices"));
  for (Device* d : {&alice, &alice2}) d->PollUntil([&] { return d->ConversationSize(b) == 2; });
  sessions = bob.client->store().GetDeviceSessions(alice_id);
  ASSERT_TRUE(sessions);
  EXPECT_EQ(*sessions, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(alice3.ConversationSize(b), 1u);

  // A companion may unlink itself, not others; the primary then republishes the list.
  EXPECT_FALSE(alice2.client->Unlink(1));
  ASSERT_TRUE(alice2.client->Unlink(2));
  auto devices = alice.client->Devices();
  ASSERT_TRUE(devices);
  ASSERT_EQ(devices->size(), 1u);
  ASSERT_TRUE(bob.client->SendText(a, "to the primary alone"));
  alice.PollUntil([&] { return alice.ConversationSize(b) == 3; });
}

// A device the primary never listed (linked behind the primary's back with a token, as a
// stolen token or a compromised server could) can send, but receivers refuse its messages.
TEST_F(DevicesTest, ReceiversRefuseMessagesFromADeviceTheListDoesNotName) {
  Device alice("alice"), rogue("rogue"), bob("bob");
  const std::string a = "+15551140001", b = "+15551140002";
  ASSERT_NO_FATAL_FAILURE(Register(alice, a));
  ASSERT_NO_FATAL_FAILURE(Register(bob, b));
  ASSERT_TRUE(bob.client->SendText(a, "hello alice"));
  // A second connection with the primary's key takes a token and plays the primary's part
  // of provisioning without ever publishing a list.
  const LocalAccount account = *alice.client->account();
  alice.client.reset();
  auto raw = GatewayClient::Connect(testing::DeviceOptions(sottod_, account.noise_static));
  ASSERT_TRUE(raw);
  wire::Request token;
  token.mutable_link_token();
  auto issued = (*raw)->Call(token);
  ASSERT_TRUE(issued && issued->status() == wire::STATUS_OK);
  wire::Request open;
  open.mutable_provision_open();
  auto opened = (*raw)->Call(open);
  ASSERT_TRUE(opened && opened->status() == wire::STATUS_OK);
  auto code_text = rogue.client->StartLink(Server(), sottod_.server_key());
  ASSERT_TRUE(code_text);
  auto code = ParseLinkCode(*code_text);
  ASSERT_TRUE(code);
  content::ProvisionMessage message;
  message.set_account_id(account.account_id.data(), account.account_id.size());
  message.set_handle(a);
  const signal::SerializedPublicKey identity = account.identity.public_key.Serialize();
  message.set_primary_identity(identity.data(), identity.size());
  message.set_link_token(issued->link_token().token());
  message.set_reply_provision_id(opened->provision_open().provision_id());
  ProvisionKeys keys;
  auto body = SealProvisionMessage(*code, message, crypto::SystemRandom(), keys);
  ASSERT_TRUE(body);
  wire::Request relay;
  relay.mutable_provision_send()->set_provision_id(code->provision_id);
  relay.mutable_provision_send()->set_body(*body);
  auto relayed = (*raw)->Call(relay);
  ASSERT_TRUE(relayed && relayed->status() == wire::STATUS_OK);
  auto finished = rogue.client->FinishLink(kWait);
  ASSERT_TRUE(finished) << finished.error().ToString();
  EXPECT_EQ(rogue.client->account()->device_id, 2u);

  auto sent = rogue.client->SendText(b, "believe me, I am alice");
  ASSERT_TRUE(sent) << sent.error().ToString();
  ASSERT_TRUE(bob.client->Connect());
  bob.PollUntil([&] { return bob.client->stats().decrypt_failures >= 1; });
  EXPECT_EQ(bob.ConversationSize(a), 1u);  // only bob's own message
  EXPECT_EQ(bob.client->stats().received, 0u);
}

// The client-side check every sender and receiver applies, fed good and bad lists.
// Groups and linked devices together: the server fans a group message out to every
// device of every member, our own other devices included, and each device hands its
// sender key to every other device (companions and its own account's other devices), so
// a message sent from any device is read on every other one, and shows as ours on the
// sender's companions.
TEST_F(DevicesTest, GroupMessagesReachEveryDeviceOfEveryMemberAndTheSendersOwnDevices) {
  Device alice("alice"), alice2("alice2"), bob("bob"), bob2("bob2"), carol("carol");
  const std::string a = "+15551110001", b = "+15551110002", c = "+15551110003";
  ASSERT_NO_FATAL_FAILURE(Register(alice, a));
  ASSERT_NO_FATAL_FAILURE(Register(bob, b));
  ASSERT_NO_FATAL_FAILURE(Register(carol, c));
  ASSERT_TRUE(Link(alice, alice2));
  ASSERT_TRUE(Link(bob, bob2));
  ASSERT_TRUE(bob.client->Connect());
  ASSERT_TRUE(carol.client->Connect());

  auto group = alice.client->CreateGroup("devices", {b, c});
  ASSERT_TRUE(group) << group.error().ToString();
  std::vector<Device*> all{&alice, &alice2, &bob, &bob2, &carol};
  auto size_of = [&](Device& d) {
    auto conversation = d.client->GroupConversation(group->id, 1000);
    return conversation ? conversation->size() : size_t{0};
  };
  size_t n = 0;
  auto send = [&](Device& from, const std::string& text) {
    auto sent = from.client->SendGroupText(group->id, text);
    ASSERT_TRUE(sent) << from.name << ": " << sent.error().ToString();
    EXPECT_EQ(sent->tick, Tick::kSent) << from.name;
    ++n;
    for (Device* d : all) {
      (void)d->client->Poll(kWait, [&] { return size_of(*d) == n; });
      ASSERT_EQ(size_of(*d), n) << d->name << " after: " << text;
    }
  };
  ASSERT_NO_FATAL_FAILURE(send(alice, "from alice's primary"));
  ASSERT_NO_FATAL_FAILURE(send(bob2, "from bob's companion"));
  ASSERT_NO_FATAL_FAILURE(send(alice2, "from alice's companion"));
  ASSERT_NO_FATAL_FAILURE(send(bob, "from bob's primary"));

  // Every device has the same messages in the same order per sender, with the same
  // authors; each account's devices agree on which ones are their own.
  auto summary = [&](Device& d, const std::string& own_account) {
    std::vector<std::string> out;
    auto conversation = d.client->GroupConversation(group->id, 1000);
    if (!conversation) return std::vector<std::string>{conversation.error().ToString()};
    for (const StoredMessage& m : *conversation) {
      const bool ours = m.direction == MessageDirection::kOutgoing;
      const std::string author = ours ? own_account : m.group_sender;
      out.push_back(m.message_id + " " + author + " " + m.body + (ours ? " (ours)" : ""));
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  auto hex = [](const Bytes& bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (uint8_t byte : bytes) {
      out += kDigits[byte >> 4];
      out += kDigits[byte & 15];
    }
    return out;
  };
  const std::string alice_id = hex(alice.client->account()->account_id);
  const std::string bob_id = hex(bob.client->account()->account_id);
  EXPECT_EQ(summary(alice2, alice_id), summary(alice, alice_id));
  EXPECT_EQ(summary(bob2, bob_id), summary(bob, bob_id));
  size_t ours_on_alice2 = 0;
  const auto on_alice2 = alice2.client->GroupConversation(group->id, 1000);
  ASSERT_TRUE(on_alice2) << on_alice2.error().ToString();
  for (const StoredMessage& m : *on_alice2) {
    ours_on_alice2 += m.direction == MessageDirection::kOutgoing ? 1 : 0;
  }
  EXPECT_EQ(ours_on_alice2, 2u);  // one from each of alice's devices
}

TEST(DeviceListVerification, RefusesForgedUnsignedStaleAndForeignLists) {
  crypto::Random& random = crypto::SystemRandom();
  const signal::IdentityKeyPair primary = signal::IdentityKeyPair::Generate(random);
  const signal::IdentityKeyPair companion = signal::IdentityKeyPair::Generate(random);
  const signal::IdentityKeyPair mallory = signal::IdentityKeyPair::Generate(random);
  const std::string account(16, 'a');
  const std::vector<DeviceListEntryInput> entries{{2, companion.public_key},
                                                  {1, primary.public_key}};
  const wire::SignedDeviceList good = SignDeviceList(account, 5, 1, entries, primary, random);

  auto ok = VerifyDeviceList(good, account, primary.public_key, 5);
  ASSERT_TRUE(ok) << ok.error().ToString();
  ASSERT_EQ(ok->devices_size(), 2);
  EXPECT_EQ(ok->devices(1).device_id(), 2u);
  EXPECT_EQ(ListedIdentity(*ok, 2), companion.public_key);
  EXPECT_FALSE(ListedIdentity(*ok, 3));

  auto refused = [&](const wire::SignedDeviceList& list, uint64_t min_version,
                     const signal::IdentityKey& key) {
    auto r = VerifyDeviceList(list, account, key, min_version);
    return !r && r.error().detail == static_cast<uint16_t>(SdkErr::kBadDeviceList);
  };
  EXPECT_TRUE(refused(good, 6, primary.public_key));  // stale: older than one seen
  EXPECT_TRUE(refused(good, 0, mallory.public_key));  // not the trusted primary's
  EXPECT_TRUE(refused(SignDeviceList(account, 6, 1, entries, mallory, random), 0,
                      primary.public_key));  // forged by another key
  wire::SignedDeviceList unsigned_list = good;
  unsigned_list.clear_signature();
  EXPECT_TRUE(refused(unsigned_list, 0, primary.public_key));
  wire::SignedDeviceList tampered = good;
  tampered.mutable_list()->back() ^= 1;
  EXPECT_TRUE(refused(tampered, 0, primary.public_key));
  EXPECT_TRUE(refused(wire::SignedDeviceList(), 0, primary.public_key));
  // Signed by the primary but for another account, or naming another key as primary.
  auto foreign =
      VerifyDeviceList(SignDeviceList(std::string(16, 'b'), 7, 1, entries, primary, random),
                       account, primary.public_key, 0);
  EXPECT_FALSE(foreign);
  EXPECT_TRUE(refused(SignDeviceList(account, 7, 1, {{1, mallory.public_key}}, primary, random), 0,
                      primary.public_key));
}

}  // namespace
}  // namespace sotto::client
