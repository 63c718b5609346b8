// Tests of the client's local store: contacts, messages (ticks, conversations, read
// state), full-text search, received ids, the outbox and transactions.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/local_store_test_util.h"

namespace sotto::client {
namespace {

using testing::LocalStoreTest;

// --- Contacts ----------------------------------------------------------------------------

TEST_F(LocalStoreTest, Contacts) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->PutContact({"+15550002", "bb", "Bob", 10}));
  ASSERT_TRUE(store->PutContact({"+15550001", "aa", "Alice", 11}));
  ASSERT_TRUE(store->PutContact({"+15550003", "", "Unknown yet", 12}));
  ASSERT_TRUE(store->PutContact({"+15550004", "", "Also unknown", 13}));
  EXPECT_EQ((*store->ContactByHandle("+15550001"))->name, "Alice");
  EXPECT_EQ((*store->ContactByAccount("bb"))->handle, "+15550002");
  EXPECT_EQ((*store->ContactByHandle("+15550003"))->account_id, "");
  EXPECT_FALSE(*store->ContactByHandle("+1999"));
  EXPECT_FALSE(*store->ContactByAccount("cc"));

  ASSERT_TRUE(store->PutContact({"+15550001", "aa", "Alice B.", 11}));  // rename
  EXPECT_EQ((*store->ContactByAccount("aa"))->name, "Alice B.");
  ASSERT_TRUE(store->PutContact({"+15550009", "bb", "Bob", 10}));  // Bob's new number
  EXPECT_FALSE(*store->ContactByHandle("+15550002"));
  EXPECT_EQ((*store->ContactByAccount("bb"))->handle, "+15550009");
  auto all = store->ListContacts();
  ASSERT_TRUE(all);
  std::vector<std::string> handles;
  for (const auto& c : *all) handles.push_back(c.handle);
  EXPECT_EQ(handles,
            (std::vector<std::string>{"+15550001", "+15550003", "+15550004", "+15550009"}));
}

// --- Messages ----------------------------------------------------------------------------

TEST_F(LocalStoreTest, MessagesAddGetDuplicate) {
  auto store = Open();
  ASSERT_TRUE(store);
  StoredMessage in = Message("p1", MessageDirection::kIncoming, "01", "hello", Tick::kDelivered);
  in.untrusted_identity = true;
  auto rowid = store->AddMessage(in);
  ASSERT_TRUE(rowid);
  // The same id in the other direction is another message.
  ASSERT_TRUE(store->AddMessage(Message("p1", MessageDirection::kOutgoing, "01", "hi")));
  StoredMessage dup = in;
  dup.body = "changed";
  auto again = store->AddMessage(dup);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Code::kAlreadyExists);
  auto got = store->GetMessage("p1", MessageDirection::kIncoming, "01");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->rowid, *rowid);
  EXPECT_EQ((*got)->body, "hello");  // left as it was
  EXPECT_EQ((*got)->peer_device, 2u);
  EXPECT_EQ((*got)->sent_ms, 1000u);
  EXPECT_EQ((*got)->stored_ms, 2000u);
  EXPECT_EQ((*got)->tick, Tick::kDelivered);
  EXPECT_TRUE((*got)->untrusted_identity);
  EXPECT_FALSE(*store->GetMessage("p1", MessageDirection::kIncoming, "02"));
  EXPECT_EQ(store->Search("changed", 10)->size(), 0u);  // the duplicate was not indexed
}

