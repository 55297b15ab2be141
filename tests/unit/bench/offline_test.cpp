// bench offline's synthetic requests: without a guide every request decodes exactly
// --output-len tokens (eos ignored); with one (--guided-regex / --guided-json, compiled as the
// server compiles guided_regex) each stops where its document ends.
#include "bench/offline.h"

#include <filesystem>
#include <memory>

#include <gtest/gtest.h>

#include "server/structured_output.h"
#include "tokenizer/tokenizer.h"

namespace llmserve {
namespace {

const std::filesystem::path kDefault =
    std::filesystem::path(LLMSERVE_SOURCE_DIR) / "models/default";

TEST(OfflineBench, AGuideEndsEachRequestWithItsDocument) {
  EngineConfig config;
  config.model_dir = kDefault;
  config.num_kv_blocks = 64;
  Engine engine(config);
  bench::OfflineOptions o;
  o.num_requests = 3;
  o.num_warmup = 0;
  o.input_len = 8;
  o.output_len = 24;
  const auto free_text = bench::run_offline(engine, o);
  ASSERT_FALSE(free_text.empty());
  EXPECT_EQ(free_text[0].num_output_tokens, 3 * 24);

  auto tokenizer = Tokenizer::from_dir(kDefault);
  StructuredOutputs outputs(*tokenizer, engine.model_config().vocab_size,
                            engine.model_config().eos_token_ids);
  ASSERT_TRUE(
      outputs.compile(GuideKind::kRegex, "[0-9]{3}-[0-9]{4}", "--guided-regex", o.grammar).is_ok());
  const auto guided = bench::run_offline(engine, o);
  ASSERT_FALSE(guided.empty());
  EXPECT_EQ(guided[0].num_errors, 0);
  // Eight characters, then eos: at most 9 tokens a request (fewer when a token holds digits).
  EXPECT_GE(guided[0].num_output_tokens, 3 * 2);
  EXPECT_LE(guided[0].num_output_tokens, 3 * 9);
}

}  // namespace
}  // namespace llmserve
