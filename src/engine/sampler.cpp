// Sampler implementation: rules 1-6 of sampler.h, one small function per rule.
//
// Everything works on one row of V logits. The only allocations are the candidate list for top-k /
// top-p (k entries for a small top-k, else up to V), the raw-logits copy when logprobs are asked
// for, and the n-entry heap for top logprobs. Exponentials are fp32; their sums accumulate in
// double so that a 152k-token vocabulary does not lose the tail.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "common/argmax.h"
#include "engine/philox.h"

namespace llmserve {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr size_t kFirstNucleusSize = 256;  // top-p first sorts this many; grows x4 until enough
constexpr size_t kNucleusGrowth = 4;
constexpr size_t kMaxHeapTopK = 1024;  // top-k up to this scans with a heap, above selects in place

// One token in the total order used everywhere: higher logit first, then lower id.
struct Candidate {
  float logit;
  int32_t token_id;
};

bool is_before(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.token_id < b.token_id);
}

// is_before as a type, so that std::sort / nth_element / the heap functions inline it.
struct IsBefore {
  bool operator()(const Candidate& a, const Candidate& b) const { return is_before(a, b); }
};

void check_token_id(int32_t token_id, size_t vocab_size) {
  if (token_id < 0 || static_cast<size_t>(token_id) >= vocab_size) {
    fail(StatusCode::kOutOfRange, "token id {} is outside the vocabulary (size {})", token_id,
         vocab_size);
  }
}

float max_logit(std::span<const float> logits) {
  float lmax = kNegInf;
  for (float l : logits) lmax = std::max(lmax, l);
  return lmax;
}

// Rule 2.
void apply_logit_bias(std::span<float> logits, const SamplingParams& params) {
  for (const LogitBias& b : params.logit_bias) {
    check_token_id(b.token, logits.size());
    logits[b.token] += b.bias;
  }
}

// Rule 2b: tokens the request's grammar cannot take next become -inf.
void mask_outside_grammar(std::span<float> logits, const SamplingState& state) {
  const grammar::GrammarMatcher* m = state.matcher();
  if (m == nullptr) return;
  thread_local std::vector<uint32_t> mask;
  mask.resize(static_cast<size_t>(m->mask_words()));
  m->fill_next_token_bitmask(mask);
  const size_t n = std::min(logits.size(), mask.size() * 32);
  // A word at a time: inside strings most words allow all 32 tokens, elsewhere most allow none.
  for (size_t w = 0; w * 32 < n; ++w) {
    const uint32_t bits = mask[w];
    const size_t first = w * 32, count = std::min<size_t>(32, n - first);
    if (bits == ~0u && count == 32) continue;
    if (bits == 0) {
      std::fill_n(logits.begin() + static_cast<std::ptrdiff_t>(first), count, kNegInf);
      continue;
    }
    for (size_t i = 0; i < count; ++i) {
      if ((bits >> i & 1u) == 0) logits[first + i] = kNegInf;
    }
  }
  for (size_t i = n; i < logits.size(); ++i) logits[i] = kNegInf;
}

// Rule 2c.
void mask_bad_words(std::span<float> logits, const SamplingParams& params,
                    const SamplingState& state) {
  if (params.bad_words.empty()) return;
  thread_local std::vector<int32_t> banned;
  banned.clear();
  banned_tokens(params, state, banned);
  for (int32_t id : banned) {
    check_token_id(id, logits.size());
    logits[id] = kNegInf;
  }
}

void mask_stop_tokens(std::span<float> logits, const SamplingParams& params,
                      const SamplingState& state, std::span<const int32_t> eos_token_ids) {
  if (state.num_generated() >= params.min_tokens) return;
  for (int32_t id : params.stop_token_ids) {
    check_token_id(id, logits.size());
    logits[id] = kNegInf;
  }
  if (params.ignore_eos) return;
  for (int32_t id : eos_token_ids) {
    check_token_id(id, logits.size());
    logits[id] = kNegInf;
  }
}

