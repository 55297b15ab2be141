// PromptSet: the prompts a run sends, made once before the sweep.
//
// Synthetic prompts are token-exact: each text encodes (with the tokenizer's default options, as a
// server encodes a completions prompt) to exactly its `num_input_tokens`. A JSONL file gives one
// prompt per line: {"prompt": "...", "output_len": N} ("text"/"text_input" and "max_tokens" are
// accepted too); its token counts come from the same tokenizer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/load/load_options.h"
#include "tokenizer/tokenizer.h"

namespace llmserve::bench::load {

struct Prompt {
  std::string text;
  int32_t num_input_tokens = 0;  // as our tokenizer counts the text
  int32_t max_tokens = 0;        // output tokens asked for
};

// `num` synthetic prompts with lengths drawn from `input` / `output` (deterministic in `seed`).
// Throws Error(kInternal) if a length cannot be hit exactly (never seen with byte-level BPE).
std::vector<Prompt> make_synthetic_prompts(const Tokenizer& tokenizer, const LengthSpec& input,
                                           const LengthSpec& output, int32_t num, uint64_t seed);

// The prompts of a JSONL file; lines without an output length get `default_output_len`.
// Throws Error(kInvalidArgument) naming the bad line.
std::vector<Prompt> load_prompt_file(const std::string& path, const Tokenizer& tokenizer,
                                     int32_t default_output_len);

}  // namespace llmserve::bench::load
