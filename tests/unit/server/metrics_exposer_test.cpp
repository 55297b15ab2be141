// MetricsRegistry over the wire: the exposer serves /metrics on a free port (fetched with curl),
// and promtool accepts the exposition (lint complaints allowed only for Triton's fixed names).
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "common/status.h"
#include "server/metrics/metrics_registry.h"

namespace llmserve {
namespace {

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

bool has_tool(const std::string& name) {
  return run_command("command -v " + name + " >/dev/null").exit_code == 0;
}

// A registry with every kind of sample in it: counters, gauges, filled histograms.
void exercise(MetricsRegistry& metrics) {
  const Clock::time_point t0 = Clock::now();
  RequestRecord r;
  r.model = "llama";
  r.is_success = true;
  r.arrival = t0;
  r.admitted = t0 + std::chrono::milliseconds(20);
  r.first_token = t0 + std::chrono::milliseconds(40);
  r.finished = t0 + std::chrono::milliseconds(400);
  r.completed = t0 + std::chrono::milliseconds(410);
  r.num_prompt_tokens = 12;
  r.num_generated_tokens = 3;
  r.inter_token_seconds = {0.01, 0.02};
  metrics.on_request_done(r);
  r.is_success = false;
  r.failure = FailureReason::kCancelled;
  metrics.on_request_done(r);
  EngineStats stats;
  stats.num_running = 1;
  stats.num_total_blocks = 64;
  stats.num_used_blocks = 8;
  stats.num_free_blocks = 56;
  stats.block_size = 16;
  stats.num_steps = 10;
  metrics.update(stats);
  metrics.set_model_load_seconds(1.25);
  metrics.set_max_active_requests(256);
}

TEST(MetricsExposerTest, ServesMetricsOverHttpOnAFreePort) {
  if (!has_tool("curl")) GTEST_SKIP() << "curl not installed";
  MetricsRegistry metrics("llama");
  exercise(metrics);
  metrics.start_exposer("127.0.0.1", 0);
  const uint16_t port = metrics.exposer_port();
  ASSERT_NE(port, 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
  const CommandResult got = run_command("curl -s --max-time 10 -w '\\nHTTP %{http_code}' " + url);
  ASSERT_EQ(got.exit_code, 0) << got.output;
  EXPECT_NE(got.output.find("\nHTTP 200"), std::string::npos) << got.output;
  EXPECT_NE(got.output.find("# TYPE nv_inference_queue_duration_us counter"), std::string::npos);
  EXPECT_NE(got.output.find(R"(nv_inference_queue_duration_us{model="llama",version="1"} 20000)"),
            std::string::npos)
      << got.output;
  EXPECT_NE(got.output.find(
                R"(nv_inference_request_failure{model="llama",reason="CANCELED",version="1"} 1)"),
            std::string::npos);
}

TEST(MetricsExposerTest, BindFailureNamesThePort) {
  MetricsRegistry first("llama");
  first.start_exposer("127.0.0.1", 0);
  const uint16_t port = first.exposer_port();
  ASSERT_NE(port, 0);
  MetricsRegistry second("llama");
  try {
    second.start_exposer("127.0.0.1", port);
    FAIL() << "a second exposer bound port " << port;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find(std::to_string(port)), std::string::npos) << e.what();
  }
  EXPECT_EQ(second.exposer_port(), 0);
  try {
    first.start_exposer("127.0.0.1", 0);
    FAIL() << "started twice";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kFailedPrecondition);
  }
}

TEST(MetricsExposerTest, PromtoolAcceptsTheExposition) {
  if (!has_tool("promtool")) GTEST_SKIP() << "promtool not installed";
  MetricsRegistry metrics("llama");
  exercise(metrics);
  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("llmserve_metrics_" + std::to_string(::getpid()) + ".txt");
  {
    std::ofstream out(file);
    out << metrics.render_text();
  }
  const CommandResult got = run_command("promtool check metrics < " + file.string());
  std::filesystem::remove(file);
  // 0: clean; 3: lint problems only. Triton's names are fixed (no `_total`, `_count` on
  // counters), so lint lines may name nv_* families, never ours, and nothing else may appear.
  ASSERT_TRUE(got.exit_code == 0 || got.exit_code == 3) << "exit " << got.exit_code << ":\n"
                                                        << got.output;
  std::istringstream lines(got.output);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    EXPECT_EQ(line.rfind("nv_", 0), 0u) << "promtool: " << line;
  }
}

}  // namespace
}  // namespace llmserve
