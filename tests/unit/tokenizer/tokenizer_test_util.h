// Test helpers for the tokenizer tests: a self-deleting temporary directory and a builder for
// small byte-level BPE tokenizer.json files whose ids are easy to reason about (token for byte b
// has id b; merged tokens get ids from 256 on, in merge order).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"

namespace llmserve::testing {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("llmserve_tok_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

  void write(const std::string& name, const std::string& text) const {
    std::ofstream out(path_ / name, std::ios::binary);
    out << text;
  }

 private:
  std::filesystem::path path_;
};

// Byte-level form of raw bytes, for writing vocabularies by their bytes.
inline std::string bl(const std::string& bytes) {
  return byte_level::encode(bytes);
}

struct BpeSpec {
  std::vector<std::pair<std::string, std::string>> merges;  // raw bytes; ids 256.. in this order
  std::vector<std::string> extra_tokens;                    // raw bytes, in the vocab, no merge
  nlohmann::json added_tokens = nlohmann::json::array();
  nlohmann::json pre_tokenizer = {{"type", "ByteLevel"},
                                  {"add_prefix_space", false},
                                  {"trim_offsets", true},
                                  {"use_regex", true}};
  nlohmann::json post_processor = nullptr;
  bool ignore_merges = false;

  // Id of a merged or extra token, by its raw bytes.
  int32_t id(const std::string& bytes) const {
    for (std::size_t i = 0; i < merges.size(); ++i) {
      if (merges[i].first + merges[i].second == bytes) return 256 + static_cast<int32_t>(i);
    }
    for (std::size_t i = 0; i < extra_tokens.size(); ++i) {
      if (extra_tokens[i] == bytes) return 256 + static_cast<int32_t>(merges.size() + i);
    }
    return bytes.size() == 1 ? static_cast<uint8_t>(bytes[0]) : -1;
  }

  nlohmann::json to_json() const {
    nlohmann::json vocab = nlohmann::json::object();
    for (int b = 0; b < 256; ++b) vocab[bl(std::string(1, static_cast<char>(b)))] = b;
    nlohmann::json merge_list = nlohmann::json::array();
    int32_t next = 256;
    for (const auto& [left, right] : merges) {
      vocab[bl(left + right)] = next++;
      merge_list.push_back(bl(left) + " " + bl(right));
    }
    for (const auto& token : extra_tokens) vocab[bl(token)] = next++;
    return {{"version", "1.0"},
            {"added_tokens", added_tokens},
            {"normalizer", nullptr},
            {"pre_tokenizer", pre_tokenizer},
            {"post_processor", post_processor},
            {"decoder",
             {{"type", "ByteLevel"},
              {"add_prefix_space", true},
              {"trim_offsets", true},
              {"use_regex", true}}},
            {"model",
             {{"type", "BPE"},
              {"dropout", nullptr},
              {"unk_token", nullptr},
              {"continuing_subword_prefix", nullptr},
              {"end_of_word_suffix", nullptr},
              {"fuse_unk", false},
              {"byte_fallback", false},
              {"ignore_merges", ignore_merges},
              {"vocab", vocab},
              {"merges", merge_list}}}};
  }

  void write(const TempDir& dir) const { dir.write("tokenizer.json", to_json().dump()); }
};

inline nlohmann::json added_token(int32_t id, const std::string& content, bool special) {
  return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", special}};
}

// The ids of a text under a merge-free byte vocabulary: its bytes.
inline std::vector<int32_t> byte_ids(const std::string& text) {
  std::vector<int32_t> ids;
  for (char c : text) ids.push_back(static_cast<uint8_t>(c));
  return ids;
}

}  // namespace llmserve::testing
