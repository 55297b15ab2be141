#include "server/grpc/infer_request.h"

#include <cstring>
#include <numeric>
#include <optional>

namespace llmserve::grpc_frontend {
namespace {

using inference::ModelInferRequest;

// Values of one input tensor, decoded from either wire form. Only the vector matching the
// tensor's datatype is filled.
struct TensorValues {
  std::string_view name;
  std::string_view datatype;
  std::vector<std::string> bytes;
  std::vector<int32_t> int32s;
  std::vector<uint64_t> uint64s;
  std::vector<float> fp32s;
  std::vector<bool> bools;

  size_t size() const {
    return bytes.size() + int32s.size() + uint64s.size() + fp32s.size() + bools.size();
  }
};

const TensorSpec* find_input_spec(std::string_view name) {
  for (const TensorSpec& spec : input_specs()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

template <typename T>
T read_le(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));  // x86-64 and aarch64 are little-endian
  return value;
}

template <typename T>
Status decode_fixed_raw(const TensorValues& t, std::string_view raw, std::vector<T>& out) {
  if (raw.size() % sizeof(T) != 0) {
    return invalid_argument(
        "input '{}': raw content of {} bytes is not a whole number of {} values", t.name,
        raw.size(), t.datatype);
  }
  for (size_t i = 0; i < raw.size(); i += sizeof(T)) out.push_back(read_le<T>(raw.data() + i));
  return Status::ok();
}

Status decode_raw(std::string_view raw, TensorValues& t) {
  if (t.datatype == "BYTES") {
    size_t pos = 0;
    while (pos < raw.size()) {
      if (raw.size() - pos < 4) {
        return invalid_argument("input '{}': truncated BYTES length prefix at byte {}", t.name,
                                pos);
      }
      const uint32_t length = read_le<uint32_t>(raw.data() + pos);
      pos += 4;
      if (raw.size() - pos < length) {
        return invalid_argument(
            "input '{}': BYTES element of {} bytes runs past the {}-byte raw content", t.name,
            length, raw.size());
      }
      t.bytes.emplace_back(raw.substr(pos, length));
      pos += length;
    }
    return Status::ok();
  }
  if (t.datatype == "INT32") return decode_fixed_raw(t, raw, t.int32s);
  if (t.datatype == "UINT64") return decode_fixed_raw(t, raw, t.uint64s);
  if (t.datatype == "FP32") return decode_fixed_raw(t, raw, t.fp32s);
  std::vector<uint8_t> bytes;
  if (Status s = decode_fixed_raw(t, raw, bytes); !s.is_ok()) return s;
  for (uint8_t b : bytes) t.bools.push_back(b != 0);
  return Status::ok();
}

void decode_contents(const inference::InferTensorContents& c, TensorValues& t) {
  if (t.datatype == "BYTES") {
    t.bytes.assign(c.bytes_contents().begin(), c.bytes_contents().end());
  } else if (t.datatype == "INT32") {
    t.int32s.assign(c.int_contents().begin(), c.int_contents().end());
  } else if (t.datatype == "UINT64") {
    t.uint64s.assign(c.uint64_contents().begin(), c.uint64_contents().end());
  } else if (t.datatype == "FP32") {
    t.fp32s.assign(c.fp32_contents().begin(), c.fp32_contents().end());
  } else {
    t.bools.assign(c.bool_contents().begin(), c.bool_contents().end());
  }
}

bool has_contents(const inference::InferTensorContents& c) {
  return c.bool_contents_size() + c.int_contents_size() + c.int64_contents_size() +
             c.uint_contents_size() + c.uint64_contents_size() + c.fp32_contents_size() +
             c.fp64_contents_size() + c.bytes_contents_size() >
         0;
}

// Checks name, datatype and shape against the table and decodes the values.
Status decode_input(const ModelInferRequest& wire, int index, TensorValues& t) {
  const auto& in = wire.inputs(index);
  const TensorSpec* spec = find_input_spec(in.name());
  if (spec == nullptr) {
    return invalid_argument("unexpected inference input '{}' for model '{}'", in.name(),
                            wire.model_name());
  }
  t.name = spec->name;
  t.datatype = spec->datatype;
  if (in.datatype() != spec->datatype) {
    return invalid_argument("unexpected datatype {} for inference input '{}', expecting {}",
                            in.datatype(), in.name(), spec->datatype);
  }
  int64_t num_elements = 1;
  for (int64_t d : in.shape()) {
    if (d < 0) return invalid_argument("input '{}': shape dimension {} is negative", in.name(), d);
    if (__builtin_mul_overflow(num_elements, d, &num_elements)) {
      return invalid_argument("input '{}': the shape's element count overflows int64", in.name());
    }
  }
  if (wire.raw_input_contents_size() > 0) {
    if (has_contents(in.contents())) {
      return invalid_argument("input '{}': contents must be empty when raw_input_contents is used",
                              in.name());
    }
    if (Status s = decode_raw(wire.raw_input_contents(index), t); !s.is_ok()) return s;
  } else {
    decode_contents(in.contents(), t);
  }
  if (static_cast<int64_t>(t.size()) != num_elements) {
    return invalid_argument("input '{}': shape holds {} elements but {} were given", in.name(),
                            num_elements, t.size());
  }
  return Status::ok();
}

// A scalar input of a batch-1 request: exactly one element.
Status expect_scalar(const TensorValues& t) {
  if (t.size() != 1) {
    return invalid_argument(
        "input '{}' must hold exactly one value (batch size 1 is served), got {}", t.name,
        t.size());
  }
  return Status::ok();
}

void split_stop_words(const std::vector<std::string>& elements, std::vector<std::string>& stop) {
  for (const std::string& element : elements) {
    size_t begin = 0;
    while (begin <= element.size()) {
      size_t end = element.find(',', begin);
      if (end == std::string::npos) end = element.size();
      if (end > begin) stop.push_back(element.substr(begin, end - begin));
      begin = end + 1;
    }
  }
}

// The knobs whose defaults depend on what else was given (see the header on greedy defaults).
struct SamplingInputs {
  std::optional<int32_t> top_k;
  std::optional<float> top_p;
  std::optional<std::string> guide_type, guide;  // TensorRT-LLM's guided decoding
};

Status apply_input(const TensorValues& t, GenerateRequest& request, InferOptions& options,
                   SamplingInputs& sampling) {
  SamplingParams& p = request.sampling;
  const std::string_view n = t.name;
  if (n == "stop_words") {
    split_stop_words(t.bytes, p.stop);
    return Status::ok();
  }
  if (n == "bad_words") {  // comma-separated words per element, as stop_words
    split_stop_words(t.bytes, request.bad_words);
    return Status::ok();
  }
  if (Status s = expect_scalar(t); !s.is_ok()) return s;
  if (n == "guided_decoding_guide_type") {
    sampling.guide_type = t.bytes[0];
  } else if (n == "guided_decoding_guide") {
    sampling.guide = t.bytes[0];
  } else if (n == "text_input") {
    request.prompt = t.bytes[0];
  } else if (n == "max_tokens") {
    p.max_tokens = t.int32s[0];
  } else if (n == "temperature") {
    p.temperature = t.fp32s[0];
  } else if (n == "top_k") {
    sampling.top_k = t.int32s[0];
  } else if (n == "top_p") {
    sampling.top_p = t.fp32s[0];
  } else if (n == "repetition_penalty") {
    p.repetition_penalty = t.fp32s[0];
  } else if (n == "presence_penalty") {
    p.presence_penalty = t.fp32s[0];
  } else if (n == "frequency_penalty") {
    p.frequency_penalty = t.fp32s[0];
  } else if (n == "min_tokens" || n == "min_length") {
    p.min_tokens = t.int32s[0];
  } else if (n == "seed" || n == "random_seed") {
    p.seed = t.uint64s[0];
  } else if (n == "end_id") {
    p.stop_token_ids.push_back(t.int32s[0]);
  } else if (n == "exclude_input_in_output") {
    options.is_input_excluded = t.bools[0];
  } else if (n == "stream") {
    options.is_streaming = t.bools[0];
  } else if (n == "speculative") {  // llmserve's: false keeps the request out of --speculative
    request.speculative = t.bools[0];
  } else if (n == "return_log_probs") {
    options.has_logprobs = t.bools[0];
    if (options.has_logprobs) p.logprobs = 0;
  } else if (n == "beam_width" || n == "num_return_sequences") {
    if (t.int32s[0] != 1)
      return invalid_argument("input '{}': only 1 is supported, got {}", n, t.int32s[0]);
  }
  // pad_id and length_penalty (beam search only) are accepted and ignored.
  return Status::ok();
}

}  // namespace

const std::vector<TensorSpec>& input_specs() {
  static const std::vector<TensorSpec> specs = {
      {"text_input", "BYTES", {1}, false},
      {"max_tokens", "INT32", {1}},
      {"stop_words", "BYTES", {-1}},
      {"bad_words", "BYTES", {-1}},
      {"exclude_input_in_output", "BOOL", {1}},
      {"end_id", "INT32", {1}},
      {"pad_id", "INT32", {1}},
      {"top_k", "INT32", {1}},
      {"top_p", "FP32", {1}},
      {"temperature", "FP32", {1}},
      {"length_penalty", "FP32", {1}},
      {"repetition_penalty", "FP32", {1}},
      {"min_tokens", "INT32", {1}},
      {"min_length", "INT32", {1}},
      {"presence_penalty", "FP32", {1}},
      {"frequency_penalty", "FP32", {1}},
      {"seed", "UINT64", {1}},
      {"random_seed", "UINT64", {1}},
      {"return_log_probs", "BOOL", {1}},
      {"beam_width", "INT32", {1}},
      {"num_return_sequences", "INT32", {1}},
      {"stream", "BOOL", {1}},
      {"speculative", "BOOL", {1}},
      {"guided_decoding_guide_type", "BYTES", {1}},
      {"guided_decoding_guide", "BYTES", {1}},
  };
  return specs;
}

const std::vector<TensorSpec>& output_specs() {
  static const std::vector<TensorSpec> specs = {{kTextOutput, "BYTES", {-1}, false}};
  return specs;
}

Status parse_infer_request(const ModelInferRequest& wire, GenerateRequest& request,
                           InferOptions& options) {
  options.id = wire.id();
  if (wire.raw_input_contents_size() > 0 && wire.raw_input_contents_size() != wire.inputs_size()) {
    return invalid_argument("raw_input_contents has {} entries but the request has {} inputs",
                            wire.raw_input_contents_size(), wire.inputs_size());
  }
  for (const auto& out : wire.outputs()) {
    if (out.name() != kTextOutput) {
      return invalid_argument("unexpected inference output '{}' for model '{}'", out.name(),
                              wire.model_name());
    }
  }
  // Triton's reserved scheduling parameters; the others (e.g. triton_*) are not ours to read.
  for (const auto& [key, param] : wire.parameters()) {
    if (!is_triton_scheduling_parameter(key)) continue;
    uint64_t value = 0;
    if (param.parameter_choice_case() == inference::InferParameter::kUint64Param) {
      value = param.uint64_param();
    } else if (param.parameter_choice_case() == inference::InferParameter::kInt64Param &&
               param.int64_param() >= 0) {
      value = static_cast<uint64_t>(param.int64_param());
    } else {
      return invalid_argument("parameter '{}' must be a non-negative int64_param or uint64_param",
                              key);
    }
    if (Status s = apply_triton_scheduling(key, value, request); !s.is_ok()) return s;
  }
  bool has_text_input = false;
  SamplingInputs sampling;
  for (int i = 0; i < wire.inputs_size(); ++i) {
    TensorValues t;
    if (Status s = decode_input(wire, i, t); !s.is_ok()) return s;
    has_text_input = has_text_input || t.name == "text_input";
    if (Status s = apply_input(t, request, options, sampling); !s.is_ok()) return s;
  }
  if (!has_text_input)
    return {StatusCode::kInvalidArgument, "expected input 'text_input' is missing"};
  if (Status s = guide_from_trtllm(sampling.guide_type, sampling.guide, request.guide); !s.is_ok())
    return s;
  // TensorRT-LLM decodes greedily unless top_k or top_p asks for sampling; 0 turns either off.
  const int32_t top_k = sampling.top_k.value_or(0);
  const float top_p = sampling.top_p.value_or(0.0f);
  // top_k 1 rather than temperature 0, so that a given temperature is still validated.
  request.sampling.top_k = top_k == 0 && top_p == 0.0f ? 1 : top_k;
  request.sampling.top_p = top_p == 0.0f ? 1.0f : top_p;
  request.include_stop_str_in_output = true;
  return Status::ok();
}

std::string encode_raw_bytes(std::string_view element) {
  std::string out(4 + element.size(), '\0');
  const auto length = static_cast<uint32_t>(element.size());
  std::memcpy(out.data(), &length, 4);
  std::memcpy(out.data() + 4, element.data(), element.size());
  return out;
}

void fill_text_response(std::string_view model_name, const InferOptions& options,
                        std::string_view text, std::span<const float> logprobs,
                        inference::ModelInferResponse& response) {
  response.set_model_name(std::string(model_name));
  response.set_model_version("1");
  response.set_id(options.id);
  auto* out = response.add_outputs();
  out->set_name(std::string(kTextOutput));
  out->set_datatype("BYTES");
  out->add_shape(1);
  out->add_shape(1);
  response.add_raw_output_contents(encode_raw_bytes(text));
  if (!options.has_logprobs) return;
  const auto add_fp32 = [&](const char* name, std::vector<int64_t> shape,
                            std::span<const float> values) {
    auto* t = response.add_outputs();
    t->set_name(name);
    t->set_datatype("FP32");
    for (int64_t d : shape) t->add_shape(d);
    std::string raw(values.size() * sizeof(float), '\0');  // little-endian, as Triton's raw form
    std::memcpy(raw.data(), values.data(), raw.size());
    response.add_raw_output_contents(std::move(raw));
  };
  const float sum = std::accumulate(logprobs.begin(), logprobs.end(), 0.0f);
  add_fp32("cum_log_probs", {1, 1}, std::span<const float>(&sum, 1));
  add_fp32("output_log_probs", {1, 1, static_cast<int64_t>(logprobs.size())}, logprobs);
}

}  // namespace llmserve::grpc_frontend