TEST_F(LocalStoreTest, TicksOnlyMoveForward) {
  auto store = Open();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->AddMessage(Message("p", MessageDirection::kOutgoing, "0a", "x")));
  auto tick = [&] { return (*store->GetMessage("p", MessageDirection::kOutgoing, "0a"))->tick; };
  EXPECT_TRUE(*store->AdvanceTick("p", "0a", Tick::kDelivered));   // may skip kSent
  EXPECT_FALSE(*store->AdvanceTick("p", "0a", Tick::kSent));       // never back
  EXPECT_FALSE(*store->AdvanceTick("p", "0a", Tick::kDelivered));  // no change
  EXPECT_EQ(tick(), Tick::kDelivered);
  EXPECT_TRUE(*store->AdvanceTick("p", "0a", Tick::kBlocked));
  EXPECT_FALSE(*store->AdvanceTick("p", "0a", Tick::kSent));  // blocked: only to pending
  EXPECT_TRUE(*store->AdvanceTick("p", "0a", Tick::kPending));
  EXPECT_TRUE(*store->AdvanceTick("p", "0a", Tick::kRead));
  EXPECT_FALSE(*store->AdvanceTick("p", "0a", Tick::kBlocked));  // read stays read
  EXPECT_EQ(tick(), Tick::kRead);
  EXPECT_FALSE(*store->AdvanceTick("p", "ff", Tick::kSent));  // unknown
  ASSERT_TRUE(store->AddMessage(Message("p", MessageDirection::kIncoming, "0b", "y")));
  EXPECT_FALSE(*store->AdvanceTick("p", "0b", Tick::kSent));  // incoming: not ours
  EXPECT_EQ(TickName(Tick::kPending), "pending");
  EXPECT_EQ(TickName(Tick::kSent), "sent");
  EXPECT_EQ(TickName(Tick::kDelivered), "delivered");
  EXPECT_EQ(TickName(Tick::kRead), "read");
  EXPECT_EQ(TickName(Tick::kBlocked), "blocked");
}

TEST_F(LocalStoreTest, ConversationAndMarkRead) {
  auto store = Open();
  ASSERT_TRUE(store);
  for (int i = 0; i < 5; ++i) {
    const auto dir = i % 2 ? MessageDirection::kOutgoing : MessageDirection::kIncoming;
    ASSERT_TRUE(store->AddMessage(
        Message("p", dir, "0" + std::to_string(i), "m" + std::to_string(i), Tick::kDelivered)));
  }
  ASSERT_TRUE(store->AddMessage(
      Message("q", MessageDirection::kIncoming, "99", "other", Tick::kDelivered)));
  auto last3 = store->Conversation("p", 3);
  ASSERT_TRUE(last3);
  ASSERT_EQ(last3->size(), 3u);
  EXPECT_EQ((*last3)[0].body, "m2");
  EXPECT_EQ((*last3)[2].body, "m4");
  EXPECT_EQ(store->Conversation("p", 100)->size(), 5u);

  auto read = store->MarkRead("p");
  ASSERT_TRUE(read);
  std::vector<std::string> ids;
  for (const auto& m : *read) {
    ids.push_back(m.message_id);
    EXPECT_EQ(m.direction, MessageDirection::kIncoming);
    EXPECT_EQ(m.tick, Tick::kRead);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"00", "02", "04"}));
  EXPECT_TRUE(store->MarkRead("p")->empty());
  EXPECT_EQ((*store->GetMessage("p", MessageDirection::kOutgoing, "01"))->tick,
            Tick::kDelivered);  // outgoing untouched
  EXPECT_EQ((*store->GetMessage("q", MessageDirection::kIncoming, "99"))->tick, Tick::kDelivered);
}

