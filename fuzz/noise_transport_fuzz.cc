// Fuzzes DecryptWithAd on an established Noise transport (the server's receive
// CipherState after an IK handshake). The first byte is the nonce to try, the rest the
// transport message.
#include <array>
#include <cstddef>
#include <cstdint>

#include "fuzz/noise_fuzz_fixture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto* keys = new sotto::fuzz::NoiseKeys();
  static auto* transport = new sotto::fuzz::NoiseTransport(*keys);
  static auto* plaintext = new std::array<uint8_t, sotto::noise::kMaxNoiseMessage + 1>();
  if (!transport->server_ciphers) __builtin_trap();  // the fixture itself is broken
  if (size == 0) return 0;
  sotto::noise::CipherState& receive = transport->server_ciphers->receive;
  receive.SetNonce(data[0]);
  auto read = receive.DecryptWithAd({}, sotto::ByteSpan(data + 1, size - 1), *plaintext);
  if (read && (*read + sotto::noise::kTagSize != size - 1 || receive.nonce() != data[0] + 1u)) {
    __builtin_trap();  // a successful decrypt must consume exactly one nonce and the tag
  }
  return 0;
}
