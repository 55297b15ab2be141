#include "bench/load/protocol.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace llmserve::bench::load {
namespace {

using nlohmann::json;

TEST(Protocol, PathsAndBodies) {
  LoadOptions o;
  o.model = "gpt2";
  Prompt p{"hello", 1, 8};
  EXPECT_EQ(request_path(Target::kCompletions, "gpt2"), "/v1/completions");
  EXPECT_EQ(request_path(Target::kGenerateStream, "gpt2"), "/v2/models/gpt2/generate_stream");
  auto c = json::parse(request_body(Target::kCompletions, p, o));
  EXPECT_EQ(c["prompt"], "hello");
  EXPECT_EQ(c["max_tokens"], 8);
  EXPECT_EQ(c["stream"], true);
  EXPECT_EQ(c["stream_options"]["include_usage"], true);
  EXPECT_EQ(c["ignore_eos"], true);
  auto chat = json::parse(request_body(Target::kChat, p, o));
  EXPECT_EQ(chat["messages"][0]["content"], "hello");
  auto g = json::parse(request_body(Target::kGenerateStream, p, o));
  EXPECT_EQ(g["text_input"], "hello");
  EXPECT_EQ(g["min_tokens"], 8);
  EXPECT_EQ(g["stream"], true);
  o.ignore_eos = false;
  o.extra_body = {{"top_k", 5}};
  auto g2 = json::parse(request_body(Target::kGenerate, p, o));
  EXPECT_FALSE(g2.contains("min_tokens"));
  EXPECT_FALSE(g2.contains("stream"));
  EXPECT_EQ(g2["top_k"], 5);
}

TEST(Protocol, OpenAIStreamUsesUsageAndDone) {
  RequestTrace t;
  const auto now = Clock::now();
  take_payload(Target::kCompletions, R"({"choices":[{"text":"a"}]})", now, t);
  take_payload(Target::kCompletions, R"({"choices":[{"text":""}]})", now, t);  // no text: no piece
  take_payload(Target::kCompletions, R"({"choices":[{"text":"b","finish_reason":"length"}]})", now,
               t);
  take_payload(Target::kCompletions,
               R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}})", now, t);
  EXPECT_FALSE(t.is_complete);
  take_payload(Target::kCompletions, "[DONE]", now, t);
  EXPECT_TRUE(t.is_complete);
  EXPECT_TRUE(t.is_ok());
  EXPECT_EQ(t.piece_times.size(), 2u);
  EXPECT_EQ(t.num_output_tokens(), 3);
  EXPECT_EQ(t.num_input_tokens(), 5);
  EXPECT_EQ(t.text, "ab");
}

TEST(Protocol, ChatSkipsTheRoleOnlyChunk) {
  RequestTrace t;
  take_payload(Target::kChat, R"({"choices":[{"delta":{"role":"assistant","content":""}}]})",
               Clock::now(), t);
  EXPECT_TRUE(t.piece_times.empty());
  take_payload(Target::kChat, R"({"choices":[{"delta":{"content":"hi"}}]})", Clock::now(), t);
  EXPECT_EQ(t.piece_times.size(), 1u);
}

TEST(Protocol, TritonCountsLogprobEntries) {
  RequestTrace t;
  take_payload(Target::kGenerateStream, R"({"text_output":"a","output_log_probs":0.0})",
               Clock::now(), t);
  take_payload(Target::kGenerateStream, R"({"text_output":"bc","output_log_probs":[0.0,0.0]})",
               Clock::now(), t);
  take_payload(Target::kGenerateStream, R"({"text_output":"d"})", Clock::now(), t);
  EXPECT_EQ(t.num_output_tokens(), 4);
  RequestTrace u;
  take_payload(Target::kGenerate, R"({"text_output":"xyz","num_output_tokens":7})", Clock::now(),
               u);
  EXPECT_EQ(u.num_output_tokens(), 7);
}

TEST(Protocol, ErrorsByKind) {
  RequestTrace a;
  take_payload(Target::kGenerateStream, R"({"error":"boom"})", Clock::now(), a);
  EXPECT_EQ(a.error_kind, "stream_error");
  EXPECT_EQ(a.error_message, "boom");
  RequestTrace b;
  take_payload(Target::kCompletions, "not json", Clock::now(), b);
  EXPECT_EQ(b.error_kind, "bad_response");
  RequestTrace c;
  take_error_reply(503, R"({"error":{"message":"overloaded","type":"x"}})", c);
  EXPECT_EQ(c.error_kind, "http_503");
  EXPECT_EQ(c.error_message, "overloaded");
  RequestTrace d;
  take_error_reply(422, R"({"detail":"bad field"})", d);
  EXPECT_EQ(d.error_message, "bad field");
}

}  // namespace
}  // namespace llmserve::bench::load
