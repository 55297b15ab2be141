#include "bench/load/load_runner.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bench/load/transport.h"

namespace llmserve::bench::load {
namespace {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

Clock::duration to_duration(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}
double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// User + system CPU seconds of this process so far.
double process_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return s(u.ru_utime) + s(u.ru_stime);
}

// What a phase (warm-up or measurement) asks for.
struct PhaseSpec {
  std::string label;
  bool is_measured = false;
  LoadMode mode = LoadMode::kClosedLoop;
  int32_t concurrency = 1;   // closed loop; open loop: the cap (0 = none)
  double rate = 0;           // open loop
  int32_t num_requests = 0;  // 0: until `duration_s`
  double duration_s = 0;
};

// One phase on the shared io_context. Not thread-safe: lives on the I/O thread.
class Phase {
 public:
  Phase(asio::io_context& io, Transport& transport, const std::vector<Prompt>& prompts,
        size_t& next_prompt, const PhaseSpec& spec, uint64_t seed, bool show_progress)
      : io_(io),
        transport_(transport),
        prompts_(prompts),
        next_prompt_(next_prompt),
        spec_(spec),
        work_(asio::make_work_guard(io)),
        arrival_timer_(io),
        progress_timer_(io),
        rng_(seed),
        show_progress_(show_progress),
        is_tty_(isatty(STDERR_FILENO) != 0) {}

  // Runs the phase to its end; returns the traces of its requests, in the order they ended.
  std::vector<RequestTrace> run() {
    start_ = Clock::now();
    last_end_ = start_;
    if (spec_.mode == LoadMode::kClosedLoop) {
      for (int32_t i = 0; i < spec_.concurrency; ++i) issue();
    } else {
      next_arrival_ = start_;
      schedule_arrival();
    }
    if (show_progress_) schedule_progress();
    check_done();
    io_.restart();
    io_.run();
    if (show_progress_ && spec_.is_measured) {
      print_progress();
      std::fputs(is_tty_ ? "\n" : "", stderr);
    }
    return std::move(traces_);
  }

  double duration_s() const { return seconds(last_end_ - start_); }
  int32_t max_in_flight() const { return max_in_flight_; }

 private:
  bool can_issue() const {
    if (spec_.num_requests > 0) return num_issued_ < spec_.num_requests;
    return Clock::now() < start_ + to_duration(spec_.duration_s);
  }

  // Closed loop: the phase's count or duration decides.
  void issue() {
    if (can_issue()) issue_now();
  }

  void on_done(RequestTrace&& trace) {
    --num_in_flight_;
    last_end_ = std::max(last_end_, trace.end);
    if (trace.is_ok()) {
      num_output_tokens_ += trace.num_output_tokens();
    } else {
      ++num_errors_;
    }
    traces_.push_back(std::move(trace));
    if (spec_.mode == LoadMode::kClosedLoop) {
      issue();
    } else if (num_waiting_ > 0) {
      --num_waiting_;
      issue_now();
    }
    check_done();
  }

  // Open loop: arrivals are drawn from the phase start, independent of when callbacks run.
  void schedule_arrival() {
    if (spec_.num_requests > 0 ? num_arrived_ >= spec_.num_requests
                               : next_arrival_ >= start_ + to_duration(spec_.duration_s)) {
      is_arriving_ = false;
      return;
    }
    is_arriving_ = true;
    arrival_timer_.expires_at(next_arrival_);
    arrival_timer_.async_wait([this](const error_code& ec) {
      if (ec) return;
      ++num_arrived_;
      if (spec_.concurrency > 0 && num_in_flight_ >= spec_.concurrency) {
        ++num_waiting_;
      } else {
        issue_now();
      }
      std::exponential_distribution<double> gap(spec_.rate);
      next_arrival_ += to_duration(gap(rng_));
      schedule_arrival();
      check_done();
    });
  }

  // Sends the next prompt (open loop: the arrivals already counted it against the phase).
  void issue_now() {
    ++num_issued_;
    ++num_in_flight_;
    max_in_flight_ = std::max(max_in_flight_, num_in_flight_);
    const Prompt& prompt = prompts_[next_prompt_++ % prompts_.size()];
    transport_.send(prompt, [this](RequestTrace&& trace) { on_done(std::move(trace)); });
  }

  void check_done() {
    // A closed loop only issues when a request ends, so nothing in flight means nothing to come.
    const bool is_issuing = spec_.mode == LoadMode::kOpenLoop && (is_arriving_ || num_waiting_ > 0);
    if (num_in_flight_ > 0 || is_issuing) return;
    arrival_timer_.cancel();
    progress_timer_.cancel();
    work_.reset();
  }

