// Sampler: chooses the next token of one sequence from one row of logits, on the CPU.
//
// This is the reference implementation: a GPU sampler is checked against it (same rules, same
// Philox draw, so the same token up to float rounding at a boundary). sample() applies these
// rules, in this order:
//   1. logprobs (if params.logprobs >= 0) are the log-softmax of the RAW logits: the model's own
//      distribution before penalties, masking, temperature or truncation (vLLM v1's default).
//      Top alternatives are ordered by logprob descending, ties to the lowest token id.
//   2. min_tokens: while state.num_generated() < params.min_tokens, every stop_token_id and, unless
//      params.ignore_eos, every eos id is set to -inf: exactly the tokens that would end the
//      sequence (stop_rules.h). ignore_eos only means eos does not end the sequence; it never
//      masks eos by itself. (Before this, logit_bias is added.)
//   2b. Structured output (params.grammar): every token the grammar cannot take next is set to
//      -inf (GrammarMatcher::fill_next_token_bitmask; eos only where the grammar may end).
//   2c. bad_words: the last token of each word whose other tokens end the generated output so far
//      (all of a one-token word) is set to -inf (banned_tokens()).
//   3. Penalties. Repetition (HF/CTRL) over the set of prompt + generated tokens:
//      logit > 0 ? logit / p : logit * p. Then, over generated tokens only (OpenAI):
//      logit -= count * frequency_penalty + (count > 0 ? presence_penalty : 0).
//   4. temperature == 0: argmax, ties to the lowest id (rule 5 cannot change the argmax, so it is
//      skipped). Otherwise every logit is divided by the temperature.
//   5. Truncation, on the tokens still finite, in the total order (logit desc, id asc): top-k keeps
//      exactly k tokens; then top-p keeps the smallest prefix whose probability (renormalised over
//      the top-k survivors) reaches top_p, at least one token; then min-p drops tokens whose
//      probability is < min_p * the largest probability. Dropped tokens become -inf.
//   6. Draw: u = philox_uniform(state.seed(), state.num_generated()) (philox.h), and the token is
//      the first, in token-id order, at which the cumulative softmax of the processed logits
//      exceeds u. The result depends only on (logits, params, state), never on batch or thread.
// Cost: O(V) passes. top-k: one scan with a k-entry heap (O(V log k)) for k <= 1024, else
// nth_element. top-p: a heap scan for the first 256 tokens of the order; only if they hold less
// than top_p does it select and sort a growing prefix (1024, 4096, ...), so O(m log m) for a
// nucleus of m tokens. Top logprobs: an n-entry heap. The draw: one fp32 exp per token.
//
// Preconditions: logits hold no NaN or +inf (one reaching the draw throws Error(kInternal)). A row
// where rules 2-5 leave no finite logit throws Error(kInternal).
//
// Thread-safety: sample(), process_logits() and draw_token() are pure functions of their
// arguments and safe to call concurrently on different logits rows. A SamplingState belongs to one
// sequence and is not synchronised: the engine thread alone reads and updates it.
#pragma once

#include "backend/row_sampling.h"

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/sampling_params.h"
#include "grammar/matcher.h"

namespace llmserve {

struct TokenLogprob {
  int32_t token_id = 0;
  float logprob = 0.0f;
};

struct SampleResult {
  int32_t token_id = 0;
  float logprob = 0.0f;  // raw log-softmax of token_id; 0 unless requested
  int32_t rank = 0;      // 1 + tokens with a larger raw logit; 0 unless logprobs were requested
  std::vector<TokenLogprob> top_logprobs;  // params.logprobs entries (fewer if vocab is smaller)
};

// What the sampler needs to remember about one sequence between steps.
// Invariant: num_generated() == sum of output_token_counts() values.
class SamplingState {
 public:
  // seed() is params.seed if set, else default_seed (the engine draws one per request). The prompt
  // is kept (as a sorted set of distinct ids) only when params.repetition_penalty != 1.
  SamplingState(const SamplingParams& params, std::span<const int32_t> prompt_ids,
                uint64_t default_seed);

