// Tests of the client's local store: opening and the home directory's protection, sealing
// at rest, schema versions, record encodings, the Signal stores and trust policy, and the
// Signal library running on two stores. Messages and the rest: local_store_messages_test.cc.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/internal/fts_query.h"
#include "client/internal/records.h"
#include "signal/error.h"
#include "signal/session_builder.h"
#include "signal/session_cipher.h"
#include "tests/unit/local_store_test_util.h"

namespace sotto::client {
namespace {

namespace fs = std::filesystem;
using testing::Contains;
using testing::IsStoreErr;
using testing::LocalStoreTest;
using testing::ModeOf;
using testing::RawSql;
using testing::ReadFile;
using testing::StoresOf;

// --- Opening and protection --------------------------------------------------------------

TEST_F(LocalStoreTest, CreateAndReopenKeepsEverything) {
  const LocalAccount account = MakeAccount("+15550001");
  const signal::ProtocolAddress peer{"00ff", 3};
  Bytes session_bytes;
  {
    auto store = Open();
    ASSERT_TRUE(store);
    EXPECT_EQ(store->schema_version(), kSchemaVersion);
    auto none = store->LoadAccount();
    ASSERT_TRUE(none);
    EXPECT_FALSE(*none);
    auto no_identity = store->GetIdentityKeyPair();
    ASSERT_FALSE(no_identity);
    EXPECT_TRUE(IsStoreErr(no_identity.error(), StoreErr::kNoAccount));
    ASSERT_TRUE(store->SaveAccount(account));
    ASSERT_TRUE(store->PutSetting("presence", "contacts"));
    session_bytes = MakeSession(*store, peer).Serialize();
  }
  auto store = Open();
  ASSERT_TRUE(store);
  auto loaded = store->LoadAccount();
  ASSERT_TRUE(loaded && *loaded);
  const LocalAccount& got = **loaded;
  EXPECT_EQ(got.handle, account.handle);
  EXPECT_EQ(got.server, account.server);
  EXPECT_EQ(got.server_key, account.server_key);
  EXPECT_TRUE(got.noise_static.private_key == account.noise_static.private_key);
  EXPECT_EQ(got.noise_static.public_key, account.noise_static.public_key);
  EXPECT_EQ(got.identity.public_key, account.identity.public_key);
  EXPECT_TRUE(got.identity.private_key == account.identity.private_key);
  EXPECT_EQ(got.registration_id, account.registration_id);
  EXPECT_EQ(got.account_id, account.account_id);
  EXPECT_EQ(got.device_id, account.device_id);
  EXPECT_EQ(got.next_prekey_id, account.next_prekey_id);
  EXPECT_EQ(got.signed_prekey_id, account.signed_prekey_id);
  EXPECT_EQ(got.signed_prekey_ms, account.signed_prekey_ms);
  EXPECT_EQ(*store->GetLocalRegistrationId(), account.registration_id);
  EXPECT_EQ(store->GetIdentityKeyPair()->public_key, account.identity.public_key);
  EXPECT_EQ(**store->GetSetting("presence"), "contacts");
  EXPECT_FALSE(*store->GetSetting("absent"));
  auto session = store->LoadSession(peer);
  ASSERT_TRUE(session && *session);
  EXPECT_EQ((*session)->Serialize(), session_bytes);

  // Updates replace the single account row.
  LocalAccount changed = got;
  changed.server_key.reset();
  changed.device_id = 9;
  ASSERT_TRUE(store->SaveAccount(changed));
  auto reloaded = store->LoadAccount();
  ASSERT_TRUE(reloaded && *reloaded);
  EXPECT_FALSE((*reloaded)->server_key);
  EXPECT_EQ((*reloaded)->device_id, 9u);
}

TEST_F(LocalStoreTest, FileModes) {
  fs::create_directories(home_);
  fs::permissions(home_, fs::perms::all);  // 0777: Open tightens it
  auto store = Open();
  ASSERT_TRUE(store);
  EXPECT_EQ(ModeOf(home_), 0700);
  EXPECT_EQ(ModeOf(home_ / "storage.key"), 0600);
  EXPECT_EQ(ModeOf(home_ / "sotto.db"), 0600);
  EXPECT_EQ(fs::file_size(home_ / "storage.key"), 32u);
  ASSERT_TRUE(store->PutSetting("k", "v"));
  EXPECT_EQ(ModeOf(home_ / "sotto.db-wal"), 0600);
}

TEST_F(LocalStoreTest, KeyFileOpenToOthersRefused) {
  ASSERT_TRUE(Open());
  fs::permissions(home_ / "storage.key", fs::perms::owner_read | fs::perms::owner_write |
                                             fs::perms::group_read | fs::perms::others_read);
  auto store = LocalStore::Open(home_, random_);
  ASSERT_FALSE(store);
  EXPECT_TRUE(IsStoreErr(store.error(), StoreErr::kKeyFile));
}

TEST_F(LocalStoreTest, MissingKeyFileWithDatabaseRefused) {
  {
    auto store = Open();
    ASSERT_TRUE(store && store->SaveAccount(MakeAccount("+1")));
  }
  fs::remove(home_ / "storage.key");
  auto store = LocalStore::Open(home_, random_);
  ASSERT_FALSE(store);
  EXPECT_TRUE(IsStoreErr(store.error(), StoreErr::kKeyFile));
  EXPECT_FALSE(fs::exists(home_ / "storage.key"));  // no new key that opens nothing
}

TEST_F(LocalStoreTest, WrongSizeKeyFileRefused) {
  ASSERT_TRUE(Open());
  fs::resize_file(home_ / "storage.key", 31);
  auto store = LocalStore::Open(home_, random_);
  ASSERT_FALSE(store);
  EXPECT_TRUE(IsStoreErr(store.error(), StoreErr::kKeyFile));
}

TEST_F(LocalStoreTest, SecondOpenIsBusy) {
  auto first = Open();
  ASSERT_TRUE(first);
  auto second = LocalStore::Open(home_, random_);
  ASSERT_FALSE(second);
  EXPECT_TRUE(IsStoreErr(second.error(), StoreErr::kBusy));
  EXPECT_STREQ(second.error().message, "another sotto process is using this home directory");
  first.reset();
  EXPECT_TRUE(Open());
}

TEST_F(LocalStoreTest, NoSecretsInTheClear) {
  auto store = Open();
  ASSERT_TRUE(store);
  const LocalAccount account = MakeAccount("+1");
  ASSERT_TRUE(store->SaveAccount(account));
  const signal::SessionRecord session = MakeSession(*store, {"peer", 1});
  const signal::PreKeyRecord prekey{5, signal::KeyPair::Generate(random_)};
  ASSERT_TRUE(store->StorePreKey(prekey));
  const std::string outbox_secret = "the outbox payload is sealed too";
  OutboxItem item;
  item.message_id = "aa01";
  item.recipient = "peer";
  item.content.assign(outbox_secret.begin(), outbox_secret.end());
  ASSERT_TRUE(store->AddOutbox(item));

  // While open (WAL not checkpointed) and after close (checkpointed into the database).
  for (int pass = 0; pass < 2; ++pass) {
    const std::string raw = ReadFile(home_ / "sotto.db") + ReadFile(home_ / "sotto.db-wal");
    ASSERT_FALSE(raw.empty());
    EXPECT_FALSE(Contains(raw, account.identity.private_key.span()));
    EXPECT_FALSE(Contains(raw, account.noise_static.private_key.span()));
    EXPECT_FALSE(Contains(raw, session.current()->root_key.span()));
    EXPECT_FALSE(Contains(raw, ByteSpan(session.Serialize()).first(48)));
    EXPECT_FALSE(Contains(raw, prekey.key_pair.private_key.span()));
    EXPECT_EQ(raw.find(outbox_secret), std::string::npos);
    EXPECT_NE(raw.find("+1"), std::string::npos);  // the scan does see plain columns
    store.reset();
  }
}

TEST_F(LocalStoreTest, SealedRowCopiedElsewhereDoesNotOpen) {
  auto store = Open();
  ASSERT_TRUE(store);
  MakeSession(*store, {"alice", 1});
  MakeSession(*store, {"bob", 1});
  ASSERT_TRUE(store->StorePreKey({1, signal::KeyPair::Generate(random_)}));
  ASSERT_TRUE(store->StorePreKey({2, signal::KeyPair::Generate(random_)}));
  ASSERT_NO_FATAL_FAILURE(RawSql(
      home_,
      "UPDATE sessions SET record = (SELECT record FROM sessions WHERE name = 'alice') "
      "WHERE name = 'bob';"
      "UPDATE prekeys SET record = (SELECT record FROM prekeys WHERE id = 1) WHERE id = 2;"));
  EXPECT_TRUE(store->LoadSession({"alice", 1}));
  auto bob = store->LoadSession({"bob", 1});
  ASSERT_FALSE(bob);
  EXPECT_TRUE(IsStoreErr(bob.error(), StoreErr::kCorrupt));
  EXPECT_EQ(bob.error().code, Code::kDataLoss);
  EXPECT_TRUE(store->LoadPreKey(1));
  auto prekey = store->LoadPreKey(2);
  ASSERT_FALSE(prekey);
  EXPECT_TRUE(IsStoreErr(prekey.error(), StoreErr::kCorrupt));
}

TEST_F(LocalStoreTest, NewerSchemaRefused) {
  ASSERT_TRUE(Open());
  ASSERT_NO_FATAL_FAILURE(
      RawSql(home_, "PRAGMA user_version = " + std::to_string(kSchemaVersion + 1)));
  auto store = LocalStore::Open(home_, random_);
  ASSERT_FALSE(store);
  EXPECT_TRUE(IsStoreErr(store.error(), StoreErr::kSchema));
  EXPECT_STREQ(store.error().message, "database is newer than this program");
}

// --- Records -----------------------------------------------------------------------------

TEST(LocalStoreRecords, PreKeyEncodingRoundTripsAndRejectsBadLengths) {
  crypto::DeterministicRandom random(7);
  const signal::PreKeyRecord prekey{77, signal::KeyPair::Generate(random)};
  const crypto::SecretBytes encoded = internal::EncodePreKey(prekey);
  ASSERT_EQ(encoded.size(), internal::kPreKeyRecordSize);
  auto decoded = internal::DecodePreKey(encoded.span());
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->id, 77u);
  EXPECT_EQ(decoded->key_pair.public_key, prekey.key_pair.public_key);
  EXPECT_FALSE(internal::DecodePreKey(encoded.span().first(36)));
  Bytes longer(encoded.span().begin(), encoded.span().end());
  longer.push_back(0);
  EXPECT_FALSE(internal::DecodePreKey(longer));
  EXPECT_FALSE(internal::DecodePreKey({}));
  Bytes other_version(encoded.span().begin(), encoded.span().end());
  other_version[0] = 2;
  auto bad = internal::DecodePreKey(other_version);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(IsStoreErr(bad.error(), StoreErr::kCorrupt));

