#include "server/kserve/request_parsing.h"

#include "server/http/json_body.h"

#include <gtest/gtest.h>

namespace llmserve::kserve {
namespace {

using nlohmann::json;

Status parse_generate(const std::string& body, ParsedRequest& parsed) {
  json j;
  if (Status s = parse_json_body(body, j); !s.is_ok()) return s;
  InputValues inputs;
  if (Status s = parse_generate_inputs(j, inputs, parsed); !s.is_ok()) return s;
  return build_generate_request(inputs, parsed);
}

Status parse_infer(const std::string& body, ParsedRequest& parsed) {
  json j;
  if (Status s = parse_json_body(body, j); !s.is_ok()) return s;
  InputValues inputs;
  if (Status s = parse_infer_inputs(j, inputs, parsed); !s.is_ok()) return s;
  return build_generate_request(inputs, parsed);
}

TEST(GenerateParsing, SeedClientBody) {
  ParsedRequest p;
  ASSERT_TRUE(parse_generate(R"({"text_input": "What is NVIDIA?", "max_tokens": 256})", p).is_ok());
  EXPECT_EQ(std::get<std::string>(p.request.prompt), "What is NVIDIA?");
  EXPECT_EQ(p.request.sampling.max_tokens, 256);
  EXPECT_FALSE(p.is_stream);
  EXPECT_FALSE(p.has_echo);
}

TEST(GenerateParsing, SamplingKeysTopLevelAndNested) {
  ParsedRequest p;
  ASSERT_TRUE(
      parse_generate(
          R"({"id": "x7", "text_input": "a", "max_tokens": 5, "temperature": 0.5, "top_k": 40,
      "parameters": {"top_p": 0.9, "seed": 11, "stop_words": ["\n\n", ""], "repetition_penalty": 1.1,
                     "presence_penalty": 0.2, "frequency_penalty": -0.3, "min_length": 2, "end_id": 50256,
                     "return_log_probs": true, "exclude_input_in_output": false, "stream": true,
                     "beam_width": 1, "unrelated": {"a": 1}}})",
          p)
          .is_ok());
  const SamplingParams& sp = p.request.sampling;
  EXPECT_EQ(p.id, "x7");
  EXPECT_FLOAT_EQ(sp.temperature, 0.5f);
  EXPECT_EQ(sp.top_k, 40);
  EXPECT_FLOAT_EQ(sp.top_p, 0.9f);
  EXPECT_EQ(sp.seed, 11u);
  EXPECT_EQ(sp.stop, std::vector<std::string>{"\n\n"});
  EXPECT_FLOAT_EQ(sp.repetition_penalty, 1.1f);
  EXPECT_FLOAT_EQ(sp.presence_penalty, 0.2f);
  EXPECT_FLOAT_EQ(sp.frequency_penalty, -0.3f);
  EXPECT_EQ(sp.min_tokens, 2);
  EXPECT_EQ(sp.stop_token_ids, std::vector<int32_t>{50256});
  EXPECT_EQ(sp.logprobs, 0);
  EXPECT_TRUE(p.has_logprobs);
  EXPECT_TRUE(p.has_echo);
  EXPECT_TRUE(p.is_stream);
}

TEST(GenerateParsing, ArraysOfOneElementAreScalars) {
  ParsedRequest p;
  ASSERT_TRUE(parse_generate(R"({"text_input": ["hi"], "max_tokens": [[7]]})", p).is_ok());
  EXPECT_EQ(std::get<std::string>(p.request.prompt), "hi");
  EXPECT_EQ(p.request.sampling.max_tokens, 7);
}

void expect_error(const std::string& body, const std::string& fragment) {
  ParsedRequest p;
  Status s = parse_generate(body, p);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << body;
  EXPECT_NE(s.message().find(fragment), std::string::npos) << s.message();
}

