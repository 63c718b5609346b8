// Fuzzes the Noise Pipes server's handshake reads, the entry points that take untrusted
// bytes before any authentication: the first message (IK trial decryption, the switch to
// XXfallback, XX), and the client's third message after XX or XXfallback. The first
// byte picks the entry point (NoiseHandshakeMode), the rest is the message.
#include <cstddef>
#include <cstdint>

#include "fuzz/noise_fuzz_fixture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sotto::fuzz::NoiseHandshakeMode;
  static const auto* keys = new sotto::fuzz::NoiseKeys();
  if (size == 0) return 0;
  const auto mode = static_cast<NoiseHandshakeMode>(data[0] % 3);
  const sotto::ByteSpan message(data + 1, size - 1);
  switch (mode) {
    case NoiseHandshakeMode::kServerFirst: {
      sotto::crypto::DeterministicRandom random(5);
      auto server = sotto::noise::NoisePipe::Server(keys->server_static, random);
      if (server.ReadMessage(message)) {
        auto reply = server.WriteMessage({});
        (void)reply;
      }
      break;
    }
    case NoiseHandshakeMode::kXXThird:
    case NoiseHandshakeMode::kFallbackThird: {
      sotto::fuzz::NoiseThirdMessage peers(*keys, mode == NoiseHandshakeMode::kFallbackThird);
      if (!peers.ready) __builtin_trap();  // the fixture itself is broken
      if (peers.server.ReadMessage(message)) {
        auto transport = peers.server.Split();
        if (!transport) __builtin_trap();  // a finished handshake must split
      }
      break;
    }
  }
  return 0;
}