  const auto identity = signal::IdentityKeyPair::Generate(random);
  const auto spk = signal::GenerateSignedPreKey(identity, 9, 123456, random);
  const crypto::SecretBytes spk_encoded = internal::EncodeSignedPreKey(spk);
  ASSERT_EQ(spk_encoded.size(), internal::kSignedPreKeyRecordSize);
  auto spk_decoded = internal::DecodeSignedPreKey(spk_encoded.span());
  ASSERT_TRUE(spk_decoded);
  EXPECT_EQ(spk_decoded->id, 9u);
  EXPECT_EQ(spk_decoded->timestamp_ms, 123456u);
  EXPECT_EQ(spk_decoded->signature, spk.signature);
  EXPECT_EQ(spk_decoded->key_pair.public_key, spk.key_pair.public_key);
  for (size_t size : {size_t{0}, size_t{1}, size_t{108}, size_t{110}}) {
    Bytes cut(size, 1);
    auto r = internal::DecodeSignedPreKey(cut);
    ASSERT_FALSE(r) << size;
    EXPECT_TRUE(IsStoreErr(r.error(), StoreErr::kCorrupt));
  }
  EXPECT_FALSE(internal::DecodeAccountSecrets(spk_encoded.span().first(33)));
}

TEST(LocalStoreRecords, MatchQueryQuotesEverything) {
  EXPECT_EQ(internal::BuildMatchQuery(""), "");
  EXPECT_EQ(internal::BuildMatchQuery("  \t "), "");
  EXPECT_EQ(internal::BuildMatchQuery("hel wor"), "\"hel\"* AND \"wor\"*");
  EXPECT_EQ(internal::BuildMatchQuery("a\"b"), "\"a\"\"b\"*");
  EXPECT_EQ(internal::BuildMatchQuery("( ) \" x"), "\"x\"*");
  EXPECT_EQ(internal::BuildMatchQuery("NOT"), "\"NOT\"*");
}

// --- Trust policy ------------------------------------------------------------------------

TEST_F(LocalStoreTest, TrustPolicy) {
  auto store = Open();
  ASSERT_TRUE(store);
  const signal::ProtocolAddress bob{"b0b0", 1};
  const auto first = signal::IdentityKeyPair::Generate(random_).public_key;
  const auto second = signal::IdentityKeyPair::Generate(random_).public_key;
  using signal::Direction;
  using signal::IdentityChange;

  EXPECT_TRUE(*store->IsTrustedIdentity(bob, first, Direction::kSending));  // first use
  EXPECT_EQ(*store->SaveIdentity(bob, first), IdentityChange::kNew);
  EXPECT_EQ(*store->SaveIdentity(bob, first), IdentityChange::kUnchanged);
  EXPECT_TRUE(*store->IsTrustedIdentity(bob, first, Direction::kSending));
  EXPECT_FALSE(*store->IsTrustedIdentity(bob, second, Direction::kSending));

  EXPECT_EQ(*store->SaveIdentity(bob, second), IdentityChange::kReplacedExisting);
  EXPECT_EQ(**store->GetIdentity(bob), first);  // never replaced by itself
  auto info = store->GetIdentityInfo(bob);
  ASSERT_TRUE(info && *info);
  EXPECT_EQ((*info)->key, first);
  ASSERT_TRUE((*info)->pending);
  EXPECT_EQ(*(*info)->pending, second);
  EXPECT_GT((*info)->changed_ms, 0u);
  EXPECT_FALSE(*store->IsTrustedIdentity(bob, second, Direction::kSending));
  EXPECT_FALSE(*store->IsTrustedIdentity(bob, first, Direction::kSending));
  EXPECT_TRUE(*store->IsTrustedIdentity(bob, second, Direction::kReceiving));
  EXPECT_TRUE(*store->IsTrustedIdentity(bob, first, Direction::kReceiving));
  auto pending = store->PendingIdentities("b0b0");
  ASSERT_TRUE(pending);
  EXPECT_EQ(*pending, std::vector<signal::ProtocolAddress>{bob});

  ASSERT_TRUE(store->SetVerified("b0b0", LocalStore::Verification::kVerified));
  EXPECT_TRUE((*store->GetIdentityInfo(bob))->verified);
  ASSERT_TRUE(store->AcceptIdentity(bob));
  info = store->GetIdentityInfo(bob);
  EXPECT_EQ((*info)->key, second);
  EXPECT_FALSE((*info)->pending);
  EXPECT_FALSE((*info)->verified);  // a new key is unverified
  EXPECT_TRUE(*store->IsTrustedIdentity(bob, second, Direction::kSending));
  EXPECT_TRUE(store->PendingIdentities("b0b0")->empty());

  auto again = store->AcceptIdentity(bob);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Code::kNotFound);
  auto nobody = store->SetVerified("nobody", LocalStore::Verification::kVerified);
  ASSERT_FALSE(nobody);
  EXPECT_EQ(nobody.error().code, Code::kNotFound);

