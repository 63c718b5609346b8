// The provisioning channel between a new companion and the account's primary
// (docs/devices.md): the link code the companion shows, and the end-to-end encryption of
// what the two devices exchange through the server's relay. Sans-I/O: bytes in, bytes out,
// randomness passed in.
//
// Keys: the companion's ephemeral X25519 key C is in the link code; the primary picks an
// ephemeral P and both derive HKDF-SHA256(ikm = X25519(P, C), salt = C || P,
// info = "sotto-provision-v1") = 64 bytes: the first 32 seal the ProvisionMessage
// (primary -> companion), the last 32 the ProvisionReply (companion -> primary). Each key
// seals exactly one message (ChaCha20-Poly1305, zero nonce), with the recipient's
// provision id as associated data.
//
// Thread-safety: functions are thread-safe; objects are externally synchronized.
#pragma once

#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "client/content.pb.h"
#include "crypto/random.h"
#include "crypto/secret.h"
#include "crypto/x25519.h"

namespace sotto::client {

inline constexpr std::string_view kLinkCodePrefix = "sotto-link:";
inline constexpr size_t kProvisionIdSize = 16;
// Link code: kLinkCodePrefix then hex of provision id (16) || companion key (32).
inline constexpr size_t kLinkCodeSize = kLinkCodePrefix.size() + 2 * (kProvisionIdSize + 32);
// The largest provisioning envelope either side accepts (the server relays at most
// devices.max_provision_body_bytes, 8 KiB by default).
inline constexpr size_t kMaxProvisionEnvelopeBytes = 4'096;

struct LinkCode {
  std::string provision_id;  // 16 bytes
  crypto::X25519Public companion_key{};
};

std::string FormatLinkCode(const LinkCode& code);
// Parses a code as FormatLinkCode writes it (whitespace around it ignored).
// kInvalidArgument (SdkErr::kBadLinkCode) otherwise.
Result<LinkCode> ParseLinkCode(std::string_view text);

// Both directions' keys of one provisioning exchange.
struct ProvisionKeys {
  crypto::SecretArray<32> to_companion;
  crypto::SecretArray<32> to_primary;
};
Result<ProvisionKeys> DeriveProvisionKeys(const crypto::X25519Private& own,
                                          const crypto::X25519Public& peer,
                                          const crypto::X25519Public& companion_key,
                                          const crypto::X25519Public& primary_key);

// Primary: seals `message` for the companion behind `code` with a fresh ephemeral key;
// returns the ProvisionEnvelope bytes and, in `keys`, the keys (to open the reply).
Result<std::string> SealProvisionMessage(const LinkCode& code,
                                         const content::ProvisionMessage& message,
                                         crypto::Random& random, ProvisionKeys& keys);
// Companion: opens the primary's envelope with its ephemeral private key, checks the
// message's shape (16-byte account, E.164 handle, 33-byte identity, 16-byte reply id,
// a token) and returns it with the keys for the reply. kBadProvisioning otherwise.
Result<content::ProvisionMessage> OpenProvisionMessage(std::string_view envelope,
                                                       const crypto::X25519Private& companion,
                                                       std::string_view own_provision_id,
                                                       ProvisionKeys& keys);
// Companion -> primary and back.
Result<std::string> SealProvisionReply(const content::ProvisionReply& reply,
                                       const ProvisionKeys& keys,
                                       std::string_view primary_provision_id);
Result<content::ProvisionReply> OpenProvisionReply(std::string_view envelope,
                                                   const ProvisionKeys& keys,
                                                   std::string_view own_provision_id);

}  // namespace sotto::client