float repetition_penalized(float logit, float penalty) {
  return logit > 0.0f ? logit / penalty : logit * penalty;
}

// Rule 3. Each token is penalised once, whether it occurs in the prompt, the output or both.
void apply_penalties(std::span<float> logits, const SamplingParams& params,
                     const SamplingState& state) {
  const float rep = params.repetition_penalty;
  const std::span<const int32_t> prompt = state.prompt_token_set();
  if (rep != 1.0f) {
    for (int32_t id : prompt) {
      check_token_id(id, logits.size());
      logits[id] = repetition_penalized(logits[id], rep);
    }
  }
  for (const auto& [id, count] : state.output_token_counts()) {
    check_token_id(id, logits.size());
    float& logit = logits[id];
    if (rep != 1.0f && !std::binary_search(prompt.begin(), prompt.end(), id)) {
      logit = repetition_penalized(logit, rep);
    }
    logit -= static_cast<float>(count) * params.frequency_penalty;
    if (count > 0) logit -= params.presence_penalty;
  }
}

// Sets to -inf every token that comes after `last_kept` in the total order.
void mask_after(std::span<float> logits, const Candidate& last_kept) {
  for (size_t i = 0; i < logits.size(); ++i) {
    if (is_before(last_kept, {logits[i], static_cast<int32_t>(i)})) logits[i] = kNegInf;
  }
}

// The min(n, V) first tokens of the total order, first first: one scan with an n-entry heap whose
// front is the worst kept so far. O(V log n), no V-sized allocation.
std::vector<Candidate> first_n(std::span<const float> logits, size_t n) {
  std::vector<Candidate> heap;
  heap.reserve(std::min(n, logits.size()));
  for (size_t i = 0; i < logits.size() && n > 0; ++i) {
    const Candidate c{logits[i], static_cast<int32_t>(i)};
    if (heap.size() < n) {
      heap.push_back(c);
      std::push_heap(heap.begin(), heap.end(), IsBefore{});
    } else if (is_before(c, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), IsBefore{});
      heap.back() = c;
      std::push_heap(heap.begin(), heap.end(), IsBefore{});
    }
  }
  std::sort_heap(heap.begin(), heap.end(), IsBefore{});
  return heap;
}

// Every finite token, in id order.
std::vector<Candidate> finite_candidates(std::span<const float> logits) {
  std::vector<Candidate> candidates;
  candidates.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > kNegInf) candidates.push_back({logits[i], static_cast<int32_t>(i)});
  }
  return candidates;
}

// Top-p over `candidates`, whose first num_sorted entries are already the first ones of the total
// order, in order. Returns n such that candidates[0, n) is the nucleus: the shortest prefix whose
// weight sum exp(logit - lmax) reaches target; nullopt if all of them fall short. Only a growing
// prefix is ordered: each round selects the next chunk from the unsorted tail (nth_element) and
// sorts just that chunk.
std::optional<size_t> nucleus_size(std::vector<Candidate>& candidates, size_t num_sorted,
                                   float lmax, double target) {
  const auto at = [&](size_t i) { return candidates.begin() + static_cast<ptrdiff_t>(i); };
  const size_t num_candidates = candidates.size();
  double cumulative = 0.0;
  for (size_t j = 0;;) {
    for (; j < num_sorted; ++j) {
      cumulative += std::exp(candidates[j].logit - lmax);
      if (cumulative >= target) return j + 1;
    }
    if (num_sorted == num_candidates) return std::nullopt;
    const size_t next =
        std::min(num_candidates, std::max(num_sorted * kNucleusGrowth, kFirstNucleusSize));
    if (next < num_candidates)
      std::nth_element(at(num_sorted), at(next), at(num_candidates), IsBefore{});
    std::sort(at(num_sorted), at(next), IsBefore{});
    num_sorted = next;
  }
}

