// Fuzzes the gRPC frontend's request parsing: the bytes are a serialized
// inference.ModelInferRequest (typed contents or raw_input_contents with BYTES length prefixes),
// parsed by protobuf, then by parse_infer_request; an accepted request's sampling is validated as
// the engine would, and its prompt is echoed through fill_text_response. Any input must produce a
// request or a Status — never a crash, hang, leak or undefined behaviour.
// Also replayed over tests/fuzz/corpus/grpc by ctest (fuzz_regression_main.cpp). Its seeds were
// written from protobuf text format: protoc -I proto --encode=inference.ModelInferRequest
// grpc_service.proto < seed.txt > tests/fuzz/corpus/grpc/<name>.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "server/grpc/infer_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace llmserve;
  inference::ModelInferRequest wire;
  if (!wire.ParseFromArray(data, static_cast<int>(size))) return 0;
  GenerateRequest request;
  grpc_frontend::InferOptions options;
  if (!grpc_frontend::parse_infer_request(wire, request, options).is_ok()) return 0;
  const auto* prompt = std::get_if<std::string>(&request.prompt);
  if (prompt == nullptr) __builtin_trap();  // text_input is required and always text
  (void)request.sampling.validate(50257);   // the default model's vocabulary
  inference::ModelInferResponse response;
  const float logprobs[] = {-0.5f, -1.25f};
  grpc_frontend::fill_text_response(wire.model_name(), options, *prompt, logprobs, response);
  std::string out;
  if (!response.SerializeToString(&out)) __builtin_trap();
  if (response.outputs_size() != (options.has_logprobs ? 3 : 1) ||
      response.raw_output_contents_size() != response.outputs_size()) {
    __builtin_trap();
  }
  return 0;
}
