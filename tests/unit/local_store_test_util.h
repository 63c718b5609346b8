// The fixture shared by the local store tests: a fresh temporary directory per test and
// helpers that make accounts, sessions and messages.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "client/internal/sqlite.h"
#include "client/local_store.h"
#include "signal/session_builder.h"

namespace sotto::client::testing {

namespace fs = std::filesystem;

inline bool IsStoreErr(const Error& e, StoreErr detail) {
  return e.module == Module::kClient && e.detail == static_cast<uint16_t>(detail);
}

inline int ModeOf(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return static_cast<int>(st.st_mode & 07777);
}

inline std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline bool Contains(const std::string& haystack, ByteSpan needle) {
  return haystack.find(AsString(needle)) != std::string::npos;
}

inline signal::ProtocolStores StoresOf(LocalStore& store) { return {store, store, store, store}; }

// Runs SQL on the database behind a store's back (a second connection).
inline void RawSql(const fs::path& home, const std::string& sql) {
  auto db = internal::Database::Open(home / "sotto.db");
  ASSERT_TRUE(db);
  ASSERT_TRUE((*db)->Exec(sql)) << sql;
}

class LocalStoreTest : public ::testing::Test {
 protected:
  LocalStoreTest() {
    std::string tmpl = (fs::temp_directory_path() / "sotto_store_XXXXXX").string();
    root_ = mkdtemp(tmpl.data());
    home_ = root_ / "home";
  }
  ~LocalStoreTest() override { fs::remove_all(root_); }

  std::unique_ptr<LocalStore> Open(const fs::path& home) {
    auto store = LocalStore::Open(home, random_);
    EXPECT_TRUE(store) << store.error().ToString();
    return store ? std::move(*store) : nullptr;
  }
  std::unique_ptr<LocalStore> Open() { return Open(home_); }

  LocalAccount MakeAccount(std::string handle) {
    LocalAccount account;
    account.handle = std::move(handle);
    account.server = "127.0.0.1:4433";
    account.server_key = crypto::PublicKeyOf(crypto::GeneratePrivateKey(random_));
    account.noise_static = noise::KeyPair::Generate(random_);
    account.identity = signal::IdentityKeyPair::Generate(random_);
    account.registration_id = signal::GenerateRegistrationId(random_);
    account.account_id = Bytes(16, 0xab);
    account.device_id = 1;
    account.next_prekey_id = 101;
    account.signed_prekey_id = 7;
    account.signed_prekey_ms = 1'700'000'000'000;
    return account;
  }

  // A session record from a real X3DH against a fresh peer identity (and an account for
  // `store` if it has none: the library needs our identity).
  signal::SessionRecord MakeSession(LocalStore& store, const signal::ProtocolAddress& peer) {
    if (!*store.LoadAccount()) {
      EXPECT_TRUE(store.SaveAccount(MakeAccount("+100")));
    }
    const auto identity = signal::IdentityKeyPair::Generate(random_);
    const auto spk = signal::GenerateSignedPreKey(identity, 1, 0, random_);
    signal::PreKeyBundle bundle;
    bundle.registration_id = 5;
    bundle.device_id = peer.device_id;
    bundle.signed_prekey_id = 1;
    bundle.signed_prekey = spk.key_pair.public_key;
    bundle.signed_prekey_signature = spk.signature;
    bundle.identity_key = identity.public_key;
    EXPECT_TRUE(signal::ProcessPreKeyBundle(StoresOf(store), peer, bundle, random_));
    auto record = store.LoadSession(peer);
    EXPECT_TRUE(record && *record);
    return record && *record ? std::move(**record) : signal::SessionRecord();
  }

  StoredMessage Message(std::string peer, MessageDirection direction, std::string id,
                        std::string body, Tick tick = Tick::kPending) {
    StoredMessage m;
    m.message_id = std::move(id);
    m.peer = std::move(peer);
    m.direction = direction;
    m.peer_device = 2;
    m.body = std::move(body);
    m.sent_ms = 1000;
    m.stored_ms = 2000;
    m.tick = tick;
    return m;
  }

  crypto::DeterministicRandom random_{4242};
  fs::path root_;
  fs::path home_;
};

}  // namespace sotto::client::testing
