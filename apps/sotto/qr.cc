#include "apps/sotto/qr.h"

#include <qrencode.h>

#include <memory>

namespace sotto::cli {
namespace {

struct QrCodeFree {
  void operator()(QRcode* code) const { QRcode_free(code); }
};

constexpr std::string_view kUpperHalf = "\u2580";
constexpr std::string_view kLowerHalf = "\u2584";
constexpr std::string_view kFullBlock = "\u2588";

}  // namespace

std::optional<QrMatrix> EncodeQr(ByteSpan data) {
  if (data.size() > static_cast<size_t>(INT32_MAX)) return std::nullopt;
  // Version 0 asks for the smallest version that holds the data.
  std::unique_ptr<QRcode, QrCodeFree> code(
      QRcode_encodeData(static_cast<int>(data.size()), data.data(), 0, QR_ECLEVEL_L));
  if (code == nullptr || code->width <= 0) return std::nullopt;
  QrMatrix matrix;
  matrix.size = code->width;
  const size_t cells = static_cast<size_t>(code->width) * static_cast<size_t>(code->width);
  matrix.dark.resize(cells);
  // libqrencode's bit 0 of each byte is the module's colour; the others are metadata.
  for (size_t i = 0; i < cells; ++i) matrix.dark[i] = (code->data[i] & 1) != 0;
  return matrix;
}

std::string RenderQr(const QrMatrix& matrix, int quiet_zone, QrPalette palette) {
  const int full = matrix.size + 2 * quiet_zone;
  // Whether the character cell should be inked (drawn in the foreground colour).
  auto inked = [&](int row, int column) {
    const int r = row - quiet_zone;
    const int c = column - quiet_zone;
    const bool dark = r >= 0 && c >= 0 && r < matrix.size && c < matrix.size && matrix.at(r, c);
    return palette == QrPalette::kDarkBackground ? !dark : dark;
  };
  std::string out;
  for (int row = 0; row < full; row += 2) {
    for (int column = 0; column < full; ++column) {
      const bool top = inked(row, column);
      // The padding row under an odd height is quiet zone too (light).
      const bool bottom =
          row + 1 < full ? inked(row + 1, column) : palette == QrPalette::kDarkBackground;
      if (top && bottom) {
        out += kFullBlock;
      } else if (top) {
        out += kUpperHalf;
      } else if (bottom) {
        out += kLowerHalf;
      } else {
        out += ' ';
      }
    }
    out += '\n';
  }
  return out;
}

}  // namespace sotto::cli
