// Helpers for integration tests that act as devices: registration through the real
// verification flow (the code comes from the server's verification-codes.log), key
// upload with real Signal-format keys, and sending / receiving envelopes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "client/gateway_client.h"
#include "crypto/x25519.h"
#include "tests/integration/sottod_process.h"
#include "wire/sotto_wire.pb.h"

namespace sotto::testing {

struct TestDevice {
  noise::KeyPair noise;
  std::unique_ptr<client::GatewayClient> conn;
  std::string handle;
  std::string account_id;  // 16 bytes
  uint32_t device_id = 0;
  uint32_t registration_id = 0;
  std::unique_ptr<crypto::X25519Private> identity;  // created by the first UploadKeys
};

client::ClientOptions DeviceOptions(const SottodProcess& server, const noise::KeyPair& key);
// The same for a server known by its address and key: for threads that must not read a
// SottodProcess that another thread restarts.
client::ClientOptions DeviceOptions(const net::SocketAddress& server,
                                    const crypto::X25519Public& server_key,
                                    const noise::KeyPair& key);

// Asks for a code for `handle`, reads it from the server's verification-codes.log and
// registers the connection's key with it. Returns the RequestCode response if that was
// refused, else the Register response.
Result<wire::Response> RegisterHandle(client::GatewayClient& c, const SottodProcess& server,
                                      const std::string& handle);
// Connects a new device key and registers it as the primary of `handle`.
Result<TestDevice> RegisterDevice(const SottodProcess& server, const std::string& handle);
// Reconnects `d` (a new connection with the same key).
Status Reconnect(const SottodProcess& server, TestDevice& d);
Status Reconnect(const net::SocketAddress& server, const crypto::X25519Public& server_key,
                 TestDevice& d);
// Uploads the device's identity (created on first use, then kept), a signed prekey with
// id `signed_id` (really signed: a new id with the same identity is a rotation) and
// `one_time` one-time prekeys with ids first_id.. ; sets d.registration_id.
Result<wire::Response> UploadKeys(TestDevice& d, uint32_t registration_id, int one_time,
                                  uint32_t first_id = 1, uint32_t signed_id = 1);
// A Send of `body` (as CIPHERTEXT_PLAINTEXT bytes) to every listed device of `to`.
wire::Request SendTo(const TestDevice& to, const std::vector<uint32_t>& devices,
                     const std::string& message_id, const std::string& body,
                     bool online_only = false);
// Waits for the next frame of one kind, keeping others out of the way (they are
// dropped); fails after the client's timeout.
Result<wire::Frame> NextOf(client::GatewayClient& c, wire::Frame::BodyCase kind);
Status Ack(client::GatewayClient& c, const std::vector<uint64_t>& seqs);

}  // namespace sotto::testing
