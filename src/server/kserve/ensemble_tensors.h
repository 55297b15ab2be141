// The tensors of the TensorRT-LLM `ensemble` model that Triton clients know (docs/server.md):
// names, datatypes and shapes (without the batch dimension). Model metadata, model config, /infer
// validation and /generate key matching all read this one table.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace llmserve::kserve {

enum class DataType { kBytes, kBool, kInt32, kUint64, kFp32 };

struct TensorSpec {
  std::string_view name;
  DataType datatype;
  std::vector<int64_t> dims;  // -1 = variable
  bool is_optional = true;
};

std::string_view datatype_name(DataType t);  // "BYTES", "INT32", ... (protocol)
std::string_view config_datatype_name(
    DataType t);  // "TYPE_STRING", "TYPE_INT32", ... (model config)

const std::vector<TensorSpec>& ensemble_inputs();
const std::vector<TensorSpec>& ensemble_outputs();
const TensorSpec* find_input(std::string_view name);

// Whether a JSON value is one element of `t` (BYTES: a string; INT32: an integer in range; ...).
bool is_element_of(const nlohmann::json& v, DataType t);

}  // namespace llmserve::kserve
