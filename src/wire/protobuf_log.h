// libprotobuf's own log lines (for example "String field ... contains invalid UTF-8 data
// when parsing a protocol buffer"), counted and rate-limited. Without a handler
// libprotobuf writes every line to stderr, so a peer that sends bad messages in a loop
// writes a line per message into the server's log. The wire protocol's text fields are
// `bytes` (docs/wire.md "Text fields"), so wire frames no longer cause such lines; the
// handler bounds whatever else still does (content protobufs, future fields).
//
// Thread-safety: InstallProtobufLogHandler must be called once, before other threads
// parse protobufs (libprotobuf's SetLogHandler is not thread-safe); the handler and the
// counters are thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

namespace sotto::wire {

// At most this many libprotobuf lines are written per minute; the rest are counted, and
// the next line written says how many were left out.
inline constexpr uint32_t kProtobufLogLinesPerMinute = 10;

// Where written lines go: one call per line (without a trailing newline).
using ProtobufLogSink = void (*)(std::string_view line);

// Routes libprotobuf's log lines through the counting, rate-limited handler. `sink`
// (default: stderr) receives the lines let through; FATAL lines are always let through
// (libprotobuf aborts after them).
void InstallProtobufLogHandler(ProtobufLogSink sink = nullptr);

// Every line libprotobuf logged since the handler was installed, and those left out.
uint64_t ProtobufLogLines();
uint64_t ProtobufLogLinesDropped();

}  // namespace sotto::wire
