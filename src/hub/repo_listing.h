// What a repository revision holds, as the hub's revision API tells it
// (GET /api/models/{repo}/revision/{rev}?blobs=true: "sha" is the commit; each of "siblings" has
// "rfilename", "size", "blobId" and, for Git LFS files, "lfs": {"sha256", "size"}), and which of
// those files a server needs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmserve::hub {

struct RepoFile {
  std::string path;                    // relative to the repository root, '/'-separated
  std::optional<uint64_t> size;        // bytes, when the listing gave it
  std::optional<std::string> sha256;   // LFS files: the content's SHA-256 (lower-case hex)
  std::optional<std::string> blob_id;  // files kept in Git: the Git blob id (SHA-1 hex)

  bool is_lfs() const { return sha256.has_value(); }
};

struct RepoListing {
  std::string commit;  // the revision resolved to a commit id; "" when the listing named none
  std::vector<RepoFile> files;
};

// Parses the revision API's JSON. Throws Error(kDataLoss) naming the field when it is not the
// expected shape, or when a file path is unsafe to write (absolute, "..").
RepoListing parse_repo_listing(std::string_view json_text);

// fnmatch(3) without flags: '*' and '?' also match '/', "[a-z]" classes.
bool glob_match(std::string_view pattern, std::string_view path);

// The files to download. With `includes`, those matching any of the globs. Without, the files at
// the repository root a server reads: *.json, *.safetensors, *.model (SentencePiece), *.txt
// (merges/vocab), *.tiktoken, *.jinja (chat templates); PyTorch weights (*.bin, *.pt, *.pth) only
// when the repository has no *.safetensors. Sub-folders (original/, onnx/, …) are skipped.
std::vector<RepoFile> select_files(const std::vector<RepoFile>& files,
                                   const std::vector<std::string>& includes);

}  // namespace llmserve::hub
