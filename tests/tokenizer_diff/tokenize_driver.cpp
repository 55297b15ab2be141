// tokenize_driver: a test-only command-line front for llmserve's tokenizer, used by the
// differential tests (tokenizer_diff.mjs) until `llmserve tokenize` exists. It reads JSON
// requests, one per line, from stdin and writes one JSON reply per line to stdout:
//   {"op":"encode","dir":D,"text":T | "hex":H,"add_special_tokens":b,"parse_special_tokens":b}
//     -> {"ids":[...],"decoded":S,"bytes_hex":H,"stream":S}
//        (bytes_hex: the concatenated token bytes; stream: the incremental detokenizer's output)
//   {"op":"decode","dir":D,"ids":[...],"skip_special_tokens":b} -> {"text":S,"stream":S}
//   {"op":"token_bytes","dir":D,"ids":[...]} -> {"hex":[H,...]}
//   {"op":"info","dir":D} -> {"vocab_size":n,"bos":id|null,"eos":id|null,"chat_template":S}
//   {"op":"bench","dir":D,"text":T,"repeat":n} -> {"seconds":x,"bytes":n,"tokens":n}
// A failing request replies {"error":message,"code":name}. Tokenizers are cached per dir.
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace {

using llmserve::Tokenizer;
using nlohmann::json;

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    out += kDigits[static_cast<uint8_t>(c) >> 4];
    out += kDigits[static_cast<uint8_t>(c) & 15];
  }
  return out;
}

std::string from_hex(const std::string& hex) {
  if (hex.size() % 2 != 0) throw std::invalid_argument("odd-length hex");
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

const Tokenizer& tokenizer_for(const std::string& dir) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[dir];
  if (!slot) slot = Tokenizer::from_dir(dir);
  return *slot;
}

std::string stream_decode(const Tokenizer& tok, const std::vector<int32_t>& ids,
                          const llmserve::DecodeOptions& options) {
  llmserve::IncrementalDetokenizer detok(tok, options);
  std::string text;
  for (int32_t id : ids) text += detok.push(id);
  return text + detok.flush();
}

json handle(const json& request) {
  const std::string op = request.at("op");
  const Tokenizer& tok = tokenizer_for(request.at("dir"));
  if (op == "encode") {
    const std::string text = request.contains("hex") ? from_hex(request.at("hex"))
                                                     : request.at("text").get<std::string>();
    llmserve::EncodeOptions options;
    options.add_special_tokens = request.value("add_special_tokens", true);
    options.parse_special_tokens = request.value("parse_special_tokens", true);
    const std::vector<int32_t> ids = tok.encode(text, options);
    std::string bytes;
    for (int32_t id : ids) bytes += tok.token_bytes(id);
    return {{"ids", ids},
            {"decoded", tok.decode(ids)},
            {"bytes_hex", to_hex(bytes)},
            {"stream", stream_decode(tok, ids, {})}};
  }
  if (op == "decode") {
    const auto ids = request.at("ids").get<std::vector<int32_t>>();
    llmserve::DecodeOptions options;
    options.skip_special_tokens = request.value("skip_special_tokens", false);
    return {{"text", tok.decode(ids, options)}, {"stream", stream_decode(tok, ids, options)}};
  }
  if (op == "token_bytes") {
    std::vector<std::string> hex;
    for (int32_t id : request.at("ids").get<std::vector<int32_t>>())
      hex.push_back(to_hex(tok.token_bytes(id)));
    return {{"hex", hex}};
  }
  if (op == "info") {
    const auto optional_id = [](std::optional<int32_t> id) {
      return id ? json(*id) : json(nullptr);
    };
    return {{"vocab_size", tok.vocab_size()},
            {"bos", optional_id(tok.bos_token_id())},
            {"eos", optional_id(tok.eos_token_id())},
            {"chat_template", tok.chat_template()}};
  }
  if (op == "bench") {
    const std::string text = request.at("text");
    const int repeat = request.value("repeat", 1);
    std::size_t num_tokens = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < repeat; ++i) num_tokens += tok.encode(text).size();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    return {{"seconds", elapsed.count()}, {"bytes", text.size() * repeat}, {"tokens", num_tokens}};
  }
  throw std::invalid_argument("unknown op '" + op + "'");
}

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    json reply;
    try {
      reply = handle(json::parse(line));
    } catch (const llmserve::Error& e) {
      reply = {{"error", e.what()}, {"code", llmserve::status_code_name(e.code())}};
    } catch (const std::exception& e) {
      reply = {{"error", e.what()}, {"code", "DRIVER"}};
    }
    std::cout << reply.dump() << '\n';
  }
  return 0;
}