TEST(GenerateParsing, ErrorsNameTheField) {
  expect_error("", "empty");
  expect_error("{\"text_input\": ", "malformed JSON");
  // nlohmann throws out_of_range (not parse_error) for numbers beyond double: found by fuzzing.
  expect_error("{\"text_input\": \"a\", \"max_tokens\": 1e999}", "malformed JSON");
  expect_error("[1, 2]", "JSON object");
  // Nesting: ~52,000 levels once overflowed an I/O thread's stack in the recursive walks after the
  // parse; anything past kMaxJsonDepth is refused by the parse itself, and kMaxJsonDepth is fine.
  const auto nested = [](int depth, const std::string& open, const std::string& close) {
    std::string v;
    for (int i = 0; i < depth; ++i) v += open;
    v += "\"x\"";
    for (int i = 0; i < depth; ++i) v += close;
    return v;
  };
  expect_error("{\"text_input\": " + nested(52000, "[", "]") + "}", "more than 128 levels deep");
  expect_error("{\"text_input\": \"a\", \"stop_words\": " + nested(200, "{\"a\":", "}") + "}",
               "levels deep");
  json ok;
  EXPECT_TRUE(parse_json_body("{\"a\": " + nested(kMaxJsonDepth - 1, "[", "]") + "}", ok).is_ok());
  expect_error("{\"text_input\": \"\xff\"}", "UTF-8");
  expect_error(R"({"max_tokens": 3})", "'text_input' is required");
  expect_error(R"({"text_input": ["a", "b"]})", "text_input");
  expect_error(R"({"text_input": "a", "max_tokens": "ten"})", "'max_tokens' expects INT32");
  expect_error(R"({"text_input": "a", "max_tokens": 1.5})", "max_tokens");
  expect_error(R"({"text_input": "a", "max_tokens": 4294967296})", "max_tokens");
  expect_error(R"({"text_input": "a", "temperature": "hot"})", "'temperature' expects FP32");
  expect_error(R"({"text_input": "a", "seed": -1})", "'seed' expects UINT64");
  expect_error(R"({"text_input": "a", "stream": "yes"})", "'stream' expects BOOL");
  expect_error(R"({"text_input": "a", "top_k": [1, 2]})", "'top_k' must have exactly 1 element");
  expect_error(R"({"text_input": "a", "max_tokens": 3, "parameters": {"max_tokens": 4}})",
               "max_tokens");
  expect_error(R"({"text_input": "a", "parameters": 3})", "parameters");
  expect_error(R"({"text_input": "a", "bad_words": [1]})", "bad_words");
  expect_error(R"({"text_input": "a", "beam_width": 4})", "beam_width");
  expect_error(R"({"text_input": "a", "id": 5})", "'id'");
  expect_error(R"({"text_input": {"a": 1}})", "text_input");
}

TEST(InferParsing, TensorsMapOntoTheRequest) {
  ParsedRequest p;
  ASSERT_TRUE(parse_infer(R"({"id": "r", "inputs": [
      {"name": "text_input", "datatype": "BYTES", "shape": [1, 1], "data": [["hello"]]},
      {"name": "max_tokens", "datatype": "INT32", "shape": [1, 1], "data": [9]},
      {"name": "stop_words", "datatype": "BYTES", "shape": [1, 2], "data": ["a", "b"]}],
      "outputs": [{"name": "text_output"}]})",
                          p)
                  .is_ok());
  EXPECT_EQ(std::get<std::string>(p.request.prompt), "hello");
  EXPECT_EQ(p.request.sampling.max_tokens, 9);
  EXPECT_EQ(p.request.sampling.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p.outputs, std::vector<std::string>{"text_output"});
  EXPECT_EQ(p.id, "r");
}

void expect_infer_error(const std::string& body, const std::string& fragment) {
  ParsedRequest p;
  Status s = parse_infer(body, p);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << body;
  EXPECT_NE(s.message().find(fragment), std::string::npos) << s.message();
}

