// The server's Noise static key: generated on first start into DIR/server.key (hex of
// the private key, mode 0600) with DIR/server.pub (hex of the public key, the text form
// clients accept with --server-key).
//
// Thread-safety: functions are thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "crypto/x25519.h"
#include "noise/handshake_state.h"

namespace sotto::server {

// Loads DIR/server.key, or creates it (and server.pub) if absent. Refuses a key file that
// others can read.
Result<noise::KeyPair> LoadOrCreateServerKey(const std::string& data_dir);
// 64 lower-case hex digits.
std::string ServerKeyText(const crypto::X25519Public& key);
// Parses ServerKeyText's form (surrounding whitespace allowed).
Result<crypto::X25519Public> ParseServerKeyText(std::string_view text);

}  // namespace sotto::server
