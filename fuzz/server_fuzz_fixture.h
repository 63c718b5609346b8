// The input format of the server_request fuzz target, shared with make_seeds.cc so that
// seeds reach past the checks that need real ids and signatures.
//
// An input is a sequence of records: one byte choosing the connection (ConnectionOf), a
// 2-byte big-endian length, then that many bytes of one decrypted frame (a wire::Frame;
// the sessions run in clear, see tests/support/in_process_server.h). Before a frame is
// handed to the server, every 16- or 32-byte marker below in it is replaced by the value it
// names, and a 64-byte kSignMarker signature is replaced by a real signature of the
// sending device's identity key (over a device list, or a signed prekey).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "crypto/x25519.h"
#include "store/store.h"

namespace sotto::fuzz {

// Which connection a record's frame goes to (its selector byte modulo kConnections).
enum class FuzzConnection : uint8_t {
  kAlice = 0,     // a registered primary with keys uploaded
  kBob = 1,       // another registered primary with keys uploaded
  kStranger = 2,  // an unregistered connection (it may register or link itself)
};
inline constexpr uint8_t kConnections = 3;

inline constexpr std::string_view kAliceHandle = "+15550007001";
inline constexpr std::string_view kBobHandle = "+15550007002";

// 16 bytes each: account ids, group ids, provision ids.
inline constexpr std::string_view kAliceAccountMarker = "@ALICE-ACCOUNT@@";
inline constexpr std::string_view kBobAccountMarker = "@BOB-ACCOUNT@@@@";
inline constexpr std::string_view kGroupMarker = "@LAST-GROUP-ID@@";      // last group seen
inline constexpr std::string_view kProvisionMarker = "@LAST-PROVISION@";  // last id seen
// 32 bytes: the last link token issued.
inline constexpr std::string_view kLinkTokenMarker = "@LAST-LINK-TOKEN@@@@@@@@@@@@@@@@";
// 64 bytes: "sign this here".
inline constexpr std::string_view kSignMarker =
    "@SIGN-WITH-THE-SENDER'S-IDENTITY-KEY@@@@@@@@@@@@@@@@@@@@@@@@@@@@";

static_assert(kAliceAccountMarker.size() == 16 && kBobAccountMarker.size() == 16 &&
              kGroupMarker.size() == 16 && kProvisionMarker.size() == 16);
static_assert(kLinkTokenMarker.size() == 32 && kSignMarker.size() == 64);

// Fixed keys, so that seeds are valid against every run.
inline store::StaticKey NoiseKeyOf(FuzzConnection c) {
  store::StaticKey key{};
  key.fill(static_cast<uint8_t>(0xA0 + static_cast<uint8_t>(c)));
  return key;
}
inline crypto::X25519Private IdentityOf(FuzzConnection c) {
  return crypto::X25519Private(Bytes(32, static_cast<uint8_t>(0x30 + static_cast<uint8_t>(c))));
}

// The 33-byte Signal form (0x05 || key) of a connection's identity key.
inline std::string IdentityKey33Of(FuzzConnection c) {
  const crypto::X25519Public pub = crypto::PublicKeyOf(IdentityOf(c));
  std::string out(1, '\x05');
  out.append(reinterpret_cast<const char*>(pub.data()), pub.size());
  return out;
}

// Appends one record to `input`.
inline void AppendRecord(std::string& input, FuzzConnection c, std::string_view frame) {
  input.push_back(static_cast<char>(c));
  input.push_back(static_cast<char>((frame.size() >> 8) & 0xff));
  input.push_back(static_cast<char>(frame.size() & 0xff));
  input.append(frame.substr(0, 0xffff));
}

}  // namespace sotto::fuzz
