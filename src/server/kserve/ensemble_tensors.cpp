#include "server/kserve/ensemble_tensors.h"

#include <limits>

namespace llmserve::kserve {

std::string_view datatype_name(DataType t) {
  switch (t) {
    case DataType::kBytes:
      return "BYTES";
    case DataType::kBool:
      return "BOOL";
    case DataType::kInt32:
      return "INT32";
    case DataType::kUint64:
      return "UINT64";
    case DataType::kFp32:
      return "FP32";
  }
  return "BYTES";
}

std::string_view config_datatype_name(DataType t) {
  switch (t) {
    case DataType::kBytes:
      return "TYPE_STRING";
    case DataType::kBool:
      return "TYPE_BOOL";
    case DataType::kInt32:
      return "TYPE_INT32";
    case DataType::kUint64:
      return "TYPE_UINT64";
    case DataType::kFp32:
      return "TYPE_FP32";
  }
  return "TYPE_STRING";
}

const std::vector<TensorSpec>& ensemble_inputs() {
  static const std::vector<TensorSpec> kInputs = {
      {"text_input", DataType::kBytes, {1}, false},
      {"max_tokens", DataType::kInt32, {1}, false},
      {"bad_words", DataType::kBytes, {-1}},
      {"stop_words", DataType::kBytes, {-1}},
      {"end_id", DataType::kInt32, {1}},
      {"pad_id", DataType::kInt32, {1}},
      {"top_k", DataType::kInt32, {1}},
      {"top_p", DataType::kFp32, {1}},
      {"temperature", DataType::kFp32, {1}},
      {"length_penalty", DataType::kFp32, {1}},
      {"repetition_penalty", DataType::kFp32, {1}},
      {"min_tokens", DataType::kInt32, {1}},
      {"min_length", DataType::kInt32, {1}},
      {"presence_penalty", DataType::kFp32, {1}},
      {"frequency_penalty", DataType::kFp32, {1}},
      {"seed", DataType::kUint64, {1}},
      {"random_seed", DataType::kUint64, {1}},
      {"return_log_probs", DataType::kBool, {1}},
      {"exclude_input_in_output", DataType::kBool, {1}},
      {"beam_width", DataType::kInt32, {1}},
      {"num_return_sequences", DataType::kInt32, {1}},
      {"stream", DataType::kBool, {1}},
      {"ignore_eos", DataType::kBool, {1}},   // llmserve extension: generate to max_tokens
      {"speculative", DataType::kBool, {1}},  // llmserve extension: false = no drafts
      // TensorRT-LLM's guided decoding: json, json_schema, regex, ebnf_grammar
      {"guided_decoding_guide_type", DataType::kBytes, {1}},
      {"guided_decoding_guide", DataType::kBytes, {1}},
  };
  return kInputs;
}

const std::vector<TensorSpec>& ensemble_outputs() {
  static const std::vector<TensorSpec> kOutputs = {
      {"text_output", DataType::kBytes, {-1}},
      {"cum_log_probs", DataType::kFp32, {-1}},
      {"output_log_probs", DataType::kFp32, {-1, -1}},
      {"context_logits", DataType::kFp32, {-1, -1}},
      {"generation_logits", DataType::kFp32, {-1, -1, -1}},
      {"batch_index", DataType::kInt32, {1}},
      {"sequence_index", DataType::kInt32, {1}},
  };
  return kOutputs;
}

const TensorSpec* find_input(std::string_view name) {
  for (const auto& t : ensemble_inputs()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

bool is_element_of(const nlohmann::json& v, DataType t) {
  switch (t) {
    case DataType::kBytes:
      return v.is_string();
    case DataType::kBool:
      return v.is_boolean();
    case DataType::kInt32:
      if (v.is_number_unsigned())
        return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max());
      if (v.is_number_integer()) {
        const int64_t x = v.get<int64_t>();
        return x >= std::numeric_limits<int32_t>::min() && x <= std::numeric_limits<int32_t>::max();
      }
      return false;
    case DataType::kUint64:
      return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
    case DataType::kFp32:
      return v.is_number();
  }
  return false;
}

}  // namespace llmserve::kserve
