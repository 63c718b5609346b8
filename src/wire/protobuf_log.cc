#include "wire/protobuf_log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

#include <google/protobuf/stubs/logging.h>

namespace sotto::wire {
namespace {

constexpr int64_t kWindowMs = 60'000;

std::atomic<uint64_t> g_lines{0};
std::atomic<uint64_t> g_dropped{0};
std::atomic<ProtobufLogSink> g_sink{nullptr};

std::mutex g_mu;
int64_t g_window_start_ms = 0;     // GUARDED_BY(g_mu)
uint32_t g_written_in_window = 0;  // GUARDED_BY(g_mu)
uint64_t g_unreported_drops = 0;   // GUARDED_BY(g_mu)

void ToStderr(std::string_view line) {
  (void)std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const char* LevelName(google::protobuf::LogLevel level) {
  switch (level) {
    case google::protobuf::LOGLEVEL_INFO:
      return "info";
    case google::protobuf::LOGLEVEL_WARNING:
      return "warning";
    case google::protobuf::LOGLEVEL_ERROR:
      return "error";
    case google::protobuf::LOGLEVEL_FATAL:
      return "fatal";
  }
  return "error";
}

void Handle(google::protobuf::LogLevel level, const char* filename, int line,
            const std::string& message) {
  g_lines.fetch_add(1, std::memory_order_relaxed);
  uint64_t reported_drops = 0;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    const int64_t now = NowMs();
    if (now - g_window_start_ms >= kWindowMs) {
      g_window_start_ms = now;
      g_written_in_window = 0;
    }
    if (level != google::protobuf::LOGLEVEL_FATAL &&
        g_written_in_window >= kProtobufLogLinesPerMinute) {
      g_dropped.fetch_add(1, std::memory_order_relaxed);
      ++g_unreported_drops;
      return;
    }
    ++g_written_in_window;
    reported_drops = g_unreported_drops;
    g_unreported_drops = 0;
  }
  std::string text = "[libprotobuf ";
  text += LevelName(level);
  text += ' ';
  text += filename != nullptr ? filename : "?";
  text += ':';
  text += std::to_string(line);
  text += "] ";
  text += message;
  if (reported_drops > 0) {
    text += " (";
    text += std::to_string(reported_drops);
    text += " earlier lines left out: at most kProtobufLogLinesPerMinute a minute)";
  }
  ProtobufLogSink sink = g_sink.load(std::memory_order_relaxed);
  (sink != nullptr ? sink : ToStderr)(text);
}

}  // namespace

void InstallProtobufLogHandler(ProtobufLogSink sink) {
  g_sink.store(sink, std::memory_order_relaxed);
  google::protobuf::SetLogHandler(&Handle);
}

uint64_t ProtobufLogLines() { return g_lines.load(std::memory_order_relaxed); }
uint64_t ProtobufLogLinesDropped() { return g_dropped.load(std::memory_order_relaxed); }

}  // namespace sotto::wire
