// A tiny tmpfs mounted in a fresh temporary directory, for disk-full tests: fill it with
// Fill(), give the space back with Free(). Needs root (mount(2)); CI runs the tests as
// root, and a test that cannot mount fails rather than skipping (see ok()/error()).
//
// Thread-safety: externally synchronized.
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace sotto::testing {

class SmallFilesystem {
 public:
  explicit SmallFilesystem(size_t bytes) {
    char tmpl[] = "/tmp/sotto-smallfs-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      error_ = std::string("mkdtemp: ") + std::strerror(errno);
      return;
    }
    dir_ = tmpl;
    const std::string data = "size=" + std::to_string(bytes) + ",mode=0700";
    if (mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, data.c_str()) != 0) {
      error_ = std::string("mount -t tmpfs (the disk-full tests need root): ") +
               std::strerror(errno);
      return;
    }
    mounted_ = true;
  }
  ~SmallFilesystem() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
    if (!dir_.empty()) rmdir(dir_.c_str());
  }
  SmallFilesystem(const SmallFilesystem&) = delete;
  SmallFilesystem& operator=(const SmallFilesystem&) = delete;

  bool ok() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return dir_; }

  // Writes filler files until the filesystem has no byte left. Returns the bytes written,
  // or -1 if a write failed for another reason than ENOSPC.
  long long Fill() {
    const std::string name = dir_ + "/filler-" + std::to_string(fillers_.size());
    const int fd = open(name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return errno == ENOSPC ? 0 : -1;
    fillers_.push_back(name);
    const std::vector<char> chunk(kChunk, 'f');
    long long total = 0;
    size_t size = kChunk;
    for (;;) {
      const ssize_t n = write(fd, chunk.data(), size);
      if (n > 0) {
        total += n;
        continue;
      }
      if (n < 0 && errno != ENOSPC) {
        close(fd);
        return -1;
      }
      if (size == 1) break;  // not even one byte fits
      size = size / 2;       // fill the last partial pages too
    }
    close(fd);
    return total;
  }

  // Deletes what Fill() wrote.
  void Free() {
    for (const std::string& f : fillers_) unlink(f.c_str());
    fillers_.clear();
  }

 private:
  static constexpr size_t kChunk = 64 * 1024;

  std::string dir_;
  std::string error_;
  bool mounted_ = false;
  std::vector<std::string> fillers_;
};

}  // namespace sotto::testing
