#include "hub/repo_listing.h"

#include <fnmatch.h>
#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "hub/url.h"

namespace llmserve::hub {
namespace {

using nlohmann::json;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_hex(std::string_view s, size_t size) {
  return s.size() == size && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::optional<uint64_t> size_field(const json& j, const char* name, std::string_view file) {
  if (!j.contains(name) || j[name].is_null()) return std::nullopt;
  if (!j[name].is_number_unsigned()) {
    fail(StatusCode::kDataLoss, "revision listing: '{}' of {} is not a byte count", name, file);
  }
  return j[name].get<uint64_t>();
}

bool is_server_file(std::string_view path) {
  for (std::string_view ext : {".json", ".safetensors", ".model", ".txt", ".tiktoken", ".jinja"}) {
    if (ends_with(path, ext)) return true;
  }
  return false;
}

bool is_pytorch_weights(std::string_view path) {
  return ends_with(path, ".bin") || ends_with(path, ".pt") || ends_with(path, ".pth");
}

}  // namespace

RepoListing parse_repo_listing(std::string_view json_text) {
  json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    fail(StatusCode::kDataLoss, "revision listing is not a JSON object");
  }
  RepoListing listing;
  if (doc.contains("sha") && doc["sha"].is_string()) listing.commit = doc["sha"].get<std::string>();
  if (!doc.contains("siblings") || !doc["siblings"].is_array()) {
    fail(StatusCode::kDataLoss, "revision listing has no 'siblings' array");
  }
  for (const auto& s : doc["siblings"]) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) {
      fail(StatusCode::kDataLoss, "revision listing: a sibling has no 'rfilename'");
    }
    RepoFile f;
    f.path = s["rfilename"].get<std::string>();
    if (!is_safe_repo_path(f.path)) {
      fail(StatusCode::kDataLoss, "revision listing: unsafe file path '{}'", f.path);
    }
    f.size = size_field(s, "size", f.path);
    if (s.contains("blobId") && s["blobId"].is_string()) f.blob_id = s["blobId"].get<std::string>();
    if (s.contains("lfs") && s["lfs"].is_object()) {
      const auto& lfs = s["lfs"];
      if (!lfs.contains("sha256") || !lfs["sha256"].is_string() ||
          !is_hex(lfs["sha256"].get<std::string>(), 64)) {
        fail(StatusCode::kDataLoss, "revision listing: 'lfs.sha256' of {} is not a SHA-256",
             f.path);
      }
      f.sha256 = lfs["sha256"].get<std::string>();
      if (auto lfs_size = size_field(lfs, "size", f.path)) f.size = lfs_size;
      f.blob_id.reset();  // the blob id of an LFS file is its pointer's, not the content's
    }
    listing.files.push_back(std::move(f));
  }
  return listing;
}

bool glob_match(std::string_view pattern, std::string_view path) {
  return fnmatch(std::string(pattern).c_str(), std::string(path).c_str(), 0) == 0;
}

std::vector<RepoFile> select_files(const std::vector<RepoFile>& files,
                                   const std::vector<std::string>& includes) {
  std::vector<RepoFile> chosen;
  if (!includes.empty()) {
    for (const auto& f : files) {
      if (std::any_of(includes.begin(), includes.end(),
                      [&](const std::string& g) { return glob_match(g, f.path); })) {
        chosen.push_back(f);
      }
    }
    return chosen;
  }
  const bool has_safetensors = std::any_of(files.begin(), files.end(), [](const RepoFile& f) {
    return f.path.find('/') == std::string::npos && ends_with(f.path, ".safetensors");
  });
  for (const auto& f : files) {
    if (f.path.find('/') != std::string::npos) continue;
    if (is_server_file(f.path) || (!has_safetensors && is_pytorch_weights(f.path)))
      chosen.push_back(f);
  }
  return chosen;
}

}  // namespace llmserve::hub
