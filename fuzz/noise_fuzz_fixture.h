// Deterministic Noise Pipes peers shared by the noise fuzz targets and the seed generator
// (make_seeds.cc): every key and ephemeral comes from fixed seeds, so a seed message
// written by make_seeds reaches the same state inside the targets.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>

#include "crypto/random.h"
#include "noise/handshake_state.h"
#include "noise/pipes.h"

namespace sotto::fuzz {

// The noise_handshake target's first input byte (modulo 3) picks the entry point.
enum class NoiseHandshakeMode : uint8_t {
  kServerFirst = 0,    // a fresh pipe server reads a client's first message
  kXXThird = 1,        // a server that ran XX messages 1-2 reads message 3
  kFallbackThird = 2,  // a server that switched to XXfallback reads the client's finish
};

struct NoiseKeys {
  NoiseKeys()
      : random(20261201),
        client_static(noise::KeyPair::Generate(random)),
        server_static(noise::KeyPair::Generate(random)),
        stale_server(noise::KeyPair::Generate(random)) {}

  crypto::DeterministicRandom random;
  noise::KeyPair client_static;
  noise::KeyPair server_static;
  noise::KeyPair stale_server;  // a key the client wrongly believes is the server's
};

// A client and a server pipe after messages 1 and 2: the server waits for message 3.
// With `fallback` the client tried IK with the stale key and both switched to XXfallback;
// otherwise they run XX. Built afresh (and identically) on every call.
struct NoiseThirdMessage {
  NoiseThirdMessage(const NoiseKeys& keys, bool fallback)
      : client_random(1),
        server_random(2),
        client(noise::NoisePipe::Client(
            keys.client_static,
            fallback ? std::optional(keys.stale_server.public_key) : std::nullopt, client_random)),
        server(noise::NoisePipe::Server(keys.server_static, server_random)) {
    auto m1 = client.WriteMessage({});
    if (!m1 || !server.ReadMessage(*m1)) return;
    auto m2 = server.WriteMessage({});
    if (!m2 || !client.ReadMessage(*m2)) return;
    ready = true;
  }
  // The pipes point at the randoms above.
  NoiseThirdMessage(NoiseThirdMessage&&) = delete;
  NoiseThirdMessage& operator=(NoiseThirdMessage&&) = delete;
  ~NoiseThirdMessage() = default;

  crypto::DeterministicRandom client_random;
  crypto::DeterministicRandom server_random;
  noise::NoisePipe client;
  noise::NoisePipe server;
  bool ready = false;
};

// An established IK transport: the server's receive CipherState is the target.
struct NoiseTransport {
  explicit NoiseTransport(const NoiseKeys& keys) {
    crypto::DeterministicRandom client_random(3);
    crypto::DeterministicRandom server_random(4);
    auto client =
        noise::NoisePipe::Client(keys.client_static, keys.server_static.public_key, client_random);
    auto server = noise::NoisePipe::Server(keys.server_static, server_random);
    auto m1 = client.WriteMessage({});
    if (!m1 || !server.ReadMessage(*m1)) return;
    auto m2 = server.WriteMessage({});
    if (!m2 || !client.ReadMessage(*m2)) return;
    auto c = client.Split();
    auto s = server.Split();
    if (!c || !s) return;
    client_ciphers.emplace(std::move(*c));
    server_ciphers.emplace(std::move(*s));
  }

  std::optional<noise::TransportCiphers> client_ciphers;
  std::optional<noise::TransportCiphers> server_ciphers;
};

}  // namespace sotto::fuzz
