// Progress of a long copy (hub downloads, engine builds) on stderr: a redrawn one-line bar when
// stderr is a terminal, otherwise quiet log lines (one when a file starts, one every ~10 s while a
// large file runs, one when it ends) that read well in `kubectl logs`. Not thread-safe: one pull
// or build drives one Progress.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace llmserve {

enum class ProgressStyle { kBar, kLog, kNone };

// kBar when stderr is a terminal, else kLog.
ProgressStyle default_progress_style();
// The --progress flag: "auto" (default_progress_style), "bar", "log", anything else none.
ProgressStyle progress_style_from_flag(std::string_view flag);

// "15.3 MB", "812 B", "1.02 GB" (SI units, as the hub shows sizes).
std::string format_bytes(uint64_t bytes);

class Progress {
 public:
  // `doing` / `done` name the work in log lines: "downloading" / "downloaded" (the default),
  // "writing" / "wrote".
  explicit Progress(ProgressStyle style, std::string doing = "downloading",
                    std::string done = "downloaded")
      : style_(style), doing_(std::move(doing)), done_verb_(std::move(done)) {}

  // A file of `total` bytes (0: unknown) starts with `done` bytes already on disk.
  void begin_file(const std::string& name, uint64_t total, uint64_t done);
  void advance(uint64_t bytes);
  // The bytes on disk went back to `done` (a restart from zero).
  void reset(uint64_t done);
  // The file is complete; logs the bytes moved this time and the rate.
  void end_file();

 private:
  using Clock = std::chrono::steady_clock;
  void draw(bool force);

  ProgressStyle style_;
  std::string doing_, done_verb_;
  std::string name_;
  uint64_t total_ = 0;
  uint64_t done_ = 0;
  uint64_t moved_ = 0;  // bytes transferred this run (not those resumed from disk)
  Clock::time_point start_{};
  Clock::time_point last_draw_{};
};

}  // namespace llmserve
