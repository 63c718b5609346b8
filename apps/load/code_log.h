// Verification codes for sotto-load's registrations, read from the server's code log
// (DATA/verification-codes.log with registration.code_sender = "log": one "+E164 CODE"
// line per issued code, docs/config.md). The file is read incrementally from where the
// last poll stopped, never from its start again; a line for a handle nobody waits for
// (another process's, an earlier run's) is skipped.
//
// Thread-safety: externally synchronized (sotto-load uses it from its one loop).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.h"

namespace sotto::load {

// Digits after "+1" in a load handle: a per-run prefix, then the connection's index.
inline constexpr uint64_t kHandleIndexSpace = 10'000'000;  // 7 digits of index
inline constexpr uint64_t kHandlePrefixSpace = 1'000'000;  // 6 digits of prefix

// "+1" then 13 digits: `prefix` (mod kHandlePrefixSpace) then `index` (mod
// kHandleIndexSpace), zero-padded. Fifteen digits in all, the most E.164 allows.
std::string LoadHandle(uint64_t prefix, uint64_t index);

class CodeLog {
 public:
  // Opens `path` for reading and starts at its current end: lines already there belong
  // to earlier registrations. Errors: kNotFound / kInternal when it cannot be opened.
  static Result<CodeLog> Open(const std::string& path);
  CodeLog(CodeLog&& other) noexcept;
  CodeLog& operator=(CodeLog&& other) noexcept;
  CodeLog(const CodeLog&) = delete;
  CodeLog& operator=(const CodeLog&) = delete;
  ~CodeLog();

  // Remembers that `handle`'s code is wanted, with `token` (e.g. the waiting connection,
  // which must Forget the handle before it dies) handed back when it appears. Call it
  // before the request_code goes out, so the line cannot be read first.
  void Expect(const std::string& handle, void* token);
  // Forgets `handle` (its connection closed).
  void Forget(const std::string& handle);
  size_t waiting() const { return waiting_.size(); }

  // Reads what was appended since the last call and calls `on_code(token, code)` for
  // every line naming a handle that is expected (which is then forgotten). Returns
  // false if reading failed.
  bool Poll(const std::function<void(void* token, std::string_view code)>& on_code);

 private:
  explicit CodeLog(int fd) : fd_(fd) {}
  void OnLine(std::string_view line, const std::function<void(void*, std::string_view)>& on_code);

  int fd_ = -1;
  std::string partial_;  // an incomplete last line
  std::unordered_map<std::string, void*> waiting_;
};

}  // namespace sotto::load
