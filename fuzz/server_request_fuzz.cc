// Fuzzes the server's handling of frames after they parse: every request type through the
// real gateway session (rate limit, gateway requests) into ServerCore on the in-memory
// store, with two registered primaries and an unregistered connection, plus pings, acks
// and closes. Input format and markers: fuzz/server_fuzz_fixture.h. Each input runs
// against a fresh server, so replays are independent.
//
// Besides the sanitizers it checks what the architecture promises a peer: every refused
// request gets a status the schema knows and a reason, and a request without a known body
// is STATUS_BAD_REQUEST.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz/server_fuzz_fixture.h"
#include "tests/support/in_process_server.h"

namespace {

using namespace sotto;  // NOLINT(google-build-using-namespace)
using fuzz::FuzzConnection;

struct World {
  testing::InProcessServer server;
  testing::InProcessConnection* conns[fuzz::kConnections] = {};
  std::string accounts[2];  // alice, bob
  std::string group_id;     // the last ones seen in any frame
  std::string provision_id;
  std::string link_token;
  crypto::DeterministicRandom random{7};
};

void ReplaceAll(std::string& bytes, std::string_view marker, const std::string& value) {
  if (value.size() != marker.size()) return;  // nothing seen yet: the marker stays
  for (size_t at = bytes.find(marker); at != std::string::npos; at = bytes.find(marker, at)) {
    bytes.replace(at, marker.size(), value);
    at += marker.size();
  }
}

// Replaces a kSignMarker signature with a real one by `identity`.
void SignWhereAsked(std::string& bytes, const crypto::X25519Private& identity,
                    crypto::Random& random) {
  if (bytes.find(fuzz::kSignMarker) == std::string::npos) return;
  wire::Frame frame;
  if (!frame.ParseFromString(bytes) || !frame.has_request()) return;
  wire::Request* r = frame.mutable_request();
  auto sign = [&](ByteSpan message, std::string* out) {
    if (*out != fuzz::kSignMarker) return;
    const crypto::Signature sig = crypto::Sign(identity, message, random);
    out->assign(reinterpret_cast<const char*>(sig.data()), sig.size());
  };
  if (r->has_publish_device_list()) {
    wire::SignedDeviceList* l = r->mutable_publish_device_list()->mutable_list();
    sign(wire::DeviceListSignedBytes(l->list()), l->mutable_signature());
  }
  if (r->has_upload_keys() && r->upload_keys().has_signed_prekey()) {
    wire::SignedPreKey* spk = r->mutable_upload_keys()->mutable_signed_prekey();
    sign(AsBytes(spk->public_key()), spk->mutable_signature());
  }
  bytes = frame.SerializeAsString();
}

// Learns ids from what the server sent, and checks every response.
void Observe(World& w) {
  for (testing::InProcessConnection* c : w.conns) {
    for (const wire::Frame& f : c->TakeFrames()) {
      if (!f.has_response()) continue;
      const wire::Response& r = f.response();
      if (!wire::StatusCode_IsValid(r.status())) __builtin_trap();
      if (r.status() != wire::STATUS_OK && r.reason().empty()) __builtin_trap();
      if (r.has_group()) w.group_id = r.group().group().group_id();
      if (r.has_provision_open()) w.provision_id = r.provision_open().provision_id();
      if (r.has_link_token()) w.link_token = r.link_token().token();
    }
  }
}

bool SetUp(World& w) {
  const FuzzConnection registered[] = {FuzzConnection::kAlice, FuzzConnection::kBob};
  const std::string_view handles[] = {fuzz::kAliceHandle, fuzz::kBobHandle};
  for (size_t i = 0; i < 2; ++i) {
    auto& c = w.server.Connect(fuzz::NoiseKeyOf(registered[i]));
    auto reg = w.server.Register(c, std::string(handles[i]));
    if (!reg) return false;
    w.accounts[i] = reg->account_id();
    wire::Request up = testing::UploadKeysRequest(fuzz::IdentityOf(registered[i]),
                                                  static_cast<uint32_t>(100 + i), 3, w.random);
    up.set_id(3);
    auto uploaded = w.server.Call(c, up);
    if (!uploaded || uploaded->status() != wire::STATUS_OK) return false;
    w.conns[i] = &c;
  }
  w.conns[2] = &w.server.Connect(fuzz::NoiseKeyOf(FuzzConnection::kStranger));
  Observe(w);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World w;
  if (!SetUp(w)) __builtin_trap();  // the fixture itself must work
  size_t at = 0;
  while (size - at >= 3) {
    const auto which = static_cast<FuzzConnection>(data[at] % fuzz::kConnections);
    const size_t len = (size_t{data[at + 1]} << 8) | size_t{data[at + 2]};
    at += 3;
    if (len > size - at) break;
    std::string frame(reinterpret_cast<const char*>(data + at), len);
    at += len;
    ReplaceAll(frame, fuzz::kAliceAccountMarker, w.accounts[0]);
    ReplaceAll(frame, fuzz::kBobAccountMarker, w.accounts[1]);
    ReplaceAll(frame, fuzz::kGroupMarker, w.group_id);
    ReplaceAll(frame, fuzz::kProvisionMarker, w.provision_id);
    ReplaceAll(frame, fuzz::kLinkTokenMarker, w.link_token);
    SignWhereAsked(frame, fuzz::IdentityOf(which), w.random);

    testing::InProcessConnection& c = *w.conns[static_cast<size_t>(which)];
    if (c.closed) continue;
    wire::Frame parsed;
    const bool bodiless_request = parsed.ParseFromString(frame) && parsed.has_request() &&
                                  parsed.request().body_case() == wire::Request::BODY_NOT_SET;
    (void)w.server.Deliver(c, AsBytes(frame));
    if (bodiless_request && !c.closed) {
      // Peek before Observe consumes the frames: the answer must be BAD_REQUEST (or the
      // rate limit's).
      for (const Bytes& m : c.written) {
        wire::Frame f;
        if (!wire::ParseFrame(m, f) || !f.has_response()) continue;
        if (f.response().id() != parsed.request().id()) continue;
        const wire::StatusCode s = f.response().status();
        if (s != wire::STATUS_BAD_REQUEST && s != wire::STATUS_RATE_LIMITED) __builtin_trap();
      }
    }
    Observe(w);
  }
  return 0;
}
