#include "server/server_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "crypto/random.h"

namespace sotto::server {
namespace {

enum class KeyErr : uint16_t { kIo = 7010, kFormat = 7011, kPermissions = 7012 };

tl::unexpected<Error> KeyError(Code code, KeyErr detail, const char* message) {
  return MakeError(code, Module::kServer, static_cast<uint16_t>(detail), message);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string ServerKeyText(const crypto::X25519Public& key) { return ToHex(key); }

Result<crypto::X25519Public> ParseServerKeyText(std::string_view text) {
  const Bytes raw = FromHex(Trim(text));
  if (raw.size() != crypto::kX25519KeySize) {
    return KeyError(Code::kInvalidArgument, KeyErr::kFormat, "server key must be 64 hex digits");
  }
  crypto::X25519Public key;
  std::copy(raw.begin(), raw.end(), key.begin());
  return key;
}

Result<noise::KeyPair> LoadOrCreateServerKey(const std::string& data_dir) {
  const std::filesystem::path dir(data_dir);
  const std::string key_path = (dir / "server.key").string();
  const std::string pub_path = (dir / "server.pub").string();
  struct stat st {};
  if (stat(key_path.c_str(), &st) == 0) {
    if ((st.st_mode & 077) != 0) {
      return KeyError(Code::kPermissionDenied, KeyErr::kPermissions,
                      "server.key is readable by others; chmod 600 it");
    }
    std::ifstream in(key_path);
    std::stringstream text;
    text << in.rdbuf();
    crypto::SecretBytes raw(ByteSpan(FromHex(Trim(text.str()))));
    std::string wipe = text.str();
    crypto::SecureWipe(MutableByteSpan(reinterpret_cast<uint8_t*>(wipe.data()), wipe.size()));
    if (raw.size() != crypto::kX25519KeySize) {
      return KeyError(Code::kDataLoss, KeyErr::kFormat, "server.key must hold 64 hex digits");
    }
    noise::KeyPair pair = noise::KeyPair::FromPrivate(crypto::X25519Private(raw.span()));
    std::ofstream(pub_path) << ServerKeyText(pair.public_key) << "\n";
    return pair;
  }
  noise::KeyPair pair = noise::KeyPair::Generate(crypto::SystemRandom());
  const int fd = open(key_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return KeyError(Code::kInternal, KeyErr::kIo, "cannot create server.key");
  std::string hex = ToHex(pair.private_key.span()) + "\n";
  const bool ok = write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) &&
                  fsync(fd) == 0;
  crypto::SecureWipe(MutableByteSpan(reinterpret_cast<uint8_t*>(hex.data()), hex.size()));
  close(fd);
  if (!ok) return KeyError(Code::kInternal, KeyErr::kIo, "cannot write server.key");
  std::ofstream(pub_path) << ServerKeyText(pair.public_key) << "\n";
  return pair;
}

}  // namespace sotto::server
