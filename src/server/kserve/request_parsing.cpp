#include "server/kserve/request_parsing.h"

#include "server/http/json_body.h"

#include <limits>
#include <optional>

#include "server/kserve/binary_tensors.h"
#include "server/kserve/ensemble_tensors.h"

namespace llmserve::kserve {

using nlohmann::json;

namespace {

Status check_elements(const TensorSpec& spec, const std::vector<json>& values) {
  for (const json& v : values) {
    if (!is_element_of(v, spec.datatype)) {
      return invalid_argument("input '{}' expects {} values, got {}", spec.name,
                              datatype_name(spec.datatype),
                              v.dump(-1, ' ', false, json::error_handler_t::replace));
    }
  }
  return Status::ok();
}

void flatten(const json& v, std::vector<json>& out) {
  if (v.is_array()) {
    for (const json& e : v) flatten(e, out);
  } else {
    out.push_back(v);
  }
}

// The single element of a scalar input, or null when absent.
Status scalar(const InputValues& inputs, const std::string& name, const json*& out) {
  out = nullptr;
  auto it = inputs.find(name);
  if (it == inputs.end()) return Status::ok();
  if (it->second.size() != 1) {
    return invalid_argument("input '{}' must have exactly 1 element, got {}", name,
                            it->second.size());
  }
  out = &it->second[0];
  return Status::ok();
}

// parameters[key] into `out` when present; it must be a bool.
Status bool_parameter(const json& parameters, const char* key, const std::string& owner,
                      bool& out) {
  auto it = parameters.find(key);
  if (it == parameters.end()) return Status::ok();
  if (!it->is_boolean()) {
    return invalid_argument("{}: parameter '{}' must be a bool, got {}", owner, key,
                            it->dump(-1, ' ', false, json::error_handler_t::replace));
  }
  out = it->get<bool>();
  return Status::ok();
}

// One entry of /infer's "inputs": its elements from "data", or from the next binary_data_size
// bytes of `binary` (advancing `binary_offset`).
Status parse_infer_input(const json& t, std::string_view binary, size_t& binary_offset,
                         InputValues& inputs) {
  if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) {
    return invalid_argument("every entry of 'inputs' needs a string 'name'");
  }
  const std::string name = t["name"].get<std::string>();
  const TensorSpec* spec = find_input(name);
  if (!spec) return invalid_argument("unexpected inference input '{}' for model", name);
  if (inputs.contains(name)) return invalid_argument("input '{}' is given twice", name);
  if (!t.contains("datatype") || !t["datatype"].is_string()) {
    return invalid_argument("input '{}' needs a string 'datatype'", name);
  }
  if (t["datatype"].get<std::string>() != datatype_name(spec->datatype)) {
    return invalid_argument("input '{}' has datatype {}, expected {}", name,
                            t["datatype"].get<std::string>(), datatype_name(spec->datatype));
  }
  if (!t.contains("shape") || !t["shape"].is_array())
    return invalid_argument("input '{}' needs a 'shape' array", name);
  int64_t num_elements = 1;
  for (const json& d : t["shape"]) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) {
      return invalid_argument("input '{}' has an invalid shape {}", name, t["shape"].dump());
    }
    const int64_t dim = d.get<int64_t>();
    if (dim > 0 && num_elements > std::numeric_limits<int64_t>::max() / dim) {
      return invalid_argument("input '{}' has a shape {} with too many elements", name,
                              t["shape"].dump());
    }
    num_elements *= dim;
  }
  std::optional<uint64_t> binary_size;
  if (auto p = t.find("parameters"); p != t.end()) {
    if (!p->is_object())
      return invalid_argument("input '{}': 'parameters' must be a JSON object", name);
    if (auto b = p->find("binary_data_size"); b != p->end()) {
      if (!b->is_number_unsigned() && !(b->is_number_integer() && b->get<int64_t>() >= 0)) {
        return invalid_argument(
            "input '{}': parameter 'binary_data_size' must be a non-negative integer, got {}", name,
            b->dump(-1, ' ', false, json::error_handler_t::replace));
      }
      binary_size = b->get<uint64_t>();
    }
  }
  std::vector<json> values;
  if (binary_size) {
    if (t.contains("data"))
      return invalid_argument("input '{}' has both 'data' and a binary_data_size parameter", name);
    if (*binary_size > binary.size() - binary_offset) {
      return invalid_argument(
          "input '{}': binary_data_size {} exceeds the {} bytes of binary data left after the "
          "JSON header (see Inference-Header-Content-Length)",
          name, *binary_size, binary.size() - binary_offset);
    }
    if (Status s = decode_binary_tensor(
            name, spec->datatype, binary.substr(binary_offset, *binary_size), num_elements, values);
        !s.is_ok()) {
      return s;
    }
    binary_offset += *binary_size;
  } else {
    if (!t.contains("data")) return invalid_argument("input '{}' has no 'data'", name);
    flatten(t["data"], values);
    if (static_cast<int64_t>(values.size()) != num_elements) {
      return invalid_argument("input '{}' has {} elements in 'data' but shape {} needs {}", name,
                              values.size(), t["shape"].dump(), num_elements);
    }
  }
  if (Status s = check_elements(*spec, values); !s.is_ok()) return s;
  inputs[name] = std::move(values);
  return Status::ok();
}