  // Records a sampled (and accepted) token; advances the rng step and the grammar. Throws
  // Error(kInternal) for a token the grammar refuses (the sampler never draws one).
  void on_token(int32_t token_id);
  // The request's position in its grammar (params.grammar), or null.
  const grammar::GrammarMatcher* matcher() const { return matcher_.get(); }

  int32_t num_generated() const { return num_generated_; }
  uint64_t seed() const { return seed_; }
  // Distinct prompt token ids, ascending; empty when the repetition penalty is off.
  std::span<const int32_t> prompt_token_set() const { return prompt_token_set_; }
  // Generated token id -> how many times it was generated.
  const std::unordered_map<int32_t, int32_t>& output_token_counts() const {
    return output_token_counts_;
  }
  // The generated tokens in order, kept only when params.bad_words is set (else empty).
  std::span<const int32_t> output_tokens() const { return output_tokens_; }

 private:
  uint64_t seed_ = 0;
  int32_t num_generated_ = 0;
  std::vector<int32_t> prompt_token_set_;
  std::unordered_map<int32_t, int32_t> output_token_counts_;
  bool keeps_output_tokens_ = false;
  std::vector<int32_t> output_tokens_;
  // Shared by copies (only tests copy a Sequence; the engine moves them): a copy advancing it
  // would advance the original too.
  std::shared_ptr<grammar::GrammarMatcher> matcher_;
};

// Rule 2c: the tokens bad_words forbids next, given the output so far (duplicates possible).
void banned_tokens(const SamplingParams& params, const SamplingState& state,
                   std::vector<int32_t>& out);

// Samples the next token. logits: (vocab,) fp32, used as scratch (contents afterwards
// unspecified). eos_token_ids: the model's end-of-sequence ids (several for e.g. Llama 3, empty for
// none), the same list stop_rules.h's check_finish() gets. Throws Error(kInternal) if no token can
// be sampled and Error(kOutOfRange) if a prompt/generated/eos id is outside the vocabulary.
SampleResult sample(std::span<float> logits, const SamplingParams& params,
                    const SamplingState& state, std::span<const int32_t> eos_token_ids);

// The same for a model with at most one eos id. (Pass std::nullopt, not {}, for "none": {} would
// match both overloads.)
SampleResult sample(std::span<float> logits, const SamplingParams& params,
                    const SamplingState& state, std::optional<int32_t> eos_token_id);

// Rule 1 alone for a token the sampler did not choose (a prompt token's logprobs,
// SamplingParams::prompt_logprobs): its raw log-softmax and rank in `logits` (vocab,) and the
// `num_top` most likely tokens. Throws Error(kOutOfRange) for an id outside the vocabulary.
SampleResult score_token(std::span<const float> logits, int32_t token_id, int32_t num_top);

// Rules 2-5 in place: afterwards logits holds the (temperature-scaled, unless greedy) logits of
// the tokens that may be chosen and -inf everywhere else. Exposed for tests and as the oracle of a
// GPU port.
void process_logits(std::span<float> logits, const SamplingParams& params,
                    const SamplingState& state, std::span<const int32_t> eos_token_ids);

// Rule 6: the token at which the cumulative softmax(logits), walked in token-id order, first
// exceeds u. u in [0, 1). logits: (vocab,), -inf entries are never chosen; overwritten (scratch)
// with the unnormalised probabilities exp(logit - max logit).
int32_t draw_token(std::span<float> logits, double u);

// Rule 4's greedy pick: index of the largest logit, ties to the lowest id.
int32_t argmax_token(std::span<const float> logits);

// The backend-sampling form of one draw (Backend::sample_rows): the same rules as sample() for a
// request without logprobs — its min-token masks and penalties as TokenAdjustments appended to
// `adjustments` (one entry per token), its rule-5 parameters, and u from the same Philox stream.
RowSampling make_row_sampling(const SamplingParams& params, const SamplingState& state,
                              std::span<const int32_t> eos_token_ids,
                              std::vector<TokenAdjustment>& adjustments);

}  // namespace llmserve
