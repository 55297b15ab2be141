// The binary tensor data extension (docs/server.md): body splitting, element codecs, /infer inputs
// taken from the bytes after the JSON header, and binary outputs. Bytes are written out by hand
// (little-endian) so the tests check the wire format, not our encoder against our decoder.
#include "server/kserve/binary_tensors.h"

#include <gtest/gtest.h>

#include "server/kserve/request_parsing.h"

namespace llmserve::kserve {
namespace {

using nlohmann::json;
using namespace std::string_literals;

std::string le32(uint32_t v) {
  return {static_cast<char>(v & 0xff), static_cast<char>((v >> 8) & 0xff),
          static_cast<char>((v >> 16) & 0xff), static_cast<char>((v >> 24) & 0xff)};
}

std::string bytes_element(const std::string& s) {
  return le32(static_cast<uint32_t>(s.size())) + s;
}

// Parses a whole /infer body as the frontend does: split at `header_length`, JSON, inputs, request.
Status parse(const std::string& json_text, const std::string& binary, ParsedRequest& parsed,
             std::optional<std::string> header_length = std::nullopt) {
  const std::string body = json_text + binary;
  if (!header_length) header_length = std::to_string(json_text.size());
  InferBody parts;
  if (Status s = split_infer_body(body, header_length, parts); !s.is_ok()) return s;
  json j;
  if (Status s = parse_json_body(std::string(parts.json), j); !s.is_ok()) return s;
  InputValues inputs;
  if (Status s = parse_infer_inputs(j, inputs, parsed, parts.binary); !s.is_ok()) return s;
  return build_generate_request(inputs, parsed);
}

const std::string kTextAndMaxTokens = R"({"inputs": [
  {"name": "text_input", "shape": [1, 1], "datatype": "BYTES", "parameters": {"binary_data_size": 10}},
  {"name": "max_tokens", "shape": [1, 1], "datatype": "INT32", "parameters": {"binary_data_size": 4}},
  {"name": "temperature", "shape": [1, 1], "datatype": "FP32", "data": [0.25]}]})";

TEST(BinaryTensors, SplitsAtTheHeaderLength) {
  InferBody parts;
  ASSERT_TRUE(split_infer_body("{}abc", std::nullopt, parts).is_ok());
  EXPECT_EQ(parts.json, "{}abc");
  EXPECT_TRUE(parts.binary.empty());
  ASSERT_TRUE(split_infer_body("{}abc", "2", parts).is_ok());
  EXPECT_EQ(parts.json, "{}");
  EXPECT_EQ(parts.binary, "abc");
  ASSERT_TRUE(split_infer_body("{}", "2", parts).is_ok());
  EXPECT_TRUE(parts.binary.empty());
}

TEST(BinaryTensors, BadHeaderLengthNamesTheHeader) {
  InferBody parts;
  for (const char* value : {"", "-1", "12x", "0x10", "99999999999999999999999"}) {
    Status s = split_infer_body("{}", value, parts);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << value;
    EXPECT_NE(s.message().find("Inference-Header-Content-Length"), std::string::npos)
        << s.message();
  }
  Status s = split_infer_body("{}", "3", parts);
  EXPECT_NE(s.message().find("is 3 but the request body has only 2 bytes"), std::string::npos)
      << s.message();
  s = split_infer_body("abc", "0", parts);  // a raw binary request
  EXPECT_NE(s.message().find("raw binary request"), std::string::npos) << s.message();
}

TEST(BinaryTensors, DecodesEveryDatatypeLittleEndian) {
  std::vector<json> v;
  ASSERT_TRUE(
      decode_binary_tensor("x", DataType::kInt32, le32(0xfffffffe) + le32(7), 2, v).is_ok());
  EXPECT_EQ(v, (std::vector<json>{-2, 7}));
  v.clear();
  ASSERT_TRUE(decode_binary_tensor("x", DataType::kFp32, le32(0x3e800000), 1, v).is_ok());  // 0.25f
  EXPECT_EQ(v[0].get<float>(), 0.25f);
  v.clear();
  ASSERT_TRUE(decode_binary_tensor("x", DataType::kUint64, le32(5) + le32(1), 1, v).is_ok());
  EXPECT_EQ(v[0].get<uint64_t>(), (1ull << 32) + 5);
  v.clear();
  ASSERT_TRUE(decode_binary_tensor("x", DataType::kBool, "\x01\x00"s, 2, v).is_ok());
  EXPECT_EQ(v, (std::vector<json>{true, false}));
  v.clear();
  ASSERT_TRUE(
      decode_binary_tensor("x", DataType::kBytes, bytes_element("ab") + bytes_element(""), 2, v)
          .is_ok());
  EXPECT_EQ(v, (std::vector<json>{"ab", ""}));
}

