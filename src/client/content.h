// The plaintext format between Sotto clients (content.proto) and its padding: the
// serialized Content, then 0x80, then zeros up to a multiple of kPaddingBlock, so the
// ciphertext length hides the exact text length (Signal pads the same way). Decoding
// checks every limit; the bytes come from another user and are untrusted.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>

#include "base/bytes.h"
#include "base/result.h"
#include "client/content.pb.h"

namespace sotto::client {

inline constexpr size_t kPaddingBlock = 160;
inline constexpr size_t kMaxBodyBytes = size_t{8} * 1024;  // text per message (UTF-8 bytes)
inline constexpr size_t kMaxReceiptIds = 256;              // message ids per read receipt
inline constexpr size_t kMaxMessageIdBytes = 32;
inline constexpr size_t kMaxContentBytes = size_t{16} * 1024;  // padded plaintext accepted
// Groups.
inline constexpr size_t kGroupIdBytes = 16;                 // chosen by the server
inline constexpr size_t kMaxGroupNameBytes = 128;           // UTF-8
inline constexpr size_t kMaxGroupDescriptionBytes = 1024;   // UTF-8
inline constexpr size_t kMaxSenderKeyDistributionBytes = 256;  // serialized distribution message

enum class ContentErr : uint16_t {
  kPadding = 8300,   // no 0x80 terminator, or non-zero padding
  kParse = 8301,     // not a Content protobuf
  kLimit = 8302,     // a field past its limit (kMaxBodyBytes, kMaxReceiptIds, ...)
  kEmpty = 8303,     // no body
  kTooLarge = 8304,  // past kMaxContentBytes
};

// Serializes and pads.
Bytes EncodeContent(const content::Content& content);
// Strips the padding, parses and checks the limits (body size and UTF-8, handle size,
// receipt id count and sizes). Errors: ContentErr with Code::kInvalidArgument.
Result<content::Content> DecodeContent(ByteSpan padded);
// A group name and description within kMaxGroupNameBytes / kMaxGroupDescriptionBytes and
// UTF-8 (ContentErr::kLimit otherwise). Checked on create/rename and on receive.
Status CheckGroupText(std::string_view name, std::string_view description);
// Whether `text` is well-formed UTF-8.
bool IsUtf8(std::string_view text);

}  // namespace sotto::client