TEST(InferParsing, ShapeAndTypeErrorsNameTheTensor) {
  expect_infer_error(R"({})", "'inputs'");
  expect_infer_error(
      R"({"inputs": [{"name": "nope", "datatype": "BYTES", "shape": [1], "data": ["a"]}]})",
      "'nope'");
  expect_infer_error(
      R"({"inputs": [{"name": "text_input", "datatype": "INT32", "shape": [1], "data": [1]}]})",
      "input 'text_input' has datatype INT32, expected BYTES");
  expect_infer_error(
      R"({"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [2], "data": ["a"]}]})",
      "input 'text_input' has 1 elements");
  expect_infer_error(
      R"({"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [-1], "data": ["a"]}]})",
      "invalid shape");
  expect_infer_error(
      R"({"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1], "data": [3]}]})",
      "'text_input' expects BYTES");
  expect_infer_error(R"({"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1]}]})",
                     "no 'data'");
  expect_infer_error(
      R"({"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1], "data": ["a"]},
                                    {"name": "text_input", "datatype": "BYTES", "shape": [1], "data": ["a"]}]})",
      "given twice");
}

TEST(GenerateParsing, SpeculativeOptOut) {
  ParsedRequest p;
  ASSERT_TRUE(parse_generate(R"({"text_input": "x", "speculative": false})", p).is_ok());
  EXPECT_FALSE(p.request.speculative);
  ParsedRequest defaults;
  ASSERT_TRUE(parse_generate(R"({"text_input": "x"})", defaults).is_ok());
  EXPECT_TRUE(defaults.request.speculative);
  ParsedRequest bad;
  EXPECT_EQ(parse_generate(R"({"text_input": "x", "speculative": 3})", bad).code(),
            StatusCode::kInvalidArgument);
}

TEST(GenerateParsing, TritonPriorityAndTimeout) {
  ParsedRequest p;
  ASSERT_TRUE(
      parse_generate(R"({"text_input": "x", "parameters": {"priority": 1, "timeout": 2500}})", p)
          .is_ok());
  // Level 1 is Triton's highest: ahead of requests without a priority (0) and of level 2.
  EXPECT_LT(p.request.priority, 0);
  ParsedRequest level2;
  ASSERT_TRUE(parse_generate(R"({"text_input": "x", "priority": 2})", level2).is_ok());
  EXPECT_LT(p.request.priority, level2.request.priority);
  EXPECT_LT(level2.request.priority, 0);
  ASSERT_TRUE(p.request.queue_deadline.has_value());
  EXPECT_EQ(*p.request.queue_deadline - p.request.arrival, std::chrono::microseconds(2500));

  ParsedRequest defaults;
  ASSERT_TRUE(parse_generate(R"({"text_input": "x", "parameters": {"priority": 0, "timeout": 0}})",
                             defaults)
                  .is_ok());
  EXPECT_EQ(defaults.request.priority, 0);
  EXPECT_FALSE(defaults.request.queue_deadline.has_value());

  for (const char* body : {R"({"text_input": "x", "parameters": {"priority": -1}})",
                           R"({"text_input": "x", "parameters": {"priority": "high"}})",
                           R"({"text_input": "x", "parameters": {"priority": 1000001}})",
                           R"({"text_input": "x", "parameters": {"timeout": 1.5}})",
                           R"({"text_input": "x", "timeout": 100000000000})"}) {
    ParsedRequest bad;
    const Status s = parse_generate(body, bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << body;
    EXPECT_NE(s.message().find("parameter '"), std::string::npos) << s.message();
  }
}

TEST(InferParsing, TritonPriorityAndTimeoutParameters) {
  ParsedRequest p;
  ASSERT_TRUE(parse_infer(R"({"parameters": {"priority": 3, "timeout": 10},
      "inputs": [{"name": "text_input", "shape": [1, 1], "datatype": "BYTES", "data": ["x"]}]})",
                          p)
                  .is_ok());
  EXPECT_EQ(p.request.priority, kTritonPriorityBase + 3);
  EXPECT_EQ(*p.request.queue_deadline - p.request.arrival, std::chrono::microseconds(10));
}

TEST(GenerateParsing, BadWordsInput) {
  ParsedRequest p;
  ASSERT_TRUE(
      parse_generate(R"({"text_input": "x", "bad_words": ["man", "", "the king"]})", p).is_ok());
  EXPECT_EQ(p.request.bad_words, (std::vector<std::string>{"man", "the king"}));
}

}  // namespace
}  // namespace llmserve::kserve
