// Fuzzes the sotto daemon's handling of a socket client's bytes (apps/sotto/json_rpc.h):
// line framing across arbitrary read boundaries (the first input byte picks the chunk
// size), then request parsing, call validation and error-line building for every line.
// Nothing may throw, and the framer must never hold more than one line's worth.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "apps/sotto/json_rpc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sotto::cli;  // NOLINT(google-build-using-namespace)
  if (size == 0) return 0;
  const size_t chunk = static_cast<size_t>(data[0]) * 37 + 1;
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  LineFramer framer;
  std::vector<std::string> lines;
  while (!stream.empty()) {
    const size_t n = std::min(chunk, stream.size());
    const LineFramer::Outcome outcome = framer.Feed(stream.substr(0, n), lines);
    if (framer.buffered() > kMaxRpcLineBytes + 1) __builtin_trap();
    for (const std::string& line : lines) {
      if (line.size() > kMaxRpcLineBytes) __builtin_trap();
      auto request = ParseRequest(line);
      if (!request) {
        if (ErrorLine(request.error().id, request.error().error).back() != '\n') __builtin_trap();
        continue;
      }
      auto call = ParseCall(*request);
      if (!call) {
        (void)ErrorLine(request->id.value_or(nullptr), call.error());
      } else if (request->id) {
        (void)ResultLine(*request->id, request->params);
      }
    }
    lines.clear();
    if (outcome == LineFramer::Outcome::kLineTooLong) return 0;
    stream.remove_prefix(n);
  }
  return 0;
}