  void schedule_progress() {
    progress_timer_.expires_after(std::chrono::milliseconds(is_tty_ ? 500 : 10000));
    progress_timer_.async_wait([this](const error_code& ec) {
      if (ec) return;
      print_progress();
      if (!is_tty_) std::fputs("\n", stderr);
      schedule_progress();
    });
  }

  void print_progress() {
    const double elapsed = std::max(1e-9, seconds(Clock::now() - start_));
    const int32_t num_done = static_cast<int32_t>(traces_.size());
    std::string total = spec_.num_requests > 0 ? fmt::format("/{}", spec_.num_requests) : "";
    std::string line = fmt::format(
        "{} {:<7} {}{} done, {} in flight, {:.2f} req/s, {:.1f} out tok/s, {} errors, {:.1f}s",
        spec_.is_measured ? "measure" : "warm-up", spec_.label, num_done, total, num_in_flight_,
        num_done / elapsed, num_output_tokens_ / elapsed, num_errors_, elapsed);
    std::fprintf(stderr, is_tty_ ? "\r%-110s" : "%s", line.c_str());
    std::fflush(stderr);
  }

  asio::io_context& io_;
  Transport& transport_;
  const std::vector<Prompt>& prompts_;
  size_t& next_prompt_;
  PhaseSpec spec_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::steady_timer arrival_timer_;
  asio::steady_timer progress_timer_;
  std::mt19937_64 rng_;
  bool show_progress_;
  bool is_tty_;
  Clock::time_point start_, last_end_, next_arrival_;
  int32_t num_issued_ = 0, num_in_flight_ = 0, max_in_flight_ = 0, num_arrived_ = 0,
          num_waiting_ = 0;
  int32_t num_errors_ = 0;
  int64_t num_output_tokens_ = 0;
  bool is_arriving_ = false;
  std::vector<RequestTrace> traces_;
};

}  // namespace

LoadRunner::LoadRunner(const LoadOptions& options, std::vector<Prompt> prompts)
    : options_(options), prompts_(std::move(prompts)) {}

std::optional<SpecCounters> LoadRunner::scrape_spec() const {
  if (options_.metrics_port == 0) return std::nullopt;
  const auto text =
      fetch_metrics(options_.host, options_.metrics_port, std::chrono::milliseconds(2000));
  return text ? parse_spec_counters(*text) : std::nullopt;
}

std::vector<LoadSummary> LoadRunner::run(const PointFn& on_point) {
  options_.validate();
  asio::io_context io(1);
  auto transport = make_transport(io, options_);
  size_t next_prompt = 0;
  std::vector<PhaseSpec> points;
  if (options_.mode == LoadMode::kClosedLoop) {
    for (int32_t c : options_.concurrencies) {
      points.push_back({fmt::format("c={}", c), true, LoadMode::kClosedLoop, c, 0,
                        options_.num_requests, options_.duration_s});
    }
  } else {
    for (double r : options_.rates) {
      points.push_back({fmt::format("rate={:g}", r), true, LoadMode::kOpenLoop,
                        options_.max_concurrency, r, options_.num_requests, options_.duration_s});
    }
  }
  std::vector<LoadSummary> summaries;
  uint64_t seed = options_.seed;
  for (const PhaseSpec& point : points) {
    if (options_.num_warmup > 0) {
      PhaseSpec warmup{point.label,
                       false,
                       LoadMode::kClosedLoop,
                       std::min(options_.num_warmup,
                                point.mode == LoadMode::kClosedLoop ? point.concurrency : 8),
                       0,
                       options_.num_warmup,
                       0};
      Phase(io, *transport, prompts_, next_prompt, warmup, ++seed, options_.show_progress).run();
    }
    Phase phase(io, *transport, prompts_, next_prompt, point, ++seed, options_.show_progress);
    const std::optional<SpecCounters> spec_before = scrape_spec();
    const double cpu_before = process_cpu_s();
    last_traces_ = phase.run();
    const double cpu_s = process_cpu_s() - cpu_before;
    const std::optional<SpecCounters> spec_after = scrape_spec();
    transport->close_idle();  // the next point starts from cold connections, after its warm-up
    LoadSummary s = summarize(last_traces_, phase.duration_s(), options_.slo);
    s.label = point.label;
    s.concurrency = point.concurrency;
    s.request_rate = point.rate;
    s.max_in_flight = phase.max_in_flight();
    s.client_cpu_s = cpu_s;
    s.client_cpu_util = s.duration_s > 0 ? cpu_s / s.duration_s : 0;
    if (spec_before && spec_after) s.speculation = *spec_after - *spec_before;
    if (on_point) on_point(s);
    summaries.push_back(std::move(s));
  }
  return summaries;
}

}  // namespace llmserve::bench::load
