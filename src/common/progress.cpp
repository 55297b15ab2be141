#include "common/progress.h"

#include <unistd.h>
#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "common/logging.h"

namespace llmserve {
namespace {

constexpr auto kBarInterval = std::chrono::milliseconds(100);
constexpr auto kLogInterval = std::chrono::seconds(10);

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

ProgressStyle default_progress_style() {
  return isatty(STDERR_FILENO) ? ProgressStyle::kBar : ProgressStyle::kLog;
}

ProgressStyle progress_style_from_flag(std::string_view flag) {
  if (flag == "auto") return default_progress_style();
  if (flag == "bar") return ProgressStyle::kBar;
  if (flag == "log") return ProgressStyle::kLog;
  return ProgressStyle::kNone;
}

std::string format_bytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1000 && unit < 4) {
    v /= 1000;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes)
                   : fmt::format("{:.{}f} {}", v, v < 10 ? 2 : 1, kUnits[unit]);
}

void Progress::begin_file(const std::string& name, uint64_t total, uint64_t done) {
  name_ = name;
  total_ = total;
  done_ = done;
  moved_ = 0;
  start_ = last_draw_ = Clock::now();
  if (style_ == ProgressStyle::kLog) {
    if (done > 0) {
      LOG_INFO("{} {} ({}), resuming at {}", doing_, name_, format_bytes(total_),
               format_bytes(done));
    } else {
      LOG_INFO("{} {} ({})", doing_, name_, format_bytes(total_));
    }
  }
  draw(true);
}

void Progress::advance(uint64_t bytes) {
  done_ += bytes;
  moved_ += bytes;
  draw(false);
}

void Progress::reset(uint64_t done) {
  done_ = done;
  draw(true);
}

void Progress::end_file() {
  const double secs = seconds(Clock::now() - start_);
  const double rate = secs > 0 ? static_cast<double>(moved_) / secs : 0;
  if (style_ == ProgressStyle::kBar) {
    draw(true);
    std::fputc('\n', stderr);
  }
  if (style_ != ProgressStyle::kNone) {
    LOG_INFO("{} {} ({} in {:.1f} s, {}/s)", done_verb_, name_, format_bytes(moved_), secs,
             format_bytes(static_cast<uint64_t>(rate)));
  }
}

void Progress::draw(bool force) {
  const auto now = Clock::now();
  switch (style_) {
    case ProgressStyle::kNone:
      return;
    case ProgressStyle::kLog:
      if (force || now - last_draw_ < kLogInterval) return;
      last_draw_ = now;
      LOG_INFO("  {}: {} of {}", name_, format_bytes(done_), format_bytes(total_));
      return;
    case ProgressStyle::kBar: {
      if (!force && now - last_draw_ < kBarInterval) return;
      last_draw_ = now;
      const double secs = seconds(now - start_);
      const double rate = secs > 0 ? static_cast<double>(moved_) / secs : 0;
      constexpr int kWidth = 30;
      const double frac =
          total_ > 0 ? std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_)) : 0;
      const int filled = static_cast<int>(frac * kWidth);
      std::string bar(static_cast<size_t>(filled), '#');
      bar.resize(kWidth, '.');
      std::string eta;
      if (rate > 0 && total_ > done_)
        eta = fmt::format(" ETA {:.0f}s", static_cast<double>(total_ - done_) / rate);
      std::fprintf(stderr, "\r%-32.32s [%s] %3.0f%% %s/%s %s/s%s\033[K", name_.c_str(), bar.c_str(),
                   frac * 100, format_bytes(done_).c_str(), format_bytes(total_).c_str(),
                   format_bytes(static_cast<uint64_t>(rate)).c_str(), eta.c_str());
      std::fflush(stderr);
      return;
    }
  }
}

}  // namespace llmserve
