#include "client/internal/home_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "client/internal/sqlite.h"

namespace sotto::client::internal {
namespace {

constexpr char kKeyFileTemp[] = "storage.key.new";

tl::unexpected<Error> OpenError(const char* message) {
  return StoreError(Code::kFailedPrecondition, StoreErr::kOpen, message);
}

tl::unexpected<Error> KeyFileError(const char* message) {
  return StoreError(Code::kFailedPrecondition, StoreErr::kKeyFile, message);
}

// Closes a descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Status MakeHomeDir(const std::filesystem::path& dir) {
  if (dir.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec) return OpenError("cannot create the parent of the home directory");
  }
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return OpenError("cannot create the home directory");
  }
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return OpenError("the home directory is not a directory");
  }
  // Other users must not list or read the key and database, whatever the umask left.
  if ((st.st_mode & 077) != 0 && chmod(dir.c_str(), (st.st_mode & 0700) | 0700) != 0) {
    return OpenError("cannot restrict the home directory to mode 0700");
  }
  return Ok();
}

Result<HomeLock> LockHome(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / kLockFile;
  Fd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return OpenError("cannot open the lock file");
  int rc;
  do {
    rc = flock(fd.get(), LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno == EWOULDBLOCK) {
      return StoreError(Code::kFailedPrecondition, StoreErr::kBusy,
                        "another sotto process is using this home directory");
    }
    return OpenError("cannot lock the home directory");
  }
  return HomeLock(fd.release());
}

Status ReadAll(int fd, MutableByteSpan out) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return OpenError("cannot read storage.key");
    done += static_cast<size_t>(n);
  }
  return Ok();
}

Status WriteAll(int fd, ByteSpan bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return OpenError("cannot write storage.key");
    done += static_cast<size_t>(n);
  }
  return Ok();
}

Result<crypto::SecretBytes> ReadKeyFile(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return OpenError("cannot stat storage.key");
  if (!S_ISREG(st.st_mode)) return KeyFileError("storage.key is not a regular file");
  if ((st.st_mode & 077) != 0) {
    return KeyFileError("storage.key is readable by group or others (must be mode 0600)");
  }
  if (st.st_size != static_cast<off_t>(kStorageKeySize)) {
    return KeyFileError("storage.key does not hold exactly 32 bytes");
  }
  crypto::SecretBytes key(kStorageKeySize);
  SOTTO_RETURN_IF_ERROR(ReadAll(fd, key.mutable_span()));
  return key;
}

// Written under a temporary name and linked into place, so a crash never leaves a short
// storage.key behind; link() fails rather than replace an existing key.
Result<crypto::SecretBytes> CreateKeyFile(const std::filesystem::path& dir,
                                          crypto::Random& random) {
  const std::filesystem::path temp = dir / kKeyFileTemp;
  const std::filesystem::path path = dir / kKeyFile;
  unlink(temp.c_str());  // a leftover of a crash; we hold the lock
  Fd fd(open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return OpenError("cannot create storage.key");
  crypto::SecretBytes key(kStorageKeySize);
  random.Fill(key.mutable_span());
  Status written = WriteAll(fd.get(), key.span());
  if (written && fsync(fd.get()) != 0) written = OpenError("cannot sync storage.key");
  if (written && link(temp.c_str(), path.c_str()) != 0) {
    written = OpenError("cannot move storage.key into place");
  }
  unlink(temp.c_str());
  if (!written) return tl::unexpected<Error>(written.error());
  Fd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0 || fsync(dir_fd.get()) != 0) {
    return OpenError("cannot sync the home directory");
  }
  return key;
}

Result<crypto::SecretBytes> LoadOrCreateKey(const std::filesystem::path& dir,
                                            bool database_has_data, crypto::Random& random) {
  const std::filesystem::path path = dir / kKeyFile;
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() >= 0) return ReadKeyFile(fd.get());
  if (errno != ENOENT) return OpenError("cannot open storage.key");
  // A new key would not open anything sealed under the lost one.
  if (database_has_data) {
    return KeyFileError("storage.key is missing but the database exists");
  }
  return CreateKeyFile(dir, random);
}

bool NonEmptyFile(const std::filesystem::path& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && st.st_size > 0;
}

Status PrepareDatabaseFiles(const std::filesystem::path& database) {
  Fd fd(open(database.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0 || fchmod(fd.get(), 0600) != 0) {
    return OpenError("cannot create the database file");
  }
  // SQLite gives -wal and -shm the database's mode; older ones may predate that.
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string side = database.string() + suffix;
    if (chmod(side.c_str(), 0600) != 0 && errno != ENOENT) {
      return OpenError("cannot restrict the database's side files to mode 0600");
    }
  }
  return Ok();
}

}  // namespace

HomeLock::HomeLock(HomeLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

HomeLock& HomeLock::operator=(HomeLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

HomeLock::~HomeLock() {
  if (fd_ >= 0) close(fd_);  // releases the flock
}

Result<PreparedHome> PrepareHome(const std::filesystem::path& home, crypto::Random& random) {
  const std::filesystem::path dir = home.has_filename() ? home : home.parent_path();
  SOTTO_RETURN_IF_ERROR(MakeHomeDir(dir));
  SOTTO_ASSIGN_OR_RETURN(HomeLock lock, LockHome(dir));
  const std::filesystem::path database = dir / kDatabaseFile;
  // The WAL may hold the first transactions before any checkpoint reaches the database.
  const bool database_has_data = NonEmptyFile(database) || NonEmptyFile(database.string() + "-wal");
  SOTTO_ASSIGN_OR_RETURN(crypto::SecretBytes key, LoadOrCreateKey(dir, database_has_data, random));
  SOTTO_RETURN_IF_ERROR(PrepareDatabaseFiles(database));
  return PreparedHome{std::move(lock), std::move(key), database};
}

}  // namespace sotto::client::internal
