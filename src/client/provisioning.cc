#include "client/provisioning.h"

#include <algorithm>
#include <cctype>

#include "client/internal/client_impl.h"
#include "crypto/aead.h"
#include "crypto/hash.h"
#include "wire/wire.h"

namespace sotto::client {
namespace {

constexpr std::string_view kInfo = "sotto-provision-v1";

tl::unexpected<Error> Bad(const char* message) {
  return SdkError(Code::kInvalidArgument, SdkErr::kBadProvisioning, message);
}

ByteSpan Span(std::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

Result<std::string> Seal(const crypto::SecretArray<32>& key, std::string_view ad,
                         const std::string& plaintext) {
  const std::array<uint8_t, crypto::kAeadNonceSize> nonce{};
  Bytes out(plaintext.size() + crypto::kAeadTagSize);
  SOTTO_ASSIGN_OR_RETURN(
      size_t n, crypto::ChaChaPolyEncrypt(key.span(), nonce, Span(ad), Span(plaintext), out));
  return std::string(reinterpret_cast<const char*>(out.data()), n);
}

Result<std::string> Open(const crypto::SecretArray<32>& key, std::string_view ad,
                         std::string_view ciphertext) {
  if (ciphertext.size() < crypto::kAeadTagSize) return Bad("provisioning message too short");
  const std::array<uint8_t, crypto::kAeadNonceSize> nonce{};
  Bytes out(ciphertext.size() - crypto::kAeadTagSize);
  auto n = crypto::ChaChaPolyDecrypt(key.span(), nonce, Span(ad), Span(ciphertext), out);
  if (!n) return Bad("provisioning message does not authenticate");
  return std::string(reinterpret_cast<const char*>(out.data()), *n);
}

Result<content::ProvisionEnvelope> ParseEnvelope(std::string_view bytes) {
  if (bytes.size() > kMaxProvisionEnvelopeBytes) return Bad("provisioning envelope too large");
  content::ProvisionEnvelope envelope;
  if (!envelope.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Bad("provisioning envelope does not parse");
  }
  return envelope;
}

}  // namespace

std::string FormatLinkCode(const LinkCode& code) {
  Bytes raw(code.provision_id.begin(), code.provision_id.end());
  raw.insert(raw.end(), code.companion_key.begin(), code.companion_key.end());
  return std::string(kLinkCodePrefix) + ToHex(raw);
}

Result<LinkCode> ParseLinkCode(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  auto bad = [] {
    return SdkError(Code::kInvalidArgument, SdkErr::kBadLinkCode,
                    "not a link code: sotto-link: and 96 hex digits, as `sotto link` shows");
  };
  if (text.size() != kLinkCodeSize || !text.starts_with(kLinkCodePrefix)) return bad();
  const std::string_view hex = text.substr(kLinkCodePrefix.size());
  const bool all_hex = std::all_of(hex.begin(), hex.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) != 0;
  });
  const Bytes raw = FromHex(hex);
  if (!all_hex || raw.size() != kProvisionIdSize + 32) return bad();
  LinkCode code;
  code.provision_id.assign(reinterpret_cast<const char*>(raw.data()), kProvisionIdSize);
  std::copy(raw.begin() + kProvisionIdSize, raw.end(), code.companion_key.begin());
  return code;
}

Result<ProvisionKeys> DeriveProvisionKeys(const crypto::X25519Private& own,
                                          const crypto::X25519Public& peer,
                                          const crypto::X25519Public& companion_key,
                                          const crypto::X25519Public& primary_key) {
  SOTTO_ASSIGN_OR_RETURN(crypto::SecretArray<32> shared, crypto::Agree(own, peer));
  Bytes salt(companion_key.begin(), companion_key.end());
  salt.insert(salt.end(), primary_key.begin(), primary_key.end());
  crypto::SecretArray<64> okm;
  crypto::Hkdf(shared.span(), salt, Span(kInfo), okm.mutable_span());
  ProvisionKeys keys;
  std::copy(okm.data(), okm.data() + 32, keys.to_companion.data());
  std::copy(okm.data() + 32, okm.data() + 64, keys.to_primary.data());
  return keys;
}

