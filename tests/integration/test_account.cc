#include "tests/integration/test_account.h"

#include "crypto/random.h"
#include "crypto/x25519.h"

namespace sotto::testing {
namespace {

tl::unexpected<Error> TestError(const char* message) {
  return MakeError(Code::kInternal, Module::kClient, 0, message);
}

std::string PublicKey33(crypto::Random& random) {
  const crypto::X25519Public pub = crypto::PublicKeyOf(crypto::GeneratePrivateKey(random));
  std::string out(1, '\x05');
  out.append(reinterpret_cast<const char*>(pub.data()), pub.size());
  return out;
}

}  // namespace

client::ClientOptions DeviceOptions(const SottodProcess& server, const noise::KeyPair& key) {
  return DeviceOptions(server.tcp_address(), server.server_key(), key);
}

client::ClientOptions DeviceOptions(const net::SocketAddress& server,
                                    const crypto::X25519Public& server_key,
                                    const noise::KeyPair& key) {
  client::ClientOptions o;
  o.server = server;
  o.device_static = key;
  o.server_static = server_key;
  o.timeout = std::chrono::milliseconds(10'000);
  return o;
}

Result<wire::Response> RegisterHandle(client::GatewayClient& c, const SottodProcess& server,
                                      const std::string& handle) {
  wire::Request ask;
  ask.mutable_request_code()->set_handle(handle);
  SOTTO_ASSIGN_OR_RETURN(wire::Response code, c.Call(ask));
  if (code.status() != wire::STATUS_OK) return code;
  wire::Request reg;
  reg.mutable_register_()->set_handle(handle);
  reg.mutable_register_()->set_code(server.VerificationCode(handle));
  return c.Call(reg);
}

Result<TestDevice> RegisterDevice(const SottodProcess& server, const std::string& handle) {
  TestDevice d;
  d.noise = noise::KeyPair::Generate(crypto::SystemRandom());
  d.handle = handle;
  SOTTO_ASSIGN_OR_RETURN(d.conn, client::GatewayClient::Connect(DeviceOptions(server, d.noise)));
  SOTTO_ASSIGN_OR_RETURN(wire::Response r, RegisterHandle(*d.conn, server, handle));
  if (r.status() != wire::STATUS_OK) return TestError("RequestCode or Register refused");
  d.account_id = r.register_().account_id();
  d.device_id = r.register_().device_id();
  return d;
}

Status Reconnect(const SottodProcess& server, TestDevice& d) {
  return Reconnect(server.tcp_address(), server.server_key(), d);
}

Status Reconnect(const net::SocketAddress& server, const crypto::X25519Public& server_key,
                 TestDevice& d) {
  d.conn.reset();
  SOTTO_ASSIGN_OR_RETURN(
      d.conn, client::GatewayClient::Connect(DeviceOptions(server, server_key, d.noise)));
  return Ok();
}

Result<wire::Response> UploadKeys(TestDevice& d, uint32_t registration_id, int one_time,
                                  uint32_t first_id, uint32_t signed_id) {
  crypto::Random& random = crypto::SystemRandom();
  if (!d.identity) {
    d.identity = std::make_unique<crypto::X25519Private>(crypto::GeneratePrivateKey(random));
  }
  const crypto::X25519Private& identity = *d.identity;
  const crypto::X25519Public identity_pub = crypto::PublicKeyOf(identity);
  wire::Request r;
  wire::UploadKeysRequest* u = r.mutable_upload_keys();
  std::string id_key(1, '\x05');
  id_key.append(reinterpret_cast<const char*>(identity_pub.data()), identity_pub.size());
  u->set_identity_key(id_key);
  u->set_registration_id(registration_id);
  const std::string spk = PublicKey33(random);
  const crypto::Signature sig = crypto::Sign(identity, AsBytes(spk), random);
  u->mutable_signed_prekey()->set_id(signed_id);
  u->mutable_signed_prekey()->set_public_key(spk);
  u->mutable_signed_prekey()->set_signature(reinterpret_cast<const char*>(sig.data()), sig.size());
  for (int i = 0; i < one_time; ++i) {
    wire::OneTimePreKey* k = u->add_one_time_prekeys();
    k->set_id(first_id + static_cast<uint32_t>(i));
    k->set_public_key(PublicKey33(random));
  }
  d.registration_id = registration_id;
  return d.conn->Call(r);
}

wire::Request SendTo(const TestDevice& to, const std::vector<uint32_t>& devices,
                     const std::string& message_id, const std::string& body, bool online_only) {
  wire::Request r;
  wire::SendRequest* s = r.mutable_send();
  s->set_message_id(message_id);
  s->set_recipient(to.account_id);
  s->set_online_only(online_only);
  for (uint32_t device : devices) {
    wire::DeviceMessage* m = s->add_messages();
    m->set_device_id(device);
    m->set_registration_id(to.registration_id);
    m->set_type(wire::CIPHERTEXT_PLAINTEXT);
    m->set_ciphertext(body);
  }
  return r;
}

Result<wire::Frame> NextOf(client::GatewayClient& c, wire::Frame::BodyCase kind) {
  for (;;) {
    SOTTO_ASSIGN_OR_RETURN(wire::Frame f, c.Receive());
    if (f.body_case() == kind) return f;
    if (f.has_ping()) {
      wire::Frame pong;
      pong.mutable_pong()->set_nonce(f.ping().nonce());
      SOTTO_RETURN_IF_ERROR(c.Send(pong));
    }
    if (f.has_close()) return TestError("server closed the connection");
  }
}

Status Ack(client::GatewayClient& c, const std::vector<uint64_t>& seqs) {
  wire::Frame f;
  for (uint64_t s : seqs) f.mutable_delivery_ack()->add_seqs(s);
  return c.Send(f);
}

}  // namespace sotto::testing
