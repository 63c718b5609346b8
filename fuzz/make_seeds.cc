// Writes the seed corpus of every fuzz target: valid messages and records made with the
// same deterministic fixture the targets use, so seeds reach the deepest checks.
// Usage: make_seeds OUTPUT_DIR   (writes OUTPUT_DIR/<target>/seed-N)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "client/content.h"
#include "client/device_list.h"
#include "fuzz/devices_fuzz_fixture.h"
#include "fuzz/fuzz_fixture.h"
#include "fuzz/noise_fuzz_fixture.h"
#include "fuzz/server_fuzz_fixture.h"
#include "signal/fingerprint.h"
#include "store/rocksdb/internal/schema.h"
#include "wire/sotto_wire.pb.h"

namespace {

void Write(const std::filesystem::path& dir, const std::string& target, int n,
           sotto::ByteSpan bytes, int prefix = -1) {
  std::filesystem::create_directories(dir / target);
  std::ofstream out(dir / target / ("seed-" + std::to_string(n)), std::ios::binary);
  if (prefix >= 0) out.put(static_cast<char>(prefix));
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

void WriteText(const std::filesystem::path& dir, const std::string& target, int n,
               const std::string& bytes, int prefix) {
  Write(dir, target, n, sotto::AsBytes(bytes), prefix);
}

// Seeds for store_record: a valid encoding of each kind (first byte: the decoder).
void WriteStoreSeeds(const std::filesystem::path& dir) {
  using namespace sotto::store;  // NOLINT(google-build-using-namespace)
  AccountRecord account;
  account.handle = "+15550001234";
  account.devices.push_back({1, StaticKey{7}, 1234, "https://push.example.org/x", 99});
  account.devices.push_back({2, StaticKey{8}, 0, "", 100});
  account.revision = 1;  // stored records have a revision (never 0)
  WriteText(dir, "store_record", 0, internal::EncodeAccount(account), 0);
  DeviceKeys keys;
  keys.identity_key[0] = 5;
  keys.registration_id = 77;
  keys.signed_prekey.id = 3;
  WriteText(dir, "store_record", 1, internal::EncodeDeviceKeys(keys), 1);
  WriteText(dir, "store_record", 2, internal::EncodeQueueValue(123456, "envelope bytes"), 2);
  WriteText(dir, "store_record", 3, internal::EncodeDedupeValue({42, 99999}), 3);
  const DeviceAddress device{AccountId{1, 2, 3}, 1};
  WriteText(dir, "store_record", 4, internal::QueueKey(device, 17), 4);
  WriteText(dir, "store_record", 5, internal::DeviceKey(device) + "\xff\xff", 5);
  WriteText(dir, "store_record", 7, internal::EncodeDeviceAddress(device), 7);
  GroupRecord group;
  group.version = 3;
  group.created_ms = 1234;
  group.members.push_back({AccountId{1}, true, 1});
  group.members.push_back({AccountId{2}, false, 3});
  group.revision = 2;
  WriteText(dir, "store_record", 6, internal::EncodeGroup(group), 6);
}

// Seeds for device_list and provisioning (docs/devices.md), valid under the fixture keys,
// and an account record with linked devices for store_record.
void WriteDevicesSeeds(const std::filesystem::path& dir) {
  using namespace sotto;  // NOLINT(google-build-using-namespace)
  crypto::DeterministicRandom random(6);
  const signal::IdentityKeyPair primary = fuzz::DevicesPrimary();
  const signal::IdentityKeyPair companion = signal::IdentityKeyPair::Generate(random);
  for (int n = 0; n < 2; ++n) {
    std::vector<client::DeviceListEntryInput> entries{{1, primary.public_key}};
    if (n == 1) entries.push_back({3, companion.public_key});
    const wire::SignedDeviceList list =
        client::SignDeviceList(fuzz::kDevicesAccount, 7, 1234, entries, primary, random);
    WriteText(dir, "device_list", 2 * n, list.list(), 0);
    WriteText(dir, "device_list", 2 * n + 1, list.SerializeAsString(), 5);
  }
  client::LinkCode code;
  code.provision_id = fuzz::kCompanionProvisionId;
  code.companion_key = crypto::PublicKeyOf(fuzz::ProvisionCompanionKey());
  WriteText(dir, "provisioning", 0, client::FormatLinkCode(code), 0);
  content::ProvisionMessage message;
  message.set_account_id(fuzz::kDevicesAccount);
  message.set_handle("+15550001234");
  const signal::SerializedPublicKey id = primary.public_key.Serialize();
  message.set_primary_identity(id.data(), id.size());
  message.set_link_token(std::string(32, 't'));
  message.set_reply_provision_id(fuzz::kPrimaryProvisionId);
  client::ProvisionKeys keys;
  WriteText(dir, "provisioning", 1, *client::SealProvisionMessage(code, message, random, keys), 1);
  content::ProvisionReply reply;
  reply.set_device_id(2);
  const signal::SerializedPublicKey cid = companion.public_key.Serialize();
  reply.set_identity_key(cid.data(), cid.size());
  WriteText(
      dir, "provisioning", 2,
      *client::SealProvisionReply(reply, fuzz::FixedProvisionKeys(), fuzz::kPrimaryProvisionId), 2);

  store::AccountRecord account;
  account.handle = "+15550001234";
  account.devices.push_back({1, store::StaticKey{7}, 1234, "", 99});
  account.devices.push_back({4, store::StaticKey{8}, 55, "", 100, true});
  account.device_list = "signed list bytes";
  account.device_list_version = 3;
  account.next_device_id = 5;
  account.revision = 4;
  WriteText(dir, "store_record", 8, store::internal::EncodeAccount(account), 0);
}

// Seeds for wire_frame: the server core's frames, length-prefixed (first byte: chunk).
void WriteFrameSeeds(const std::filesystem::path& dir) {
  namespace wire = sotto::wire;
  std::vector<wire::Frame> frames(6);
  wire::SendRequest* send = frames[0].mutable_request()->mutable_send();
  send->set_message_id("m-1");
  send->set_recipient(std::string(16, 'a'));
  auto* m = send->add_messages();
  m->set_device_id(1);
  m->set_registration_id(5);
  m->set_type(wire::CIPHERTEXT_PREKEY);
  m->set_ciphertext("ciphertext");
  wire::Envelope* e = frames[1].mutable_envelope();
  e->set_seq(9);
  e->set_type(wire::ENVELOPE_DELIVERED);
  e->set_message_id("m-1");
  frames[2].mutable_delivery_ack()->add_seqs(9);
  frames[2].mutable_delivery_ack()->add_seqs(10);
  wire::UploadKeysRequest* up = frames[3].mutable_request()->mutable_upload_keys();
  up->set_identity_key(std::string(33, '\x05'));
  up->mutable_signed_prekey()->set_signature(std::string(64, 's'));
  up->add_one_time_prekeys()->set_id(3);
  frames[4].mutable_response()->mutable_send()->add_stale_devices(1);
  frames[5].mutable_presence()->set_online(true);
  int n = 100;
  for (const wire::Frame& f : frames) {
    const std::string body = f.SerializeAsString();
    std::string framed;
    framed.push_back(static_cast<char>(body.size() >> 8));
    framed.push_back(static_cast<char>(body.size() & 0xff));
    framed += body;
    WriteText(dir, "wire_frame", n++, framed, 7);
  }
}

// Seeds for server_request (fuzz/server_fuzz_fixture.h): every request type, in short
// conversations that use the markers for ids and signatures the server makes or checks.
void WriteServerRequestSeeds(const std::filesystem::path& dir) {
  namespace wire = sotto::wire;
  using sotto::fuzz::FuzzConnection;
  const auto kAlice = FuzzConnection::kAlice;
  const auto kBob = FuzzConnection::kBob;
  const auto kStranger = FuzzConnection::kStranger;
  const std::string alice(sotto::fuzz::kAliceAccountMarker);
  const std::string bob(sotto::fuzz::kBobAccountMarker);
  const std::string group(sotto::fuzz::kGroupMarker);
  uint64_t id = 10;
  // One record: `fill` writes the request body.
  auto record = [&](std::string& input, FuzzConnection c, auto fill) {
    wire::Frame f;
    f.mutable_request()->set_id(++id);
    fill(*f.mutable_request());
    sotto::fuzz::AppendRecord(input, c, f.SerializeAsString());
  };
  auto frame = [&](std::string& input, FuzzConnection c, const wire::Frame& f) {
    sotto::fuzz::AppendRecord(input, c, f.SerializeAsString());
  };
  std::vector<std::string> seeds;
  std::string s;
  record(s, kAlice, [](wire::Request& r) { r.mutable_echo()->set_data("ping"); });
  record(s, kStranger, [](wire::Request& r) { r.mutable_whoami(); });
  record(s, kAlice, [](wire::Request&) {});  // no body
  seeds.push_back(std::move(s));
  s.clear();
  record(s, kStranger,
         [](wire::Request& r) { r.mutable_request_code()->set_handle("+15550007003"); });
  record(s, kStranger, [](wire::Request& r) {
    r.mutable_register_()->set_handle("+15550007003");
    r.mutable_register_()->set_code("000000");
  });
  record(s, kAlice, [](wire::Request& r) {
    r.mutable_lookup()->set_handle(std::string(sotto::fuzz::kBobHandle));
  });
  seeds.push_back(std::move(s));
  s.clear();
  record(s, kAlice, [](wire::Request& r) {
    wire::UploadKeysRequest* u = r.mutable_upload_keys();
    u->set_identity_key(sotto::fuzz::IdentityKey33Of(FuzzConnection::kAlice));
    u->set_registration_id(100);
    u->mutable_signed_prekey()->set_id(2);
    u->mutable_signed_prekey()->set_public_key(
        sotto::fuzz::IdentityKey33Of(FuzzConnection::kStranger));
    u->mutable_signed_prekey()->set_signature(std::string(sotto::fuzz::kSignMarker));
    wire::OneTimePreKey* k = u->add_one_time_prekeys();
    k->set_id(50);
    k->set_public_key(sotto::fuzz::IdentityKey33Of(FuzzConnection::kBob));
  });
  record(s, kAlice, [](wire::Request& r) { r.mutable_prekey_count(); });
  record(s, kAlice, [&](wire::Request& r) { r.mutable_get_bundle()->set_account_id(bob); });
  seeds.push_back(std::move(s));
  s.clear();
  record(s, kAlice, [&](wire::Request& r) {
    wire::SendRequest* send = r.mutable_send();
    send->set_message_id("m-1");
    send->set_recipient(bob);
    wire::DeviceMessage* m = send->add_messages();
    m->set_device_id(1);
    m->set_registration_id(101);
    m->set_type(wire::CIPHERTEXT_PLAINTEXT);
    m->set_ciphertext("hello bob");
  });
  {
    wire::Frame ack;
    ack.mutable_delivery_ack()->add_seqs(1);
    frame(s, kBob, ack);
    wire::Frame ping;
    ping.mutable_ping()->set_nonce(5);
    frame(s, kBob, ping);
  }
  seeds.push_back(std::move(s));
  s.clear();
  record(s, kAlice, [](wire::Request& r) {
    r.mutable_set_presence_visibility()->set_visibility(wire::PRESENCE_EVERYONE);
  });
  record(s, kBob, [&](wire::Request& r) { r.mutable_contact()->set_account_id(alice); });
  record(s, kBob, [&](wire::Request& r) { r.mutable_subscribe_presence()->set_account_id(alice); });
  record(s, kAlice, [](wire::Request& r) {
    r.mutable_register_push()->set_endpoint("https://push.example.org/x");
  });
  seeds.push_back(std::move(s));
  s.clear();
  record(s, kAlice, [&](wire::Request& r) { r.mutable_create_group()->add_members(bob); });
  record(s, kAlice, [&](wire::Request& r) {
    wire::ModifyGroupRequest* m = r.mutable_modify_group();
    m->set_group_id(group);
    m->set_action(wire::GROUP_PROMOTE);
    m->add_accounts(bob);
  });
  record(s, kBob, [&](wire::Request& r) { r.mutable_get_group()->set_group_id(group); });
  record(s, kAlice, [&](wire::Request& r) { r.mutable_get_group_devices()->set_group_id(group); });
  record(s, kAlice, [&](wire::Request& r) {
    wire::GroupSendRequest* g = r.mutable_group_send();
    g->set_message_id("g-1");
    g->set_group_id(group);
    g->set_ciphertext("sender key message");
    g->set_devices_digest(std::string(32, 'd'));
  });
  record(s, kBob, [&](wire::Request& r) {
    r.mutable_modify_group()->set_group_id(group);
    r.mutable_modify_group()->set_action(wire::GROUP_LEAVE);
  });
  seeds.push_back(std::move(s));
  s.clear();
  record(s, kAlice, [](wire::Request& r) { r.mutable_media_upload()->set_size(1000); });
  record(s, kAlice, [](wire::Request& r) { r.mutable_media_location(); });
  seeds.push_back(std::move(s));
  s.clear();
  record(s, kStranger, [](wire::Request& r) { r.mutable_provision_open(); });
  record(s, kAlice, [](wire::Request& r) {
    r.mutable_provision_send()->set_provision_id(std::string(sotto::fuzz::kProvisionMarker));
    r.mutable_provision_send()->set_body("sealed provisioning message");
  });
  record(s, kAlice, [](wire::Request& r) { r.mutable_link_token(); });
  record(s, kStranger, [](wire::Request& r) {
    r.mutable_link_device()->set_token(std::string(sotto::fuzz::kLinkTokenMarker));
  });
  record(s, kAlice, [](wire::Request& r) { r.mutable_get_device_list(); });
  record(s, kAlice, [](wire::Request& r) { r.mutable_unlink_device()->set_device_id(2); });
  seeds.push_back(std::move(s));
  s.clear();
  record(s, kAlice, [&](wire::Request& r) {
    wire::DeviceList list;
    list.set_account_id(alice);
    list.set_version(1);
    list.set_timestamp_ms(1);
    wire::DeviceListEntry* e = list.add_devices();
    e->set_device_id(1);
    e->set_identity_key(sotto::fuzz::IdentityKey33Of(FuzzConnection::kAlice));
    wire::SignedDeviceList* l = r.mutable_publish_device_list()->mutable_list();
    l->set_list(list.SerializeAsString());
    l->set_signature(std::string(sotto::fuzz::kSignMarker));
  });
  record(s, kBob, [&](wire::Request& r) { r.mutable_get_device_list()->set_account_id(alice); });
  {
    wire::Frame bye;
    bye.mutable_close()->set_reason(wire::CLOSE_UNSPECIFIED);
    frame(s, kBob, bye);
  }
  seeds.push_back(std::move(s));
  for (size_t i = 0; i < seeds.size(); ++i) {
    Write(dir, "server_request", static_cast<int>(i), sotto::AsBytes(seeds[i]));
  }
}

// Seeds for noise_handshake (first byte: fuzz::NoiseHandshakeMode) and noise_transport
// (first byte: nonce), each checked to be accepted by the state the target builds.
int WriteNoiseSeeds(const std::filesystem::path& dir) {
  using sotto::fuzz::NoiseHandshakeMode;
  using sotto::noise::NoisePipe;
  const sotto::fuzz::NoiseKeys keys;
  const auto first = static_cast<int>(NoiseHandshakeMode::kServerFirst);
  int n = 0;
  for (int variant = 0; variant < 3; ++variant) {
    sotto::crypto::DeterministicRandom random(static_cast<uint64_t>(100 + variant));
    std::optional<sotto::crypto::X25519Public> server_key;
    if (variant == 1) server_key = keys.server_static.public_key;  // IK accepted
    if (variant == 2) server_key = keys.stale_server.public_key;   // IK -> XXfallback
    NoisePipe client = NoisePipe::Client(keys.client_static, server_key, random);
    auto m1 = client.WriteMessage(variant == 0 ? sotto::ByteSpan() : sotto::AsBytes("0-rtt"));
    sotto::crypto::DeterministicRandom server_random(5);
    NoisePipe server = NoisePipe::Server(keys.server_static, server_random);
    if (!m1 || !server.ReadMessage(*m1)) {
      (void)std::fprintf(stderr, "make_seeds: noise_handshake first-message seed rejected\n");
      return 1;
    }
    Write(dir, "noise_handshake", n++, *m1, first);
  }
  for (auto mode : {NoiseHandshakeMode::kXXThird, NoiseHandshakeMode::kFallbackThird}) {
    sotto::fuzz::NoiseThirdMessage peers(keys, mode == NoiseHandshakeMode::kFallbackThird);
    if (!peers.ready) return 1;
    auto m3 = peers.client.WriteMessage(sotto::AsBytes("client finish"));
    if (!m3 || !peers.server.ReadMessage(*m3)) {
      (void)std::fprintf(stderr, "make_seeds: noise_handshake third-message seed rejected\n");
      return 1;
    }
    Write(dir, "noise_handshake", n++, *m3, static_cast<int>(mode));
  }
  sotto::fuzz::NoiseTransport transport(keys);
  if (!transport.client_ciphers || !transport.server_ciphers) return 1;
  for (int i = 0; i < 3; ++i) {
    const std::string text(static_cast<size_t>(i * 50), 't');
    sotto::Bytes ciphertext(text.size() + sotto::noise::kTagSize);
    sotto::Bytes plaintext(ciphertext.size());
    transport.server_ciphers->receive.SetNonce(static_cast<uint64_t>(i));
    if (!transport.client_ciphers->send.EncryptWithAd({}, sotto::AsBytes(text), ciphertext) ||
        !transport.server_ciphers->receive.DecryptWithAd({}, ciphertext, plaintext)) {
      (void)std::fprintf(stderr, "make_seeds: noise_transport seed rejected\n");
      return 1;
    }
    Write(dir, "noise_transport", i, ciphertext, i);  // nonce i
  }
  return 0;
}

}  // namespace

// Seeds for content: each kind of Content a client sends, padded.
void WriteContentSeeds(const std::filesystem::path& dir) {
  using sotto::content::Content;
  Content data;
  data.set_sender_handle("+15550001111");
  data.mutable_data()->set_body("hello, \xc3\xa9t\xc3\xa9");
  data.mutable_data()->set_timestamp_ms(1'700'000'000'000);
  Write(dir, "content", 0, sotto::client::EncodeContent(data));
  Content receipt;
  receipt.set_sender_handle("+15550001111");
  receipt.mutable_receipt()->add_message_ids(std::string(16, 'i'));
  receipt.mutable_receipt()->add_message_ids(std::string(16, 'j'));
  Write(dir, "content", 1, sotto::client::EncodeContent(receipt));
  Content typing;
  typing.mutable_typing()->set_action(sotto::content::TypingMessage::STOPPED);
  Write(dir, "content", 2, sotto::client::EncodeContent(typing));
  // Groups: a group message, a sender key distribution (with the group's metadata) and a
  // rename.
  Content group_data = data;
  group_data.mutable_data()->mutable_group()->set_group_id(std::string(16, 'g'));
  Write(dir, "content", 3, sotto::client::EncodeContent(group_data));
  Content sender_key;
  sender_key.set_sender_handle("+15550001111");
  sender_key.mutable_sender_key()->set_group_id(std::string(16, 'g'));
  sender_key.mutable_sender_key()->set_distribution(
      "\x33\x08\x07\x10\x00\x1a\x20" + std::string(32, 'c') + "\x22\x21\x05" +
      std::string(32, 'k'));
  sender_key.mutable_sender_key()->set_name("book club");
  sender_key.mutable_sender_key()->set_description("chapter 3 on friday");
  Write(dir, "content", 4, sotto::client::EncodeContent(sender_key));
  Content rename;
  rename.set_sender_handle("+15550001111");
  rename.mutable_group_metadata()->set_group_id(std::string(16, 'g'));
  rename.mutable_group_metadata()->set_name("renamed");
  Write(dir, "content", 5, sotto::client::EncodeContent(rename));
}

int main(int argc, char** argv) {
  using namespace sotto;          // NOLINT(google-build-using-namespace)
  using namespace sotto::signal;  // NOLINT(google-build-using-namespace)
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds OUTPUT_DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  WriteContentSeeds(dir);
  WriteDevicesSeeds(dir);
  fuzz::Fixture f;
  SessionCipher alice(f.alice.stores(), fuzz::Fixture::kBob, f.random);
  for (int i = 0; i < 3; ++i) {
    auto m = alice.Encrypt(AsBytes(std::string(static_cast<size_t>(i * 20), 'x')));
    Write(dir, "signal_message", i, m->bytes);
    SessionRecord copy = f.bob_record;
    if (!DecryptWithRecord(copy, m->bytes, f.random)) {
      std::fprintf(stderr, "make_seeds: signal_message seed does not decrypt\n");
      return 1;
    }
  }
  Write(dir, "prekey_message", 0, f.first.bytes);
  {
    InMemoryProtocolStore carol(IdentityKeyPair::Generate(f.random), 33);
    PreKeyRecord opk2 = **f.bob.prekeys.LoadPreKey(2);
    PreKeyBundle b = f.bundle;
    b.prekey_id = 2;
    b.prekey = opk2.key_pair.public_key;
    (void)ProcessPreKeyBundle(carol.stores(), fuzz::Fixture::kBob, b, f.random);
    auto m = SessionCipher(carol.stores(), fuzz::Fixture::kBob, f.random).Encrypt(AsBytes("hi"));
    Write(dir, "prekey_message", 1, m->bytes);
  }
  GroupCipher group(f.alice.sender_keys, fuzz::Fixture::kGroup, f.random);
  for (int i = 0; i < 3; ++i) {
    auto m = group.Encrypt(AsBytes(std::string(static_cast<size_t>(i * 17), 'g')));
    Write(dir, "sender_key_message", i, *m);
    SenderKeyRecord copy = f.bob_sender_record;
    if (!GroupDecryptWithRecord(copy, *m)) {
      std::fprintf(stderr, "make_seeds: sender_key_message seed does not decrypt\n");
      return 1;
    }
  }
  Write(dir, "sender_key_distribution", 0, f.own_sender_key.Serialize());
  Write(dir, "record", 0, f.bob_record.Serialize(), 0);
  Write(dir, "record", 1, f.bob_sender_record.Serialize(), 1);
  Write(dir, "record", 2, f.alice.identity.GetIdentityKeyPair()->Serialize(), 2);
  {
    crypto::DeterministicRandom random(1);
    IdentityKey a = IdentityKeyPair::Generate(random).public_key;
    IdentityKey b = IdentityKeyPair::Generate(random).public_key;
    auto theirs = ComputeFingerprint(2, "+15550002", b, "+15550001", a);
    Write(dir, "fingerprint", 0, theirs->scannable);
  }
  WriteStoreSeeds(dir);
  WriteFrameSeeds(dir);
  WriteServerRequestSeeds(dir);
  return WriteNoiseSeeds(dir);
}