  // RecordPendingIdentity: no-op for an unknown address or the accepted key.
  const signal::ProtocolAddress carol{"c0c0", 2};
  ASSERT_TRUE(store->RecordPendingIdentity(carol, first, 50));
  EXPECT_FALSE(*store->GetIdentityInfo(carol));
  ASSERT_TRUE(store->RecordPendingIdentity(bob, second, 50));
  EXPECT_FALSE((*store->GetIdentityInfo(bob))->pending);
  ASSERT_TRUE(store->RecordPendingIdentity(bob, first, 60));
  ASSERT_TRUE(store->RecordPendingIdentity(bob, first, 70));  // first sighting kept
  info = store->GetIdentityInfo(bob);
  EXPECT_EQ(*(*info)->pending, first);
  EXPECT_EQ((*info)->changed_ms, 60u);
}

// --- Prekeys, sessions, sender keys ------------------------------------------------------

TEST_F(LocalStoreTest, PreKeys) {
  auto store = Open();
  ASSERT_TRUE(store);
  const auto prekeys = signal::GeneratePreKeys(10, 3, random_);
  for (const auto& p : prekeys) ASSERT_TRUE(store->StorePreKey(p));
  EXPECT_EQ(*store->CountPreKeys(), 3u);
  const uint32_t id = prekeys[1].id;
  auto loaded = store->LoadPreKey(id);
  ASSERT_TRUE(loaded && *loaded);
  EXPECT_EQ((*loaded)->id, id);
  EXPECT_EQ((*loaded)->key_pair.public_key, prekeys[1].key_pair.public_key);
  EXPECT_TRUE((*loaded)->key_pair.private_key == prekeys[1].key_pair.private_key);
  ASSERT_TRUE(store->RemovePreKey(id));
  ASSERT_TRUE(store->RemovePreKey(id));  // absent: fine
  EXPECT_FALSE(*store->LoadPreKey(id));
  EXPECT_EQ(*store->CountPreKeys(), 2u);
}

