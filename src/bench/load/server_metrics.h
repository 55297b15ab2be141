// What the server itself counted during a sweep point, read from its Prometheus endpoint (the
// metrics port, 8002 by default) before and after the point's measured requests: today the
// speculative-decoding counters (`llmserve_spec_decode_*`, docs/server.md), whose deltas give the
// acceptance rate and the tokens each speculative decode produced.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llmserve::bench::load {

// The sum of every sample of metric `name` in a Prometheus text exposition (all label sets; `name`
// exactly, not a longer name it prefixes); nullopt when no sample has that name.
std::optional<double> prometheus_sum(std::string_view text, std::string_view name);

// The speculative-decoding counters at one moment, or their growth over a point.
struct SpecCounters {
  int64_t drafts = 0;           // decodes of a sequence that carried drafts
  int64_t draft_tokens = 0;     // tokens proposed and verified
  int64_t accepted_tokens = 0;  // of those, accepted
  // Accepted / proposed, 0 without drafts.
  double acceptance() const {
    return draft_tokens > 0 ? static_cast<double>(accepted_tokens) / draft_tokens : 0.0;
  }
  // Tokens a speculative decode produced: the verified token plus the accepted ones.
  double tokens_per_decode() const {
    return drafts > 0 ? 1.0 + static_cast<double>(accepted_tokens) / drafts : 0.0;
  }
  SpecCounters operator-(const SpecCounters& b) const {
    return {drafts - b.drafts, draft_tokens - b.draft_tokens, accepted_tokens - b.accepted_tokens};
  }
};

// The counters in an exposition; nullopt when it has none of them (not an llmserve server).
std::optional<SpecCounters> parse_spec_counters(std::string_view text);

// GET http://host:port/metrics, the body when the reply is 200 within `timeout`; nullopt otherwise
// (nothing listening, another status, too slow).
std::optional<std::string> fetch_metrics(const std::string& host, uint16_t port,
                                         std::chrono::milliseconds timeout);

}  // namespace llmserve::bench::load
