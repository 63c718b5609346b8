#include "client/content.h"

#include <gtest/gtest.h>

namespace sotto::client {
namespace {

content::Content Text(std::string body) {
  content::Content c;
  c.set_sender_handle("+15550001111");
  c.mutable_data()->set_body(std::move(body));
  c.mutable_data()->set_timestamp_ms(42);
  return c;
}

uint16_t Detail(const Error& e) { return e.detail; }

TEST(Content, PadsToBlocksAndRoundTrips) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{100}, size_t{140}, size_t{141}, size_t{1000}}) {
    const Bytes padded = EncodeContent(Text(std::string(n, 'a')));
    EXPECT_EQ(padded.size() % kPaddingBlock, 0u) << n;
    auto back = DecodeContent(padded);
    ASSERT_TRUE(back) << n;
    EXPECT_EQ(back->data().body(), std::string(n, 'a'));
  }
  // Texts of similar length give the same ciphertext length.
  EXPECT_EQ(EncodeContent(Text("yes")).size(), EncodeContent(Text("no")).size());
}

TEST(Content, BodyLimitAtAndPastTheEdge) {
  EXPECT_TRUE(DecodeContent(EncodeContent(Text(std::string(kMaxBodyBytes, 'x')))));
  auto past = DecodeContent(EncodeContent(Text(std::string(kMaxBodyBytes + 1, 'x'))));
  ASSERT_FALSE(past);
  EXPECT_EQ(Detail(past.error()), static_cast<uint16_t>(ContentErr::kLimit));
}

TEST(Content, RejectsBadPadding) {
  Bytes padded = EncodeContent(Text("hi"));
  padded.back() = 1;  // non-zero padding byte, no 0x80 before it
  auto r = DecodeContent(padded);
  ASSERT_FALSE(r);
  EXPECT_EQ(Detail(r.error()), static_cast<uint16_t>(ContentErr::kPadding));
  EXPECT_FALSE(DecodeContent(Bytes(kPaddingBlock, 0)));
  EXPECT_FALSE(DecodeContent(Bytes{}));
  auto big = DecodeContent(Bytes(kMaxContentBytes + 1, 0x80));
  ASSERT_FALSE(big);
  EXPECT_EQ(Detail(big.error()), static_cast<uint16_t>(ContentErr::kTooLarge));
}

TEST(Content, RejectsGarbageAndEmpty) {
  Bytes garbage = {0xff, 0xff, 0xff, 0x80};
  EXPECT_FALSE(DecodeContent(garbage));
  content::Content empty;
  auto r = DecodeContent(EncodeContent(empty));
  ASSERT_FALSE(r);
  EXPECT_EQ(Detail(r.error()), static_cast<uint16_t>(ContentErr::kEmpty));
}

TEST(Content, ReceiptIdLimits) {
  content::Content c;
  c.mutable_receipt()->set_type(content::ReceiptMessage::READ);
  for (size_t i = 0; i < kMaxReceiptIds; ++i)
    c.mutable_receipt()->add_message_ids(std::string(16, 'a'));
  EXPECT_TRUE(DecodeContent(EncodeContent(c)));
  c.mutable_receipt()->add_message_ids(std::string(16, 'a'));
  EXPECT_FALSE(DecodeContent(EncodeContent(c)));
  content::Content none;
  none.mutable_receipt()->set_type(content::ReceiptMessage::READ);
  EXPECT_FALSE(DecodeContent(EncodeContent(none)));
  content::Content long_id;
  long_id.mutable_receipt()->add_message_ids(std::string(kMaxMessageIdBytes + 1, 'a'));
  EXPECT_FALSE(DecodeContent(EncodeContent(long_id)));
}

TEST(Content, Utf8) {
  EXPECT_TRUE(IsUtf8("plain"));
  EXPECT_TRUE(IsUtf8("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsUtf8("\xff"));
  EXPECT_FALSE(DecodeContent(EncodeContent(Text("\xc3"))));
}

content::Content SenderKey(std::string group_id, std::string distribution, std::string name,
                           std::string description) {
  content::Content c;
  c.set_sender_handle("+15550001111");
  c.mutable_sender_key()->set_group_id(std::move(group_id));
  c.mutable_sender_key()->set_distribution(std::move(distribution));
  c.mutable_sender_key()->set_name(std::move(name));
  c.mutable_sender_key()->set_description(std::move(description));
  return c;
}

TEST(Content, GroupLimitsAtAndPastTheEdge) {
  const std::string gid(kGroupIdBytes, 'g');
  const std::string dist(kMaxSenderKeyDistributionBytes, 'd');
  auto ok = DecodeContent(EncodeContent(SenderKey(gid, dist, std::string(kMaxGroupNameBytes, 'n'),
                                                  std::string(kMaxGroupDescriptionBytes, 'd'))));
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->sender_key().name().size(), kMaxGroupNameBytes);
  for (const content::Content& bad :
       {SenderKey(gid, dist + "d", "", ""), SenderKey(gid, "", "", ""),
        SenderKey(gid + "g", dist, "", ""), SenderKey(std::string(kGroupIdBytes - 1, 'g'), dist, "", ""),
        SenderKey(gid, dist, std::string(kMaxGroupNameBytes + 1, 'n'), ""),
        SenderKey(gid, dist, "", std::string(kMaxGroupDescriptionBytes + 1, 'd'))}) {
    auto r = DecodeContent(EncodeContent(bad));
    ASSERT_FALSE(r);
    EXPECT_EQ(Detail(r.error()), static_cast<uint16_t>(ContentErr::kLimit));
  }
  // Not UTF-8: protobuf refuses the string field already.
  EXPECT_FALSE(DecodeContent(EncodeContent(SenderKey(gid, dist, "\xff", ""))));
  // A group message names a group of kGroupIdBytes.
  content::Content message = Text("hi group");
  message.mutable_data()->mutable_group()->set_group_id(gid);
  EXPECT_TRUE(DecodeContent(EncodeContent(message)));
  message.mutable_data()->mutable_group()->set_group_id(gid + "x");
  EXPECT_FALSE(DecodeContent(EncodeContent(message)));
  // A rename: the same name and description limits.
  content::Content rename;
  rename.mutable_group_metadata()->set_group_id(gid);
  rename.mutable_group_metadata()->set_name(std::string(kMaxGroupNameBytes, 'n'));
  EXPECT_TRUE(DecodeContent(EncodeContent(rename)));
  rename.mutable_group_metadata()->set_name(std::string(kMaxGroupNameBytes + 1, 'n'));
  EXPECT_FALSE(DecodeContent(EncodeContent(rename)));
  EXPECT_TRUE(CheckGroupText(std::string(kMaxGroupNameBytes, 'n'), ""));
  EXPECT_FALSE(CheckGroupText(std::string(kMaxGroupNameBytes + 1, 'n'), ""));
}

}  // namespace
}  // namespace sotto::client
