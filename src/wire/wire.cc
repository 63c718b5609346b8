#include "wire/wire.h"

namespace sotto::wire {

tl::unexpected<Error> WireError(Code code, WireErr detail, const char* message) {
  return MakeError(code, Module::kWire, static_cast<uint16_t>(detail), message);
}

Status ParseFrame(ByteSpan bytes, Frame& frame) {
  if (bytes.size() > kMaxNoiseMessage) {
    return WireError(Code::kResourceExhausted, WireErr::kTooLarge,
                     "frame exceeds kMaxNoiseMessage");
  }
  if (!frame.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return WireError(Code::kInvalidArgument, WireErr::kMalformed, "frame does not parse");
  }
  if (frame.body_case() == Frame::BODY_NOT_SET) {
    return WireError(Code::kInvalidArgument, WireErr::kUnknown, "frame has no known body");
  }
  return Ok();
}

void SerializeFrame(const Frame& frame, Bytes& out) {
  const size_t size = frame.ByteSizeLong();
  out.resize(size);
  frame.SerializeWithCachedSizesToArray(out.data());
}

void AppendLengthPrefix(Bytes& out, size_t size) {
  out.push_back(static_cast<uint8_t>(size >> 8));
  out.push_back(static_cast<uint8_t>(size));
}

bool IsE164(std::string_view handle) {
  if (handle.size() < 1 + kE164MinDigits || handle.size() > 1 + kE164MaxDigits) return false;
  if (handle[0] != '+' || handle[1] < '1' || handle[1] > '9') return false;
  for (size_t i = 1; i < handle.size(); ++i) {
    if (handle[i] < '0' || handle[i] > '9') return false;
  }
  return true;
}

}  // namespace sotto::wire
