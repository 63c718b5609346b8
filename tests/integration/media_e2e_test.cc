// Encrypted attachments end to end: two Clients and a real sottod with its media blob
// service. A file sent 1:1 arrives byte-identical; a blob tampered with on the server is
// rejected and nothing is saved; a download that was interrupted resumes with Range.
// Waits are on events (Client::Poll with a predicate), never sleeps.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "client/client.h"
#include "client/media.h"
#include "crypto/random.h"
#include "tests/integration/sottod_process.h"

namespace sotto::client {
namespace {

using std::chrono::milliseconds;
using testing::SottodProcess;
namespace fs = std::filesystem;

constexpr milliseconds kWait{20'000};

std::string TempDir() {
  char tmpl[] = "/tmp/sotto-media-XXXXXX";
  return std::string(mkdtemp(tmpl));
}

Bytes ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteAll(const fs::path& path, ByteSpan data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

struct User {
  std::string handle;
  std::string dir = TempDir();
  std::unique_ptr<Client> client;
  std::vector<MessageEvent> messages;

  ~User() {
    client.reset();
    fs::remove_all(dir);
  }
  fs::path home() const { return fs::path(dir) / "home"; }
  void Open(ClientConfig::AttachmentDownload mode) {
    ClientConfig config;
    config.home = home();
    config.attachment_download = mode;
    auto opened = Client::Open(config);
    ASSERT_TRUE(opened) << opened.error().ToString();
    client = std::move(*opened);
    client->SetEventSink([this](const Event& e) {
      if (auto* m = std::get_if<MessageEvent>(&e)) messages.push_back(*m);
    });
  }
  void PollUntil(const std::function<bool()>& pred) {
    auto polled = client->Poll(kWait, pred);
    if (!polled) throw std::runtime_error(handle + ": poll failed: " + polled.error().ToString());
    if (!pred()) throw std::runtime_error(handle + ": condition not reached within the wait");
  }
};

class MediaE2eTest : public ::testing::Test {
 protected:
  static testing::SottodOptions WithMedia() {
    testing::SottodOptions options;
    options.media = true;
    return options;
  }
  void Register(User& user, const std::string& handle,
                ClientConfig::AttachmentDownload mode = ClientConfig::AttachmentDownload::kOnReceive) {
    user.handle = handle;
    ASSERT_NO_FATAL_FAILURE(user.Open(mode));
    const std::string server = "127.0.0.1:" + std::to_string(sottod_.tcp_address().port());
    ASSERT_TRUE(user.client->StartRegistration(server, sottod_.server_key(), handle));
    auto finished = user.client->FinishRegistration(sottod_.VerificationCode(handle));
    ASSERT_TRUE(finished) << finished.error().ToString();
  }
  // A file of `size` random bytes in `dir`.
  static fs::path RandomFile(const std::string& dir, const std::string& name, size_t size,
                             uint64_t seed) {
    Bytes data(size);
    crypto::DeterministicRandom(seed).Fill(data);
    const fs::path path = fs::path(dir) / name;
    WriteAll(path, data);
    return path;
  }
  // The one blob the server stores.
  fs::path StoredBlob() const {
    std::vector<fs::path> blobs;
    for (const auto& entry : fs::directory_iterator(fs::path(sottod_.data_dir()) / "media")) {
      blobs.push_back(entry.path());
    }
    if (blobs.size() != 1) throw std::runtime_error("expected exactly one stored blob");
    return blobs[0];
  }

  SottodProcess sottod_{WithMedia()};
};

TEST_F(MediaE2eTest, FileSentOneToOneArrivesByteIdentical) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550001001"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550001002"));
  ASSERT_TRUE(bob.client->Connect());
  const fs::path file = RandomFile(alice.dir, "holiday photo.png", 3 * 1024 * 1024 + 7, 1);

  auto sent = alice.client->SendFile(bob.handle, file, "look at this");
  ASSERT_TRUE(sent) << sent.error().ToString();
  EXPECT_EQ(sent->tick, Tick::kSent);
  EXPECT_EQ(sottod_.Metric("sotto_media_uploads_total"), 1);