TEST_F(LocalStoreTest, SignedPreKeysListedOldestFirst) {
  auto store = Open();
  ASSERT_TRUE(store);
  const auto identity = signal::IdentityKeyPair::Generate(random_);
  ASSERT_TRUE(store->StoreSignedPreKey(signal::GenerateSignedPreKey(identity, 5, 3000, random_)));
  ASSERT_TRUE(store->StoreSignedPreKey(signal::GenerateSignedPreKey(identity, 9, 1000, random_)));
  const auto spk = signal::GenerateSignedPreKey(identity, 2, 2000, random_);
  ASSERT_TRUE(store->StoreSignedPreKey(spk));
  EXPECT_EQ(*store->ListSignedPreKeys(), (std::vector<uint32_t>{9, 2, 5}));
  auto loaded = store->LoadSignedPreKey(2);
  ASSERT_TRUE(loaded && *loaded);
  EXPECT_EQ((*loaded)->signature, spk.signature);
  EXPECT_EQ((*loaded)->timestamp_ms, 2000u);
  EXPECT_EQ((*loaded)->key_pair.public_key, spk.key_pair.public_key);
  ASSERT_TRUE(store->RemoveSignedPreKey(9));
  EXPECT_FALSE(*store->LoadSignedPreKey(9));
  EXPECT_EQ(*store->ListSignedPreKeys(), (std::vector<uint32_t>{2, 5}));
}

