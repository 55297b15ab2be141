// Loader for GPT-2's original tokenizer files: vocab.json (token -> id) and merges.txt (one
// "left right" merge per line, highest priority first, after an optional "#version" line). The
// pre-tokenizer is GPT-2's (ByteLevel with its regex, no prefix space) and "<|endoftext|>", when
// present, is bos, eos and a special added token, as transformers' GPT2Tokenizer assumes.
#include <fstream>
#include <string>

#include "common/status.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/tokenizer_spec.h"

namespace llmserve {
namespace {

constexpr std::string_view kEndOfText = "<|endoftext|>";

std::vector<BpeModel::Merge> read_merges_txt(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(StatusCode::kNotFound, "{}: cannot open file", path.string());
  std::vector<BpeModel::Merge> merges;
  std::string line;
  for (int line_number = 1; std::getline(in, line); ++line_number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line_number == 1 && line.starts_with("#version")) continue;
    const auto space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos) {
      fail(StatusCode::kInvalidArgument,
           "{}:{}: expected two tokens separated by one space, got '{}'", path.string(),
           line_number, line);
    }
    merges.push_back({line.substr(0, space), line.substr(space + 1)});
  }
  return merges;
}

}  // namespace

void load_vocab_merges(const std::filesystem::path& vocab_path,
                       const std::filesystem::path& merges_path, TokenizerSpec& spec) {
  const json_fields::Json vocab_json = json_fields::read_file(vocab_path);
  const std::string where = vocab_path.string();
  if (!vocab_json.is_object()) json_fields::fail_type(where, "an object", vocab_json);
  TokenIdMap vocab;
  vocab.reserve(vocab_json.size());
  for (const auto& [token, id] : vocab_json.items()) {
    vocab.emplace(token, json_fields::get_token_id(id, fmt::format("{}: ['{}']", where, token)));
  }
  spec.model = std::make_unique<BpeModel>(std::move(vocab), read_merges_txt(merges_path),
                                          BpeModel::Options{}, merges_path.string());
  spec.is_vocab_merges = true;
  spec.pre_tokenizer.add_byte_level(/*add_prefix_space=*/false, /*use_regex=*/true);
  spec.decoder.add_byte_level(merges_path.string());
  if (const auto id = spec.model->token_to_id(kEndOfText)) {
    spec.added_tokens.add({.id = *id, .content = std::string(kEndOfText), .is_special = true});
    spec.bos_token = std::string(kEndOfText);
    spec.eos_token = std::string(kEndOfText);
  }
}

}  // namespace llmserve
