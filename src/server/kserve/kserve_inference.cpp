// KServe v2 /infer and Triton's /generate and /generate_stream: parse → GenerationService::start
// → GenerationPump (server/generation_pump.h) → one JSON reply or one SSE event per chunk
// (docs/server.md). /infer also speaks the binary tensor data extension (§3.6, binary_tensors.h).
#include <numeric>

#include "common/logging.h"
#include "server/http/exchange_pump.h"
#include "server/http/status_mapping.h"
#include "server/kserve/binary_tensors.h"
#include "server/kserve/ensemble_tensors.h"
#include "server/kserve/kserve_frontend.h"

namespace llmserve::kserve {

using nlohmann::json;

namespace {

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// What a request has produced so far.
struct Output {
  std::string text;
  std::vector<float> logprobs;
  json as_value(const std::vector<float>& v) const {
    // Triton's generate rule: a one-element output is a bare scalar.
    if (v.size() == 1) return v[0];
    return v;
  }
};

void append(Output& out, const GenerateChunk& chunk, bool has_logprobs) {
  out.text += chunk.text;
  if (has_logprobs) {
    for (const auto& l : chunk.logprobs) out.logprobs.push_back(l.logprob);
  } else {
    out.logprobs.resize(out.logprobs.size() + chunk.token_ids.size(), 0.0f);
  }
}

// The generate extension's flat object: every output keyed by name.
json generate_object(const std::string& model, const std::string& version, const std::string& id,
                     const Output& out) {
  json j = {{"model_name", model}, {"model_version", version}};
  if (!id.empty()) j["id"] = id;
  j["text_output"] = out.text;
  j["batch_index"] = 0;
  j["sequence_index"] = 0;
  j["cum_log_probs"] = std::accumulate(out.logprobs.begin(), out.logprobs.end(), 0.0);
  j["output_log_probs"] = out.as_value(out.logprobs);
  j["context_logits"] = 0.0;
  j["generation_logits"] = 0.0;
  return j;
}

// /infer's response: the requested (or all) outputs as tensors of batch 1.
json infer_object(const std::string& model, const std::string& version, const ParsedRequest& parsed,
                  const Output& out) {
  json j = {{"model_name", model}, {"model_version", version}};
  if (!parsed.id.empty()) j["id"] = parsed.id;
  const int64_t n = static_cast<int64_t>(out.logprobs.size());
  auto tensor = [](const char* name, const char* type, json shape, json data) {
    return json{
        {"name", name}, {"datatype", type}, {"shape", std::move(shape)}, {"data", std::move(data)}};
  };
  std::map<std::string, json> all = {
      {"text_output", tensor("text_output", "BYTES", {1, 1}, {out.text})},
      {"cum_log_probs", tensor("cum_log_probs", "FP32", {1, 1},
                               {std::accumulate(out.logprobs.begin(), out.logprobs.end(), 0.0)})},
      {"output_log_probs", tensor("output_log_probs", "FP32", {1, 1, n}, out.logprobs)},
      {"context_logits", tensor("context_logits", "FP32", {1, 1, 1}, {0.0})},
      {"generation_logits", tensor("generation_logits", "FP32", {1, 1, 1, 1}, {0.0})},
      {"batch_index", tensor("batch_index", "INT32", {1, 1}, {0})},
      {"sequence_index", tensor("sequence_index", "INT32", {1, 1}, {0})},
  };
  json outputs = json::array();
  if (parsed.outputs.empty()) {
    for (const auto& t : ensemble_outputs()) outputs.push_back(all.at(std::string(t.name)));
  } else {
    for (const auto& name : parsed.outputs) outputs.push_back(all.at(name));
  }
  j["outputs"] = std::move(outputs);
  return j;
}

// /infer's reply: JSON, or with the binary tensor data extension the JSON header followed by the
// binary outputs' bytes.
void respond_infer(http::HttpExchange& ex, json response, const ParsedRequest& parsed) {
  std::string binary;
  const int num_binary = move_outputs_to_binary(
      response, [&parsed](const std::string& name) { return parsed.is_binary_output(name); },
      binary);
  if (num_binary == 0) return http::respond_json(ex, 200, dump(response));
  std::string body = dump(response);
  const std::string header_length = std::to_string(body.size());
  body += binary;
  ex.respond(200, "application/octet-stream", std::move(body),
             {{kInferenceHeaderContentLength, header_length}});
}

Status check_requested_outputs(const ParsedRequest& parsed) {
  for (const auto& name : parsed.outputs) {
    bool is_known = false;
    for (const auto& t : ensemble_outputs()) is_known = is_known || t.name == name;
    if (!is_known) return invalid_argument("unexpected inference output '{}' for model", name);
  }
  return Status::ok();
}

}  // namespace

Status KServeFrontend::parse_request(const http::HttpRequest& request, Api api,
                                     ParsedRequest& parsed) const {
  InferBody parts{request.body, {}};
  if (api == Api::kInfer) {
    std::optional<std::string> header_length;
    if (auto it = request.headers.find("inference-header-content-length");
        it != request.headers.end()) {
      header_length = it->second;
    }
    if (Status s = split_infer_body(request.body, header_length, parts); !s.is_ok()) return s;
  }
  json body;
  if (Status s = parse_json_body(std::string(parts.json), body); !s.is_ok()) return s;
  InputValues inputs;
  if (api == Api::kInfer) {
    if (Status s = parse_infer_inputs(body, inputs, parsed, parts.binary); !s.is_ok()) return s;
    if (Status s = check_requested_outputs(parsed); !s.is_ok()) return s;
  } else {
    if (Status s = parse_generate_inputs(body, inputs, parsed); !s.is_ok()) return s;
  }
  if (Status s = build_generate_request(inputs, parsed); !s.is_ok()) return s;
  if (api == Api::kInfer && parsed.is_stream) {
    return invalid_argument(
        "input 'stream' must be false for /infer; use /generate_stream to stream");
  }
  return Status::ok();
}

void KServeFrontend::add_inference_routes(http::Router& router) {
  for (const std::string prefix : {"/v2/models/{model}", "/v2/models/{model}/versions/{version}"}) {
    for (const auto& [path, api] : {std::pair{"/infer", Api::kInfer},
                                    {"/generate", Api::kGenerate},
                                    {"/generate_stream", Api::kGenerateStream}}) {
      router.add("POST", prefix + path,
                 [this, api = api](const ExchangePtr& ex) { infer(ex, api); });
    }
  }
}

void KServeFrontend::infer(const ExchangePtr& ex, Api api) {
  const auto arrival = Clock::now();
  const http::HttpRequest& request = ex->request();
  if (Status s = resolve_model(request); !s.is_ok()) return http::respond_status(*ex, s);
  auto parsed = std::make_shared<ParsedRequest>();
  parsed->request.arrival = arrival;
  parsed->request.model = model_.name;
  parsed->request.protocol = api == Api::kInfer ? "kserve" : "generate";
  Status s = state_.accepts_requests() ? parse_request(request, api, *parsed)
                                       : Status(StatusCode::kUnavailable,
                                                state_.is_draining ? "the server is shutting down"
                                                                   : "the model is not ready");
  std::shared_ptr<GenerationHandle> handle;
  if (s.is_ok()) s = service_.start(parsed->request, handle);
  if (!s.is_ok()) {
    http::respond_status(*ex, s);
    service_.reject(parsed->request, s);
    return;
  }
  LOG_DEBUG("request {}: {} tokens in, max_tokens {}", handle->id(),
            handle->prompt_token_ids().size(), parsed->request.sampling.max_tokens);
  if (api == Api::kGenerateStream) {
    reply_stream(ex, parsed, handle);
  } else {
    reply_unary(ex, api, parsed, handle);
  }
}

void KServeFrontend::reply_unary(const ExchangePtr& ex, Api api,
                                 std::shared_ptr<ParsedRequest> parsed,
                                 std::shared_ptr<GenerationHandle> handle) {
  auto out = std::make_shared<Output>();
  if (parsed->has_echo) out->text = std::get<std::string>(parsed->request.prompt);
  const std::string model = ex->request().param("model");
  http::pump_generation(
      ex, std::move(handle),
      [this, ex, api, parsed, out, model](GenerateChunk& chunk, GenerationHandle& generation) {
        const auto start = Clock::now();
        append(*out, chunk, parsed->has_logprobs);
        if (!chunk.is_final()) return;
        RequestRecord& record = generation.record();
        if (chunk.finish_reason == FinishReason::kError ||
            chunk.finish_reason == FinishReason::kCancelled) {
          http::respond_status(*ex, chunk.error.is_ok()
                                        ? Status(StatusCode::kCancelled, "request cancelled")
                                        : chunk.error);
        } else if (api == Api::kInfer) {
          respond_infer(*ex, infer_object(model, model_.version, *parsed, *out), *parsed);
        } else {
          http::respond_json(*ex, 200,
                             dump(generate_object(model, model_.version, parsed->id, *out)));
        }
        record.output_duration += Clock::now() - start;
      });
}

void KServeFrontend::reply_stream(const ExchangePtr& ex, std::shared_ptr<ParsedRequest> parsed,
                                  std::shared_ptr<GenerationHandle> handle) {
  ex->start_sse();
  auto echo = std::make_shared<std::string>(
      parsed->has_echo ? std::get<std::string>(parsed->request.prompt) : "");
  const std::string model = ex->request().param("model");
  http::pump_generation(
      ex, std::move(handle),
      [this, ex, parsed, echo, model](GenerateChunk& chunk, GenerationHandle& generation) {
        const auto start = Clock::now();
        Output piece;
        piece.text = std::move(*echo);
        echo->clear();
        append(piece, chunk, parsed->has_logprobs);
        RequestRecord& record = generation.record();
        if (!piece.text.empty())
          ex->send_event(dump(generate_object(model, model_.version, parsed->id, piece)));
        if (chunk.is_final()) {
          if (chunk.finish_reason == FinishReason::kError ||
              (chunk.finish_reason == FinishReason::kCancelled && !ex->is_client_gone())) {
            const std::string message =
                chunk.error.is_ok() ? "request cancelled" : chunk.error.message();
            ex->send_event(dump(json{{"error", message}}));
          }
          ex->end();
        }
        record.output_duration += Clock::now() - start;
      });
}

}  // namespace llmserve::kserve
