#include "bench/offline.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "common/status.h"

namespace llmserve::bench {
namespace {

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::vector<Request> make_requests(const Engine& engine, const OfflineOptions& o) {
  const int32_t vocab = engine.model_config().vocab_size;
  const auto& eos = engine.model_config().eos_token_ids;
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int32_t> token(0, vocab - 1);
  std::vector<Request> requests(static_cast<size_t>(o.num_requests));
  const int32_t period = o.repeat_period > 0 ? std::min(o.repeat_period, o.input_len) : o.input_len;
  for (auto& r : requests) {
    while (static_cast<int32_t>(r.prompt_token_ids.size()) < period) {
      int32_t t = token(rng);
      if (std::find(eos.begin(), eos.end(), t) == eos.end()) r.prompt_token_ids.push_back(t);
    }
    for (int32_t i = period; i < o.input_len; ++i)
      r.prompt_token_ids.push_back(r.prompt_token_ids[static_cast<size_t>(i - period)]);
    r.sampling.max_tokens = o.output_len;
    r.sampling.ignore_eos = o.grammar == nullptr;  // a grammar decides where eos may come
    r.sampling.grammar = o.grammar;
    r.sampling.temperature = o.temperature;
  }
  return requests;
}

struct Trace {
  Clock::time_point submitted;
  std::vector<Clock::time_point> token_times;
  bool is_error = false;
};

void collect(RequestStream& stream, Trace& trace) {
  RequestOutput out;
  while (stream.next(out)) {
    for (size_t i = 0; i < out.token_ids.size(); ++i) trace.token_times.push_back(out.emitted);
    if (out.is_final()) {
      trace.is_error = out.finish_reason == FinishReason::kError ||
                       out.finish_reason == FinishReason::kCancelled;
      return;
    }
  }
}

std::shared_ptr<RequestStream> submit_or_throw(Engine& engine, const Request& r) {
  std::shared_ptr<RequestStream> stream;
  if (Status s = engine.submit(r, stream); !s.is_ok()) throw Error(s);
  return stream;
}

OfflineResult summarize_run(const std::string& mode, const std::vector<Trace>& traces,
                            Clock::time_point start, Clock::time_point end,
                            const OfflineOptions& o) {
  OfflineResult r;
  r.mode = mode;
  r.num_requests = static_cast<int32_t>(traces.size());
  r.duration_s = seconds(end - start);
  std::vector<double> ttft, itl, e2e;
  for (const Trace& t : traces) {
    if (t.is_error || t.token_times.empty()) {
      r.num_errors++;
      continue;
    }
    r.num_output_tokens += static_cast<int64_t>(t.token_times.size());
    r.num_input_tokens += o.input_len;
    ttft.push_back(seconds(t.token_times.front() - t.submitted));
    e2e.push_back(seconds(t.token_times.back() - t.submitted));
    for (size_t i = 1; i < t.token_times.size(); ++i)
      itl.push_back(seconds(t.token_times[i] - t.token_times[i - 1]));
  }
  r.requests_per_s = (r.num_requests - r.num_errors) / r.duration_s;
  r.output_tokens_per_s = static_cast<double>(r.num_output_tokens) / r.duration_s;
  r.total_tokens_per_s =
      static_cast<double>(r.num_output_tokens + r.num_input_tokens) / r.duration_s;
  r.ttft = summarize(ttft);
  r.itl = summarize(itl);
  r.e2e = summarize(e2e);
  return r;
}

}  // namespace

LatencySummary summarize(std::vector<double> samples) {
  LatencySummary s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  auto pct = [&](double p) {
    const double idx = p * static_cast<double>(samples.size() - 1);
    const size_t lo = static_cast<size_t>(idx);
    const size_t hi = std::min(lo + 1, samples.size() - 1);
    return samples[lo] + (samples[hi] - samples[lo]) * (idx - static_cast<double>(lo));
  };
  s.mean =
      std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(samples.size());
  s.p50 = pct(0.50);
  s.p90 = pct(0.90);
  s.p99 = pct(0.99);
  return s;
}

std::string describe(const StepBreakdown& s) {
  if (s.num_steps == 0) return "no steps";
  const auto n = static_cast<double>(s.num_steps);
  std::string out =
      fmt::format("{} steps; host a step: schedule {:.3f} ms, runner {:.3f} ms, update {:.3f} ms",
                  s.num_steps, s.schedule_ms / n, s.runner_ms / n, s.update_ms / n);
  if (s.device.num_steps > 0) {
    const auto dn = static_cast<double>(s.device.num_steps);
    const double all = s.device.busy_ms + s.device.idle_ms;
    out += fmt::format("; device a step: busy {:.3f} ms, idle {:.3f} ms between steps ({:.1f} %)",
                       s.device.busy_ms / dn, s.device.idle_ms / dn,
                       all > 0 ? 100.0 * s.device.idle_ms / all : 0.0);
  }
  if (s.num_spec_decodes > 0) {
    out += fmt::format(
        "; speculative: {} drafts in {} decodes, {} accepted ({:.1f} %, {:.2f} tokens a decode)",
        s.num_draft_tokens, s.num_spec_decodes, s.num_accepted_tokens,
        100.0 * static_cast<double>(s.num_accepted_tokens) /
            static_cast<double>(s.num_draft_tokens),
        1.0 + static_cast<double>(s.num_accepted_tokens) / static_cast<double>(s.num_spec_decodes));
  }
  return out;
}

nlohmann::json to_json(const OfflineResult& r) {
  auto lat = [](const LatencySummary& l) {
    return nlohmann::json{{"mean_ms", l.mean * 1e3},
                          {"p50_ms", l.p50 * 1e3},
                          {"p90_ms", l.p90 * 1e3},
                          {"p99_ms", l.p99 * 1e3}};
  };
  nlohmann::json steps = {{"num_steps", r.steps.num_steps},
                          {"schedule_ms", r.steps.schedule_ms},
                          {"runner_ms", r.steps.runner_ms},
                          {"update_ms", r.steps.update_ms}};
  if (r.steps.num_spec_decodes > 0) {
    steps["speculative"] = {{"num_spec_decodes", r.steps.num_spec_decodes},
                            {"num_draft_tokens", r.steps.num_draft_tokens},
                            {"num_accepted_tokens", r.steps.num_accepted_tokens}};
  }
  if (r.steps.device.num_steps > 0) {
    steps["device"] = {{"num_steps", r.steps.device.num_steps},
                       {"busy_ms", r.steps.device.busy_ms},
                       {"idle_ms", r.steps.device.idle_ms}};
  }
  return {{"mode", r.mode},
          {"num_requests", r.num_requests},
          {"num_errors", r.num_errors},
          {"duration_s", r.duration_s},
          {"requests_per_s", r.requests_per_s},
          {"output_tokens_per_s", r.output_tokens_per_s},
          {"total_tokens_per_s", r.total_tokens_per_s},
          {"num_input_tokens", r.num_input_tokens},
          {"num_output_tokens", r.num_output_tokens},
          {"ttft", lat(r.ttft)},
          {"itl", lat(r.itl)},
          {"e2e", lat(r.e2e)},
          {"steps", steps}};
}

// The engine publishes its counters after each step, so the last one may trail the last token
// by a moment: wait (briefly) until nothing is in flight.
EngineStats settled_stats(const Engine& engine) {
  EngineStats s = engine.stats();
  for (int i = 0; i < 1000 && (s.num_running > 0 || s.num_waiting > 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    s = engine.stats();
  }
  return s;
}

StepBreakdown difference(const EngineStats& a, const EngineStats& b) {
  StepBreakdown d;
  d.num_steps = b.num_steps - a.num_steps;
  d.schedule_ms = b.schedule_ms - a.schedule_ms;
  d.runner_ms = b.runner_ms - a.runner_ms;
  d.update_ms = b.update_ms - a.update_ms;
  d.device.num_steps = b.device_steps.num_steps - a.device_steps.num_steps;
  d.device.busy_ms = b.device_steps.busy_ms - a.device_steps.busy_ms;
  d.device.idle_ms = b.device_steps.idle_ms - a.device_steps.idle_ms;
  d.num_spec_decodes = b.num_spec_decodes - a.num_spec_decodes;
  d.num_draft_tokens = b.num_draft_tokens - a.num_draft_tokens;
  d.num_accepted_tokens = b.num_accepted_tokens - a.num_accepted_tokens;
  return d;
}

std::vector<OfflineResult> run_offline(Engine& engine, const OfflineOptions& o) {
  if (o.num_requests <= 0)
    fail(StatusCode::kInvalidArgument, "--num-requests must be > 0, got {}", o.num_requests);
  if (o.input_len <= 0)
    fail(StatusCode::kInvalidArgument, "--input-len must be > 0, got {}", o.input_len);
  if (o.output_len <= 0)
    fail(StatusCode::kInvalidArgument, "--output-len must be > 0, got {}", o.output_len);
  if (o.repeat_period < 0)
    fail(StatusCode::kInvalidArgument, "--repeat-period must be >= 0, got {}", o.repeat_period);
  auto requests = make_requests(engine, o);
  for (int32_t i = 0; i < std::min(o.num_warmup, o.num_requests); ++i) {
    Trace ignored;
    collect(*submit_or_throw(engine, requests[static_cast<size_t>(i)]), ignored);
  }
  std::vector<OfflineResult> results;
  {
    std::vector<Trace> traces(requests.size());
    std::vector<std::shared_ptr<RequestStream>> streams;
    const EngineStats before = settled_stats(engine);
    const auto start = Clock::now();
    for (size_t i = 0; i < requests.size(); ++i) {
      traces[i].submitted = Clock::now();
      streams.push_back(submit_or_throw(engine, requests[i]));
    }
    for (size_t i = 0; i < streams.size(); ++i) collect(*streams[i], traces[i]);
    results.push_back(summarize_run("batched", traces, start, Clock::now(), o));
    results.back().steps = difference(before, settled_stats(engine));
  }
  if (o.baseline_sequential) {
    std::vector<Trace> traces(requests.size());
    const EngineStats before = settled_stats(engine);
    const auto start = Clock::now();
    for (size_t i = 0; i < requests.size(); ++i) {
      traces[i].submitted = Clock::now();
      collect(*submit_or_throw(engine, requests[i]), traces[i]);
    }
    results.push_back(summarize_run("sequential", traces, start, Clock::now(), o));
    results.back().steps = difference(before, settled_stats(engine));
  }
  return results;
}

}  // namespace llmserve::bench