// Rule 5, top-p. `candidates` are the top-k survivors (num_sorted of them in order), or empty when
// top-k is off. Most nuclei are small, so without top-k the first kFirstNucleusSize tokens are
// tried by a heap scan before every token is collected.
void apply_top_p(std::span<float> logits, float top_p, std::vector<Candidate> candidates,
                 size_t num_sorted, bool has_top_k) {
  const float lmax = max_logit(logits);
  double total = 0.0;
  if (has_top_k) {
    for (const Candidate& c : candidates) total += std::exp(c.logit - lmax);
  } else {
    for (float l : logits) total += std::exp(l - lmax);
    candidates = first_n(logits, kFirstNucleusSize);
    num_sorted = candidates.size();
  }
  const double target = static_cast<double>(top_p) * total;
  std::optional<size_t> num_kept = nucleus_size(candidates, num_sorted, lmax, target);
  if (!num_kept && !has_top_k && candidates.size() < logits.size()) {
    candidates = finite_candidates(logits);
    num_kept = nucleus_size(candidates, 0, lmax, target);
  }
  // Rounding can leave the whole set just short of target: then every candidate stays.
  if (!candidates.empty()) mask_after(logits, candidates[num_kept.value_or(candidates.size()) - 1]);
}

// Rule 5, top-k then top-p. A small k scans with a heap; a large k collects the finite tokens and
// selects with nth_element.
void apply_top_k_top_p(std::span<float> logits, const SamplingParams& params) {
  const bool has_top_k = params.top_k > 0 && static_cast<size_t>(params.top_k) < logits.size();
  const bool has_top_p = params.top_p < 1.0f;
  std::vector<Candidate> candidates;
  size_t num_sorted = 0;
  if (has_top_k) {
    const auto top_k = static_cast<size_t>(params.top_k);
    if (top_k <= kMaxHeapTopK) {
      candidates = first_n(logits, top_k);  // may end in -inf tokens; they stay -inf
      num_sorted = candidates.size();
    } else {
      candidates = finite_candidates(logits);
      if (top_k < candidates.size()) {
        std::nth_element(candidates.begin(), candidates.begin() + static_cast<ptrdiff_t>(top_k),
                         candidates.end(), IsBefore{});
        candidates.resize(top_k);
      }
    }
    if (!has_top_p && !candidates.empty()) {
      mask_after(logits, *std::max_element(candidates.begin(), candidates.end(), IsBefore{}));
    }
  }
  if (has_top_p) apply_top_p(logits, params.top_p, std::move(candidates), num_sorted, has_top_k);
}

// Rule 5, min-p: p_i < min_p * p_max  <=>  l_i - l_max < log(min_p).
void apply_min_p(std::span<float> logits, float min_p) {
  if (min_p <= 0.0f) return;
  const float lmax = max_logit(logits);
  if (lmax == kNegInf) return;
  const double threshold = lmax + std::log(static_cast<double>(min_p));
  for (float& l : logits) {
    if (l < threshold) l = kNegInf;
  }
}

// Rule 1: raw log-softmax of the sampled token, its rank and the top `num_top` alternatives.
void fill_logprobs(std::span<const float> raw, int32_t num_top, SampleResult& result) {
  const float lmax = max_logit(raw);
  const float chosen = raw[static_cast<size_t>(result.token_id)];
  double sum = 0.0;
  int32_t num_above = 0;
  for (float l : raw) {
    sum += std::exp(l - lmax);
    num_above += l > chosen ? 1 : 0;
  }
  const double log_total = lmax + std::log(sum);
  result.logprob = static_cast<float>(chosen - log_total);
  result.rank = 1 + num_above;
  result.top_logprobs.clear();
  for (const Candidate& c : first_n(raw, static_cast<size_t>(num_top))) {
    result.top_logprobs.push_back({c.token_id, static_cast<float>(c.logit - log_total)});
  }
}

