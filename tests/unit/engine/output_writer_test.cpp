// OutputWriter: every output reaches its stream, in add() order per stream, threaded or not;
// drain() returns only once the writer has pushed everything; the destructor pushes what is left.
#include "engine/output_writer.h"

#include <gtest/gtest.h>

#include <thread>

namespace llmserve {
namespace {

RequestOutput token(int32_t id, bool is_final = false) {
  RequestOutput out;
  out.token_ids.push_back(id);
  if (is_final) out.finish_reason = FinishReason::kLength;
  return out;
}

// Reads `stream` to its final output; the token ids in order.
std::vector<int32_t> read_all(RequestStream& stream) {
  std::vector<int32_t> ids;
  RequestOutput out;
  while (stream.next(out, std::chrono::seconds(30))) {
    ids.insert(ids.end(), out.token_ids.begin(), out.token_ids.end());
    if (out.is_final()) return ids;
  }
  ADD_FAILURE() << "stream " << stream.id() << " did not finish";
  return ids;
}

class OutputWriterModes : public ::testing::TestWithParam<bool> {};

TEST_P(OutputWriterModes, EveryStreamGetsItsOutputsInOrder) {
  constexpr int kStreams = 64, kSteps = 50;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int s = 0; s < kStreams; ++s) streams.push_back(std::make_shared<RequestStream>(s));
  std::vector<std::vector<int32_t>> got(kStreams);
  std::vector<std::thread> readers;
  for (int s = 0; s < kStreams; ++s)
    readers.emplace_back([&, s] { got[static_cast<size_t>(s)] = read_all(*streams[s]); });
  {
    OutputWriter writer(GetParam());
    EXPECT_EQ(writer.is_threaded(), GetParam());
    for (int step = 0; step < kSteps; ++step) {
      for (int s = 0; s < kStreams; ++s) {
        // Stream s ends at step s % kSteps... or at the last step; several outputs a step for
        // some, as a step that both samples and ends a request would add.
        const bool is_final = step == kSteps - 1 || step == s;
        if (step > s && s < kSteps - 1) continue;  // already ended
        writer.add(streams[s], token(step * 2));
        writer.add(streams[s], token(step * 2 + 1, is_final));
      }
      writer.flush();
    }
  }  // the destructor pushes anything still handed over
  for (auto& t : readers) t.join();
  for (int s = 0; s < kStreams; ++s) {
    std::vector<int32_t> want;
    const int last = s < kSteps - 1 ? s : kSteps - 1;
    for (int step = 0; step <= last; ++step) {
      want.push_back(step * 2);
      want.push_back(step * 2 + 1);
    }
    EXPECT_EQ(got[static_cast<size_t>(s)], want) << "stream " << s;
    EXPECT_TRUE(streams[s]->is_finished());
  }
}

TEST_P(OutputWriterModes, DrainReturnsAfterEverythingIsPushed) {
  OutputWriter writer(GetParam());
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int s = 0; s < 200; ++s) {
    streams.push_back(std::make_shared<RequestStream>(s));
    writer.add(streams.back(), token(s, true));
  }
  writer.drain();
  for (const auto& stream : streams) {
    RequestOutput out;
    ASSERT_TRUE(stream->try_next(out)) << "stream " << stream->id() << " was not pushed";
    EXPECT_EQ(out.token_ids, std::vector<int32_t>{static_cast<int32_t>(stream->id())});
  }
}

TEST_P(OutputWriterModes, NothingIsPushedBeforeFlush) {
  OutputWriter writer(GetParam());
  auto stream = std::make_shared<RequestStream>(1);
  writer.add(stream, token(7));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  RequestOutput out;
  EXPECT_FALSE(stream->try_next(out));
  writer.drain();
  EXPECT_TRUE(stream->try_next(out));
}

INSTANTIATE_TEST_SUITE_P(Modes, OutputWriterModes, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "threaded" : "in_place"; });

}  // namespace
}  // namespace llmserve