TEST_F(LocalStoreTest, SessionsAndDeviceList) {
  auto store = Open();
  ASSERT_TRUE(store);
  MakeSession(*store, {"x", 3});
  MakeSession(*store, {"x", 1});
  MakeSession(*store, {"y", 2});
  EXPECT_EQ(*store->GetDeviceSessions("x"), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(*store->GetDeviceSessions("y"), (std::vector<uint32_t>{2}));
  EXPECT_TRUE(store->GetDeviceSessions("z")->empty());
  ASSERT_TRUE(store->DeleteSession({"x", 1}));
  EXPECT_FALSE(*store->LoadSession({"x", 1}));
  EXPECT_EQ(*store->GetDeviceSessions("x"), (std::vector<uint32_t>{3}));
}

TEST_F(LocalStoreTest, SenderKeysAcrossStoresAndReopen) {
  const signal::SenderKeyName alice_key{"group-1", {"a11ce", 1}};
  signal::SenderKeyDistributionMessage distribution;
  Bytes ciphertext;
  {
    auto alice = Open(root_ / "alice");
    ASSERT_TRUE(alice);
    EXPECT_FALSE(*alice->LoadSenderKey(alice_key));
    auto made = signal::CreateSenderKeyDistribution(*alice, alice_key, random_);
    ASSERT_TRUE(made) << made.error().ToString();
    distribution = *made;
  }
  {
    auto alice = Open(root_ / "alice");
    ASSERT_TRUE(alice);
    auto sealed = signal::GroupCipher(*alice, alice_key, random_).Encrypt(AsBytes("to the group"));
    ASSERT_TRUE(sealed) << sealed.error().ToString();
    ciphertext = *sealed;
  }
  auto bob = Open(root_ / "bob");
  ASSERT_TRUE(bob);
  ASSERT_TRUE(signal::ProcessSenderKeyDistribution(*bob, alice_key, distribution));
  auto plain = signal::GroupCipher(*bob, alice_key, random_).Decrypt(ciphertext);
  ASSERT_TRUE(plain) << plain.error().ToString();
  EXPECT_EQ(AsString(*plain), "to the group");
  EXPECT_FALSE(*bob->LoadSenderKey({"group-2", {"a11ce", 1}}));
}

// --- The Signal library on two LocalStores -----------------------------------------------

TEST_F(LocalStoreTest, SignalSessionsAcrossReopen) {
  const fs::path alice_home = root_ / "alice";
  const fs::path bob_home = root_ / "bob";
  const signal::ProtocolAddress alice_address{"a11ce", 1};
  const signal::ProtocolAddress bob_address{"b0b", 1};
  signal::PreKeyBundle bundle;
  {
    auto bob = Open(bob_home);
    ASSERT_TRUE(bob);
    const LocalAccount account = MakeAccount("+2");
    ASSERT_TRUE(bob->SaveAccount(account));
    const auto spk = signal::GenerateSignedPreKey(account.identity, 7, 0, random_);
    const signal::PreKeyRecord opk{31, signal::KeyPair::Generate(random_)};
    ASSERT_TRUE(bob->StoreSignedPreKey(spk));
    ASSERT_TRUE(bob->StorePreKey(opk));
    bundle = {account.registration_id,
              1,
              opk.id,
              opk.key_pair.public_key,
              spk.id,
              spk.key_pair.public_key,
              spk.signature,
              account.identity.public_key};
  }
  signal::CiphertextMessage first;
  {
    auto alice = Open(alice_home);
    ASSERT_TRUE(alice);
    ASSERT_TRUE(alice->SaveAccount(MakeAccount("+1")));
    ASSERT_TRUE(signal::ProcessPreKeyBundle(StoresOf(*alice), bob_address, bundle, random_));
    auto sent =
        signal::SessionCipher(StoresOf(*alice), bob_address, random_).Encrypt(AsBytes("hello bob"));
    ASSERT_TRUE(sent) << sent.error().ToString();
    first = *sent;
    EXPECT_EQ(first.type, signal::MessageType::kPreKey);
  }
  signal::CiphertextMessage reply;
  {
    auto bob = Open(bob_home);
    ASSERT_TRUE(bob);
    auto plain = signal::SessionCipher(StoresOf(*bob), alice_address, random_)
                     .Decrypt(first.bytes, first.type);
    ASSERT_TRUE(plain) << plain.error().ToString();
    EXPECT_EQ(AsString(*plain), "hello bob");
    EXPECT_EQ(*bob->CountPreKeys(), 0u);  // the one-time prekey was consumed
    EXPECT_TRUE(*bob->GetIdentity(alice_address));
    auto sent = signal::SessionCipher(StoresOf(*bob), alice_address, random_)
                    .Encrypt(AsBytes("hello alice"));
    ASSERT_TRUE(sent);
    reply = *sent;
  }
  auto alice = Open(alice_home);
  ASSERT_TRUE(alice);
  signal::SessionCipher alice_cipher(StoresOf(*alice), bob_address, random_);
  auto plain = alice_cipher.Decrypt(reply.bytes, reply.type);
  ASSERT_TRUE(plain) << plain.error().ToString();
  EXPECT_EQ(AsString(*plain), "hello alice");
  auto next = alice_cipher.Encrypt(AsBytes("now a plain SignalMessage"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->type, signal::MessageType::kSignal);
  EXPECT_EQ(**alice->GetIdentity(bob_address), bundle.identity_key);

  // Bob re-registers: his new bundle is recorded as pending and sending is refused.
  signal::PreKeyBundle changed = bundle;
  const auto new_identity = signal::IdentityKeyPair::Generate(random_);
  const auto new_spk = signal::GenerateSignedPreKey(new_identity, 8, 0, random_);
  changed.identity_key = new_identity.public_key;
  changed.signed_prekey = new_spk.key_pair.public_key;
  changed.signed_prekey_signature = new_spk.signature;
  changed.prekey_id.reset();
  changed.prekey.reset();
  auto refused = signal::ProcessPreKeyBundle(StoresOf(*alice), bob_address, changed, random_);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(signal::Is(refused.error(), signal::Err::kUntrustedIdentity));
  ASSERT_TRUE(alice->RecordPendingIdentity(bob_address, changed.identity_key, 99));
  auto blocked =
      signal::SessionCipher(StoresOf(*alice), bob_address, random_).Encrypt(AsBytes("held"));
  ASSERT_FALSE(blocked);
  EXPECT_TRUE(signal::Is(blocked.error(), signal::Err::kUntrustedIdentity));
  ASSERT_TRUE(alice->AcceptIdentity(bob_address));
  EXPECT_TRUE(signal::ProcessPreKeyBundle(StoresOf(*alice), bob_address, changed, random_));
}

}  // namespace
}  // namespace sotto::client
