#include "bench/load/sse_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace llmserve::bench::load {
namespace {

std::vector<std::string> parse_in_pieces(const std::string& body, size_t piece) {
  std::vector<std::string> events;
  SseParser p([&](std::string_view d) { events.emplace_back(d); });
  for (size_t i = 0; i < body.size(); i += piece) p.feed(std::string_view(body).substr(i, piece));
  p.finish();
  return events;
}

TEST(SseParser, SplitsEventsWhateverThePieces) {
  const std::string body =
      "data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\n: comment\n\ndata: [DONE]\n\n";
  for (size_t piece : {1, 2, 3, 7, 1000}) {
    auto events = parse_in_pieces(body, piece);
    ASSERT_EQ(events.size(), 3u) << piece;
    EXPECT_EQ(events[0], "{\"a\":1}");
    EXPECT_EQ(events[1], "{\"b\":2}");
    EXPECT_EQ(events[2], "[DONE]");
  }
}

TEST(SseParser, MultiLineDataAndOtherFields) {
  auto events = parse_in_pieces("event: x\nid: 3\ndata: a\ndata:b\r\rdata: last", 4);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], "a\nb");
  EXPECT_EQ(events[1], "last");  // dispatched by finish()
}

}  // namespace
}  // namespace llmserve::bench::load
