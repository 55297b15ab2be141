// TokenizerSpec: everything the loaders read from a tokenizer directory, validated, before the
// Tokenizer builds its id tables from it. Internal to src/tokenizer/; one loader per file format:
//   tokenizer_json.cpp   tokenizer.json (Hugging Face tokenizers' serialisation)
//   vocab_merges.cpp     vocab.json + merges.txt (GPT-2's original files)
//   tokenizer_config.cpp tokenizer_config.json (transformers' settings on top of either)
// Loaders throw Error naming the file and field; they are not thread-safe (nor need to be).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace llmserve {

struct TokenizerSpec {
  std::unique_ptr<Model> model;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  Decoder decoder;               // vocab.json + merges.txt: ByteLevel
  AddedVocabulary added_tokens;  // finalized by the Tokenizer
  // What the post-processor puts around a single sequence when add_special_tokens is on.
  std::vector<int32_t> prefix_ids;
  std::vector<int32_t> suffix_ids;

  bool is_vocab_merges = false;  // loaded from vocab.json + merges.txt

  // Token strings; apply_tokenizer_config() resolves them to ids and marks them special.
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<int32_t> bos_token_id;
  std::optional<int32_t> eos_token_id;
  std::string chat_template;
  std::optional<int64_t> model_max_length;
};

// Fills model, normalizer, pre_tokenizer, decoder, added_tokens and prefix/suffix ids from
// tokenizer.json.
void load_tokenizer_json(const std::filesystem::path& path, TokenizerSpec& spec);

// Fills model, pre_tokenizer (GPT-2's ByteLevel) and GPT-2's defaults ("<|endoftext|>" as bos,
// eos and a special added token, when the vocabulary has it).
void load_vocab_merges(const std::filesystem::path& vocab_path,
                       const std::filesystem::path& merges_path, TokenizerSpec& spec);

// Applies tokenizer_config.json (if config_path exists) and chat_template.jinja (if it exists and
// the config has no template) on top of what a loader produced.
void apply_tokenizer_config(const std::filesystem::path& config_path,
                            const std::filesystem::path& template_path, TokenizerSpec& spec);

}  // namespace llmserve
