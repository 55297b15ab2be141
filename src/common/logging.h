// Logging: a thin layer over spdlog so the whole program logs through one configured logger.
// Text ("2026-11-25 13:05:01.123 info  message") or JSON lines for log collectors.
// Thread-safe: spdlog's default logger is safe to call from any thread.
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

namespace llmserve {

enum class LogFormat { kText, kJson };

// Configures the default logger (stderr). level: trace|debug|info|warn|error|off.
// Throws Error(kInvalidArgument) for an unknown level.
void init_logging(std::string_view level, LogFormat format);

}  // namespace llmserve

#define LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
