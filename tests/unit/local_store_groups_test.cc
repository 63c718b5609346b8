// Tests of the client store's groups: the group and its members, the holders of our sender
// key, group messages (their own conversation, read state, search) and per-member receipts.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/local_store_test_util.h"

namespace sotto::client {
namespace {

using testing::LocalStoreTest;

StoredGroup Group(const std::string& id, uint64_t version, std::vector<StoredGroupMember> members) {
  StoredGroup g;
  g.group_id = id;
  g.name = "book club";
  g.version = version;
  g.member = true;
  g.created_ms = 5;
  g.members = std::move(members);
  return g;
}

StoredMessage GroupMessage(const std::string& group, const std::string& id,
                           const std::string& sender, MessageDirection direction,
                           const std::string& body) {
  StoredMessage m;
  m.message_id = id;
  m.group_id = group;
  m.group_sender = sender;
  m.direction = direction;
  m.body = body;
  m.sent_ms = 1;
  m.stored_ms = 2;
  m.tick = direction == MessageDirection::kIncoming ? Tick::kDelivered : Tick::kPending;
  return m;
}

TEST_F(LocalStoreTest, GroupsAndMembersReplaceAsAWhole) {
  auto store = Open();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->schema_version(), kSchemaVersion);
  ASSERT_TRUE(store->PutGroup(Group("g1", 1, {{"aa", true}, {"bb", false}})));
  ASSERT_TRUE(store->PutGroup(Group("g2", 3, {{"aa", false}})));
  auto g1 = store->GetGroup("g1");
  ASSERT_TRUE(g1 && *g1);
  EXPECT_EQ((*g1)->members.size(), 2u);
  EXPECT_TRUE((*g1)->members[0].admin);
  StoredGroup next = **g1;
  next.version = 2;
  next.members = {{"bb", true}};
  next.rotate = true;
  ASSERT_TRUE(store->PutGroup(next));
  g1 = store->GetGroup("g1");
  ASSERT_EQ((*g1)->members.size(), 1u);
  EXPECT_EQ((*g1)->members[0].account, "bb");
  EXPECT_TRUE((*g1)->rotate);
  EXPECT_EQ((*g1)->created_ms, 5u);
  ASSERT_TRUE(store->SetGroupRotate("g1", false));
  EXPECT_FALSE((*store->GetGroup("g1"))->rotate);
  EXPECT_EQ(store->ListGroups()->size(), 2u);
  EXPECT_FALSE(*store->GetGroup("nope"));
}

TEST_F(LocalStoreTest, SenderKeyHoldersClearOnRotation) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->AddGroupKeyHolders("g1", {{"aa", 1, 100}, {"aa", 2, 200}, {"bb", 1, 300}}));
  ASSERT_TRUE(store->AddGroupKeyHolders("g2", {{"aa", 1, 100}}));
  ASSERT_TRUE(store->AddGroupKeyHolders("g1", {{"aa", 2, 201}}));  // re-registered device
  auto holders = store->GroupKeyHolders("g1");
  ASSERT_TRUE(holders);
  ASSERT_EQ(holders->size(), 3u);
  EXPECT_EQ((*holders)[1], (GroupKeyHolder{"aa", 2, 201}));
  ASSERT_TRUE(store->ClearGroupKeyHolders("g1"));
  EXPECT_TRUE(store->GroupKeyHolders("g1")->empty());
  EXPECT_EQ(store->GroupKeyHolders("g2")->size(), 1u);
}