  bob.PollUntil([&] { return !bob.messages.empty(); });
  const MessageEvent got = bob.messages.at(0);
  EXPECT_EQ(got.message.body, "look at this");
  ASSERT_TRUE(got.message.attachment.has_value());
  const AttachmentInfo& info = *got.message.attachment;
  EXPECT_EQ(info.state, AttachmentState::kSaved);
  EXPECT_EQ(info.content_type, "image/png");
  EXPECT_EQ(info.size, fs::file_size(file));
  EXPECT_EQ(info.file_name, "holiday photo.png");
  // Saved under HOME/media/ with a sanitized name, byte-identical.
  EXPECT_EQ(fs::path(info.local_path).parent_path(), bob.home() / "media");
  EXPECT_EQ(fs::path(info.local_path).filename().string().find(' '), std::string::npos);
  EXPECT_EQ(ReadAll(info.local_path), ReadAll(file));
  // The server holds only ciphertext: its blob is not the file.
  EXPECT_NE(ReadAll(StoredBlob()), ReadAll(file));
  EXPECT_EQ(fs::file_size(StoredBlob()), EncryptedBlobSize(fs::file_size(file)));

  // The conversation lists the attachment on both sides.
  auto theirs = bob.client->Conversation(alice.handle, 10);
  ASSERT_TRUE(theirs);
  ASSERT_EQ(theirs->size(), 1u);
  ASSERT_TRUE(theirs->at(0).attachment.has_value());
  EXPECT_EQ(theirs->at(0).attachment->local_path, info.local_path);
  auto mine = alice.client->Conversation(bob.handle, 10);
  ASSERT_TRUE(mine);
  ASSERT_EQ(mine->size(), 1u);
  ASSERT_TRUE(mine->at(0).attachment.has_value());
  EXPECT_EQ(mine->at(0).attachment->state, AttachmentState::kSent);
}

TEST_F(MediaE2eTest, FileSentToAGroupArrivesByteIdenticalAtEveryMember) {
  User alice, bob, carol;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550001041"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550001042"));
  ASSERT_NO_FATAL_FAILURE(Register(carol, "+15550001043"));
  auto created = alice.client->CreateGroup("photos", {bob.handle, carol.handle});
  ASSERT_TRUE(created) << created.error().ToString();
  const std::string group = created->id;
  for (User* u : {&bob, &carol}) {
    u->PollUntil([&] { return u->client->GroupInfo(group).has_value(); });
  }
  const fs::path file = RandomFile(alice.dir, "group.bin", 1024 * 1024 + 3, 5);
  auto sent = alice.client->SendGroupFile(group, file, "for all");
  ASSERT_TRUE(sent) << sent.error().ToString();
  EXPECT_EQ(sottod_.Metric("sotto_media_uploads_total"), 1);  // one upload for the group
  for (User* u : {&bob, &carol}) {
    u->PollUntil([&] { return !u->messages.empty(); });
    const MessageEvent got = u->messages.at(0);
    EXPECT_EQ(got.message.group_id, group);
    EXPECT_EQ(got.message.body, "for all");
    ASSERT_TRUE(got.message.attachment.has_value());
    EXPECT_EQ(got.message.attachment->state, AttachmentState::kSaved);
    EXPECT_EQ(ReadAll(got.message.attachment->local_path), ReadAll(file));
  }
  auto mine = alice.client->GroupConversation(group, 10);
  ASSERT_TRUE(mine);
  ASSERT_EQ(mine->size(), 1u);
  ASSERT_TRUE(mine->at(0).attachment.has_value());
  EXPECT_EQ(mine->at(0).attachment->state, AttachmentState::kSent);
}

