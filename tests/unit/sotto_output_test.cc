// Tests of what `sotto` prints (apps/sotto/output.h): the JSON fields scripts rely on,
// the text lines, tick marks, safety-number grouping, and that a peer's text cannot
// smuggle terminal control sequences.
#include "apps/sotto/output.h"

#include <gtest/gtest.h>

#include <string>

namespace sotto::cli {
namespace {

using nlohmann::json;

client::StoredMessage Incoming() {
  client::StoredMessage message;
  message.message_id = "0a1b";
  message.peer = "00112233445566778899aabbccddeeff";
  message.direction = client::MessageDirection::kIncoming;
  message.peer_device = 2;
  message.body = "hello";
  message.sent_ms = 1'700'000'000'123;
  message.stored_ms = 1'700'000'001'000;
  message.tick = client::Tick::kDelivered;
  return message;
}

TEST(Output, MessageEventJsonHasTheDocumentedFields) {
  const client::Event event = client::MessageEvent{Incoming(), "+4915112345678"};
  EXPECT_EQ(EventJson(event), json({{"type", "message"},
                                    {"from", "+4915112345678"},
                                    {"name", nullptr},
                                    {"peer", "00112233445566778899aabbccddeeff"},
                                    {"device", 2},
                                    {"id", "0a1b"},
                                    {"direction", "incoming"},
                                    {"outgoing", false},
                                    {"body", "hello"},
                                    {"sentAt", 1'700'000'000'123},
                                    {"untrusted", false},
                                    {"attachment", nullptr}}));
  const client::Event unknown = client::MessageEvent{Incoming(), ""};
  EXPECT_TRUE(EventJson(unknown)["from"].is_null());
}

// A linked device learns what another device of its account sent (sent-message sync):
// the message is ours, to the contact, not from it.
TEST(Output, SyncedSentMessageIsOutgoingToTheContact) {
  client::StoredMessage sent = Incoming();
  sent.direction = client::MessageDirection::kOutgoing;
  sent.peer_device = 0;
  sent.tick = client::Tick::kSent;
  const client::Event event = client::MessageEvent{sent, "+4915112345678", "Bob"};
  const json j = EventJson(event);
  EXPECT_EQ(j["outgoing"], true) << j;
  EXPECT_EQ(j["direction"], "outgoing");
  EXPECT_EQ(j["to"], "+4915112345678");
  EXPECT_FALSE(j.contains("from")) << j;
  EXPECT_FALSE(j.contains("device")) << j;
  EXPECT_EQ(j["name"], "Bob");
  EXPECT_EQ(EventText(event, TimeZoneChoice::kUtc),
            "me \u2192 Bob (+4915112345678) at 2023-11-14 22:13:20: hello");
  // Without a name: the number.
  EXPECT_EQ(EventText(client::MessageEvent{sent, "+4915112345678"}, TimeZoneChoice::kUtc),
            "me \u2192 +4915112345678 at 2023-11-14 22:13:20: hello");
  // A group message of ours from another device: neither from nor to, the group says where.
  sent.group_id = "ffeeddccbbaa99887766554433221100";
  sent.group_sender = "0123";
  sent.peer_device = 2;
  const json g = EventJson(client::MessageEvent{sent, ""});
  EXPECT_EQ(g["outgoing"], true);
  EXPECT_FALSE(g.contains("from"));
  EXPECT_FALSE(g.contains("to"));
  EXPECT_EQ(g["group"], "ffeeddccbbaa99887766554433221100");
  EXPECT_EQ(EventText(client::MessageEvent{sent, ""}, TimeZoneChoice::kUtc),
            "[group ffeeddcc] me (device 2) at 2023-11-14 22:13:20: hello");
}

// A name given with `contacts add --name` shows wherever the contact does.
TEST(Output, ContactNamesShowInTextAndJson) {
  EXPECT_EQ(ContactLabel("Bob", "+4915112345678", "aa"), "Bob (+4915112345678)");
  EXPECT_EQ(ContactLabel("", "+4915112345678", "aa"), "+4915112345678");
  EXPECT_EQ(ContactLabel("", "", "aa"), "account aa");
  const client::Event message = client::MessageEvent{Incoming(), "+4915112345678", "Bob"};
  EXPECT_EQ(EventText(message, TimeZoneChoice::kUtc),
            "Bob (+4915112345678) (device 2) at 2023-11-14 22:13:20: hello");
  EXPECT_EQ(EventJson(message)["name"], "Bob");
  client::ReceiptEvent receipt{"aa", "+4915112345678", "0a1b", client::Tick::kRead};
  receipt.name = "Bob";
  EXPECT_EQ(EventText(receipt, TimeZoneChoice::kUtc),
            "receipt: message 0a1b to Bob (+4915112345678) read");
  EXPECT_EQ(EventJson(receipt)["name"], "Bob");
  client::TypingEvent typing{"aa", "+4915112345678", true};
  typing.name = "Bob";
  EXPECT_EQ(EventText(typing, TimeZoneChoice::kUtc), "Bob (+4915112345678) is typing");
  client::IdentityChangedEvent changed{"aa", "+4915112345678"};
  changed.name = "Bob";
  // The label for the reader; the commands it suggests take the number.
  EXPECT_EQ(EventText(changed, TimeZoneChoice::kUtc)
                .rfind("SAFETY NUMBER CHANGED for Bob (+4915112345678)", 0),
            0u);
  EXPECT_NE(EventText(changed, TimeZoneChoice::kUtc).find("`sotto trust +4915112345678`"),
            std::string::npos);

  client::StoredMessage out = Incoming();
  out.direction = client::MessageDirection::kOutgoing;
  out.tick = client::Tick::kSent;
  EXPECT_EQ(MessageText(out, "+4915112345678", TimeZoneChoice::kUtc, "Bob"),
            "[2023-11-14 22:13:20] me \u2192 Bob (+4915112345678): hello  \u2713");
  EXPECT_EQ(MessageText(Incoming(), "+4915112345678", TimeZoneChoice::kUtc, "Bob"),
            "[2023-11-14 22:13:20] Bob (+4915112345678) (device 2): hello");
  EXPECT_EQ(MessageJson(Incoming(), "+4915112345678", "Bob")["name"], "Bob");
  EXPECT_TRUE(MessageJson(Incoming(), "+4915112345678")["name"].is_null());
  const client::SearchHit hit{Incoming(), "[hel]lo"};
  EXPECT_EQ(SearchHitText(hit, "+4915112345678", TimeZoneChoice::kUtc, "Bob"),
            "[2023-11-14 22:13:20] Bob (+4915112345678) \u2192 me: [hel]lo");
  EXPECT_EQ(SearchHitJson(hit, "+4915112345678", "Bob")["name"], "Bob");
  // A name is the user's own text, but it is still kept off the terminal raw.
  EXPECT_EQ(EventText(client::MessageEvent{Incoming(), "+4915112345678", "B\x1b[2Job"},
                      TimeZoneChoice::kUtc)
                .find('\x1b'),
            std::string::npos);
}

// `devices --json` and the daemon's "devices" print the same object (docs/cli.md: one
// convention, camelCase, for every JSON field).
TEST(Output, DeviceJsonIsOneObjectInCamelCase) {
  client::LinkedDevice d;
  d.device_id = 2;
  d.listed = true;
  d.created_ms = 1'700'000'000'000;
  EXPECT_EQ(DeviceJson(d), json({{"device", 2},
                                 {"state", "linked"},
                                 {"primary", false},
                                 {"thisDevice", false},
                                 {"createdAt", 1'700'000'000'000}}));
  EXPECT_EQ(DeviceText(d), "device 2  linked");
  d.device_id = 1;
  d.this_device = true;
  d.pending = true;
  EXPECT_EQ(DeviceText(d), "device 1 (primary)  pending  (this device)");
}

TEST(Output, MessageWithAttachment) {
  client::StoredMessage m = Incoming();
  m.attachment = client::AttachmentInfo{"image/png", 1234, "a\x1b[31m.png", "/home/u/media/7-a.png",
                                        client::AttachmentState::kSaved};
  const json j = EventJson(client::MessageEvent{m, "+4915112345678"})["attachment"];
  EXPECT_EQ(j, json({{"path", "/home/u/media/7-a.png"},
                     {"size", 1234},
                     {"type", "image/png"},
                     {"name", "a\x1b[31m.png"},
                     {"state", "saved"}}));
  const std::string text = EventText(client::MessageEvent{m, "+4915112345678"}, TimeZoneChoice::kUtc);
  EXPECT_NE(text.find("1234 bytes, image/png: saved at /home/u/media/7-a.png"), std::string::npos);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);  // the sender's name cannot reach the terminal raw
  m.attachment->state = client::AttachmentState::kRejected;
  EXPECT_NE(MessageText(m, "+4915112345678", TimeZoneChoice::kUtc).find("REJECTED"), std::string::npos);
}

TEST(Output, OtherEventsJson) {
  client::ReceiptEvent receipt{"aa", "+4915112345678", "0a1b", client::Tick::kRead};
  EXPECT_EQ(EventJson(receipt), json({{"type", "receipt"},
                                      {"from", "+4915112345678"},
                                      {"name", nullptr},
                                      {"peer", "aa"},
                                      {"id", "0a1b"},
                                      {"status", "read"}}));
  EXPECT_EQ(EventJson(client::TypingEvent{"aa", "+4915112345678", true})["typing"], true);
  const json presence = EventJson(client::PresenceEvent{"aa", "+4915112345678", false, 42});
  EXPECT_EQ(presence["type"], "presence");
  EXPECT_EQ(presence["online"], false);
  EXPECT_EQ(presence["lastSeen"], 42);
  EXPECT_EQ(EventJson(client::DecryptionFailedEvent{"aa", "", 2})["type"], "decryptionFailed");
  EXPECT_EQ(EventJson(client::DecryptionFailedEvent{"aa", "", 2})["device"], 2);
  EXPECT_NE(
      EventText(client::DecryptionFailedEvent{"aa", "+4915112345678", 2}, TimeZoneChoice::kUtc)
          .find("could not be decrypted"),
      std::string::npos);
  EXPECT_EQ(EventJson(client::IdentityChangedEvent{"aa", "+4915112345678"})["type"],
            "identityChanged");
  EXPECT_EQ(EventJson(client::ConnectionEvent{true}),
            json({{"type", "connection"}, {"connected", true}}));
}

TEST(Output, EventTextLines) {
  client::StoredMessage message = Incoming();
  EXPECT_EQ(EventText(client::MessageEvent{message, "+4915112345678"}, TimeZoneChoice::kUtc),
            "+4915112345678 (device 2) at 2023-11-14 22:13:20: hello");
  message.untrusted_identity = true;
  EXPECT_EQ(EventText(client::MessageEvent{message, "+4915112345678"}, TimeZoneChoice::kUtc)
                .rfind("[UNTRUSTED IDENTITY] ", 0),
            0u);
  EXPECT_EQ(
      EventText(client::ReceiptEvent{"aa", "+4915112345678", "0a1b", client::Tick::kDelivered},
                TimeZoneChoice::kUtc),
      "receipt: message 0a1b to +4915112345678 delivered");
  EXPECT_EQ(EventText(client::IdentityChangedEvent{"aa", "+4915112345678"}, TimeZoneChoice::kUtc)
                .rfind("SAFETY NUMBER CHANGED for +4915112345678", 0),
            0u);
  EXPECT_EQ(EventText(client::TypingEvent{"aa", "", false}, TimeZoneChoice::kUtc),
            "account aa stopped typing");
}

// Newcomer finding (issue 12): group events showed raw account ids. They show the
// number and the contact name; JSON keeps the ids and adds the people.
client::GroupEvent PromoteEvent() {
  client::GroupEvent e;
  e.group_id = "3f9c0a1b2c3d4e5f60718293a4b5c6d7";
  e.action = "promote";
  e.actor = "00112233445566778899aabbccddeeff";
  e.accounts = {"ffeeddccbbaa99887766554433221100", "0123456789abcdef0123456789abcdef"};
  e.version = 4;
  e.by = {e.actor, "+4915112345678", "Alice", false};
  e.people = {{e.accounts[0], "+4915187654321", "", false}, {e.accounts[1], "", "", false}};
  return e;
}

TEST(Output, GroupEventsNameMembersByNumberAndContactName) {
  const std::string text = EventText(PromoteEvent(), TimeZoneChoice::kUtc);
  EXPECT_EQ(text,
            "group 3f9c0a1b: Alice (+4915112345678) made +4915187654321, account 01234567 admin");
  EXPECT_EQ(text.find("00112233445566778899aabbccddeeff"), std::string::npos) << text;

  client::GroupEvent mine = PromoteEvent();
  mine.action = "leave";
  mine.by = {mine.actor, "+4915100000000", "", true};
  mine.accounts = {mine.actor};
  mine.people = {mine.by};
  mine.member = false;
  EXPECT_EQ(EventText(mine, TimeZoneChoice::kUtc),
            "group 3f9c0a1b: you left (you are not a member)");
  client::GroupEvent created = PromoteEvent();
  created.action = "create";
  created.by.name = "\x1b[2JMallory";  // a contact name is the user's, but still sanitized
  EXPECT_EQ(EventText(created, TimeZoneChoice::kUtc).find('\x1b'), std::string::npos);

  const json j = EventJson(PromoteEvent());
  EXPECT_EQ(j["type"], "group");
  EXPECT_EQ(j["actor"], "00112233445566778899aabbccddeeff") << "the stable id stays";
  EXPECT_EQ(j["accounts"].size(), 2u);
  EXPECT_EQ(j["by"], json({{"peer", "00112233445566778899aabbccddeeff"},
                           {"number", "+4915112345678"},
                           {"name", "Alice"},
                           {"you", false}}));
  ASSERT_EQ(j["people"].size(), 2u);
  EXPECT_EQ(j["people"][0]["number"], "+4915187654321");
  EXPECT_TRUE(j["people"][0]["name"].is_null());
  EXPECT_TRUE(j["people"][1]["number"].is_null());
  EXPECT_EQ(j["people"][1]["peer"], "0123456789abcdef0123456789abcdef");
}

TEST(Output, TicksAndStatusNames) {
  EXPECT_EQ(client::TickName(client::Tick::kPending), "pending");
  EXPECT_EQ(client::TickName(client::Tick::kBlocked), "blocked");
  EXPECT_EQ(TickMark(client::Tick::kSent), "\u2713");
  EXPECT_EQ(TickMark(client::Tick::kDelivered), "\u2713\u2713");
  EXPECT_EQ(TickMark(client::Tick::kRead), "\u2713\u2713 read");
  EXPECT_EQ(TickMark(client::Tick::kPending), "\u2026");
  EXPECT_EQ(TickMark(client::Tick::kBlocked), "held");
}

TEST(Output, MessagesShowDirectionAndTicks) {
  client::StoredMessage out = Incoming();
  out.direction = client::MessageDirection::kOutgoing;
  out.tick = client::Tick::kRead;
  EXPECT_EQ(MessageText(out, "+4915112345678", TimeZoneChoice::kUtc),
            "[2023-11-14 22:13:20] me \u2192 +4915112345678: hello  \u2713\u2713 read");
  const json j = MessageJson(out, "+4915112345678");
  EXPECT_EQ(j["status"], "read");
  EXPECT_EQ(j["direction"], "outgoing");
  EXPECT_FALSE(j.contains("device"));
  EXPECT_EQ(MessageText(Incoming(), "+4915112345678", TimeZoneChoice::kUtc),
            "[2023-11-14 22:13:20] +4915112345678 (device 2): hello");
}

TEST(Output, PeerTextCannotCarryTerminalEscapes) {
  client::StoredMessage message = Incoming();
  message.body =
      "a\x1b]0;pwned\x07 b\xc2\x9b"
      "31m\tc\nd";
  const std::string line =
      EventText(client::MessageEvent{message, "+4915112345678"}, TimeZoneChoice::kUtc);
  EXPECT_EQ(line.find('\x1b'), std::string::npos);
  EXPECT_EQ(line.find('\x07'), std::string::npos);
  EXPECT_EQ(line.find("\xc2\x9b"), std::string::npos);
  EXPECT_NE(line.find("a\\x1b]0;pwned\\x07 b\\u009b31m\tc\nd"), std::string::npos);
  EXPECT_EQ(SanitizeForTerminal("caf\xc3\xa9 \u2713"), "caf\xc3\xa9 \u2713");
}

TEST(Output, SafetyNumberIsTwelveGroupsOnThreeLines) {
  std::string digits;
  for (int i = 0; i < 60; ++i) digits += static_cast<char>('0' + i % 10);
  EXPECT_EQ(FormatSafetyDigits(digits),
            "01234 56789 01234 56789\n"
            "01234 56789 01234 56789\n"
            "01234 56789 01234 56789\n");
  client::SafetyNumber number;
  number.displayable = digits;
  number.scannable = {0x00, 0xab};
  number.pending_change = true;
  const std::string text = SafetyNumberText(number, "+4915112345678");
  EXPECT_NE(text.find("not verified"), std::string::npos);
  EXPECT_NE(text.find("WARNING"), std::string::npos);
  EXPECT_EQ(SafetyNumberJson(number), json({{"digits", digits},
                                            {"verified", false},
                                            {"pendingChange", true},
                                            {"scannable", "00ab"}}));
}

TEST(Output, PresenceAndTime) {
  EXPECT_EQ(FormatTime(0, TimeZoneChoice::kUtc), "1970-01-01 00:00:00");
  EXPECT_EQ(PresenceText(client::Presence{true, 0}, TimeZoneChoice::kUtc), "online");
  EXPECT_EQ(PresenceText(client::Presence{false, 1'700'000'000'000}, TimeZoneChoice::kUtc),
            "last seen 2023-11-14 22:13:20");
}

}  // namespace
}  // namespace sotto::cli
