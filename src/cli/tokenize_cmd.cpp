// `llmserve tokenize` / `llmserve detokenize`: the model's tokenizer from the command line, as
// JSON.
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_path.h"
#include "common/status.h"
#include "tokenizer/tokenizer.h"

namespace llmserve::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  bool no_special = false;
  std::string ids;
  bool skip_special = false;
};

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      long v = std::stol(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      fail(StatusCode::kInvalidArgument, "--ids: '{}' is not a token id", item);
    }
  }
  return ids;
}

int run_tokenize(const TokenizeOptions& o) {
  auto tok = Tokenizer::from_dir(resolve_model_dir(o.model));
  EncodeOptions enc;
  enc.add_special_tokens = !o.no_special;
  enc.parse_special_tokens = !o.no_special;
  auto ids = tok->encode(o.text, enc);
  nlohmann::json tokens = nlohmann::json::array();
  for (int32_t id : ids) tokens.push_back(tok->id_to_token(id));
  std::cout << nlohmann::json{{"ids", ids}, {"tokens", tokens}}.dump(
                   -1, ' ', false, nlohmann::json::error_handler_t::replace)
            << "\n";
  return 0;
}

int run_detokenize(const TokenizeOptions& o) {
  auto tok = Tokenizer::from_dir(resolve_model_dir(o.model));
  auto ids = parse_ids(o.ids);
  for (int32_t id : ids) {
    if (id >= tok->vocab_size())
      fail(StatusCode::kOutOfRange, "--ids: token id {} is outside the vocabulary of {}", id,
           tok->vocab_size());
  }
  DecodeOptions dec;
  dec.skip_special_tokens = o.skip_special;
  std::cout << nlohmann::json{{"text", tok->decode(ids, dec)}}.dump() << "\n";
  return 0;
}

}  // namespace

void add_tokenize_commands(CLI::App& app, Action& action) {
  auto opts = std::make_shared<TokenizeOptions>();
  CLI::App* tok =
      app.add_subcommand("tokenize", "Print the token ids and token strings of a text as JSON");
  tok->add_option("--model", opts->model, "Model directory (default: the embedded default model)");
  tok->add_option("--text", opts->text, "Text to encode")->required();
  tok->add_flag("--no-special", opts->no_special,
                "Add no bos/eos and treat special-token text as plain text");
  tok->callback([&action, opts] { action = [opts] { return run_tokenize(*opts); }; });

  CLI::App* detok =
      app.add_subcommand("detokenize", "Print the text of comma-separated token ids as JSON");
  detok->add_option("--model", opts->model,
                    "Model directory (default: the embedded default model)");
  detok->add_option("--ids", opts->ids, "Token ids, comma separated, e.g. 15496,995")->required();
  detok->add_flag("--skip-special", opts->skip_special, "Leave special tokens out of the text");
  detok->callback([&action, opts] { action = [opts] { return run_detokenize(*opts); }; });
}

}  // namespace llmserve::cli
