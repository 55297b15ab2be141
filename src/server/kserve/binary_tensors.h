// KServe's binary tensor data extension (`binary_tensor_data`, docs/server.md) for HTTP /infer: the
// body is a JSON header of `Inference-Header-Content-Length` bytes followed by raw tensor bytes,
// input after input in the order of "inputs", each input's share given by its `binary_data_size`
// parameter. Outputs go binary when asked (`binary_data` per output, `binary_data_output` for the
// request): the response is then the JSON header, then their bytes in output order, sent as
// application/octet-stream with the same header.
//
// Encoding: little-endian, row-major, no padding; BOOL one byte (0 or 1); BYTES elements a 4-byte
// little-endian length followed by that many bytes. Every error is kInvalidArgument naming the
// header, the parameter or the tensor. Pure functions, no state.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "server/kserve/ensemble_tensors.h"

namespace llmserve::kserve {

inline constexpr const char* kInferenceHeaderContentLength = "Inference-Header-Content-Length";

struct InferBody {
  std::string_view json;    // the JSON header (the whole body without the extension)
  std::string_view binary;  // the tensor bytes after it
};

// Splits `body` at `header_length` (the Inference-Header-Content-Length value; nullopt when the
// header is absent: all JSON). Errors: not a decimal number, larger than the body, or 0 (a raw
// binary request, which needs a single-input model).
Status split_infer_body(std::string_view body, const std::optional<std::string>& header_length,
                        InferBody& out);

// The protocol datatype of a name ("BYTES", "INT32", ...), nullopt for one we do not know.
std::optional<DataType> datatype_from_name(std::string_view name);

// Decodes `bytes` as `num_elements` elements of `type` into JSON values (BYTES → strings, which
// must be UTF-8 as in a JSON body; FP32 must be finite). `name` is the input, for messages.
Status decode_binary_tensor(std::string_view name, DataType type, std::string_view bytes,
                            int64_t num_elements, std::vector<nlohmann::json>& out);

// Appends the binary form of `elements` (a flat JSON array of `type` values) to `out`.
void encode_binary_tensor(DataType type, const nlohmann::json& elements, std::string& out);

// Turns the outputs of a KServe response for which `is_binary(name)` holds into binary ones: drops
// their "data", sets parameters.binary_data_size and appends their bytes to `binary`, in output
// order. Returns how many outputs went binary.
int move_outputs_to_binary(nlohmann::json& response,
                           const std::function<bool(const std::string&)>& is_binary,
                           std::string& binary);

}  // namespace llmserve::kserve
