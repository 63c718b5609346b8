#include "noise/internal/hkdf.h"

#include <cstdint>

#include "crypto/blake2b.h"

namespace sotto::noise::internal {
namespace {

HashOutput Expand(const HashOutput& temp_key, const HashOutput* previous, uint8_t counter) {
  crypto::HmacBlake2b mac(temp_key.span());
  if (previous != nullptr) mac.Update(previous->span());
  mac.Update(ByteSpan(&counter, 1));
  return mac.Final();
}

}  // namespace

void Hkdf2(const HashOutput& chaining_key, ByteSpan input_key_material, HashOutput& output1,
           HashOutput& output2) {
  const HashOutput temp_key = crypto::HmacBlake2b512(chaining_key.span(), input_key_material);
  output1 = Expand(temp_key, nullptr, 0x01);
  output2 = Expand(temp_key, &output1, 0x02);
}

void Hkdf3(const HashOutput& chaining_key, ByteSpan input_key_material, HashOutput& output1,
           HashOutput& output2, HashOutput& output3) {
  const HashOutput temp_key = crypto::HmacBlake2b512(chaining_key.span(), input_key_material);
  output1 = Expand(temp_key, nullptr, 0x01);
  output2 = Expand(temp_key, &output1, 0x02);
  output3 = Expand(temp_key, &output2, 0x03);
}

}  // namespace sotto::noise::internal
