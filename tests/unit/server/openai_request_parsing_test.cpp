// openai::parse_request without a server: the default model's tokenizer and chat template, the
// prompt's byte cap (checked before the tokenizer runs) and a few of the fields around it.
#include "server/openai/request_parsing.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

namespace llmserve::openai {
namespace {

using nlohmann::json;

const std::filesystem::path kDefault =
    std::filesystem::path(LLMSERVE_SOURCE_DIR) / "models/default";

class OpenAIRequestParsing : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tokenizer_ = Tokenizer::from_dir(kDefault).release();
    chat_template_ = new ChatTemplate(ChatTemplate::compile(tokenizer_->chat_template()));
  }
  static void TearDownTestSuite() {
    delete chat_template_;
    delete tokenizer_;
  }

  static ParseContext context(int64_t max_prompt_bytes = 1 << 20) {
    return ParseContext{.tokenizer = *tokenizer_,
                        .chat_template = chat_template_,
                        .bos_token = "<|endoftext|>",
                        .eos_token = "<|endoftext|>",
                        .max_model_len = 256,
                        .max_prompt_bytes = max_prompt_bytes};
  }

  // The ApiError parse_request throws; fails the test when it accepts the body.
  static ApiError refusal(const json& body, Api api, const ParseContext& ctx) {
    ParsedRequest parsed;
    try {
      parse_request(body, api, ctx, parsed);
    } catch (const ApiError& e) {
      return e;
    }
    ADD_FAILURE() << "accepted: " << body.dump();
    return {};
  }

  static inline Tokenizer* tokenizer_ = nullptr;
  static inline ChatTemplate* chat_template_ = nullptr;
};

TEST_F(OpenAIRequestParsing, CompletionsTextPromptIsTokenized) {
  ParsedRequest parsed;
  parse_request(json{{"prompt", "ROMEO:"}, {"max_tokens", 8}, {"logprobs", 2}}, Api::kCompletions,
                context(), parsed);
  const auto& ids = std::get<std::vector<int32_t>>(parsed.request.prompt);
  EXPECT_EQ(ids, tokenizer_->encode("ROMEO:", EncodeOptions{}));
  EXPECT_EQ(parsed.prompt_len, static_cast<int32_t>(ids.size()));
  EXPECT_EQ(parsed.request.sampling.max_tokens, 8);
  EXPECT_TRUE(parsed.has_logprobs);
  EXPECT_FALSE(parsed.request.add_special_tokens);
}

