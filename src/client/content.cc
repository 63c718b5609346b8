#include "client/content.h"

namespace sotto::client {
namespace {

tl::unexpected<Error> ContentError(ContentErr detail, const char* message) {
  return MakeError(Code::kInvalidArgument, Module::kClient, static_cast<uint16_t>(detail), message);
}

constexpr size_t kMaxHandleBytes = 16;  // '+' and 15 digits

}  // namespace

Status CheckGroupText(std::string_view name, std::string_view description) {
  if (name.size() > kMaxGroupNameBytes) {
    return ContentError(ContentErr::kLimit, "group name longer than kMaxGroupNameBytes");
  }
  if (description.size() > kMaxGroupDescriptionBytes) {
    return ContentError(ContentErr::kLimit,
                        "group description longer than kMaxGroupDescriptionBytes");
  }
  if (!IsUtf8(name) || !IsUtf8(description)) {
    return ContentError(ContentErr::kLimit, "group name or description is not UTF-8");
  }
  return Ok();
}

bool IsUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<uint8_t>(text[i]);
    size_t extra = 0;
    uint32_t min = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      extra = 1, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, min = 0x10000, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<uint8_t>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

Bytes EncodeContent(const content::Content& content) {
  const std::string serialized = content.SerializeAsString();
  const size_t unpadded = serialized.size() + 1;
  const size_t padded = (unpadded + kPaddingBlock - 1) / kPaddingBlock * kPaddingBlock;
  Bytes out(padded, 0);
  std::copy(serialized.begin(), serialized.end(), out.begin());
  out[serialized.size()] = 0x80;
  return out;
}

Result<content::Content> DecodeContent(ByteSpan padded) {
  if (padded.size() > kMaxContentBytes) {
    return ContentError(ContentErr::kTooLarge, "content larger than kMaxContentBytes");
  }
  size_t end = padded.size();
  while (end > 0 && padded[end - 1] == 0) --end;
  if (end == 0 || padded[end - 1] != 0x80) {
    return ContentError(ContentErr::kPadding, "content padding is malformed");
  }
  --end;
  content::Content content;
  if (!content.ParseFromArray(padded.data(), static_cast<int>(end))) {
    return ContentError(ContentErr::kParse, "content does not parse");
  }
  if (content.sender_handle().size() > kMaxHandleBytes) {
    return ContentError(ContentErr::kLimit, "sender handle too long");
  }
  switch (content.body_case()) {
    case content::Content::kData:
      if (content.data().body().size() > kMaxBodyBytes) {
        return ContentError(ContentErr::kLimit, "text longer than kMaxBodyBytes");
      }
      if (!IsUtf8(content.data().body())) {
        return ContentError(ContentErr::kLimit, "text is not UTF-8");
      }
      if (content.data().has_group() && content.data().group().group_id().size() != kGroupIdBytes) {
        return ContentError(ContentErr::kLimit, "group id is not kGroupIdBytes");
      }
      break;
    case content::Content::kReceipt:
      if (content.receipt().message_ids_size() == 0 ||
          static_cast<size_t>(content.receipt().message_ids_size()) > kMaxReceiptIds) {
        return ContentError(ContentErr::kLimit, "receipt names 0 or more than kMaxReceiptIds ids");
      }
      for (const std::string& id : content.receipt().message_ids()) {
        if (id.empty() || id.size() > kMaxMessageIdBytes) {
          return ContentError(ContentErr::kLimit, "receipt message id size out of range");
        }
      }
      break;
    case content::Content::kTyping:
      break;
    case content::Content::kSent: {  // sent-message sync (docs/devices.md)
      const content::SentMessage& sent = content.sent();
      if (sent.destination().size() != 16 || sent.message_id().empty() ||
          sent.message_id().size() > kMaxMessageIdBytes) {
        return ContentError(ContentErr::kLimit, "sent-message sync: bad destination or message id");
      }
      if (sent.data().body().size() > kMaxBodyBytes || !IsUtf8(sent.data().body())) {
        return ContentError(ContentErr::kLimit, "sent-message sync: text too long or not UTF-8");
      }
      break;
    }
    case content::Content::kSenderKey: {
      const content::SenderKeyDistribution& skd = content.sender_key();
      if (skd.group_id().size() != kGroupIdBytes) {
        return ContentError(ContentErr::kLimit, "group id is not kGroupIdBytes");
      }
      if (skd.distribution().empty() || skd.distribution().size() > kMaxSenderKeyDistributionBytes) {
        return ContentError(ContentErr::kLimit,
                            "sender key distribution empty or past kMaxSenderKeyDistributionBytes");
      }
      SOTTO_RETURN_IF_ERROR(CheckGroupText(skd.name(), skd.description()));
      break;
    }
    case content::Content::kGroupMetadata:
      if (content.group_metadata().group_id().size() != kGroupIdBytes) {
        return ContentError(ContentErr::kLimit, "group id is not kGroupIdBytes");
      }
      SOTTO_RETURN_IF_ERROR(
          CheckGroupText(content.group_metadata().name(), content.group_metadata().description()));
      break;
    case content::Content::BODY_NOT_SET:
      return ContentError(ContentErr::kEmpty, "content has no body");
  }
  return content;
}

}  // namespace sotto::client
