// The exposition against a real Prometheus tool: promtool accepts it (lint complaints allowed only
// for Triton's fixed names). Serving it over HTTP is tests/e2e/serve_metrics_test.sh.
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
