// parse_infer_request: tensors from typed contents and from raw_input_contents, datatype and
// shape checks naming the tensor, and the TensorRT-LLM defaults (greedy unless top_k/top_p).
#include "server/grpc/infer_request.h"

#include <gtest/gtest.h>

namespace llmserve::grpc_frontend {
namespace {

using inference::ModelInferRequest;

ModelInferRequest::InferInputTensor* add_input(ModelInferRequest& r, const std::string& name,
                                               const std::string& datatype) {
  auto* in = r.add_inputs();
  in->set_name(name);
  in->set_datatype(datatype);
  in->add_shape(1);
  in->add_shape(1);
  return in;
}

TEST(GrpcInferRequest, TypedContents) {
  ModelInferRequest wire;
  wire.set_id("x");
  add_input(wire, "text_input", "BYTES")->mutable_contents()->add_bytes_contents("ROMEO:");
  add_input(wire, "max_tokens", "INT32")->mutable_contents()->add_int_contents(20);
  add_input(wire, "temperature", "FP32")->mutable_contents()->add_fp32_contents(0.5f);
  add_input(wire, "seed", "UINT64")->mutable_contents()->add_uint64_contents(7);
  add_input(wire, "stop_words", "BYTES")->mutable_contents()->add_bytes_contents("a,bc");
  GenerateRequest request;
  InferOptions options;
  ASSERT_TRUE(parse_infer_request(wire, request, options).is_ok());
  EXPECT_EQ(std::get<std::string>(request.prompt), "ROMEO:");
  EXPECT_EQ(request.sampling.max_tokens, 20);
  EXPECT_EQ(request.sampling.temperature, 0.5f);
  EXPECT_EQ(request.sampling.seed, 7u);
  EXPECT_EQ(request.sampling.top_k, 1);  // neither top_k nor top_p: greedy, as TensorRT-LLM
  EXPECT_EQ(request.sampling.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(options.id, "x");
  EXPECT_TRUE(options.is_input_excluded);
}

TEST(GrpcInferRequest, RawContents) {
  ModelInferRequest wire;
  add_input(wire, "text_input", "BYTES");
  add_input(wire, "top_p", "FP32");
  wire.add_raw_input_contents(encode_raw_bytes("hi"));
  const float top_p = 0.9f;
  wire.add_raw_input_contents(std::string(reinterpret_cast<const char*>(&top_p), 4));
  GenerateRequest request;
  InferOptions options;
  ASSERT_TRUE(parse_infer_request(wire, request, options).is_ok());
  EXPECT_EQ(std::get<std::string>(request.prompt), "hi");
  EXPECT_EQ(request.sampling.top_p, 0.9f);
  EXPECT_EQ(request.sampling.top_k, 0);
}

TEST(GrpcInferRequest, ErrorsNameTheTensor) {
  auto expect_error = [](const ModelInferRequest& wire, const std::string& needle) {
    GenerateRequest request;
    InferOptions options;
    Status s = parse_infer_request(wire, request, options);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
  };
  ModelInferRequest wrong_type;
  add_input(wrong_type, "text_input", "BYTES")->mutable_contents()->add_bytes_contents("hi");
  add_input(wrong_type, "max_tokens", "FP32")->mutable_contents()->add_fp32_contents(3);
  expect_error(wrong_type, "'max_tokens'");
  ModelInferRequest unknown;
  add_input(unknown, "text_inptu", "BYTES")->mutable_contents()->add_bytes_contents("hi");
  expect_error(unknown, "'text_inptu'");
  ModelInferRequest truncated;
  add_input(truncated, "text_input", "BYTES");
  truncated.add_raw_input_contents(
      std::string("\x09\x00\x00\x00"
                  "A",
                  5));
  expect_error(truncated, "'text_input'");
  ModelInferRequest wrong_count;
  add_input(wrong_count, "text_input", "BYTES")->mutable_contents()->add_bytes_contents("a");
  wrong_count.mutable_inputs(0)->add_shape(2);
  expect_error(wrong_count, "'text_input'");
  ModelInferRequest missing;
  add_input(missing, "max_tokens", "INT32")->mutable_contents()->add_int_contents(3);
  expect_error(missing, "text_input");
}

TEST(GrpcInferRequest, TritonPriorityAndTimeoutParameters) {
  ModelInferRequest wire;
  add_input(wire, "text_input", "BYTES")->mutable_contents()->add_bytes_contents("x");
  (*wire.mutable_parameters())["priority"].set_uint64_param(1);
  (*wire.mutable_parameters())["timeout"].set_int64_param(500);
  (*wire.mutable_parameters())["triton_enable_empty_final_response"].set_bool_param(true);
  GenerateRequest request;
  InferOptions options;
  ASSERT_TRUE(parse_infer_request(wire, request, options).is_ok());
  EXPECT_EQ(request.priority, kTritonPriorityBase + 1);
  ASSERT_TRUE(request.queue_deadline.has_value());
  EXPECT_EQ(*request.queue_deadline - request.arrival, std::chrono::microseconds(500));

  (*wire.mutable_parameters())["priority"].set_int64_param(-2);
  GenerateRequest bad;
  const Status s = parse_infer_request(wire, bad, options);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("parameter 'priority'"), std::string::npos) << s.message();
}

TEST(GrpcInferRequest, SpeculativeOptOut) {
  ModelInferRequest wire;
  add_input(wire, "text_input", "BYTES")->mutable_contents()->add_bytes_contents("x");
  add_input(wire, "speculative", "BOOL")->mutable_contents()->add_bool_contents(false);
  GenerateRequest request;
  InferOptions options;
  ASSERT_TRUE(parse_infer_request(wire, request, options).is_ok());
  EXPECT_FALSE(request.speculative);
  GenerateRequest defaults;
  wire.mutable_inputs()->RemoveLast();
  ASSERT_TRUE(parse_infer_request(wire, defaults, options).is_ok());
  EXPECT_TRUE(defaults.speculative);
}

TEST(GrpcInferRequest, BadWordsSplitOnCommasAsStopWords) {
  ModelInferRequest wire;
  add_input(wire, "text_input", "BYTES")->mutable_contents()->add_bytes_contents("x");
  add_input(wire, "bad_words", "BYTES")->mutable_contents()->add_bytes_contents("man,the king");
  GenerateRequest request;
  InferOptions options;
  ASSERT_TRUE(parse_infer_request(wire, request, options).is_ok());
  EXPECT_EQ(request.bad_words, (std::vector<std::string>{"man", "the king"}));
}

}  // namespace
}  // namespace llmserve::grpc_frontend
