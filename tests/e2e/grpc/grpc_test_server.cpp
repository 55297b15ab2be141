// grpc_test_server: serves the embedded default model (models/default) over gRPC for
// tests/e2e/grpc_test.sh, until stdin closes or SIGTERM/SIGINT. Prints "ready <port>" once
// listening. Test-only: `llmserve serve` is the real wiring.
//
// usage: grpc_test_server PORT [--api-key KEY] [--alias NAME]   (PORT 0 picks a free port)
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "common/worker_pool.h"
#include "server/generation_service.h"
#include "server/grpc/grpc_server.h"

namespace {

volatile std::sig_atomic_t g_is_stopping = 0;
void on_signal(int) {
  g_is_stopping = 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace llmserve;
  if (argc < 2) {
    std::cerr << "usage: grpc_test_server PORT [--api-key KEY] [--alias NAME]\n";
    return 2;
  }
  GrpcServerOptions options;
  options.model_name = "default";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--api-key")
      options.api_key = argv[i + 1];
    else if (flag == "--alias")
      options.model_aliases.push_back(argv[i + 1]);
  }
  try {
    const std::filesystem::path model_dir =
        std::filesystem::path(LLMSERVE_SOURCE_DIR) / "models/default";
    auto tokenizer = Tokenizer::from_dir(model_dir);
    EngineConfig config;
    config.model_dir = model_dir;
    config.num_kv_blocks = 256;
    Engine engine(config);
    GenerationService service(engine, *tokenizer);
    WorkerPool workers(2, 64,
                       "tokenizer");  // requests are prepared off gRPC's threads, as in serve
    options.workers = &workers;
    GrpcServer server(service, options);
    server.start("127.0.0.1", std::stoi(argv[1]));
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    std::printf("ready %d\n", server.port());
    std::fflush(stdout);
    while (!g_is_stopping) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    server.shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    engine.stop();
  } catch (const Error& e) {
    std::fprintf(stderr, "grpc_test_server: %s\n", e.what());
    return 1;
  }
  return 0;
}