TEST_F(LocalStoreTest, GroupMessagesHaveTheirOwnConversationAndAreSearchable) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->AddGroupMessage(
      GroupMessage("g1", "01", "aa", MessageDirection::kIncoming, "meet at the library")));
  ASSERT_TRUE(store->AddGroupMessage(
      GroupMessage("g1", "02", "me", MessageDirection::kOutgoing, "which library")));
  auto dup =
      store->AddGroupMessage(GroupMessage("g1", "01", "aa", MessageDirection::kIncoming, "again"));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, Code::kAlreadyExists);
  // A 1:1 message with the same author stays in the 1:1 conversation.
  StoredMessage direct = GroupMessage("", "03", "", MessageDirection::kIncoming, "library card");
  direct.peer = "aa";
  ASSERT_TRUE(store->AddMessage(direct));

  auto conversation = store->GroupConversation("g1", 10);
  ASSERT_TRUE(conversation);
  ASSERT_EQ(conversation->size(), 2u);
  EXPECT_EQ((*conversation)[0].group_sender, "aa");
  EXPECT_EQ((*conversation)[0].group_id, "g1");
  EXPECT_EQ((*conversation)[1].direction, MessageDirection::kOutgoing);
  EXPECT_EQ(store->Conversation("aa", 10)->size(), 1u);

  auto hits = store->Search("library", 10);
  ASSERT_TRUE(hits);
  EXPECT_EQ(hits->size(), 3u);  // FTS covers group messages too

  auto read = store->MarkGroupRead("g1");
  ASSERT_TRUE(read);
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ((*read)[0].group_sender, "aa");
  EXPECT_TRUE(store->MarkGroupRead("g1")->empty());
  EXPECT_EQ(store->Conversation("aa", 10)->at(0).tick, Tick::kDelivered);  // untouched
}

TEST_F(LocalStoreTest, GroupReceiptsPerMember) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->AddGroupReceipts("g1", "m1", {"aa", "bb"}));
  auto d1 = store->MarkGroupReceipt("m1", "aa", LocalStore::GroupReceiptKind::kDelivered, 10);
  ASSERT_TRUE(d1);
  EXPECT_TRUE(d1->changed);
  EXPECT_EQ(d1->group_id, "g1");
  EXPECT_FALSE(d1->all);
  // A second device of the same member changes nothing.
  EXPECT_FALSE(
      store->MarkGroupReceipt("m1", "aa", LocalStore::GroupReceiptKind::kDelivered, 11)->changed);
  // Read implies delivered.
  auto r2 = store->MarkGroupReceipt("m1", "bb", LocalStore::GroupReceiptKind::kRead, 12);
  ASSERT_TRUE(r2);
  EXPECT_TRUE(r2->changed);
  EXPECT_FALSE(r2->all);  // aa has not read it
  auto rows = store->GroupReceipts("m1");
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[1].delivered_ms, 12u);
  EXPECT_EQ((*rows)[1].read_ms, 12u);
  auto r1 = store->MarkGroupReceipt("m1", "aa", LocalStore::GroupReceiptKind::kRead, 13);
  EXPECT_TRUE(r1->all);
  // Not one of our group messages, or not a member it went to.
  EXPECT_TRUE(store->MarkGroupReceipt("m9", "aa", LocalStore::GroupReceiptKind::kRead, 1)
                  ->group_id.empty());
  EXPECT_FALSE(
      store->MarkGroupReceipt("m1", "cc", LocalStore::GroupReceiptKind::kRead, 1)->changed);
}

TEST_F(LocalStoreTest, AVersionOneDatabaseGainsTheGroupTables) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->PutContact({"+15550001", "aa", "Alice", 1}));
  }
  // What a database from before groups looks like.
  ASSERT_NO_FATAL_FAILURE(testing::RawSql(
      home_,
      "DROP TABLE group_receipts; DROP TABLE group_messages; DROP TABLE group_key_holders; "
      "DROP TABLE group_members; DROP TABLE groups; DROP TABLE attachments; "
      "PRAGMA user_version = 1;"));
  auto store = Open();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->schema_version(), kSchemaVersion);  // groups (2), then media (3)
  EXPECT_TRUE(*store->ContactByHandle("+15550001"));
  ASSERT_TRUE(store->PutGroup(Group("g1", 1, {{"aa", true}})));
  EXPECT_TRUE(*store->GetGroup("g1"));
}

}  // namespace
}  // namespace sotto::client