TEST(BinaryTensors, DecodeErrorsNameTheInput) {
  std::vector<json> v;
  auto message = [&](DataType t, const std::string& bytes, int64_t n) {
    v.clear();
    Status s = decode_binary_tensor("top_k", t, bytes, n, v);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("'top_k'"), std::string::npos) << s.message();
    return s.message();
  };
  EXPECT_NE(message(DataType::kInt32, "abc", 1).find("binary_data_size is 3"), std::string::npos);
  EXPECT_NE(message(DataType::kInt32, le32(1), 2).find("2 INT32 elements of 4 bytes"),
            std::string::npos);
  EXPECT_NE(message(DataType::kBool, "\x02", 1).find("expected 0 or 1"), std::string::npos);
  EXPECT_NE(message(DataType::kFp32, le32(0x7f800000), 1).find("not finite"),
            std::string::npos);  // +inf
  EXPECT_NE(message(DataType::kBytes, "\x05\x00"s, 1).find("truncated"), std::string::npos);
  EXPECT_NE(message(DataType::kBytes, le32(9) + "abc", 1).find("9 bytes long"), std::string::npos);
  EXPECT_NE(message(DataType::kBytes, bytes_element("a") + bytes_element("b"), 1)
                .find("2 BYTES elements"),
            std::string::npos);
  EXPECT_NE(message(DataType::kBytes, bytes_element("\xff\xfe"), 1).find("not valid UTF-8"),
            std::string::npos);
}

TEST(BinaryTensors, EncodesAsTheWireFormat) {
  std::string out;
  encode_binary_tensor(DataType::kBytes, json::array({"hi", ""}), out);
  EXPECT_EQ(out, bytes_element("hi") + bytes_element(""));
  out.clear();
  encode_binary_tensor(DataType::kInt32, json::array({-2}), out);
  EXPECT_EQ(out, le32(0xfffffffe));
  out.clear();
  encode_binary_tensor(DataType::kFp32, json::array({0.25}), out);
  EXPECT_EQ(out, le32(0x3e800000));
  out.clear();
  encode_binary_tensor(DataType::kBool, json::array({true, false}), out);
  EXPECT_EQ(out, "\x01\x00"s);
}

TEST(BinaryInfer, InputsFromTheBytesAfterTheHeader) {
  ParsedRequest p;
  ASSERT_TRUE(parse(kTextAndMaxTokens, bytes_element("ROMEO:") + le32(12), p).is_ok());
  EXPECT_EQ(std::get<std::string>(p.request.prompt), "ROMEO:");
  EXPECT_EQ(p.request.sampling.max_tokens, 12);
  EXPECT_FLOAT_EQ(p.request.sampling.temperature, 0.25f);  // JSON data still works beside binary
}

TEST(BinaryInfer, SizesThatDoNotAddUpAreRejected) {
  ParsedRequest p;
  const std::string binary = bytes_element("ROMEO:") + le32(12);
  // Bytes left over after the last binary input.
  Status s = parse(kTextAndMaxTokens, binary + "x", p);
  EXPECT_NE(s.message().find(
                "15 bytes of binary data after the JSON header but the inputs' binary_data_size "
                "parameters add up to 14"),
            std::string::npos)
      << s.message();
  // Too few bytes for the second input.
  s = parse(kTextAndMaxTokens, binary.substr(0, 12), p);
  EXPECT_NE(s.message().find("input 'max_tokens': binary_data_size 4 exceeds the 2 bytes"),
            std::string::npos)
      << s.message();
  // binary_data_size without any binary data (no Inference-Header-Content-Length).
  ParsedRequest q;
  json j = json::parse(kTextAndMaxTokens);
  InputValues inputs;
  s = parse_infer_inputs(j, inputs, q);
  EXPECT_NE(s.message().find("input 'text_input': binary_data_size 10 exceeds the 0 bytes"),
            std::string::npos)
      << s.message();
  // The header length pointing past the body.
  s = parse(kTextAndMaxTokens, binary, p,
            std::to_string(kTextAndMaxTokens.size() + binary.size() + 1));
  EXPECT_NE(s.message().find("Inference-Header-Content-Length"), std::string::npos) << s.message();
}