TEST_F(LocalStoreTest, Search) {
  auto store = Open();
  ASSERT_TRUE(store);
  const std::vector<std::string> bodies = {"Meet me at the café tomorrow", "The weather is lovely",
                                           "tomorrow we meet again",
                                           "AND OR NOT \"quoted\" (paren)", "Ünïcödé text here"};
  for (size_t i = 0; i < bodies.size(); ++i) {
    ASSERT_TRUE(store->AddMessage(
        Message("p", MessageDirection::kIncoming, "0" + std::to_string(i), bodies[i])));
  }
  auto bodies_of = [&](std::string_view words, size_t limit = 100) {
    auto hits = store->Search(words, limit);
    EXPECT_TRUE(hits) << hits.error().ToString();
    std::vector<std::string> out;
    if (hits) {
      for (const auto& h : *hits) out.push_back(h.message.body);
    }
    return out;
  };
  // Prefix match, newest first.
  EXPECT_EQ(bodies_of("tomor"), (std::vector<std::string>{bodies[2], bodies[0]}));
  // Every word must occur.
  EXPECT_EQ(bodies_of("meet caf"), (std::vector<std::string>{bodies[0]}));
  EXPECT_TRUE(bodies_of("meet weather").empty());
  // Diacritics fold both ways.
  EXPECT_EQ(bodies_of("cafe"), (std::vector<std::string>{bodies[0]}));
  EXPECT_EQ(bodies_of("unicode"), (std::vector<std::string>{bodies[4]}));
  // FTS5 syntax is text.
  for (std::string_view q : {"AND", "OR NOT", "\"", "(", "NOT meet", "\"quoted", "body:x", "a\"b",
                             "(paren", "*", "NEAR(a b)", "-x", "^x"}) {
    auto hits = store->Search(q, 10);
    EXPECT_TRUE(hits) << q << ": " << hits.error().ToString();
  }
  EXPECT_EQ(bodies_of("AND OR NOT"), (std::vector<std::string>{bodies[3]}));
  EXPECT_EQ(bodies_of("(paren"), (std::vector<std::string>{bodies[3]}));
  EXPECT_TRUE(bodies_of("").empty());
  EXPECT_TRUE(bodies_of("   ").empty());
  // Limit.
  EXPECT_EQ(bodies_of("tomorrow", 1), (std::vector<std::string>{bodies[2]}));
  EXPECT_TRUE(bodies_of("tomorrow", 0).empty());
  // Snippets mark the matches.
  auto hits = store->Search("weath", 10);
  ASSERT_TRUE(hits && hits->size() == 1);
  EXPECT_EQ((*hits)[0].snippet, "The [weather] is lovely");
  EXPECT_EQ((*hits)[0].message.message_id, "01");
}

TEST_F(LocalStoreTest, SearchCapsAtMaxResults) {
  auto store = Open();
  ASSERT_TRUE(store);
  LocalStore::Transaction tx(*store);
  for (size_t i = 0; i < kMaxSearchResults + 5; ++i) {
    ASSERT_TRUE(store->AddMessage(
        Message("p", MessageDirection::kIncoming, std::to_string(1000 + i), "needle")));
  }
  ASSERT_TRUE(tx.Commit());
  auto hits = store->Search("needle", kMaxSearchResults + 100);
  ASSERT_TRUE(hits);
  ASSERT_EQ(hits->size(), kMaxSearchResults);
  EXPECT_EQ(hits->front().message.message_id, std::to_string(1000 + kMaxSearchResults + 4));
}

// --- Received ids ------------------------------------------------------------------------

TEST_F(LocalStoreTest, ReceivedIdsAndPruneAtTheEdge) {
  auto store = Open();
  ASSERT_TRUE(store);
  const uint64_t t0 = 1'000'000'000'000;
  ASSERT_TRUE(store->MarkReceived("src", "01", t0));
  ASSERT_TRUE(store->MarkReceived("src", "02", t0 + 1));
  ASSERT_TRUE(store->MarkReceived("src", "01", t0 + 5));  // first sighting kept
  EXPECT_TRUE(*store->HasReceived("src", "01"));
  EXPECT_FALSE(*store->HasReceived("src", "03"));
  EXPECT_FALSE(*store->HasReceived("other", "01"));
  EXPECT_EQ(*store->PruneReceived(100), 0u);  // before the epoch plus retention
  EXPECT_EQ(*store->PruneReceived(t0 + kReceivedIdRetentionMs), 0u);  // exactly the age
  EXPECT_EQ(*store->PruneReceived(t0 + kReceivedIdRetentionMs + 1), 1u);
  EXPECT_FALSE(*store->HasReceived("src", "01"));
  EXPECT_TRUE(*store->HasReceived("src", "02"));
}

// --- Outbox ------------------------------------------------------------------------------