Result<std::string> SealProvisionMessage(const LinkCode& code,
                                         const content::ProvisionMessage& message,
                                         crypto::Random& random, ProvisionKeys& keys) {
  const crypto::X25519Private ephemeral = crypto::GeneratePrivateKey(random);
  const crypto::X25519Public ephemeral_public = crypto::PublicKeyOf(ephemeral);
  SOTTO_ASSIGN_OR_RETURN(keys, DeriveProvisionKeys(ephemeral, code.companion_key,
                                                   code.companion_key, ephemeral_public));
  content::ProvisionEnvelope envelope;
  envelope.set_ephemeral_key(ephemeral_public.data(), ephemeral_public.size());
  SOTTO_ASSIGN_OR_RETURN(std::string sealed,
                         Seal(keys.to_companion, code.provision_id, message.SerializeAsString()));
  envelope.set_ciphertext(std::move(sealed));
  return envelope.SerializeAsString();
}

Result<content::ProvisionMessage> OpenProvisionMessage(std::string_view bytes,
                                                       const crypto::X25519Private& companion,
                                                       std::string_view own_provision_id,
                                                       ProvisionKeys& keys) {
  SOTTO_ASSIGN_OR_RETURN(content::ProvisionEnvelope envelope, ParseEnvelope(bytes));
  crypto::X25519Public primary_key{};
  if (envelope.ephemeral_key().size() != primary_key.size()) {
    return Bad("provisioning envelope lacks the primary's key");
  }
  std::copy(envelope.ephemeral_key().begin(), envelope.ephemeral_key().end(), primary_key.begin());
  auto derived =
      DeriveProvisionKeys(companion, primary_key, crypto::PublicKeyOf(companion), primary_key);
  if (!derived) return Bad("provisioning key agreement failed");
  keys = std::move(*derived);
  SOTTO_ASSIGN_OR_RETURN(std::string plain,
                         Open(keys.to_companion, own_provision_id, envelope.ciphertext()));
  content::ProvisionMessage message;
  if (!message.ParseFromString(plain) || message.account_id().size() != 16 ||
      !wire::IsE164(message.handle()) || message.primary_identity().size() != 33 ||
      static_cast<uint8_t>(message.primary_identity()[0]) != 0x05 ||
      message.reply_provision_id().size() != kProvisionIdSize || message.link_token().empty() ||
      message.link_token().size() > 64) {
    return Bad("provisioning message is malformed");
  }
  return message;
}

Result<std::string> SealProvisionReply(const content::ProvisionReply& reply,
                                       const ProvisionKeys& keys,
                                       std::string_view primary_provision_id) {
  content::ProvisionEnvelope envelope;
  SOTTO_ASSIGN_OR_RETURN(std::string sealed,
                         Seal(keys.to_primary, primary_provision_id, reply.SerializeAsString()));
  envelope.set_ciphertext(std::move(sealed));
  return envelope.SerializeAsString();
}

Result<content::ProvisionReply> OpenProvisionReply(std::string_view bytes,
                                                   const ProvisionKeys& keys,
                                                   std::string_view own_provision_id) {
  SOTTO_ASSIGN_OR_RETURN(content::ProvisionEnvelope envelope, ParseEnvelope(bytes));
  SOTTO_ASSIGN_OR_RETURN(std::string plain,
                         Open(keys.to_primary, own_provision_id, envelope.ciphertext()));
  content::ProvisionReply reply;
  if (!reply.ParseFromString(plain) || reply.device_id() <= 1 ||
      reply.identity_key().size() != 33 || static_cast<uint8_t>(reply.identity_key()[0]) != 0x05) {
    return Bad("provisioning reply is malformed");
  }
  return reply;
}

}  // namespace sotto::client
