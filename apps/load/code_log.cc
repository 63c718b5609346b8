#include "apps/load/code_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <utility>

namespace sotto::load {
namespace {

constexpr size_t kReadChunk = size_t{64} * 1024;
constexpr size_t kMaxLine = 256;  // "+E164 CODE" is ~23 bytes; longer lines are not ours

}  // namespace

std::string LoadHandle(uint64_t prefix, uint64_t index) {
  char text[24];
  (void)std::snprintf(text, sizeof text, "+1%06llu%07llu",
                      static_cast<unsigned long long>(prefix % kHandlePrefixSpace),
                      static_cast<unsigned long long>(index % kHandleIndexSpace));
  return text;
}

Result<CodeLog> CodeLog::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return MakeError(errno == ENOENT ? Code::kNotFound : Code::kInternal, Module::kClient, 0,
                     "cannot open the code log (the server's DATA/verification-codes.log)");
  }
  if (::lseek(fd, 0, SEEK_END) < 0) {
    ::close(fd);
    return MakeError(Code::kInternal, Module::kClient, 0, "cannot seek in the code log");
  }
  return CodeLog(fd);
}

CodeLog::CodeLog(CodeLog&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      partial_(std::move(other.partial_)),
      waiting_(std::move(other.waiting_)) {}

CodeLog& CodeLog::operator=(CodeLog&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    partial_ = std::move(other.partial_);
    waiting_ = std::move(other.waiting_);
  }
  return *this;
}

CodeLog::~CodeLog() {
  if (fd_ >= 0) ::close(fd_);
}

void CodeLog::Expect(const std::string& handle, void* token) { waiting_[handle] = token; }

void CodeLog::Forget(const std::string& handle) { waiting_.erase(handle); }

bool CodeLog::Poll(const std::function<void(void*, std::string_view)>& on_code) {
  char buffer[kReadChunk];
  for (;;) {
    const ssize_t n = ::read(fd_, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;  // at the end, for now
    std::string_view data(buffer, static_cast<size_t>(n));
    while (!data.empty()) {
      const size_t newline = data.find('\n');
      if (newline == std::string_view::npos) {
        // Keep the fragment, unless it cannot be a code line (then skip to the next one).
        partial_.append(data);
        if (partial_.size() > kMaxLine) partial_ = "\x01";  // marks a line to skip
        break;
      }
      const std::string_view piece = data.substr(0, newline);
      data.remove_prefix(newline + 1);
      if (partial_.empty()) {
        OnLine(piece, on_code);
      } else {
        partial_.append(piece);
        OnLine(partial_, on_code);
        partial_.clear();
      }
    }
  }
}

void CodeLog::OnLine(std::string_view line,
                     const std::function<void(void*, std::string_view)>& on_code) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos) return;
  auto it = waiting_.find(std::string(line.substr(0, space)));
  if (it == waiting_.end()) return;
  void* token = it->second;
  waiting_.erase(it);
  on_code(token, line.substr(space + 1));
}

}  // namespace sotto::load
