// The TensorRT-LLM ensemble's tensor interface, as llmserve serves it over KServe v2 gRPC: the
// input/output table (for ModelMetadata and ModelConfig) and the translation of one
// ModelInferRequest into a GenerateRequest.
//
// Inputs are read from `contents` or, when the request uses them, from `raw_input_contents`
// (little-endian; BYTES elements carry a 4-byte little-endian length prefix). Datatypes must match
// the table exactly, as Triton requires. Only batch size 1 is served. Semantics that differ from a
// plain reading of the field names, chosen to match TensorRT-LLM / Triton CLI:
// - neither top_k nor top_p given (or both 0) => greedy, whatever the temperature;
// - exclude_input_in_output defaults to true (Triton CLI's choice); false echoes the prompt in a
//   non-streamed reply;
// - each stop_words element is a comma-separated list of stop strings, kept in the output;
// - `stream` false on ModelStreamInfer => one response with the whole text.
//
// Thread-safety: pure functions over their arguments.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "grpc_service.pb.h"
#include "server/generation_service.h"

namespace llmserve::grpc_frontend {

// One tensor of the served model's interface.
struct TensorSpec {
  std::string_view name;
  std::string_view datatype;  // protocol datatype: "BYTES", "INT32", "FP32", "UINT64", "BOOL"
  std::vector<int64_t> dims;  // without the batch dimension; -1 variable
  bool is_optional = true;
};

const std::vector<TensorSpec>& input_specs();
const std::vector<TensorSpec>& output_specs();

inline constexpr std::string_view kTextOutput = "text_output";
inline constexpr std::string_view kFinalResponseParameter = "triton_final_response";
// Our response parameter: generated tokens behind the response's text_output.
inline constexpr std::string_view kOutputTokensParameter = "llmserve_output_tokens";

// What a ModelInferRequest asks for, beyond the GenerateRequest itself.
struct InferOptions {
  std::string id;                 // echoed in every response
  bool is_streaming = true;       // `stream` input; only ModelStreamInfer looks at it
  bool is_input_excluded = true;  // `exclude_input_in_output`
  bool has_logprobs = false;      // `return_log_probs`: cum_log_probs and output_log_probs too
};

// Fills `request` (prompt, sampling) and `options` from the tensors of `wire`; the model name is
// checked by the caller. kInvalidArgument naming the tensor for anything malformed.
Status parse_infer_request(const inference::ModelInferRequest& wire, GenerateRequest& request,
                           InferOptions& options);

// The BYTES raw encoding of one element: 4-byte little-endian length, then the bytes.
std::string encode_raw_bytes(std::string_view element);

// A response carrying `text` as text_output (BYTES, shape [1, 1], in raw_output_contents as
// Triton sends it); with options.has_logprobs also the log probabilities of the tokens behind it
// as TensorRT-LLM's ensemble names them: cum_log_probs (FP32 [1, 1], their sum) and
// output_log_probs (FP32 [1, 1, n]).
void fill_text_response(std::string_view model_name, const InferOptions& options,
                        std::string_view text, std::span<const float> logprobs,
                        inference::ModelInferResponse& response);

}  // namespace llmserve::grpc_frontend