[[noreturn]] void fail_no_token() {
  fail(StatusCode::kInternal,
       "sampler: no token can be sampled (every logit is -inf, or one is NaN or +inf)");
}

}  // namespace

SamplingState::SamplingState(const SamplingParams& params, std::span<const int32_t> prompt_ids,
                             uint64_t default_seed)
    : seed_(params.seed.value_or(default_seed)),
      matcher_(params.grammar != nullptr ? std::make_shared<grammar::GrammarMatcher>(params.grammar)
                                         : nullptr) {
  keeps_output_tokens_ = !params.bad_words.empty();
  if (params.repetition_penalty != 1.0f) {
    prompt_token_set_.assign(prompt_ids.begin(), prompt_ids.end());
    std::sort(prompt_token_set_.begin(), prompt_token_set_.end());
    prompt_token_set_.erase(std::unique(prompt_token_set_.begin(), prompt_token_set_.end()),
                            prompt_token_set_.end());
  }
}

void SamplingState::on_token(int32_t token_id) {
  ++output_token_counts_[token_id];
  ++num_generated_;
  if (keeps_output_tokens_) output_tokens_.push_back(token_id);
  if (matcher_ != nullptr && !matcher_->accept_token(token_id)) {
    fail(StatusCode::kInternal, "token {} is outside the request's grammar", token_id);
  }
}

void process_logits(std::span<float> logits, const SamplingParams& params,
                    const SamplingState& state, std::span<const int32_t> eos_token_ids) {
  apply_logit_bias(logits, params);
  mask_stop_tokens(logits, params, state, eos_token_ids);
  mask_outside_grammar(logits, state);
  mask_bad_words(logits, params, state);
  apply_penalties(logits, params, state);
  if (params.is_greedy()) return;
  if (params.temperature != 1.0f) {
    for (float& l : logits) l /= params.temperature;
  }
  apply_top_k_top_p(logits, params);
  apply_min_p(logits, params.min_p);
}

int32_t argmax_token(std::span<const float> logits) {
  const int64_t best = argmax_first(logits.data(), static_cast<int64_t>(logits.size()));
  // Every token masked (or NaN): nothing may be drawn.
  if (best < 0 || !(logits[static_cast<size_t>(best)] > kNegInf)) fail_no_token();
  return static_cast<int32_t>(best);
}

int32_t draw_token(std::span<float> logits, double u) {
  const float lmax = max_logit(logits);
  if (lmax == kNegInf) fail_no_token();
  double total = 0.0;
  for (float& l : logits) {
    l = std::exp(l - lmax);
    total += l;
  }
  if (!std::isfinite(total)) fail_no_token();

  const double target = u * total;
  double cumulative = 0.0;
  int32_t last_positive = -1;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] <= 0.0f) continue;
    cumulative += logits[i];
    last_positive = static_cast<int32_t>(i);
    if (cumulative > target) return last_positive;
  }
  // u * total can round up to the full sum; the last token with weight then takes the draw.
  return last_positive;
}

SampleResult score_token(std::span<const float> logits, int32_t token_id, int32_t num_top) {
  if (token_id < 0 || static_cast<size_t>(token_id) >= logits.size()) {
    fail(StatusCode::kOutOfRange, "token {} is outside the vocabulary of {}", token_id,
         logits.size());
  }
  SampleResult result;
  result.token_id = token_id;
  fill_logprobs(logits, num_top, result);
  return result;
}

SampleResult sample(std::span<float> logits, const SamplingParams& params,
                    const SamplingState& state, std::span<const int32_t> eos_token_ids) {
  std::vector<float> raw;
  if (params.has_logprobs()) raw.assign(logits.begin(), logits.end());

  process_logits(logits, params, state, eos_token_ids);
  SampleResult result;
  if (params.is_greedy()) {
    result.token_id = argmax_token(logits);
  } else {
    const double u = philox_uniform(state.seed(), static_cast<uint64_t>(state.num_generated()));
    result.token_id = draw_token(logits, u);
  }
  if (params.has_logprobs()) fill_logprobs(raw, params.logprobs, result);
  return result;
}

