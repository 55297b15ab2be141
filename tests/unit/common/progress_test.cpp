#include "common/progress.h"

#include <gtest/gtest.h>

namespace llmserve {
namespace {

TEST(Progress, FormatsBytesAsTheHubShowsThem) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(845), "845 B");
  EXPECT_EQ(format_bytes(15318440), "15.3 MB");
  EXPECT_EQ(format_bytes(1042301), "1.04 MB");
  EXPECT_EQ(format_bytes(16'060'522'240ull), "16.1 GB");
}

TEST(Progress, FlagSpellings) {
  EXPECT_EQ(progress_style_from_flag("bar"), ProgressStyle::kBar);
  EXPECT_EQ(progress_style_from_flag("log"), ProgressStyle::kLog);
  EXPECT_EQ(progress_style_from_flag("none"), ProgressStyle::kNone);
  EXPECT_EQ(progress_style_from_flag("auto"), default_progress_style());
}

}  // namespace
}  // namespace llmserve
