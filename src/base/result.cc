#include "base/result.h"

namespace sotto {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kInvalidArgument: return "INVALID_ARGUMENT";
    case Code::kFailedPrecondition: return "FAILED_PRECONDITION";
    case Code::kNotFound: return "NOT_FOUND";
    case Code::kAlreadyExists: return "ALREADY_EXISTS";
    case Code::kPermissionDenied: return "PERMISSION_DENIED";
    case Code::kUnauthenticated: return "UNAUTHENTICATED";
    case Code::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case Code::kOutOfRange: return "OUT_OF_RANGE";
    case Code::kUnimplemented: return "UNIMPLEMENTED";
    case Code::kInternal: return "INTERNAL";
    case Code::kDataLoss: return "DATA_LOSS";
    case Code::kUnavailable: return "UNAVAILABLE";
    case Code::kAborted: return "ABORTED";
  }
  return "UNKNOWN";
}

std::string Error::ToString() const {
  std::string out(CodeName(code));
  out += ": ";
  out += message;
  return out;
}

}  // namespace sotto
