#include "signal/protocol.h"

#include "signal/error.h"
#include "signal/internal/proto.h"

namespace sotto::signal {
namespace {

using internal::ProtoField;
using internal::ProtoReader;
using internal::WireType;

tl::unexpected<Error> Invalid(const char* message) {
  return SignalError(Code::kInvalidArgument, Err::kInvalidMessage, message);
}

// Checks the version byte shared by all four messages. Only the high nibble counts.
Result<uint8_t> CheckVersion(ByteSpan bytes) {
  if (bytes.empty()) return Invalid("empty message");
  if (bytes.size() > kMaxMessageSize) {
    return SignalError(Code::kResourceExhausted, Err::kInvalidMessage,
                       "message larger than kMaxMessageSize");
  }
  const uint8_t version = bytes[0] >> 4;
  if (version <= 1) {
    return SignalError(Code::kUnimplemented, Err::kLegacyMessage, "legacy message version");
  }
  if (version != kCiphertextVersion) {
    return SignalError(Code::kUnimplemented, Err::kUnsupportedVersion,
                       "unsupported message version");
  }
  return version;
}

bool GetUint32(const ProtoField& f, uint32_t& out) {
  if (f.type != WireType::kVarint) return false;
  out = static_cast<uint32_t>(f.varint);  // protobuf truncates oversized uint32 values
  return true;
}

}  // namespace

Result<SignalMessageView> ParseSignalMessage(ByteSpan bytes) {
  SOTTO_ASSIGN_OR_RETURN(uint8_t version, CheckVersion(bytes));
  if (bytes.size() <= 1 + kMacSize) return Invalid("SignalMessage too short");
  SignalMessageView view;
  view.version = version;
  view.mac_input = bytes.first(bytes.size() - kMacSize);
  view.mac = bytes.last(kMacSize);
  bool has_ratchet = false, has_counter = false, has_ciphertext = false;
  ProtoReader reader(view.mac_input.subspan(1));
  ProtoField f;
  while (reader.Next(f)) {
    switch (f.number) {
      case 1: {
        if (f.type != WireType::kLengthDelimited) return Invalid("SignalMessage ratchetKey");
        SOTTO_ASSIGN_OR_RETURN(view.ratchet_key, PublicKey::Deserialize(f.bytes));
        has_ratchet = true;
        break;
      }
      case 2:
        if (!GetUint32(f, view.counter)) return Invalid("SignalMessage counter");
        has_counter = true;
        break;
      case 3:
        if (!GetUint32(f, view.previous_counter)) return Invalid("SignalMessage previousCounter");
        break;
      case 4:
        if (f.type != WireType::kLengthDelimited) return Invalid("SignalMessage ciphertext");
        view.ciphertext = f.bytes;
        has_ciphertext = true;
        break;
      default:
        break;
    }
  }
  if (reader.error()) return Invalid("SignalMessage protobuf malformed");
  if (!has_ratchet || !has_counter || !has_ciphertext) {
    return Invalid("SignalMessage missing required fields");
  }
  return view;
}

Result<PreKeySignalMessageView> ParsePreKeySignalMessage(ByteSpan bytes) {
  SOTTO_ASSIGN_OR_RETURN(uint8_t version, CheckVersion(bytes));
  PreKeySignalMessageView view;
  view.version = version;
  bool has_signed = false, has_base = false, has_identity = false, has_message = false;
  ProtoReader reader(bytes.subspan(1));
  ProtoField f;
  while (reader.Next(f)) {
    switch (f.number) {
      case 1: {
        uint32_t id = 0;
        if (!GetUint32(f, id)) return Invalid("PreKeySignalMessage preKeyId");
        view.prekey_id = id;
        break;
      }
      case 2: {
        if (f.type != WireType::kLengthDelimited) return Invalid("PreKeySignalMessage baseKey");
        SOTTO_ASSIGN_OR_RETURN(view.base_key, PublicKey::Deserialize(f.bytes));
        has_base = true;
        break;
      }
      case 3: {
        if (f.type != WireType::kLengthDelimited) return Invalid("PreKeySignalMessage identity");
        SOTTO_ASSIGN_OR_RETURN(view.identity_key, PublicKey::Deserialize(f.bytes));
        has_identity = true;
        break;
      }
      case 4:
        if (f.type != WireType::kLengthDelimited) return Invalid("PreKeySignalMessage message");
        view.message_bytes = f.bytes;
        has_message = true;
        break;
      case 5:
        if (!GetUint32(f, view.registration_id)) return Invalid("PreKeySignalMessage regId");
        break;
      case 6:
        if (!GetUint32(f, view.signed_prekey_id)) return Invalid("PreKeySignalMessage spkId");
        has_signed = true;
        break;
      default:
        break;
    }
  }
  if (reader.error()) return Invalid("PreKeySignalMessage protobuf malformed");
  if (!has_signed || !has_base || !has_identity || !has_message) {
    return Invalid("PreKeySignalMessage missing required fields");
  }
  SOTTO_ASSIGN_OR_RETURN(view.message, ParseSignalMessage(view.message_bytes));
  if (view.message.version != view.version) return Invalid("inner message version differs");
  return view;
}

Result<SenderKeyMessageView> ParseSenderKeyMessage(ByteSpan bytes) {
  SOTTO_ASSIGN_OR_RETURN(uint8_t version, CheckVersion(bytes));
  if (bytes.size() <= 1 + crypto::kSignatureSize) return Invalid("SenderKeyMessage too short");
  SenderKeyMessageView view;
  view.version = version;
  view.signed_part = bytes.first(bytes.size() - crypto::kSignatureSize);
  view.signature = bytes.last(crypto::kSignatureSize);
  bool has_id = false, has_iteration = false, has_ciphertext = false;
  ProtoReader reader(view.signed_part.subspan(1));
  ProtoField f;
  while (reader.Next(f)) {
    switch (f.number) {
      case 1:
        if (!GetUint32(f, view.key_id)) return Invalid("SenderKeyMessage id");
        has_id = true;
        break;
      case 2:
        if (!GetUint32(f, view.iteration)) return Invalid("SenderKeyMessage iteration");
        has_iteration = true;
        break;
      case 3:
        if (f.type != WireType::kLengthDelimited) return Invalid("SenderKeyMessage ciphertext");
        view.ciphertext = f.bytes;
        has_ciphertext = true;
        break;
      default:
        break;
    }
  }
  if (reader.error()) return Invalid("SenderKeyMessage protobuf malformed");
  if (!has_id || !has_iteration || !has_ciphertext) {
    return Invalid("SenderKeyMessage missing required fields");
  }
  return view;
}

Bytes SenderKeyDistributionMessage::Serialize() const {
  using internal::AppendBytesField;
  using internal::AppendVarintField;
  const SerializedPublicKey signing = signing_key.Serialize();
  Bytes out;
  out.reserve(1 + internal::VarintFieldSize(1, key_id) + internal::VarintFieldSize(2, iteration) +
              internal::BytesFieldSize(3, 32) + internal::BytesFieldSize(4, signing.size()));
  out.push_back(kVersionByte);
  AppendVarintField(out, 1, key_id);
  AppendVarintField(out, 2, iteration);
  AppendBytesField(out, 3, chain_key.span());
  AppendBytesField(out, 4, signing);
  return out;
}

Result<SenderKeyDistributionMessage> SenderKeyDistributionMessage::Parse(ByteSpan bytes) {
  SOTTO_ASSIGN_OR_RETURN(uint8_t version, CheckVersion(bytes));
  (void)version;
  SenderKeyDistributionMessage m;
  bool has_id = false, has_iteration = false, has_chain = false, has_signing = false;
  ProtoReader reader(bytes.subspan(1));
  ProtoField f;
  while (reader.Next(f)) {
    switch (f.number) {
      case 1:
        if (!GetUint32(f, m.key_id)) return Invalid("SKDM id");
        has_id = true;
        break;
      case 2:
        if (!GetUint32(f, m.iteration)) return Invalid("SKDM iteration");
        has_iteration = true;
        break;
      case 3:
        if (f.type != WireType::kLengthDelimited || f.bytes.size() != 32) {
          return Invalid("SKDM chainKey must be 32 bytes");
        }
        m.chain_key = crypto::SecretArray<32>(f.bytes);
        has_chain = true;
        break;
      case 4: {
        if (f.type != WireType::kLengthDelimited) return Invalid("SKDM signingKey");
        SOTTO_ASSIGN_OR_RETURN(m.signing_key, PublicKey::Deserialize(f.bytes));
        has_signing = true;
        break;
      }
      default:
        break;
    }
  }
  if (reader.error()) return Invalid("SKDM protobuf malformed");
  if (!has_id || !has_iteration || !has_chain || !has_signing) {
    return Invalid("SKDM missing required fields");
  }
  return m;
}

}  // namespace sotto::signal