TEST(BinaryInfer, BadParametersAndDatatypesNameTheField) {
  auto message = [](const std::string& json_text, const std::string& binary) {
    ParsedRequest p;
    Status s = parse(json_text, binary, p);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << json_text;
    return s.message();
  };
  EXPECT_NE(message(R"({"inputs": [{"name": "max_tokens", "shape": [1], "datatype": "FP32",
      "parameters": {"binary_data_size": 4}}]})",
                    le32(1))
                .find("input 'max_tokens' has datatype FP32, expected INT32"),
            std::string::npos);
  EXPECT_NE(message(R"({"inputs": [{"name": "max_tokens", "shape": [1], "datatype": "INT32",
      "parameters": {"binary_data_size": -4}}]})",
                    "")
                .find("'binary_data_size' must be a non-negative integer"),
            std::string::npos);
  EXPECT_NE(
      message(R"({"inputs": [{"name": "max_tokens", "shape": [1], "datatype": "INT32", "data": [3],
      "parameters": {"binary_data_size": 4}}]})",
              le32(1))
          .find("both 'data' and a binary_data_size"),
      std::string::npos);
  EXPECT_NE(
      message(
          R"({"inputs": [{"name": "text_input", "shape": [1], "datatype": "BYTES", "data": ["a"]}],
      "parameters": {"binary_data_output": "yes"}})",
          "")
          .find("parameter 'binary_data_output' must be a bool"),
      std::string::npos);
  EXPECT_NE(
      message(
          R"({"inputs": [{"name": "text_input", "shape": [1], "datatype": "BYTES", "data": ["a"]}],
      "outputs": [{"name": "text_output", "parameters": {"binary_data": 1}}]})",
          "")
          .find("output 'text_output': parameter 'binary_data' must be a bool"),
      std::string::npos);
  EXPECT_NE(
      message(R"({"inputs": [{"name": "text_input", "shape": [4294967296, 4294967296, 4294967296],
      "datatype": "BYTES", "data": ["a"]}]})",
              "")
          .find("too many elements"),
      std::string::npos);
}

TEST(BinaryInfer, OutputBinaryFlags) {
  ParsedRequest p;
  ASSERT_TRUE(
      parse(
          R"({"inputs": [{"name": "text_input", "shape": [1], "datatype": "BYTES", "data": ["a"]}],
      "parameters": {"binary_data_output": true},
      "outputs": [{"name": "text_output"}, {"name": "cum_log_probs", "parameters": {"binary_data": false}}]})",
          "", p)
          .is_ok());
  EXPECT_TRUE(p.is_binary_output("text_output"));     // the request default
  EXPECT_FALSE(p.is_binary_output("cum_log_probs"));  // its own parameter wins
  ParsedRequest q;
  ASSERT_TRUE(
      parse(
          R"({"inputs": [{"name": "text_input", "shape": [1], "datatype": "BYTES", "data": ["a"]}],
      "outputs": [{"name": "text_output", "parameters": {"binary_data": true}}, {"name": "batch_index"}]})",
          "", q)
          .is_ok());
  EXPECT_TRUE(q.is_binary_output("text_output"));
  EXPECT_FALSE(q.is_binary_output("batch_index"));
}

TEST(BinaryInfer, MovesChosenOutputsToBinaryInOrder) {
  json response = {
      {"model_name", "m"},
      {"outputs",
       {{{"name", "text_output"}, {"datatype", "BYTES"}, {"shape", {1, 1}}, {"data", {"hello"}}},
        {{"name", "batch_index"}, {"datatype", "INT32"}, {"shape", {1, 1}}, {"data", {0}}},
        {{"name", "output_log_probs"},
         {"datatype", "FP32"},
         {"shape", {1, 1, 2}},
         {"data", {0.25, -2.0}}}}}};
  std::string binary;
  const int n = move_outputs_to_binary(
      response, [](const std::string& name) { return name != "batch_index"; }, binary);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(binary, bytes_element("hello") + le32(0x3e800000) + le32(0xc0000000));
  const json& outputs = response["outputs"];
  EXPECT_FALSE(outputs[0].contains("data"));
  EXPECT_EQ(outputs[0]["parameters"]["binary_data_size"], 9);
  EXPECT_EQ(outputs[1]["data"], json::array({0}));  // stays JSON
  EXPECT_EQ(outputs[2]["parameters"]["binary_data_size"], 8);
}

}  // namespace
}  // namespace llmserve::kserve