SampleResult sample(std::span<float> logits, const SamplingParams& params,
                    const SamplingState& state, std::optional<int32_t> eos_token_id) {
  if (!eos_token_id) return sample(logits, params, state, std::span<const int32_t>{});
  return sample(logits, params, state, std::span<const int32_t>(&*eos_token_id, 1));
}

void banned_tokens(const SamplingParams& params, const SamplingState& state,
                   std::vector<int32_t>& out) {
  const std::span<const int32_t> output = state.output_tokens();
  for (const std::vector<int32_t>& word : params.bad_words) {
    const size_t prefix = word.size() - 1;
    if (prefix > output.size()) continue;
    if (std::equal(word.begin(), word.end() - 1,
                   output.end() - static_cast<std::ptrdiff_t>(prefix)))
      out.push_back(word.back());
  }
}

RowSampling make_row_sampling(const SamplingParams& params, const SamplingState& state,
                              std::span<const int32_t> eos_token_ids,
                              std::vector<TokenAdjustment>& adjustments) {
  RowSampling row;
  row.temperature = params.temperature;
  row.top_k = params.top_k;
  row.top_p = params.top_p;
  row.min_p = params.min_p;
  row.uniform = philox_uniform(state.seed(), static_cast<uint64_t>(state.num_generated()));
  row.repetition_penalty = params.repetition_penalty;
  row.frequency_penalty = params.frequency_penalty;
  row.presence_penalty = params.presence_penalty;
  row.first_adjustment = static_cast<int32_t>(adjustments.size());
  // Rule 3: one entry per token — the prompt set (kept only when the repetition penalty is on),
  // then the generated tokens not in it.
  if (params.repetition_penalty != 1.0f || params.frequency_penalty != 0.0f ||
      params.presence_penalty != 0.0f) {
    const std::span<const int32_t> prompt = state.prompt_token_set();  // sorted, unique
    for (int32_t id : prompt) adjustments.push_back({id, 0, TokenAdjustment::kInPrompt, 0.0f});
    for (const auto& [id, count] : state.output_token_counts()) {
      const auto it = std::lower_bound(prompt.begin(), prompt.end(), id);
      if (it != prompt.end() && *it == id) {
        adjustments[static_cast<size_t>(row.first_adjustment + (it - prompt.begin()))]
            .output_count = count;
      } else {
        adjustments.push_back({id, count, 0, 0.0f});
      }
    }
  }
  // The row's entry of token `id` (one per token: the device applies them in parallel).
  const auto entry = [&](int32_t id) -> TokenAdjustment& {
    for (size_t i = static_cast<size_t>(row.first_adjustment); i < adjustments.size(); ++i) {
      if (adjustments[i].token == id) return adjustments[i];
    }
    return adjustments.emplace_back(TokenAdjustment{.token = id});
  };
  // Rule 2: before min_tokens, stop tokens (and eos unless ignored) cannot be drawn.
  if (state.num_generated() < params.min_tokens) {
    for (int32_t id : params.stop_token_ids) entry(id).flags |= TokenAdjustment::kMasked;
    if (!params.ignore_eos) {
      for (int32_t id : eos_token_ids) entry(id).flags |= TokenAdjustment::kMasked;
    }
  }
  for (const LogitBias& b : params.logit_bias) entry(b.token).bias = b.bias;
  // Rule 2c.
  if (!params.bad_words.empty()) {
    thread_local std::vector<int32_t> banned;
    banned.clear();
    banned_tokens(params, state, banned);
    for (int32_t id : banned) entry(id).flags |= TokenAdjustment::kMasked;
  }
  row.num_adjustments = static_cast<int32_t>(adjustments.size()) - row.first_adjustment;
  return row;
}

}  // namespace llmserve
