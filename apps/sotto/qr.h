// QR codes for the terminal: `sotto safety-number --qr` shows the safety number's
// scannable bytes so that another phone can compare them. Encoding is libqrencode's
// (8-bit mode, error correction level L); rendering packs two module rows into one text
// line with the Unicode half blocks U+2580/U+2584/U+2588.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"

namespace sotto::cli {

// A square of modules, row by row; true is a dark module.
struct QrMatrix {
  int size = 0;
  std::vector<bool> dark;  // size * size
  bool at(int row, int column) const {
    return dark[static_cast<size_t>(row) * static_cast<size_t>(size) + static_cast<size_t>(column)];
  }
};

// The QR code of `data` (8-bit mode, level L, smallest version that fits); nullopt if
// it does not fit in a version 40 code or libqrencode fails.
std::optional<QrMatrix> EncodeQr(ByteSpan data);

// Which terminal the blocks are drawn for: a block character is drawn in the
// foreground colour, so on a dark background the blocks must be the light modules.
enum class QrPalette : uint8_t { kDarkBackground, kLightBackground };

inline constexpr int kQrQuietZone = 2;  // modules of light margin on each side

// One text line per two module rows, each `size + 2 * quiet_zone` characters wide, lines
// ending in '\n'. An odd total height gets one extra light row at the bottom. Requires
// 0 <= quiet_zone <= 8.
std::string RenderQr(const QrMatrix& matrix, int quiet_zone, QrPalette palette);

}  // namespace sotto::cli
