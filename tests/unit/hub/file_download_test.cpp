#include "hub/file_download.h"

#include <unistd.h>
#include <fstream>

#include <gtest/gtest.h>

#include "common/hasher.h"
#include "common/status.h"

namespace llmserve::hub {
namespace {

namespace fs = std::filesystem;

TEST(ContentRange, ParsesWhatA206Carries) {
  auto r = parse_content_range("bytes 100-199/200");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, 100u);
  EXPECT_EQ(r->last, 199u);
  EXPECT_EQ(r->total, 200u);
  auto u = parse_content_range("bytes 0-9/*");
  ASSERT_TRUE(u);
  EXPECT_FALSE(u->total.has_value());
  for (const char* bad : {"", "bytes", "bytes 5-4/10", "bytes 0-9/9", "items 0-1/2", "bytes -9/10",
                          "bytes 0-9/x", "bytes */10"}) {
    EXPECT_FALSE(parse_content_range(bad)) << bad;
  }
  EXPECT_EQ(range_from(0), "bytes=0-");
  EXPECT_EQ(range_from(15318440), "bytes=15318440-");
}

TEST(RetryPolicy, BackoffDoublesUpToTheCap) {
  RetryPolicy p;
  p.initial_backoff = std::chrono::milliseconds(500);
  p.max_backoff = std::chrono::milliseconds(3000);
  EXPECT_EQ(backoff_delay(p, 0).count(), 500);
  EXPECT_EQ(backoff_delay(p, 1).count(), 1000);
  EXPECT_EQ(backoff_delay(p, 2).count(), 2000);
  EXPECT_EQ(backoff_delay(p, 3).count(), 3000);
  EXPECT_EQ(backoff_delay(p, 60).count(), 3000);  // no overflow for absurd retry counts
}

TEST(LinkedInfo, ReadsTheHubsHeadersFromTheRedirect) {
  FetchResult r;
  r.status = 200;
  FetchHop hop;
  hop.status = 302;
  hop.headers.add("x-linked-etag",
                  "\"8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8\"");
  hop.headers.add("X-Linked-Size", "15318440");
  hop.headers.add("X-Repo-Commit", "abc");
  hop.headers.add("ETag", "\"pointer-etag\"");
  r.redirects.push_back(hop);
  r.headers.add("ETag", "\"cdn-etag\"");
  LinkedInfo info = linked_info(r);
  EXPECT_EQ(info.sha256, "8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8c3ab4a8");
  EXPECT_EQ(info.size, 15318440u);
  EXPECT_EQ(info.commit, "abc");
  FetchResult plain;  // a file kept in Git: its ETag is a blob id, not a SHA-256
  plain.headers.add("X-Linked-Etag", "\"ce013625030ba8dba906f756967f9e9ca394464a\"");
  EXPECT_FALSE(linked_info(plain).sha256.has_value());
}

TEST(Hasher, KnownDigests) {
  Hasher sha(HashKind::kSha256);
  sha.update("ab");
  sha.update("c");
  EXPECT_EQ(sha.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Hasher blob(HashKind::kGitBlobSha1, 6);  // `echo hello | git hash-object --stdin`
  blob.update("hello\n");
  EXPECT_EQ(blob.hex_digest(), "ce013625030ba8dba906f756967f9e9ca394464a");
}

class VerifyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("llmserve_hub_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    path_ = dir_ / "f";
    std::ofstream(path_, std::ios::binary) << "hello\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_, path_;
};

TEST_F(VerifyFile, ChecksSizeThenHash) {
  RepoFile f{"f", 6, std::nullopt, std::nullopt};
  EXPECT_EQ(verify_file(path_, f), "");
  f.size = 7;
  EXPECT_EQ(verify_file(path_, f), "size is 6 bytes, the hub says 7");
  f.size = 6;
  f.blob_id = "ce013625030ba8dba906f756967f9e9ca394464a";
  EXPECT_EQ(verify_file(path_, f), "");
  f.blob_id = "0000000000000000000000000000000000000000";
  EXPECT_NE(verify_file(path_, f).find("git blob id is ce0136"), std::string::npos);
  f.sha256 =
      "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";  // sha256("hello\n");
                                                                           // wins
  EXPECT_EQ(verify_file(path_, f), "");
  f.sha256 = std::string(64, '0');
  EXPECT_NE(verify_file(path_, f).find("sha256 is 5891b5b5"), std::string::npos);
}

// The errors a user reads: each says what happened and what to do.
std::string message_for(int status, const char* error_code, bool has_token, const char* file = "",
                        StatusCode* code = nullptr) {
  FetchResult r;
  r.status = status;
  r.url = *parse_url("http://hub/o/n/resolve/main/x");
  if (*error_code) r.headers.add("X-Error-Code", error_code);
  HubRequestContext ctx{"http://hub", "o/n", "main", file, has_token};
  try {
    throw_hub_error(r, ctx);
  } catch (const Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "";
}

TEST(HubError, ExplainsAuthAndMissingThings) {
  StatusCode code{};
  auto m = message_for(401, "", false, "", &code);
  EXPECT_NE(m.find("--token-file"), std::string::npos) << m;
  EXPECT_NE(m.find("HF_TOKEN"), std::string::npos) << m;
  EXPECT_EQ(code, StatusCode::kFailedPrecondition);
  m = message_for(401, "", true);
  EXPECT_NE(m.find("token was refused"), std::string::npos) << m;
  m = message_for(403, "GatedRepo", false);
  EXPECT_NE(m.find("gated"), std::string::npos) << m;
  EXPECT_NE(m.find("http://hub/o/n"), std::string::npos) << m;
  m = message_for(404, "RevisionNotFound", true, "", &code);
  EXPECT_NE(m.find("revision 'main' not found in o/n"), std::string::npos) << m;
  EXPECT_EQ(code, StatusCode::kNotFound);
  m = message_for(404, "RepoNotFound", true);
  EXPECT_NE(m.find("repository o/n not found"), std::string::npos) << m;
  m = message_for(404, "EntryNotFound", false, "config.json");
  EXPECT_NE(m.find("'config.json' of o/n"), std::string::npos) << m;
  m = message_for(503, "", false, "", &code);
  EXPECT_EQ(code, StatusCode::kUnavailable);
  EXPECT_TRUE(is_retryable_status(429));
  EXPECT_TRUE(is_retryable_status(502));
  EXPECT_FALSE(is_retryable_status(404));
}

}  // namespace
}  // namespace llmserve::hub
