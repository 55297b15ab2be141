// LoadRunner: drives a sweep against a server and summarizes each point.
//
// Everything runs on one thread: one io_context owns every connection, timer and callback (gRPC
// replies are posted onto it), so the generator needs no locks and one core drives thousands of
// streams. Per point: warm-up requests (closed loop, not measured), then the measured requests:
//   closed loop  `concurrency` requests in flight; each end starts the next.
//   open loop    Poisson arrivals at `rate` (arrival times drawn up front, so a busy loop does not
//                thin the load); with --max-concurrency, arrivals beyond the cap wait for a slot.
// A point ends when its requests (or those started within --duration) have all ended. Around each
// point's measured requests the server's metrics port is scraped (LoadOptions::metrics_port) for
// its speculative-decoding counters.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "bench/load/load_options.h"
#include "bench/load/load_summary.h"
#include "bench/load/prompt_set.h"

namespace llmserve::bench::load {

class LoadRunner {
 public:
  // Called after each point, e.g. to print its table row.
  using PointFn = std::function<void(const LoadSummary&)>;

  LoadRunner(const LoadOptions& options, std::vector<Prompt> prompts);
  std::vector<LoadSummary> run(const PointFn& on_point = {});

  // The traces of the last point (for tests).
  const std::vector<RequestTrace>& last_traces() const { return last_traces_; }

 private:
  // The server's speculative-decoding counters now; nullopt when not scraped or not answered.
  std::optional<SpecCounters> scrape_spec() const;

  const LoadOptions& options_;
  std::vector<Prompt> prompts_;
  std::vector<RequestTrace> last_traces_;
};

}  // namespace llmserve::bench::load
