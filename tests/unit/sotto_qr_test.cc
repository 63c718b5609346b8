// Tests of the terminal QR rendering for `sotto safety-number --qr` (apps/sotto/qr.h).
// Nothing is decoded: the tests check the geometry (two module rows per line, the quiet
// zone on every side), the palette, and that different inputs draw differently.
#include "apps/sotto/qr.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace sotto::cli {
namespace {

constexpr std::string_view kFull = "\u2588";

// Splits a rendering into lines of characters (each a UTF-8 sequence).
std::vector<std::vector<std::string>> Cells(const std::string& rendering) {
  std::vector<std::vector<std::string>> lines;
  std::istringstream in(rendering);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    for (size_t i = 0; i < line.size();) {
      size_t n = 1;
      while (i + n < line.size() && (static_cast<unsigned char>(line[i + n]) & 0xc0) == 0x80) ++n;
      cells.push_back(line.substr(i, n));
      i += n;
    }
    lines.push_back(std::move(cells));
  }
  return lines;
}

Bytes Payload(uint8_t seed) {
  Bytes payload(80);  // the size of a version-0 scannable fingerprint
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(seed * 31 + i);
  return payload;
}

TEST(Qr, EncodesToAnOddSquareOfAValidVersion) {
  const auto matrix = EncodeQr(Payload(1));
  ASSERT_TRUE(matrix);
  EXPECT_GE(matrix->size, 21);
  EXPECT_EQ((matrix->size - 21) % 4, 0);
  EXPECT_EQ(matrix->dark.size(), static_cast<size_t>(matrix->size * matrix->size));
  // The finder pattern's corner module is dark in every QR code.
  EXPECT_TRUE(matrix->at(0, 0));
  EXPECT_TRUE(matrix->at(0, matrix->size - 1));
  EXPECT_TRUE(matrix->at(matrix->size - 1, 0));
}

TEST(Qr, RendersTwoModuleRowsPerLineInsideAQuietZone) {
  const auto matrix = EncodeQr(Payload(1));
  ASSERT_TRUE(matrix);
  const int full = matrix->size + 2 * kQrQuietZone;
  const auto lines = Cells(RenderQr(*matrix, kQrQuietZone, QrPalette::kDarkBackground));
  ASSERT_EQ(lines.size(), static_cast<size_t>((full + 1) / 2));
  for (const auto& line : lines) {
    ASSERT_EQ(line.size(), static_cast<size_t>(full));
    // The left and right quiet zones are light: full blocks on a dark terminal.
    for (int q = 0; q < kQrQuietZone; ++q) {
      EXPECT_EQ(line[static_cast<size_t>(q)], kFull);
      EXPECT_EQ(line[static_cast<size_t>(full - 1 - q)], kFull);
    }
  }
  // kQrQuietZone == 2: the first line is two quiet rows; the last holds the last quiet
  // rows (and the padding row of the odd height).
  for (const std::string& cell : lines.front()) EXPECT_EQ(cell, kFull);
  for (const std::string& cell : lines.back()) EXPECT_EQ(cell, kFull);
  // Line 1 holds module rows 0 and 1. The finder pattern's outer ring is dark in row 0
  // and in column 0; module (1, 1) is light, so only its lower half is inked.
  EXPECT_EQ(lines[1][static_cast<size_t>(kQrQuietZone)], " ");
  EXPECT_EQ(lines[1][static_cast<size_t>(kQrQuietZone + 1)], "\u2584");
}

TEST(Qr, LightPaletteInvertsTheCells) {
  const auto matrix = EncodeQr(Payload(2));
  ASSERT_TRUE(matrix);
  const auto dark = Cells(RenderQr(*matrix, kQrQuietZone, QrPalette::kDarkBackground));
  const auto light = Cells(RenderQr(*matrix, kQrQuietZone, QrPalette::kLightBackground));
  ASSERT_EQ(dark.size(), light.size());
  for (size_t i = 0; i < dark.size(); ++i) {
    ASSERT_EQ(dark[i].size(), light[i].size());
    for (size_t j = 0; j < dark[i].size(); ++j) {
      const std::string& d = dark[i][j];
      const std::string& l = light[i][j];
      const std::string expected = d == kFull      ? std::string(" ")
                                   : d == " "      ? std::string(kFull)
                                   : d == "\u2580" ? std::string("\u2584")
                                                   : std::string("\u2580");
      EXPECT_EQ(l, expected) << i << "," << j;
    }
  }
}

TEST(Qr, DistinctInputsRenderDifferently) {
  const auto a = EncodeQr(Payload(1));
  const auto b = EncodeQr(Payload(2));
  ASSERT_TRUE(a && b);
  EXPECT_NE(RenderQr(*a, kQrQuietZone, QrPalette::kDarkBackground),
            RenderQr(*b, kQrQuietZone, QrPalette::kDarkBackground));
  Bytes flipped = Payload(1);
  flipped.back() ^= 1;
  const auto c = EncodeQr(flipped);
  ASSERT_TRUE(c);
  EXPECT_NE(a->dark, c->dark);
}

TEST(Qr, TooMuchDataIsRefused) { EXPECT_FALSE(EncodeQr(Bytes(4000, 0x55))); }

}  // namespace
}  // namespace sotto::cli
