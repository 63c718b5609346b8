// Fuzzes what a sender controls in an attachment: the AttachmentPointer's fields after
// parsing, their validation, and the file name the receiver derives from the sender's
// hint (it must stay a single safe path component).
#include <cstddef>
#include <cstdint>
#include <string>

#include "client/media.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sotto;  // NOLINT(google-build-using-namespace)
  content::AttachmentPointer pointer;
  if (!pointer.ParseFromArray(data, static_cast<int>(size))) return 0;
  (void)client::ValidatePointer(pointer);
  (void)client::MimeTypeFor(pointer.file_name());
  const std::string name = client::SanitizeFileName(pointer.file_name());
  if (name.empty() || name.size() > 100 || name.front() == '.' ||
      name.find('/') != std::string::npos || name.find('\\') != std::string::npos) {
    __builtin_trap();
  }
  return 0;
}