// /infer's "outputs": the names asked for and their binary_data parameters.
Status parse_requested_outputs(const json& body, ParsedRequest& parsed) {
  auto out = body.find("outputs");
  if (out == body.end()) return Status::ok();
  if (!out->is_array()) return invalid_argument("'outputs' must be an array");
  for (const json& o : *out) {
    if (!o.is_object() || !o.contains("name") || !o["name"].is_string()) {
      return invalid_argument("every entry of 'outputs' needs a string 'name'");
    }
    const std::string name = o["name"].get<std::string>();
    parsed.outputs.push_back(name);
    if (auto p = o.find("parameters"); p != o.end()) {
      if (!p->is_object())
        return invalid_argument("output '{}': 'parameters' must be a JSON object", name);
      bool is_binary = false;
      if (Status s = bool_parameter(*p, "binary_data", fmt::format("output '{}'", name), is_binary);
          !s.is_ok()) {
        return s;
      }
      if (p->contains("binary_data")) parsed.binary_outputs[name] = is_binary;
    }
  }
  return Status::ok();
}

}  // namespace

Status parse_json_body(const std::string& body, json& out) {
  if (body.empty()) return invalid_argument("the request body is empty; expected a JSON object");
  if (Status s = parse_json(body, out); !s.is_ok()) return s;
  if (!out.is_object()) return invalid_argument("the request body must be a JSON object");
  return Status::ok();
}

// Triton's reserved scheduling parameters (apply_triton_scheduling) from a JSON value.
Status scheduling_parameter(const std::string& key, const json& value, GenerateRequest& r) {
  if (!is_triton_scheduling_parameter(key)) return Status::ok();
  if (!value.is_number_unsigned()) {
    return invalid_argument("parameter '{}' must be a non-negative integer, got {}", key,
                            value.dump());
  }
  return apply_triton_scheduling(key, value.get<uint64_t>(), r);
}

Status parse_generate_inputs(const json& body, InputValues& inputs, ParsedRequest& parsed) {
  auto add = [&](const std::string& key, const json& value) -> Status {
    if (Status s = scheduling_parameter(key, value, parsed.request); !s.is_ok()) return s;
    const TensorSpec* spec = find_input(key);
    if (!spec) return Status::ok();  // a request parameter we do not use
    if (inputs.contains(key)) {
      return invalid_argument("'{}' is given both as a top-level key and inside 'parameters'", key);
    }
    if (value.is_object())
      return invalid_argument("input '{}' must be a value or an array, got an object", key);
    std::vector<json> values;
    flatten(value, values);
    if (Status s = check_elements(*spec, values); !s.is_ok()) return s;
    inputs[key] = std::move(values);
    return Status::ok();
  };
  for (const auto& [key, value] : body.items()) {
    if (key == "parameters" || key == "id") continue;
    if (Status s = add(key, value); !s.is_ok()) return s;
  }
  if (auto it = body.find("parameters"); it != body.end()) {
    if (!it->is_object()) return invalid_argument("'parameters' must be a JSON object");
    for (const auto& [key, value] : it->items()) {
      if (Status s = add(key, value); !s.is_ok()) return s;
    }
  }
  if (auto it = body.find("id"); it != body.end()) {
    if (!it->is_string()) return invalid_argument("'id' must be a string");
    parsed.id = it->get<std::string>();
  }
  return Status::ok();
}

Status parse_infer_inputs(const json& body, InputValues& inputs, ParsedRequest& parsed,
                          std::string_view binary) {
  if (auto it = body.find("id"); it != body.end()) {
    if (!it->is_string()) return invalid_argument("'id' must be a string");
    parsed.id = it->get<std::string>();
  }
  if (auto it = body.find("parameters"); it != body.end()) {
    if (!it->is_object()) return invalid_argument("'parameters' must be a JSON object");
    if (Status s = bool_parameter(*it, "binary_data_output", "the request",
                                  parsed.is_binary_output_default);
        !s.is_ok()) {
      return s;
    }
    for (const auto& [key, value] : it->items()) {
      if (Status s = scheduling_parameter(key, value, parsed.request); !s.is_ok()) return s;
    }
  }
  auto in = body.find("inputs");
  if (in == body.end() || !in->is_array())
    return invalid_argument("'inputs' must be an array of tensors");
  size_t binary_offset = 0;  // the next binary input's bytes in `binary`
  for (const json& t : *in) {
    if (Status s = parse_infer_input(t, binary, binary_offset, inputs); !s.is_ok()) return s;
  }
  if (binary_offset != binary.size()) {
    return invalid_argument(
        "the request has {} bytes of binary data after the JSON header but the inputs' "
        "binary_data_size parameters add up to {}",
        binary.size(), binary_offset);
  }
  return parse_requested_outputs(body, parsed);
}

