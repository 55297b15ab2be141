#include "hub/repo_listing.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "common/status.h"

namespace llmserve::hub {
namespace {

std::vector<std::string> paths(const std::vector<RepoFile>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(f.path);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<RepoFile> files_named(std::initializer_list<const char*> names) {
  std::vector<RepoFile> files;
  for (const char* n : names) files.push_back({n, 1, std::nullopt, std::nullopt});
  return files;
}

TEST(RepoListing, ParsesTheRevisionApi) {
  const char* text = R"({"id":"o/n","sha":"0123456789abcdef0123456789abcdef01234567","siblings":[
    {"rfilename":"config.json","size":845,"blobId":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
    {"rfilename":"model.safetensors","size":134,"blobId":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
     "lfs":{"sha256":"8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8","size":15318440,"pointerSize":134}},
    {"rfilename":"README.md"}]})";
  RepoListing l = parse_repo_listing(text);
  EXPECT_EQ(l.commit, "0123456789abcdef0123456789abcdef01234567");
  ASSERT_EQ(l.files.size(), 3u);
  EXPECT_EQ(l.files[0].size, 845u);
  EXPECT_FALSE(l.files[0].is_lfs());
  EXPECT_EQ(l.files[0].blob_id, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_TRUE(l.files[1].is_lfs());
  EXPECT_EQ(l.files[1].size, 15318440u);  // the content's size, not the pointer's
  EXPECT_FALSE(
      l.files[1].blob_id.has_value());  // the pointer's blob id says nothing of the content
  EXPECT_FALSE(l.files[2].size.has_value());
}

TEST(RepoListing, RejectsMalformedAndUnsafeListings) {
  for (const char* bad :
       {"[]", "{", R"({"sha":"x"})", R"({"siblings":[{"size":1}]})",
        R"({"siblings":[{"rfilename":"../evil"}]})", R"({"siblings":[{"rfilename":"/etc/x"}]})",
        R"({"siblings":[{"rfilename":"a","size":-1}]})",
        R"({"siblings":[{"rfilename":"a","lfs":{"sha256":"xyz"}}]})"}) {
    EXPECT_THROW(parse_repo_listing(bad), Error) << bad;
  }
}

TEST(RepoListing, GlobIsFnmatchWithoutPathname) {
  EXPECT_TRUE(glob_match("*.json", "config.json"));
  EXPECT_TRUE(
      glob_match("*.json", "onnx/config.json"));  // '*' crosses '/', as the hub's allow_patterns
  EXPECT_TRUE(glob_match("model-0000?-of-00002.safetensors", "model-00001-of-00002.safetensors"));
  EXPECT_TRUE(glob_match("tokenizer*", "tokenizer_config.json"));
  EXPECT_TRUE(glob_match("[mc]*.json", "config.json"));
  EXPECT_FALSE(glob_match("*.json", "model.safetensors"));
  EXPECT_FALSE(glob_match("original/*", "params.json"));
}

TEST(RepoListing, DefaultSetIsWhatAServerReads) {
  auto files = files_named({"config.json",
                            "generation_config.json",
                            "model-00001-of-00002.safetensors",
                            "model-00002-of-00002.safetensors",
                            "model.safetensors.index.json",
                            "tokenizer.json",
                            "tokenizer_config.json",
                            "special_tokens_map.json",
                            "tokenizer.model",
                            "merges.txt",
                            "vocab.json",
                            "chat_template.jinja",
                            "README.md",
                            ".gitattributes",
                            "LICENSE",
                            "pytorch_model.bin",
                            "tf_model.h5",
                            "flax_model.msgpack",
                            "model.onnx",
                            "rust_model.ot",
                            "original/consolidated.00.pth",
                            "original/params.json",
                            "onnx/config.json"});
  EXPECT_EQ(paths(select_files(files, {})),
            (std::vector<std::string>{
                "chat_template.jinja", "config.json", "generation_config.json", "merges.txt",
                "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                "model.safetensors.index.json", "special_tokens_map.json", "tokenizer.json",
                "tokenizer.model", "tokenizer_config.json", "vocab.json"}));
}

TEST(RepoListing, PytorchWeightsOnlyWithoutSafetensors) {
  auto files = files_named(
      {"config.json", "pytorch_model.bin", "tf_model.h5", "original/x.pt", "vocab.txt"});
  EXPECT_EQ(paths(select_files(files, {})),
            (std::vector<std::string>{"config.json", "pytorch_model.bin", "vocab.txt"}));
}

TEST(RepoListing, IncludesReplaceTheDefaultSet) {
  auto files =
      files_named({"config.json", "model.safetensors", "original/params.json", "tf_model.h5"});
  EXPECT_EQ(paths(select_files(files, {"original/*", "*.h5"})),
            (std::vector<std::string>{"original/params.json", "tf_model.h5"}));
  EXPECT_TRUE(select_files(files, {"*.gguf"}).empty());
}

}  // namespace
}  // namespace llmserve::hub
