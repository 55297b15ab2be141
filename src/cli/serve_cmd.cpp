// `llmserve serve`: loads the model, serves KServe v2 + Triton generate over HTTP, and shuts
// down gracefully. SIGTERM/SIGINT: readiness turns false at once and new inference requests get
// 503, requests in flight finish within --drain-timeout, then the process exits 0. Liveness stays
// 200 while draining so Kubernetes does not kill a pod that is finishing its work.
//
// The signal handler only posts a semaphore (async-signal-safe); the main thread waits on it and
// does the draining. A handler, rather than a blocked mask and sigwait, works whichever thread the
// kernel picks, including threads that libraries started before `serve` ran.
#include <semaphore.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/worker_pool.h"
#include "engine/engine.h"
#include "hub/url.h"
#include "server/generation_service.h"
#include "server/grpc/grpc_server.h"
#include "server/http/http_server.h"
#include "server/http/router.h"
#include "server/http/serving_state.h"
#include "server/kserve/kserve_frontend.h"
#include "server/metrics/metrics_registry.h"
#include "server/metrics/nvml_sampler.h"
#include "server/openai/openai_frontend.h"
#include "tokenizer/tokenizer.h"

namespace llmserve::cli {
namespace {

struct ServeOptions {
  EngineFlags engine;
  std::string served_model_name;
  std::vector<std::string> model_aliases;
  std::string tool_call_parser = "auto";
  std::string host = "0.0.0.0";
  uint16_t http_port = 8000;
  int grpc_port = 8001;     // -1: no gRPC listener
  int metrics_port = 8002;  // -1: no metrics listener
  std::string drain_timeout = "30s";
  std::string api_key;
  int32_t http_threads = 2;
  uint64_t max_body_bytes = 64ull << 20;
  int64_t max_connections = 0;    // 0: from the open-file limit
  int32_t tokenizer_threads = 0;  // 0: from the core count
  int64_t tokenizer_queue_size = 4096;
  std::string http_read_timeout = "30s";
  std::string http_idle_timeout = "65s";
  bool no_gpu_metrics = false;
};

// "30s", "500ms", "2m" or a bare number of seconds.
std::chrono::milliseconds parse_duration(const std::string& text, const char* flag) {
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    fail(StatusCode::kInvalidArgument, "{} must be a duration like 30s, 500ms or 2m, got '{}'",
         flag, text);
  }
  const std::string unit = text.substr(pos);
  double ms = 0;
  if (unit.empty() || unit == "s") {
    ms = value * 1000;
  } else if (unit == "ms") {
    ms = value;
  } else if (unit == "m") {
    ms = value * 60000;
  } else {
    fail(StatusCode::kInvalidArgument, "{} must be a duration like 30s, 500ms or 2m, got '{}'",
         flag, text);
  }
  // At most a year: also keeps the conversion below defined (NaN and 1e300 fail here).
  if (!(ms >= 0 && ms <= 365.0 * 86400 * 1000)) {
    fail(StatusCode::kInvalidArgument, "{} must be between 0 and a year, got '{}'", flag, text);
  }
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

// --max-connections when not given: the open-file limit less what the rest of the process needs
// (model files, gRPC, metrics, NCCL), so the server refuses with a 503 before accept() runs out.
int64_t default_max_connections() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 65536;
  return std::max<int64_t>(64, static_cast<int64_t>(limit.rlim_cur) - 256);
}

// The served name when --served-model-name is not given: NAME for a pulled ORG/NAME (its
// directory ends in the revision), else the model directory's name.
std::string default_served_name(const std::string& model_flag,
                                const std::filesystem::path& model_dir) {
  if (!model_flag.empty() && !std::filesystem::is_directory(model_flag) &&
      hub::is_repo_id(model_flag)) {
    return model_flag.substr(model_flag.find('/') + 1);
  }
  auto p = model_dir.lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().empty() ? "default" : p.filename().string();
}

sem_t g_stop_semaphore;
std::atomic<int> g_stop_signal{0};

void on_stop_signal(int signal) {
  g_stop_signal = signal;
  sem_post(&g_stop_semaphore);
}

void install_stop_handlers() {
  sem_init(&g_stop_semaphore, 0, 0);
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

int wait_for_stop_signal() {
  while (sem_wait(&g_stop_semaphore) != 0 && errno == EINTR) {
  }
  return g_stop_signal.load();
}

// Triton's nv_gpu_* gauges through NVML; without NVML or a GPU, one log line and no gauges.
void add_gpu_metrics(MetricsRegistry& metrics) {
  std::string why_not;
  auto sampler = NvmlSampler::open(why_not, kNvmlLibrary, std::getenv("CUDA_VISIBLE_DEVICES"));
  if (!sampler) {
    LOG_WARN("metrics: no GPU gauges (nv_gpu_*): {}", why_not);
    return;
  }
  LOG_INFO("metrics: GPU gauges (nv_gpu_*) for {} GPU(s) through NVML", sampler->num_devices());
  metrics.add_gpu_metrics(std::move(sampler));
}

int run_serve(const ServeOptions& opts) {
  install_stop_handlers();

  const auto drain_timeout = parse_duration(opts.drain_timeout, "--drain-timeout");
  if (opts.http_threads < 1)
    fail(StatusCode::kInvalidArgument, "--http-threads must be >= 1, got {}", opts.http_threads);
  EngineConfig config = opts.engine.resolve();
  kserve::ServedModel model;
  model.name = opts.served_model_name.empty()
                   ? default_served_name(opts.engine.model, config.model_dir)
                   : opts.served_model_name;
  model.aliases = opts.model_aliases;

  http::ServingState state;
  http::Router router;
  router.set_api_key(opts.api_key);
  http::HttpServerOptions http_options;
  http_options.host = opts.host;
  http_options.port = opts.http_port;
  http_options.num_threads = opts.http_threads;
  http_options.max_body_bytes = opts.max_body_bytes;
  http_options.read_timeout = parse_duration(opts.http_read_timeout, "--http-read-timeout");
  http_options.idle_timeout = parse_duration(opts.http_idle_timeout, "--http-idle-timeout");
  if (http_options.read_timeout.count() == 0 || http_options.idle_timeout.count() == 0) {
    fail(StatusCode::kInvalidArgument,
         "--http-read-timeout and --http-idle-timeout must be above 0");
  }
  if (opts.tokenizer_threads < 0)
    fail(StatusCode::kInvalidArgument, "--tokenizer-threads must be >= 0, got {}",
         opts.tokenizer_threads);
  if (opts.tokenizer_queue_size < 1) {
    fail(StatusCode::kInvalidArgument, "--tokenizer-queue-size must be >= 1, got {}",
         opts.tokenizer_queue_size);
  }
  if (opts.max_connections < 0)
    fail(StatusCode::kInvalidArgument, "--max-connections must be >= 0");
  http_options.max_connections =
      opts.max_connections > 0 ? opts.max_connections : default_max_connections();
  auto server = std::make_unique<http::HttpServer>(http_options, router);

  const auto load_start = Clock::now();
  LOG_INFO("loading model '{}' from {}", model.name, config.model_dir.string());
  auto tokenizer = Tokenizer::from_dir(config.model_dir);
  auto engine = std::make_unique<Engine>(config);
  MetricsRegistry metrics(model.name);  // declared before `service`, which points at it
  metrics.set_model_load_seconds(std::chrono::duration<double>(Clock::now() - load_start).count());
  metrics.set_max_active_requests(config.max_batch_size);
  GenerationService service(*engine, *tokenizer);
  service.add_observer(&metrics);
  // Request bodies are parsed and tokenized here, off the HTTP and gRPC threads; reset after the
  // servers stop and before the engine goes (queued tasks use the service).
  const int32_t num_tokenizer_threads =
      opts.tokenizer_threads > 0
          ? opts.tokenizer_threads
          : std::clamp(static_cast<int32_t>(std::thread::hardware_concurrency()) / 4, 2, 8);
  auto workers =
      std::make_unique<WorkerPool>(num_tokenizer_threads, opts.tokenizer_queue_size, "tokenizer");
  router.set_workers(workers.get());
  kserve::KServeFrontend kserve(service, state, model);
  kserve.add_routes(router);
  openai::OpenAIFrontend openai(service, state, model,
                                openai::tool_call_format_from_name(opts.tool_call_parser));
  openai.add_routes(router);
  std::unique_ptr<GrpcServer> grpc;
  if (opts.grpc_port >= 0) {
    GrpcServerOptions g;
    g.model_name = model.name;
    g.model_aliases = model.aliases;
    g.is_ready = [&state] { return state.accepts_requests(); };
    g.api_key = opts.api_key;
    g.workers = workers.get();
    grpc = std::make_unique<GrpcServer>(service, g);
    grpc->start(opts.host, opts.grpc_port);
    LOG_INFO("gRPC (KServe v2 inference.GRPCInferenceService) listening on {}:{}", opts.host,
             grpc->port());
  }
  // /metrics is served by our own HTTP server: prometheus-cpp's civetweb exposer overflows its
  // small fixed thread stacks under AddressSanitizer.
  http::Router metrics_router;
  std::unique_ptr<http::HttpServer> metrics_server;
  if (opts.metrics_port >= 0) {
    if (config.device == DeviceKind::kCuda && !opts.no_gpu_metrics) add_gpu_metrics(metrics);
    metrics.start_polling([&engine, &server, &metrics, &workers] {
      metrics.set_http_connections(server->num_connections(), server->num_refused_connections());
      metrics.set_tokenizer_queue(workers->num_queued() + workers->num_running(),
                                  workers->num_refused());
      return engine->stats();
    });
    metrics_router.add(
        "GET", "/metrics",
        [&metrics](const std::shared_ptr<http::HttpExchange>& ex) {
          try {
            metrics.refresh();  // the engine as it is now, not as at the last poll
          } catch (const std::exception& e) {
            LOG_WARN("metrics: engine stats at scrape failed: {}", e.what());
          }
          ex->respond(200, "text/plain; version=0.0.4; charset=utf-8", metrics.render_text());
        },
        http::RouteAccess::kPublic);
    http::HttpServerOptions mo;
    mo.host = opts.host;
    mo.port = static_cast<uint16_t>(opts.metrics_port);
    mo.num_threads = 1;
    metrics_server = std::make_unique<http::HttpServer>(mo, metrics_router);
    metrics_server->start();
    LOG_INFO("metrics (Prometheus, Triton names) on {}:{}/metrics", opts.host,
             metrics_server->port());
  }

  server->start();
  LOG_INFO(
      "HTTP (KServe v2, generate) listening on {}:{} with {} I/O threads, {} tokenizer "
      "threads",
      opts.host, server->port(), opts.http_threads, num_tokenizer_threads);
  state.is_ready = true;
  LOG_INFO(
      "model '{}'{} is ready ({:.1f} s after start)", model.name,
      model.aliases.empty() ? "" : fmt::format(" (aliases: {})", fmt::join(model.aliases, ", ")),
      std::chrono::duration<double>(Clock::now() - load_start).count());

  const int signal = wait_for_stop_signal();
  state.is_draining = true;
  LOG_INFO("received {}: not ready, draining for up to {} ms",
           signal == SIGTERM ? "SIGTERM" : "SIGINT", drain_timeout.count());
  const auto deadline = Clock::now() + drain_timeout;
  while (server->num_active_requests() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // gRPC lets its in-flight RPCs finish until the same deadline, then cancels the rest.
  if (grpc)
    grpc->shutdown(std::chrono::system_clock::now() +
                   std::max(deadline - Clock::now(), Clock::duration::zero()));
  if (server->num_active_requests() > 0) {
    LOG_WARN("drain timeout: {} requests still in flight are cancelled",
             server->num_active_requests());
    // Stopping the engine ends them with an error the frontends still send (503, or an SSE error
    // event); give those last writes a moment before the connections close.
    engine->stop();
    const auto last_writes = Clock::now() + std::chrono::seconds(1);
    while (server->num_active_requests() > 0 && Clock::now() < last_writes) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  server->stop();
  metrics.stop_polling();  // it reads the workers' counters
  workers.reset();         // runs what is still queued (answered 503: the state is draining)
  engine->stop();
  if (metrics_server) metrics_server->stop();
  grpc.reset();
  engine.reset();  // joins the engine thread and drops the streams that still hold exchanges
  server.reset();
  LOG_INFO("shut down cleanly");
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, Action& action) {
  auto opts = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve the model over HTTP: KServe v2 and Triton's generate extension");
  opts->engine.add_to(*cmd);
  cmd->add_option(
         "--served-model-name", opts->served_model_name,
         "Model name clients use in /v2/models/<name>/... (default: the model directory's name)")
      ->envname("LLMSERVE_SERVED_MODEL_NAME");
  cmd->add_option("--model-alias", opts->model_aliases,
                  "Another name that reaches the model (repeatable)")
      ->envname("LLMSERVE_MODEL_ALIAS");
  cmd->add_option("--host", opts->host, "Address to listen on")
      ->envname("LLMSERVE_HOST")
      ->capture_default_str();
  cmd->add_option("--grpc-port", opts->grpc_port, "gRPC port (0: any free port, -1: off)")
      ->envname("LLMSERVE_GRPC_PORT")
      ->capture_default_str();
  cmd->add_option("--metrics-port", opts->metrics_port,
                  "Prometheus metrics port (0: any free port, -1: off)")
      ->envname("LLMSERVE_METRICS_PORT")
      ->capture_default_str();
  cmd->add_option("--http-port", opts->http_port, "HTTP port (0: any free port)")
      ->envname("LLMSERVE_HTTP_PORT")
      ->capture_default_str();
  cmd->add_option("--drain-timeout", opts->drain_timeout,
                  "On SIGTERM, how long in-flight requests may take to finish")
      ->envname("LLMSERVE_DRAIN_TIMEOUT")
      ->capture_default_str();
  cmd->add_option("--tool-call-parser", opts->tool_call_parser,
                  "How the model writes tool calls: auto (from the chat template), hermes, "
                  "llama3_json, mistral, none")
      ->check(CLI::IsMember({"auto", "hermes", "llama3_json", "mistral", "none"}))
      ->envname("LLMSERVE_TOOL_CALL_PARSER")
      ->capture_default_str();
  cmd->add_option("--api-key", opts->api_key,
                  "Require 'Authorization: Bearer KEY' on all but the health routes")
      ->envname("LLMSERVE_API_KEY");
  cmd->add_option("--http-threads", opts->http_threads, "HTTP I/O threads")
      ->envname("LLMSERVE_HTTP_THREADS")
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", opts->max_body_bytes,
                  "Largest request body accepted (413 beyond)")
      ->envname("LLMSERVE_MAX_BODY_BYTES")
      ->capture_default_str();
  cmd->add_option("--max-connections", opts->max_connections,
                  "Open HTTP connections beyond which new ones get 503 and are closed; 0: the "
                  "open-file limit "
                  "less 256")
      ->envname("LLMSERVE_MAX_CONNECTIONS")
      ->capture_default_str();
  cmd->add_option("--tokenizer-threads", opts->tokenizer_threads,
                  "Threads that parse and tokenize request bodies off the HTTP I/O and gRPC "
                  "threads; 0: a quarter of the cores, 2 to 8")
      ->envname("LLMSERVE_TOKENIZER_THREADS")
      ->capture_default_str();
  cmd->add_option("--tokenizer-queue-size", opts->tokenizer_queue_size,
                  "Requests waiting for a tokenizer thread beyond which new ones get 503 (gRPC: "
                  "UNAVAILABLE)")
      ->envname("LLMSERVE_TOKENIZER_QUEUE_SIZE")
      ->capture_default_str();
  cmd->add_option(
         "--http-read-timeout", opts->http_read_timeout,
         "A client slower than this sending one request (headers and body) is disconnected")
      ->envname("LLMSERVE_HTTP_READ_TIMEOUT")
      ->capture_default_str();
  cmd->add_option(
         "--http-idle-timeout", opts->http_idle_timeout,
         "A keep-alive connection idle this long between requests is closed (above the load "
         "balancer's own idle timeout, 60 s on most)")
      ->envname("LLMSERVE_HTTP_IDLE_TIMEOUT")
      ->capture_default_str();
  cmd->add_flag("--no-gpu-metrics", opts->no_gpu_metrics,
                "Do not export the nv_gpu_* gauges (exported through NVML when serving on cuda)")
      ->envname("LLMSERVE_NO_GPU_METRICS");
  cmd->callback([&action, opts] { action = [opts] { return run_serve(*opts); }; });
}

}  // namespace llmserve::cli