TEST_F(LocalStoreTest, Outbox) {
  auto store = Open();
  ASSERT_TRUE(store);
  auto item = [](std::string id, std::string recipient, bool blocked) {
    OutboxItem o;
    o.message_id = std::move(id);
    o.recipient = std::move(recipient);
    o.content = Bytes{1, 2, 3, static_cast<uint8_t>(o.message_id.size())};
    o.blocked = blocked;
    return o;
  };
  ASSERT_TRUE(store->AddOutbox(item("01", "r1", false)));
  ASSERT_TRUE(store->AddOutbox(item("02", "r2", true)));
  OutboxItem typing = item("03", "r1", true);
  typing.online_only = true;
  typing.content.clear();
  ASSERT_TRUE(store->AddOutbox(typing));
  auto dup = store->AddOutbox(item("01", "r9", false));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, Code::kAlreadyExists);

  auto ready = store->ListOutbox(10, LocalStore::OutboxFilter::kReady);
  ASSERT_TRUE(ready);
  ASSERT_EQ(ready->size(), 1u);
  EXPECT_EQ((*ready)[0].message_id, "01");
  EXPECT_EQ((*ready)[0].content, (Bytes{1, 2, 3, 2}));
  auto all = store->ListOutbox(10, LocalStore::OutboxFilter::kIncludeBlocked);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[1].message_id, "02");
  EXPECT_TRUE((*all)[2].online_only);
  EXPECT_TRUE((*all)[2].content.empty());
  EXPECT_LT((*all)[0].rowid, (*all)[1].rowid);
  EXPECT_EQ(store->ListOutbox(2, LocalStore::OutboxFilter::kIncludeBlocked)->size(), 2u);

  OutboxItem update = (*all)[0];
  update.attempts = 3;
  update.next_attempt_ms = 12345;
  update.blocked = true;
  ASSERT_TRUE(store->UpdateOutbox(update));
  auto updated = store->ListOutbox(10, LocalStore::OutboxFilter::kIncludeBlocked);
  EXPECT_EQ((*updated)[0].attempts, 3u);
  EXPECT_EQ((*updated)[0].next_attempt_ms, 12345u);
  EXPECT_TRUE((*updated)[0].blocked);
  EXPECT_TRUE(store->ListOutbox(10, LocalStore::OutboxFilter::kReady)->empty());
  auto missing = store->UpdateOutbox(item("77", "r1", false));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Code::kNotFound);

  EXPECT_EQ(*store->UnblockOutbox("r1"), 2u);
  EXPECT_EQ(*store->UnblockOutbox("r1"), 0u);
  EXPECT_EQ(store->ListOutbox(10, LocalStore::OutboxFilter::kReady)->size(), 2u);
  ASSERT_TRUE(store->RemoveOutbox("01"));
  ASSERT_TRUE(store->RemoveOutbox("01"));
  auto left = store->ListOutbox(10, LocalStore::OutboxFilter::kIncludeBlocked);
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].message_id, "02");
}

// --- Transactions ------------------------------------------------------------------------

TEST_F(LocalStoreTest, TransactionsRollBackAndNest) {
  auto store = Open();
  ASSERT_TRUE(store);
  {
    LocalStore::Transaction tx(*store);
    ASSERT_TRUE(store->PutSetting("a", "1"));
    ASSERT_TRUE(store->AddMessage(Message("p", MessageDirection::kIncoming, "01", "gone")));
  }  // no Commit: rolled back
  EXPECT_FALSE(*store->GetSetting("a"));
  EXPECT_FALSE(*store->GetMessage("p", MessageDirection::kIncoming, "01"));
  EXPECT_TRUE(store->Search("gone", 10)->empty());

  {
    LocalStore::Transaction outer(*store);
    ASSERT_TRUE(store->PutSetting("b", "1"));
    {
      LocalStore::Transaction inner(*store);
      ASSERT_TRUE(store->PutSetting("c", "1"));
      ASSERT_TRUE(inner.Commit());
    }
    {
      LocalStore::Transaction abandoned(*store);
      ASSERT_TRUE(store->PutSetting("d", "1"));
    }
    // Methods that use a transaction themselves nest inside ours.
    ASSERT_TRUE(store->PutContact({"+1", "aa", "A", 1}));
    ASSERT_TRUE(outer.Commit());
    EXPECT_FALSE(outer.Commit());  // once
  }
  EXPECT_TRUE(*store->GetSetting("b"));
  EXPECT_TRUE(*store->GetSetting("c"));
  EXPECT_FALSE(*store->GetSetting("d"));
  EXPECT_TRUE(*store->ContactByHandle("+1"));

  {
    LocalStore::Transaction outer(*store);
    {
      LocalStore::Transaction inner(*store);
      ASSERT_TRUE(store->PutSetting("e", "1"));
      ASSERT_TRUE(inner.Commit());
    }
  }  // the outer rollback undoes the committed inner level too
  EXPECT_FALSE(*store->GetSetting("e"));
}

}  // namespace
}  // namespace sotto::client