TEST_F(OpenAIRequestParsing, ChatRendersMessagesToolsAndToolCalls) {
  const json body = json::parse(R"({
    "messages": [
      {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
      {"role": "user", "content": "Who art thou?"},
      {"role": "assistant", "content": null,
       "tool_calls": [{"id": "c1", "type": "function",
                       "function": {"name": "f", "arguments": "{\"a\": [1, {\"b\": 2}]}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "3"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "stream": true, "stream_options": {"include_usage": true}})");
  EXPECT_EQ(render_chat(body, context()),
            "SYSTEM:\nBe brief.\n\nUSER:\nWho art thou?\n\nASSISTANT:\n\n\nTOOL:\n3\n\n"
            "ASSISTANT:\n");
  ParsedRequest parsed;
  parse_request(body, Api::kChat, context(), parsed);
  EXPECT_TRUE(parsed.is_stream);
  EXPECT_TRUE(parsed.include_usage);
  // Chat's default max_tokens is the room left in max_model_len.
  EXPECT_EQ(parsed.request.sampling.max_tokens, 256 - parsed.prompt_len);
}

// A text prompt longer than max_prompt_bytes is a 400 naming the param, decided by its size alone:
// with a cap of 16 bytes a 17-byte prompt of a few tokens (far below max_model_len) is refused.
TEST_F(OpenAIRequestParsing, CompletionsPromptOverByteCapRefusedBeforeTokenizing) {
  const std::string prompt(17, 'a');
  const ApiError e = refusal(json{{"prompt", prompt}}, Api::kCompletions, context(16));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "prompt");
  EXPECT_EQ(e.message,
            "the prompt is 17 bytes, more than max_model_len (256 tokens) can hold (16 bytes at "
            "most)");
  // The same prompt as an array of one string; and exactly the cap is accepted.
  EXPECT_EQ(refusal(json{{"prompt", json::array({prompt})}}, Api::kCompletions, context(16)).param,
            "prompt");
  ParsedRequest parsed;
  parse_request(json{{"prompt", prompt}}, Api::kCompletions, context(17), parsed);
  EXPECT_GT(parsed.prompt_len, 0);
}

TEST_F(OpenAIRequestParsing, ChatPromptOverByteCapRefusedBeforeTokenizing) {
  const json body = {{"messages", json::array({{{"role", "user"}, {"content", "Who art thou?"}}})}};
  const std::string rendered = render_chat(body, context());
  const ApiError e = refusal(body, Api::kChat, context(static_cast<int64_t>(rendered.size()) - 1));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "messages");
  EXPECT_NE(e.message.find(std::to_string(rendered.size()) + " bytes"), std::string::npos)
      << e.message;
  ParsedRequest parsed;
  parse_request(body, Api::kChat, context(static_cast<int64_t>(rendered.size())), parsed);
  EXPECT_GT(parsed.prompt_len, 0);
}

// Under the byte cap, a prompt of too many tokens is still refused by its token count.
TEST_F(OpenAIRequestParsing, PromptOfTooManyTokensRefusedByCount) {
  std::string prompt;
  for (int i = 0; i < 300; ++i) prompt += " the";
  const ApiError e = refusal(json{{"prompt", prompt}}, Api::kCompletions, context());
  EXPECT_EQ(e.param, "prompt");
  EXPECT_NE(e.message.find("maximum context length"), std::string::npos) << e.message;
}

// Token-id prompts have no text to cap; their length is checked in tokens.
TEST_F(OpenAIRequestParsing, TokenIdPromptIsNotByteCapped) {
  ParsedRequest parsed;
  parse_request(json{{"prompt", json::array({464, 995, 318, 257})}, {"echo", true}},
                Api::kCompletions, context(1), parsed);
  EXPECT_EQ(std::get<std::vector<int32_t>>(parsed.request.prompt).size(), 4u);
  EXPECT_FALSE(parsed.echo_text.empty());
}

TEST_F(OpenAIRequestParsing, EchoWithLogprobsScoresThePrompt) {
  ParsedRequest parsed;
  parse_request(json{{"prompt", "ROMEO:"}, {"echo", true}, {"logprobs", 2}, {"max_tokens", 3}},
                Api::kCompletions, context(), parsed);
  EXPECT_TRUE(parsed.is_echo);
  EXPECT_TRUE(parsed.has_logprobs);
  EXPECT_FALSE(parsed.is_scoring);
  EXPECT_EQ(parsed.request.sampling.logprobs, 2);
  EXPECT_EQ(parsed.request.sampling.prompt_logprobs, 2);
  EXPECT_EQ(parsed.prompt_logprobs, -1);  // no vLLM prompt_logprobs field in the reply
  ParsedRequest plain;
  parse_request(json{{"prompt", "ROMEO:"}, {"logprobs", 2}}, Api::kCompletions, context(), plain);
  EXPECT_EQ(plain.request.sampling.prompt_logprobs, -1) << "no echo: no prompt scores";
}

TEST_F(OpenAIRequestParsing, MaxTokensZeroOnlyWithEcho) {
  // A scoring request (lm-eval-harness): the engine samples one token, which the reply drops.
  ParsedRequest parsed;
  parse_request(json{{"prompt", "ROMEO:"}, {"echo", true}, {"logprobs", 0}, {"max_tokens", 0}},
                Api::kCompletions, context(), parsed);
  EXPECT_TRUE(parsed.is_scoring);
  EXPECT_EQ(parsed.request.sampling.max_tokens, 1);
  EXPECT_EQ(parsed.request.sampling.prompt_logprobs, 0);
  ApiError e = refusal(json{{"prompt", "x"}, {"max_tokens", 0}}, Api::kCompletions, context());
  EXPECT_EQ(e.param, "max_tokens");
  EXPECT_NE(e.message.find("0 only with 'echo'"), std::string::npos) << e.message;
  e = refusal(json{{"prompt", "x"}, {"echo", true}, {"max_tokens", -1}}, Api::kCompletions,
              context());
  EXPECT_EQ(e.param, "max_tokens");
  e = refusal(json{{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})},
                   {"echo", true},
                   {"max_tokens", 0}},
              Api::kChat, context());
  EXPECT_EQ(e.param, "max_tokens") << "chat has no echo";
  e = refusal(json{{"prompt", "x"}, {"echo", true}, {"max_tokens", 0}, {"min_tokens", 1}},
              Api::kCompletions, context());
  EXPECT_EQ(e.param, "min_tokens");
}

TEST_F(OpenAIRequestParsing, PromptLogprobsRangeAndStream) {
  for (Api api : {Api::kCompletions, Api::kChat}) {
    json body = api == Api::kChat
                    ? json{{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}}
                    : json{{"prompt", "ROMEO:"}};
    body["prompt_logprobs"] = 20;
    ParsedRequest parsed;
    parse_request(body, api, context(), parsed);
    EXPECT_EQ(parsed.prompt_logprobs, 20);
    EXPECT_EQ(parsed.request.sampling.prompt_logprobs, 20);
    for (const json& bad_value : {json(21), json(-1), json(1.5), json("2")}) {
      body["prompt_logprobs"] = bad_value;
      EXPECT_EQ(refusal(body, api, context()).param, "prompt_logprobs") << bad_value;
    }
    body["prompt_logprobs"] = 1;
    body["stream"] = true;
    const ApiError e = refusal(body, api, context());
    EXPECT_EQ(e.param, "prompt_logprobs");
    EXPECT_NE(e.message.find("stream"), std::string::npos) << e.message;
  }
  // With echo + logprobs the engine scores the larger count; each part of the reply cuts its own.
  ParsedRequest both;
  parse_request(json{{"prompt", "ROMEO:"}, {"echo", true}, {"logprobs", 4}, {"prompt_logprobs", 1}},
                Api::kCompletions, context(), both);
  EXPECT_EQ(both.request.sampling.prompt_logprobs, 4);
  EXPECT_EQ(both.prompt_logprobs, 1);
  // Structured output leaves the prompt alone: prompt logprobs combine with a guide.
  ParsedRequest guided;
  parse_request(json{{"prompt", "ROMEO:"}, {"prompt_logprobs", 2}, {"guided_regex", "[ab]+"}},
                Api::kCompletions, context(), guided);
  EXPECT_EQ(guided.request.sampling.prompt_logprobs, 2);
}

TEST_F(OpenAIRequestParsing, SpeculativeOptOut) {
  ParsedRequest parsed;
  parse_request(json{{"prompt", "x"}, {"speculative", false}}, Api::kCompletions, context(),
                parsed);
  EXPECT_FALSE(parsed.request.speculative);
  ParsedRequest unset;
  parse_request(json{{"prompt", "x"}}, Api::kCompletions, context(), unset);
  EXPECT_TRUE(unset.request.speculative);
  EXPECT_EQ(
      refusal(json{{"prompt", "x"}, {"speculative", "no"}}, Api::kCompletions, context()).param,
      "speculative");
}

TEST_F(OpenAIRequestParsing, PriorityIsVllmsLowerFirst) {
  ParsedRequest parsed;
  parse_request(json{{"prompt", "ROMEO:"}, {"priority", -3}}, Api::kCompletions, context(), parsed);
  EXPECT_EQ(parsed.request.priority, -3);
  ParsedRequest unset;
  parse_request(json{{"prompt", "ROMEO:"}}, Api::kCompletions, context(), unset);
  EXPECT_EQ(unset.request.priority, 0);
  EXPECT_EQ(
      refusal(json{{"prompt", "x"}, {"priority", "high"}}, Api::kCompletions, context()).param,
      "priority");
  EXPECT_EQ(refusal(json{{"prompt", "x"}, {"priority", 1e12}}, Api::kCompletions, context()).param,
            "priority");
}

TEST_F(OpenAIRequestParsing, BadWordsAreCollectedForTheService) {
  ParsedRequest parsed;
  parse_request(json{{"prompt", "ROMEO:"}, {"bad_words", {"man", " the"}}}, Api::kCompletions,
                context(), parsed);
  EXPECT_EQ(parsed.request.bad_words, (std::vector<std::string>{"man", " the"}));
  for (const json& bad : {json("man"), json({1, 2}), json({"ok", ""}), json({"  "})}) {
    EXPECT_EQ(
        refusal(json{{"prompt", "x"}, {"bad_words", bad}}, Api::kCompletions, context()).param,
        "bad_words")
        << bad.dump();
  }
}

}  // namespace
}  // namespace llmserve::openai
