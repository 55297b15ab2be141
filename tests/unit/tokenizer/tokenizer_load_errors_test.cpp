// Loading failures: each names the file and field and carries the right status code.
#include <gtest/gtest.h>

#include "common/status.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace llmserve {
namespace {

using testing::BpeSpec;
using testing::TempDir;

// Loads dir and expects an Error with code whose message contains every needle.
void expect_load_error(const TempDir& dir, StatusCode code, std::vector<std::string> needles) {
  try {
    Tokenizer::from_dir(dir.path());
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& needle : needles) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << "'" << needle << "' not in: " << e.what();
    }
  }
}

TEST(TokenizerLoadErrorsTest, MissingDirectoryAndFiles) {
  try {
    Tokenizer::from_dir("/nonexistent/llmserve/model");
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/llmserve/model"), std::string::npos);
  }
  TempDir empty;
  expect_load_error(empty, StatusCode::kNotFound, {"tokenizer.json", "vocab.json"});
  TempDir half;
  half.write("vocab.json", "{}");
  expect_load_error(half, StatusCode::kNotFound, {"merges.txt"});
}

TEST(TokenizerLoadErrorsTest, MalformedJson) {
  TempDir dir;
  dir.write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {)");
  expect_load_error(dir, StatusCode::kInvalidArgument, {"tokenizer.json", "invalid JSON"});
  TempDir config;
  BpeSpec{}.write(config);
  config.write("tokenizer_config.json", "not json");
  expect_load_error(config, StatusCode::kInvalidArgument, {"tokenizer_config.json"});
}

TEST(TokenizerLoadErrorsTest, WrongFieldTypes) {
  TempDir dir;
  auto json = BpeSpec{}.to_json();
  json["model"]["vocab"]["\xC4\xA0"] = "thirty-two";
  dir.write("tokenizer.json", json.dump());
  expect_load_error(dir, StatusCode::kInvalidArgument, {"model.vocab", "expected an integer"});
  json = BpeSpec{}.to_json();
  json["model"]["merges"] = nlohmann::json::array({"a b c"});
  dir.write("tokenizer.json", json.dump());
  expect_load_error(dir, StatusCode::kInvalidArgument, {"model.merges[0]"});
  json = BpeSpec{}.to_json();
  json["model"]["vocab"]["huge"] = 4294967296;  // must not wrap to 0
  dir.write("tokenizer.json", json.dump());
  expect_load_error(dir, StatusCode::kInvalidArgument, {"model.vocab['huge']", "outside"});
  json = BpeSpec{}.to_json();
  json["added_tokens"] = nlohmann::json::array({{{"content", "<x>"}}});
  dir.write("tokenizer.json", json.dump());
  expect_load_error(dir, StatusCode::kInvalidArgument, {"added_tokens[0].id", "missing"});
}

TEST(TokenizerLoadErrorsTest, UnsupportedComponentsAreNamed) {
  struct Case {
    std::string pointer;
    std::string value;  // JSON
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"/model/type", R"("WordPiece")", "model.type"},
      {"/model/dropout", "0.1", "model.dropout"},
      {"/normalizer", R"({"type": "Precompiled", "precompiled_charsmap": ""})",
       "normalizer.type: normalizer 'Precompiled'"},
      {"/normalizer",
       R"({"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "BertNormalizer"}]})",
       "normalizer.normalizers[1].type"},
      {"/pre_tokenizer", R"({"type": "Whitespace"})", "pre_tokenizer.type"},
      {"/pre_tokenizer", R"({"type": "Sequence", "pretokenizers": [
          {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed", "invert": false},
          {"type": "ByteLevel"}]})",
       "pre_tokenizer.pretokenizers[0].behavior"},
      {"/decoder", R"({"type": "WordPiece"})", "decoder.type"},
      {"/decoder", "null", "decoder: null"},
      {"/decoder",
       R"({"type": "Sequence", "decoders": [{"type": "Fuse"}, {"type": "ByteFallback"}]})",
       "decoder.decoders[1]: decoder 'ByteFallback' after Fuse"},
      {"/decoder", R"({"type": "Sequence", "decoders": [{"type": "Fuse"},
          {"type": "Replace", "pattern": {"Regex": "a+"}, "content": "b"}]})",
       "decoder.decoders[1]: decoder 'Replace' with a Regex pattern after Fuse"},
      {"/decoder",
       R"({"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "ByteLevel"}]})",
       "decoder.decoders[1]: decoder 'ByteLevel' is only supported as the first"},
      {"/post_processor", R"({"type": "Unknown"})", "post_processor.type"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.pointer + " = " + c.value);
    TempDir dir;
    auto json = BpeSpec{}.to_json();
    json[nlohmann::json::json_pointer(c.pointer)] = nlohmann::json::parse(c.value);
    dir.write("tokenizer.json", json.dump());
    expect_load_error(dir, StatusCode::kUnimplemented, {"tokenizer.json", c.needle});
  }
}

TEST(TokenizerLoadErrorsTest, BadRegexAndBadMerges) {
  TempDir dir;
  auto json = BpeSpec{}.to_json();
  json["pre_tokenizer"] = nlohmann::json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "(?<bad"}, "behavior": "Isolated"},
      {"type": "ByteLevel", "use_regex": false}]})");
  dir.write("tokenizer.json", json.dump());
  expect_load_error(dir, StatusCode::kInvalidArgument,
                    {"pre_tokenizer.pretokenizers[0].pattern.Regex"});
  json = BpeSpec{}.to_json();
  json["model"]["merges"] = nlohmann::json::array({"a b"});  // "ab" is not in the vocabulary
  dir.write("tokenizer.json", json.dump());
  expect_load_error(dir, StatusCode::kInvalidArgument, {"model", "merge 0", "'ab'"});

  TempDir legacy;
  legacy.write("vocab.json", R"({"a": 0, "b": 1, "ab": 2})");
  legacy.write("merges.txt", "#version: 0.2\na b\nab\n");
  expect_load_error(legacy, StatusCode::kInvalidArgument, {"merges.txt:3"});
}

TEST(TokenizerLoadErrorsTest, ConfigTokensMustExist) {
  TempDir dir;
  BpeSpec{}.write(dir);
  dir.write("tokenizer_config.json", R"({"eos_token": "<|im_end|>"})");
  expect_load_error(dir, StatusCode::kInvalidArgument,
                    {"tokenizer_config.json", "eos_token", "<|im_end|>"});
  dir.write("tokenizer_config.json", R"({"chat_template": 7})");
  expect_load_error(dir, StatusCode::kInvalidArgument, {"chat_template"});
}

}  // namespace
}  // namespace llmserve
