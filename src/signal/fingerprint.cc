#include "signal/fingerprint.h"


#include "crypto/hash.h"
#include "crypto/secret.h"
#include "signal/error.h"
#include "signal/internal/proto.h"

namespace sotto::signal {
namespace {

// SHA-512 iterated over (version || key || id), each round appending the key again.
crypto::Sha512Digest LogicalFingerprint(uint32_t iterations, std::string_view id,
                                        const IdentityKey& key) {
  const SerializedPublicKey key_bytes = key.Serialize();
  static constexpr uint8_t kVersion[2] = {0, 0};
  crypto::Sha512Stream h;
  h.Update(kVersion);
  h.Update(key_bytes);
  h.Update(AsBytes(id));
  h.Update(key_bytes);
  crypto::Sha512Digest digest = h.Final();
  for (uint32_t i = 1; i < iterations; ++i) {
    h.Reset();
    h.Update(digest);
    h.Update(key_bytes);
    digest = h.Final();
  }
  return digest;
}

std::string DisplayDigits(const crypto::Sha512Digest& digest) {
  std::string out;
  for (size_t chunk = 0; chunk < 6; ++chunk) {
    uint64_t v = 0;
    for (size_t i = 0; i < 5; ++i) v = (v << 8) | digest[chunk * 5 + i];
    uint64_t digits = v % 100000;
    char buf[5];
    for (int i = 4; i >= 0; --i) {
      buf[i] = static_cast<char>('0' + digits % 10);
      digits /= 10;
    }
    out.append(buf, sizeof buf);
  }
  return out;
}

Bytes LogicalMessage(ByteSpan content) {
  Bytes out;
  internal::AppendBytesField(out, 1, content);
  return out;
}

struct ParsedScannable {
  uint32_t version = 0;
  ByteSpan local;
  ByteSpan remote;
};

Result<ParsedScannable> ParseScannable(ByteSpan bytes) {
  ParsedScannable p;
  bool has_version = false, has_local = false, has_remote = false;
  internal::ProtoReader r(bytes);
  internal::ProtoField f;
  auto content_of = [](ByteSpan logical, ByteSpan& out) {
    internal::ProtoReader lr(logical);
    internal::ProtoField lf;
    bool found = false;
    while (lr.Next(lf)) {
      if (lf.number == 1 && lf.type == internal::WireType::kLengthDelimited) {
        out = lf.bytes;
        found = true;
      }
    }
    return found && !lr.error();
  };
  while (r.Next(f)) {
    if (f.number == 1 && f.type == internal::WireType::kVarint) {
      p.version = static_cast<uint32_t>(f.varint);
      has_version = true;
    } else if (f.number == 2 && f.type == internal::WireType::kLengthDelimited) {
      has_local = content_of(f.bytes, p.local);
    } else if (f.number == 3 && f.type == internal::WireType::kLengthDelimited) {
      has_remote = content_of(f.bytes, p.remote);
    }
  }
  if (r.error() || !has_version || !has_local || !has_remote) {
    return SignalError(Code::kInvalidArgument, Err::kInvalidMessage,
                       "scannable fingerprint malformed");
  }
  return p;
}

}  // namespace

Result<Fingerprint> ComputeFingerprint(uint32_t iterations, std::string_view local_id,
                                       const IdentityKey& local_key, std::string_view remote_id,
                                       const IdentityKey& remote_key) {
  if (iterations == 0 || iterations > kMaxFingerprintIterations) {
    return SignalError(Code::kInvalidArgument, Err::kInvalidMessage,
                       "fingerprint iterations must be in 1..kMaxFingerprintIterations");
  }
  const crypto::Sha512Digest local = LogicalFingerprint(iterations, local_id, local_key);
  const crypto::Sha512Digest remote = LogicalFingerprint(iterations, remote_id, remote_key);
  Fingerprint fp;
  const std::string local_digits = DisplayDigits(local);
  const std::string remote_digits = DisplayDigits(remote);
  fp.displayable = local_digits <= remote_digits ? local_digits + remote_digits
                                                 : remote_digits + local_digits;
  internal::AppendVarintField(fp.scannable, 1, kScannableFingerprintVersion);
  internal::AppendBytesField(fp.scannable, 2, LogicalMessage(ByteSpan(local.data(), 32)));
  internal::AppendBytesField(fp.scannable, 3, LogicalMessage(ByteSpan(remote.data(), 32)));
  return fp;
}

Result<bool> CompareScannable(ByteSpan mine, ByteSpan scanned) {
  SOTTO_ASSIGN_OR_RETURN(ParsedScannable a, ParseScannable(mine));
  SOTTO_ASSIGN_OR_RETURN(ParsedScannable b, ParseScannable(scanned));
  if (a.version != b.version || a.version != kScannableFingerprintVersion) {
    return SignalError(Code::kFailedPrecondition, Err::kFingerprintVersion,
                       "scannable fingerprint versions differ");
  }
  return crypto::ConstantTimeEqual(a.local, b.remote) && crypto::ConstantTimeEqual(a.remote, b.local);
}

}  // namespace sotto::signal