bool ParsedRequest::is_binary_output(const std::string& name) const {
  auto it = binary_outputs.find(name);
  return it != binary_outputs.end() ? it->second : is_binary_output_default;
}

namespace {

// The TensorRT-LLM guided-decoding inputs → GenerateRequest::guide.
Status read_guide(const InputValues& inputs, Guide& guide) {
  const auto one_string = [&](const char* name, std::optional<std::string>& out) -> Status {
    const json* v = nullptr;
    if (Status s = scalar(inputs, name, v); !s.is_ok() || v == nullptr) return s;
    if (!v->is_string()) return invalid_argument("input '{}' must be a string", name);
    out = v->get<std::string>();
    return Status::ok();
  };
  std::optional<std::string> type, text;
  if (Status s = one_string("guided_decoding_guide_type", type); !s.is_ok()) return s;
  if (Status s = one_string("guided_decoding_guide", text); !s.is_ok()) return s;
  return guide_from_trtllm(type, text, guide);
}

}  // namespace

Status build_generate_request(const InputValues& inputs, ParsedRequest& parsed) {
  GenerateRequest& r = parsed.request;
  SamplingParams& sp = r.sampling;
  const json* v = nullptr;
  auto get = [&](const char* name) -> Status { return scalar(inputs, name, v); };
#define LLMSERVE_SCALAR(name)                     \
  if (Status s = get(name); !s.is_ok()) return s; \
  if (v)

  auto text = inputs.find("text_input");
  if (text == inputs.end()) return invalid_argument("input 'text_input' is required");
  if (text->second.size() != 1) {
    return invalid_argument("input 'text_input' must have exactly 1 element (batch size 1), got {}",
                            text->second.size());
  }
  r.prompt = text->second[0].get<std::string>();
  LLMSERVE_SCALAR("max_tokens") sp.max_tokens = v->get<int32_t>();
  LLMSERVE_SCALAR("temperature") sp.temperature = v->get<float>();
  LLMSERVE_SCALAR("top_k") sp.top_k = v->get<int32_t>();
  LLMSERVE_SCALAR("top_p") sp.top_p = v->get<float>();
  LLMSERVE_SCALAR("repetition_penalty") sp.repetition_penalty = v->get<float>();
  LLMSERVE_SCALAR("presence_penalty") sp.presence_penalty = v->get<float>();
  LLMSERVE_SCALAR("frequency_penalty") sp.frequency_penalty = v->get<float>();
  LLMSERVE_SCALAR("min_length") sp.min_tokens = v->get<int32_t>();
  LLMSERVE_SCALAR("min_tokens") sp.min_tokens = v->get<int32_t>();
  LLMSERVE_SCALAR("random_seed") sp.seed = v->get<uint64_t>();
  LLMSERVE_SCALAR("seed") sp.seed = v->get<uint64_t>();
  LLMSERVE_SCALAR("ignore_eos") sp.ignore_eos = v->get<bool>();
  LLMSERVE_SCALAR("speculative") parsed.request.speculative = v->get<bool>();
  LLMSERVE_SCALAR("return_log_probs") parsed.has_logprobs = v->get<bool>();
  LLMSERVE_SCALAR("exclude_input_in_output") parsed.has_echo = !v->get<bool>();
  LLMSERVE_SCALAR("stream") parsed.is_stream = v->get<bool>();
  LLMSERVE_SCALAR("end_id") sp.stop_token_ids.push_back(v->get<int32_t>());
  LLMSERVE_SCALAR("pad_id") {}
  LLMSERVE_SCALAR("length_penalty") {}  // only affects beam search, which we do not do
  LLMSERVE_SCALAR("beam_width") {
    if (v->get<int32_t>() != 1)
      return invalid_argument("beam_width must be 1 (beam search is not supported), got {}",
                              v->dump());
  }
  LLMSERVE_SCALAR("num_return_sequences") {
    if (v->get<int32_t>() != 1)
      return invalid_argument("num_return_sequences must be 1, got {}", v->dump());
  }
#undef LLMSERVE_SCALAR
  if (parsed.has_logprobs) sp.logprobs = 0;
  if (auto it = inputs.find("stop_words"); it != inputs.end()) {
    for (const json& w : it->second) {
      if (!w.get<std::string>().empty()) sp.stop.push_back(w.get<std::string>());
    }
  }
  if (Status s = read_guide(inputs, r.guide); !s.is_ok()) return s;
  if (auto it = inputs.find("bad_words"); it != inputs.end()) {
    for (const json& w : it->second) {
      if (!w.get<std::string>().empty()) r.bad_words.push_back(w.get<std::string>());
    }
  }
  return Status::ok();
}

}  // namespace llmserve::kserve