TEST_F(MediaE2eTest, TamperedBlobIsRejectedAndNothingIsSaved) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550001011"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550001012", ClientConfig::AttachmentDownload::kManual));
  ASSERT_TRUE(bob.client->Connect());
  const fs::path file = RandomFile(alice.dir, "report.pdf", 200 * 1024, 2);
  ASSERT_TRUE(alice.client->SendFile(bob.handle, file, ""));
  bob.PollUntil([&] { return !bob.messages.empty(); });
  const MessageEvent got = bob.messages.at(0);
  ASSERT_TRUE(got.message.attachment.has_value());
  EXPECT_EQ(got.message.attachment->state, AttachmentState::kPending);

  // The server (or anyone with its disk) flips one byte of the stored ciphertext.
  const fs::path blob = StoredBlob();
  Bytes bytes = ReadAll(blob);
  bytes[bytes.size() / 2] ^= 0x20;
  WriteAll(blob, bytes);

  auto downloaded = bob.client->DownloadAttachment(got.message.rowid);
  ASSERT_FALSE(downloaded);
  EXPECT_EQ(downloaded.error().detail, static_cast<uint16_t>(MediaErr::kRejected));
  EXPECT_NE(std::string(downloaded.error().message).find("MAC"), std::string::npos);
  // No file (and no temporary or partial file) is left.
  size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(bob.home() / "media")) {
    files += entry.is_regular_file() ? size_t{1} : size_t{0};
  }
  EXPECT_EQ(files, 0u);
  auto conversation = bob.client->Conversation(alice.handle, 10);
  ASSERT_TRUE(conversation);
  EXPECT_EQ(conversation->at(0).attachment->state, AttachmentState::kRejected);
}

TEST_F(MediaE2eTest, InterruptedDownloadResumesWithRange) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550001021"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550001022", ClientConfig::AttachmentDownload::kManual));
  ASSERT_TRUE(bob.client->Connect());
  const fs::path file = RandomFile(alice.dir, "clip.mp4", 2 * 1024 * 1024 + 123, 3);
  ASSERT_TRUE(alice.client->SendFile(bob.handle, file, "clip"));
  bob.PollUntil([&] { return !bob.messages.empty(); });
  const MessageEvent got = bob.messages.at(0);

  // What an interrupted download leaves: the first part of the blob in the partial file.
  const fs::path blob = StoredBlob();
  const Bytes whole = ReadAll(blob);
  const size_t half = whole.size() / 2 + 5;
  const fs::path part = bob.home() / "media" / ".partial" / (blob.filename().string() + ".blob");
  fs::create_directories(part.parent_path());
  WriteAll(part, ByteSpan(whole).first(half));

  const long before = sottod_.Metric("sotto_media_bytes_downloaded_total");
  auto downloaded = bob.client->DownloadAttachment(got.message.rowid);
  ASSERT_TRUE(downloaded) << downloaded.error().ToString();
  EXPECT_EQ(downloaded->state, AttachmentState::kSaved);
  EXPECT_EQ(ReadAll(downloaded->local_path), ReadAll(file));
  // Only the rest was fetched (a 206 from `half` on).
  EXPECT_EQ(sottod_.Metric("sotto_media_bytes_downloaded_total") - before,
            static_cast<long>(whole.size() - half));
  EXPECT_FALSE(fs::exists(part));
  // Asking again is a no-op that returns the saved file.
  auto again = bob.client->DownloadAttachment(got.message.rowid);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->local_path, downloaded->local_path);
}

TEST_F(MediaE2eTest, ServerWithoutMediaRefusesSendFile) {
  SottodProcess plain;  // no --media-listen
  User alice, bob;
  alice.handle = "+15550001031";
  ASSERT_NO_FATAL_FAILURE(alice.Open(ClientConfig::AttachmentDownload::kOnReceive));
  const std::string server = "127.0.0.1:" + std::to_string(plain.tcp_address().port());
  ASSERT_TRUE(alice.client->StartRegistration(server, plain.server_key(), alice.handle));
  ASSERT_TRUE(alice.client->FinishRegistration(plain.VerificationCode(alice.handle)));
  bob.handle = "+15550001032";
  ASSERT_NO_FATAL_FAILURE(bob.Open(ClientConfig::AttachmentDownload::kOnReceive));
  ASSERT_TRUE(bob.client->StartRegistration(server, plain.server_key(), bob.handle));
  ASSERT_TRUE(bob.client->FinishRegistration(plain.VerificationCode(bob.handle)));
  const fs::path file = RandomFile(alice.dir, "a.txt", 10, 4);
  auto sent = alice.client->SendFile(bob.handle, file, "");
  ASSERT_FALSE(sent);
  EXPECT_NE(std::string(sent.error().message).find("no media service"), std::string::npos);
}

}  // namespace
}  // namespace sotto::client
