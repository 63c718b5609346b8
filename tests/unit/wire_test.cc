// Tests of wire/: TCP message splitting at every boundary and at its limits, and frame
// parsing of good, unknown and malformed frames.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "wire/wire.h"

namespace sotto::wire {
namespace {

Bytes Framed(const std::vector<Bytes>& messages) {
  Bytes out;
  for (const Bytes& m : messages) {
    AppendLengthPrefix(out, m.size());
    Append(out, m);
  }
  return out;
}

TEST(SplitMessages, EveryChunkBoundaryYieldsTheSameMessages) {
  const std::vector<Bytes> messages = {Bytes(1, 'a'), Bytes(300, 'b'), Bytes(2, 'c'),
                                       Bytes(kMaxNoiseMessage, 'd')};
  const Bytes stream = Framed(messages);
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{301}, stream.size()}) {
    Bytes partial;
    std::vector<Bytes> got;
    for (size_t off = 0; off < stream.size(); off += chunk) {
      const size_t n = std::min(chunk, stream.size() - off);
      ASSERT_TRUE(SplitMessages(partial, ByteSpan(stream).subspan(off, n), kMaxNoiseMessage,
                                [&](ByteSpan m) {
                                  got.emplace_back(m.begin(), m.end());
                                  return true;
                                }));
    }
    EXPECT_EQ(got, messages) << "chunk " << chunk;
    EXPECT_TRUE(partial.empty());
    EXPECT_EQ(partial.capacity(), 0u) << "an idle connection keeps no buffer";
  }
}

TEST(SplitMessages, LimitsAndMalformedPrefixes) {
  Bytes partial;
  auto never = [](ByteSpan) { return true; };
  auto zero = SplitMessages(partial, FromHex("0000"), kMaxNoiseMessage, never);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().detail, static_cast<uint16_t>(WireErr::kMalformed));
  // A configured frame limit below the Noise maximum: at the edge accepted, past refused.
  Bytes at = Framed({Bytes(100, 'x')});
  int count = 0;
  ASSERT_TRUE(SplitMessages(partial, at, 100, [&](ByteSpan) { return ++count > 0; }));
  EXPECT_EQ(count, 1);
  auto past = SplitMessages(partial, Framed({Bytes(101, 'x')}), 100, never);
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().detail, static_cast<uint16_t>(WireErr::kTooLarge));
  // Stopping drops the rest.
  count = 0;
  partial.clear();
  ASSERT_TRUE(SplitMessages(partial, Framed({Bytes(1, 'a'), Bytes(1, 'b')}), 100,
                            [&](ByteSpan) { return ++count < 1; }));
  EXPECT_EQ(count, 1);
}

TEST(Frames, RoundTripUnknownAndMalformed) {
  Frame f;
  f.mutable_request()->set_id(7);
  f.mutable_request()->mutable_echo()->set_data("hi");
  Bytes bytes;
  SerializeFrame(f, bytes);
  Frame back;
  ASSERT_TRUE(ParseFrame(bytes, back));
  EXPECT_EQ(back.request().id(), 7u);
  EXPECT_EQ(back.request().echo().data(), "hi");
  // Field 99 only: parses as protobuf but has no known body.
  auto unknown = ParseFrame(FromHex("98060a"), back);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().detail, static_cast<uint16_t>(WireErr::kUnknown));
  auto malformed = ParseFrame(FromHex("0aff"), back);
  ASSERT_FALSE(malformed);
  EXPECT_EQ(malformed.error().detail, static_cast<uint16_t>(WireErr::kMalformed));
}

}  // namespace
}  // namespace sotto::wire
