// Speculative decoding: guess a decoding sequence's next tokens cheaply, then check all the
// guesses in one forward pass of the model, so a step can yield several tokens for one read of
// the weights (a batch-1 decode step is bound by that read).
//
// Proposal, prompt lookup (kNgram, here): the longest suffix of the sequence's tokens (n tokens, n
// from ngram_max down to ngram_min) that also occurs earlier in them is looked up, latest
// occurrence first, and the tokens that followed that occurrence are proposed, up to k of them. It
// costs no model and wins where outputs copy from their context (code edits, summaries, extraction,
// repetitive text).
// Proposal, draft model (kDraft, Engine::propose_with_draft): a small model with the same
// vocabulary decodes k tokens greedily, one batched forward per token, with a KV cache of its own
// that shares the target's block tables (same block ids and slots, so blocks, prefix reuse,
// trimming and preemption need no second bookkeeping). Sequence::num_draft_computed_tokens says
// how much of it is valid; a proposal first feeds the draft what it has not seen (the whole prompt
// the first time, then the last step's tokens).
//
// Verification (ModelRunner::step, verify_drafts in sampler.h): the step feeds the last sampled
// token followed by the d drafts (d <= k) and takes logits at all d + 1 positions. Position j's
// token is chosen exactly as a normal decode step would choose it at that position — same rules,
// same Philox draw (counter = tokens generated so far), the sampling state advanced by the drafts
// before it — and the drafts are accepted while they equal what was chosen. The first mismatch's
// choice (or, with every draft accepted, position d's) is the step's last token. So a step yields
// 1 to d + 1 tokens, and the output is token for token the output without speculation, greedy or
// seeded sampling alike: the drafts only decide how many positions are checked per step. (For a
// deterministic proposal this "sample and compare" accepts draft x with probability p(x), what
// rejection sampling would.) The KV cache keeps the verified positions; the slots of rejected
// drafts are overwritten later and blocks past the accepted tokens go back to the pool
// (BlockPool::trim).
//
// Back-off (Scheduler::update): a sequence whose last n verify steps accepted nothing decodes the
// next 2^n - 1 steps (at most 63) without drafts; an accepted draft resets it. Text the proposer
// cannot predict then costs a few verify steps, not one per token.
//
// Policy (Scheduler): only sequences in a plain decode speculate — not with a grammar (its matcher
// cannot be advanced tentatively), not with an explicit per-request opt-out — and only while at
// most max_batch_size sequences decode: past that a step is no longer bound by the weight read and
// verifying guesses costs more than it saves (the automatic off-switch).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace llmserve {

enum class SpeculativeMode { kNone, kNgram, kDraft };

// "none" / "ngram" / "draft"; kInvalidArgument naming the accepted values otherwise.
Status parse_speculative_mode(std::string_view name, SpeculativeMode& mode);
const char* speculative_mode_name(SpeculativeMode mode);

struct SpeculativeConfig {
  SpeculativeMode mode = SpeculativeMode::kNone;
  std::filesystem::path draft_model_dir;  // kDraft: the draft model (same vocabulary)
  int32_t num_speculative_tokens = 4;     // k: drafts proposed per sequence and step
  int32_t ngram_min = 1;                  // shortest suffix looked up
  int32_t ngram_max = 4;                  // longest suffix looked up
  // Speculate only while at most this many sequences decode in a step (0: never).
  int32_t max_batch_size = 16;

  bool enabled() const { return mode != SpeculativeMode::kNone; }
  // Names the offending field, e.g. "num_speculative_tokens must be in [1, 16], got 0".
  Status validate() const;
};

inline constexpr int32_t kMaxSpeculativeTokens = 16;

// Prompt lookup: appends to `drafts` up to max_drafts tokens that followed an earlier occurrence
// of the longest suffix of `tokens` of length in [ngram_min, ngram_max] that recurs — the latest
// occurrence followed by max_drafts tokens, else the one followed by the most — and nothing when
// no suffix recurs. O(len(tokens) * ngram_max).
void propose_ngram(std::span<const int32_t> tokens, int32_t ngram_min, int32_t ngram_max,
                   int32_t max_drafts, std::vector<int32_t>& drafts);

}  // namespace llmserve
