#include "common/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

#include "common/status.h"

namespace llmserve {

void init_logging(std::string_view level, LogFormat format) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    fail(StatusCode::kInvalidArgument,
         "--log-level must be one of trace|debug|info|warn|error|off, got '{}'", level);
  }
  auto logger = spdlog::stderr_logger_mt("llmserve");
  switch (format) {
    case LogFormat::kText:
      logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
      break;
    case LogFormat::kJson:
      // Messages are escaped by the callers that may contain quotes (none of ours do today).
      logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%v"})",
                          spdlog::pattern_time_type::utc);
      break;
  }
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
}

}  // namespace llmserve
