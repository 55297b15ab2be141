#include "hub/url.h"

#include <gtest/gtest.h>

namespace llmserve::hub {
namespace {

Url must_parse(std::string_view s) {
  auto u = parse_url(s);
  EXPECT_TRUE(u.has_value()) << s;
  return u.value_or(Url{});
}

TEST(Url, ParsesSchemeHostPortTarget) {
  Url u = must_parse("https://HuggingFace.co/api/models?x=1#frag");
  EXPECT_EQ(u.scheme, "https");
  EXPECT_EQ(u.host, "huggingface.co");
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.target, "/api/models?x=1");
  Url v = must_parse("http://127.0.0.1:8123");
  EXPECT_EQ(v.port, 8123);
  EXPECT_EQ(v.target, "/");
  EXPECT_EQ(v.to_string(), "http://127.0.0.1:8123/");
  Url w = must_parse("http://[::1]:99/a");
  EXPECT_EQ(w.host, "::1");
  EXPECT_EQ(w.host_header(), "[::1]:99");
  EXPECT_EQ(must_parse("https://h:443/x").to_string(), "https://h/x");  // default port left out
}

TEST(Url, RejectsWhatItCannotFetch) {
  for (const char* bad : {"ftp://h/x", "huggingface.co", "https://", "https://u:p@h/x",
                          "http://h:0/", "http://h:70000/", "http://h:8x/", "http://[::1/"}) {
    EXPECT_FALSE(parse_url(bad).has_value()) << bad;
  }
}

TEST(Url, ResolvesEveryKindOfLocation) {
  Url base = must_parse("https://hub.example:8443/org/name/resolve/main/dir/model.safetensors?x=1");
  EXPECT_EQ(resolve_location(base, "https://cdn.example/blob/abc?sig=1")->to_string(),
            "https://cdn.example/blob/abc?sig=1");
  EXPECT_EQ(resolve_location(base, "//cdn.example:9000/b")->to_string(),
            "https://cdn.example:9000/b");
  EXPECT_EQ(resolve_location(base, "/api/resolve-cache/x?y=2")->to_string(),
            "https://hub.example:8443/api/resolve-cache/x?y=2");
  EXPECT_EQ(resolve_location(base, "other.json")->target, "/org/name/resolve/main/dir/other.json");
  EXPECT_EQ(resolve_location(base, "../../abc123/dir/m.safetensors")->target,
            "/org/name/resolve/abc123/dir/m.safetensors");
  EXPECT_EQ(resolve_location(base, "/a/./b/../c")->target, "/a/c");
  EXPECT_EQ(resolve_location(base, "?z=3")->target,
            "/org/name/resolve/main/dir/model.safetensors?z=3");
  EXPECT_FALSE(resolve_location(base, "").has_value());
  EXPECT_FALSE(resolve_location(base, "ftp://x/y").has_value());
}

TEST(Url, TokenOnlyGoesToTheEndpointsOrigin) {
  Url hub = must_parse("https://huggingface.co");
  EXPECT_TRUE(
      may_send_token(hub, must_parse("https://huggingface.co/org/name/resolve/main/a.json")));
  EXPECT_FALSE(may_send_token(hub, must_parse("https://cdn-lfs.huggingface.co/repos/a/b")));
  EXPECT_FALSE(may_send_token(hub, must_parse("http://huggingface.co/x")));  // downgraded scheme
  EXPECT_FALSE(may_send_token(hub, must_parse("https://huggingface.co:444/x")));  // another port
  Url local = must_parse("http://127.0.0.1:5000");
  EXPECT_FALSE(may_send_token(local, must_parse("http://127.0.0.1:5001/cdn/x")));
}

TEST(Url, PercentEncodes) {
  EXPECT_EQ(percent_encode("refs/pr/1", false), "refs%2Fpr%2F1");
  EXPECT_EQ(percent_encode("dir/a b+c.json", true), "dir/a%20b%2Bc.json");
  EXPECT_EQ(percent_encode("Az09-_.~", false), "Az09-_.~");
  EXPECT_EQ(percent_encode("\xc3\xa9", false), "%C3%A9");
}

TEST(Url, HubUrls) {
  Url hub = must_parse("https://huggingface.co");
  EXPECT_EQ(revision_api_url(hub, "openai-community/gpt2", "main").to_string(),
            "https://huggingface.co/api/models/openai-community/gpt2/revision/main?blobs=true");
  EXPECT_EQ(revision_api_url(hub, "o/n", "refs/pr/1").target,
            "/api/models/o/n/revision/refs%2Fpr%2F1?blobs=true");
  EXPECT_EQ(resolve_url(hub, "o/n", "abc", "sub dir/model.safetensors").to_string(),
            "https://huggingface.co/o/n/resolve/abc/sub%20dir/model.safetensors");
  Url mirror = must_parse("http://mirror:8080/hf/");  // an endpoint with a path prefix
  EXPECT_EQ(resolve_url(mirror, "o/n", "main", "config.json").target,
            "/hf/o/n/resolve/main/config.json");
  EXPECT_EQ(revision_api_url(mirror, "o/n", "main").target,
            "/hf/api/models/o/n/revision/main?blobs=true");
}

TEST(Url, RepoIds) {
  for (const char* ok :
       {"openai-community/gpt2", "meta-llama/Meta-Llama-3-8B", "a/b", "Org_1/m.v2"}) {
    EXPECT_TRUE(is_repo_id(ok)) << ok;
  }
  for (const char* bad : {"gpt2", "a/b/c", "/abs/dir", "./x", "a/..", "a/x..y", "../b", "a/", "/b",
                          "a/-b", "a/b c", "models/default/"}) {
    EXPECT_FALSE(is_repo_id(bad)) << bad;
  }
}

TEST(Url, SafeRepoPaths) {
  for (const char* ok : {"config.json", "dir/model.safetensors", "a/b/c.txt", ".gitattributes"}) {
    EXPECT_TRUE(is_safe_repo_path(ok)) << ok;
  }
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a\\b", "a/"}) {
    EXPECT_FALSE(is_safe_repo_path(bad)) << bad;
  }
}

}  // namespace
}  // namespace llmserve::hub
