// Turning Triton wire requests into a GenerateRequest. Both /generate (inputs as top-level JSON
// keys or inside "parameters") and /infer (KServe v2 JSON tensors) first become InputValues
// (input name → its flat elements, type-checked against ensemble_tensors.h), then one function
// maps those onto GenerateRequest + SamplingParams. Every error is kInvalidArgument with a
// message naming the field or tensor.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "server/generation_service.h"

namespace llmserve::kserve {

using InputValues = std::map<std::string, std::vector<nlohmann::json>>;

struct ParsedRequest {
  GenerateRequest request;
  std::string id;                    // echoed when non-empty
  bool is_stream = false;            // "stream": true
  bool has_echo = false;             // exclude_input_in_output: false → prompt prepended
  bool has_logprobs = false;         // return_log_probs
  std::vector<std::string> outputs;  // /infer "outputs" names; empty = all
  // Binary tensor data extension: the request's binary_data_output and each output's binary_data.
  bool is_binary_output_default = false;
  std::map<std::string, bool> binary_outputs;
  bool is_binary_output(const std::string& name) const;
};

// Parses a body as JSON whatever the Content-Type; malformed JSON (or invalid UTF-8) → error.
Status parse_json_body(const std::string& body, nlohmann::json& out);
// /generate: an object whose keys matching input names become inputs; others are ignored.
// Triton's `priority` and `timeout` parameters (top-level or in "parameters") go to
// parsed.request (apply_triton_scheduling); "id" to parsed.id.
Status parse_generate_inputs(const nlohmann::json& body, InputValues& inputs,
                             ParsedRequest& parsed);
// /infer: {"id"?, "parameters"?, "inputs": [{"name","shape","datatype","data"|"parameters"}],
// "outputs"?: [{"name","parameters"?}]}. An input with parameter binary_data_size takes its
// elements from `binary` (the bytes after the JSON header, binary_tensors.h) in input order;
// together they must use all of `binary`.
Status parse_infer_inputs(const nlohmann::json& body, InputValues& inputs, ParsedRequest& parsed,
                          std::string_view binary = {});
// Maps inputs onto parsed.request (prompt, sampling) and the flags.
Status build_generate_request(const InputValues& inputs, ParsedRequest& parsed);

}  // namespace llmserve::kserve
