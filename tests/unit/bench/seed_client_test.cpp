#include "bench/load/seed_client.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace llmserve::bench::load {
namespace {

TEST(SeedClient, PayloadIsPythonJsonDumps) {
  EXPECT_EQ(seed_payload("How tall was Napoleon?", 512),
            R"({"text_input": "How tall was Napoleon?", "max_tokens": 512})");
  EXPECT_EQ(seed_payload("a \"q\"", 3), R"({"text_input": "a \"q\"", "max_tokens": 3})");
  EXPECT_EQ(kSeedPrompts.size(), 15u);
}

TEST(SeedClient, ConfigFromEnvironment) {
  ::unsetenv("TRTLLM_MODEL_NAME");
  ::setenv("TRTLLM_TRITON_URL", "gpt2", 1);
  EXPECT_THROW(SeedClientConfig::from_env(stderr), std::exception);
  ::setenv("TRTLLM_MODEL_NAME", "gpt2", 1);
  ::unsetenv("TRTLLM_MAX_TOKENS");
  auto c = SeedClientConfig::from_env(stderr);
  EXPECT_EQ(c.url(), "gpt2:8000/v2/models/gpt2/generate");
  EXPECT_EQ(c.max_tokens, 512);
  ::setenv("TRTLLM_MAX_TOKENS", "abc", 1);
  EXPECT_EQ(SeedClientConfig::from_env(stderr).max_tokens, 512);  // reported and ignored
  ::setenv("TRTLLM_MAX_TOKENS", " 256 ", 1);
  ::setenv("TRTLLM_TRITON_URL", "http://127.0.0.1:9000", 1);
  c = SeedClientConfig::from_env(stderr);
  EXPECT_EQ(c.max_tokens, 256);
  EXPECT_EQ(c.host, "127.0.0.1");
  EXPECT_EQ(c.port, 9000);
}

TEST(SeedClient, ExitsAfterMoreThanMaxFailures) {
  SeedClientConfig c;
  c.model_name = "m";
  c.host = "127.0.0.1";
  c.port = 1;  // nothing listens there
  c.max_failures = 2;
  c.pause_ms = 0;
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  EXPECT_EQ(run_seed_client(c, out, err), 255);
  std::rewind(err);
  char buf[4096] = {};
  std::fread(buf, 1, sizeof buf - 1, err);
  EXPECT_NE(std::string(buf).find("has failed 3 time(s)"), std::string::npos);
  EXPECT_NE(std::string(buf).find("fatal: Quitting after 2 failures."), std::string::npos);
  std::fclose(out);
  std::fclose(err);
}

}  // namespace
}  // namespace llmserve::bench::load
