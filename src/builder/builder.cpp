#include "builder/builder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <regex>
#include <set>

#include "backend/backend.h"
#include "builder/safetensors_writer.h"
#include "builder/weight_capture_backend.h"
#include "common/hasher.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/version.h"

namespace llmserve::builder {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kEdgeBytes = 1u << 20;            // hashed from each end of a weights file
constexpr uint64_t kMaxCopiedFileBytes = 64u << 20;  // larger side files are not tokenizer files

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_weights_file(const std::string& name) {
  for (const char* ext :
       {".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".onnx", ".ckpt"}) {
    if (ends_with(name, ext)) return true;
  }
  return name == "model.safetensors.index.json" || name == "pytorch_model.bin.index.json";
}

// The checkpoint's regular top-level files, sorted by name; hidden files (pull records, locks)
// and partial downloads left out.
std::vector<fs::path> checkpoint_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name.empty() || name[0] == '.' || ends_with(name, ".part") ||
        ends_with(name, ".lock")) {
      continue;
    }
    out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Config, generation config, tokenizer and chat template files: what an engine directory needs
// besides its weights to serve on its own.
bool is_copied_file(const fs::path& p) {
  return !is_weights_file(p.filename().string()) && fs::file_size(p) <= kMaxCopiedFileBytes;
}

std::string read_range(const fs::path& p, uint64_t at, uint64_t n) {
  std::ifstream in(p, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(at));
  std::string out(n, '\0');
  in.read(out.data(), static_cast<std::streamsize>(n));
  if (!in) fail(StatusCode::kDataLoss, "cannot read {} bytes at {} of '{}'", n, at, p.string());
  return out;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// An exclusive flock on `path`, held until destruction. Processes sharing a node cache (pods of a
// scale-up, init containers) serialize on it; the kernel drops it if the holder dies.
class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
      fail(StatusCode::kFailedPrecondition, "cannot open lock file '{}': {}", path.string(),
           std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
    LOG_INFO("another process is building into the same place (lock '{}'); waiting for it",
             path.string());
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR)
        fail(StatusCode::kFailedPrecondition, "cannot lock '{}': {}", path.string(),
             std::strerror(errno));
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// Removes a half-written build directory unless released.
class TempDir {
 public:
  explicit TempDir(fs::path p) : path_(std::move(p)) {}
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

fs::path lock_path(const fs::path& output) {
  return output.parent_path() / ("." + output.filename().string() + ".lock");
}

// Collects the model's weights in load order, each key once (a tied lm_head is its embedding).
class Recorder final : public WeightRecorder {
 public:
  void record(const std::string& key, const Tensor& t) override {
    if (seen_.insert(key).second) weights.emplace_back(key, t);
  }
  std::vector<std::pair<std::string, Tensor>> weights;

 private:
  std::set<std::string> seen_;
};

void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Writes the whole engine into `dir` (which exists and is empty).
EngineManifest write_engine(const BuildOptions& o, const std::string& checkpoint,
                            const std::string& key, const fs::path& dir) {
  const ModelConfig config = load_model_config(o.model_dir);
  EngineManifest m;
  m.llmserve_version = std::string(kVersion);
  m.architecture = config.architecture;
  m.dims = {{"num_hidden_layers", config.num_layers},
            {"hidden_size", config.hidden_size},
            {"num_attention_heads", config.num_q_heads},
            {"num_key_value_heads", config.num_kv_heads},
            {"head_dim", config.head_dim},
            {"intermediate_size", config.intermediate_size},
            {"vocab_size", config.vocab_size},
            {"max_position_embeddings", config.max_position_embeddings}};
  m.dtype = *o.dtype;
  m.quantization = o.quantization;
  m.quantize_lm_head = o.quantize_lm_head;
  m.device = o.device;
  m.gpu_arch = o.gpu_arch;
  m.tp = o.tp;
  m.pp = o.pp;
  m.max_seq_len = o.max_seq_len;
  m.key = key;
  m.checkpoint_hash = checkpoint;
  m.source = fs::absolute(o.model_dir).lexically_normal().string();
  m.created = utc_now();
  for (const fs::path& p : checkpoint_files(o.model_dir)) {
    if (!is_copied_file(p)) continue;
    fs::copy_file(p, dir / p.filename());
    m.copied_files.push_back(p.filename().string());
  }
  m.source_tensors = WeightStore::open(o.model_dir).names();
  Progress progress(o.progress, "writing", "wrote");
  const int32_t ranks = o.tp * o.pp;
  for (int32_t i = 0; i < ranks; ++i) {
    EngineRankFile rank;
    rank.stage = i / o.tp;
    rank.tp_rank = i % o.tp;
    rank.file = "rank-" + std::to_string(i) + ".safetensors";
    const auto load_start = Clock::now();
    WeightCaptureBackend backend(*o.dtype, rank.tp_rank, o.tp, rank.stage, o.pp);
    Recorder recorder;
    LoadOptions load;
    load.quantization = o.quantization;
    load.quantize_lm_head = o.quantize_lm_head;
    load.recorder = &recorder;
    const std::unique_ptr<Model> model = load_model(o.model_dir, backend, load);
    std::vector<TensorToWrite> tensors;
    uint64_t total = 0;
    for (const auto& [name, t] : recorder.weights) {
      std::vector<int64_t> shape(t.shape.begin(), t.shape.begin() + t.ndim);
      tensors.push_back({name, t.dtype, shape, {static_cast<const uint8_t*>(t.data), t.nbytes()}});
      total += t.nbytes();
    }
    LOG_INFO("rank {} of {} (stage {}, tensor-parallel rank {}): {} tensors prepared in {:.1f} s",
             i + 1, ranks, rank.stage, rank.tp_rank, tensors.size(), seconds_since(load_start));
    progress.begin_file(rank.file, total, 0);
    rank.bytes = write_safetensors(
        dir / rank.file, tensors,
        {{"format", "llmserve-engine"}, {"key", key}, {"rank", std::to_string(i)}},
        [&](uint64_t n) { progress.advance(n); });
    progress.end_file();
    rank.num_tensors = static_cast<int32_t>(tensors.size());
    m.ranks.push_back(rank);
  }
  write_engine_manifest(dir, m);
  sync_dir(dir);
  return m;
}

// The engine at `output` when it is the one `key` describes.
std::optional<EngineManifest> existing_engine(const fs::path& output, const std::string& key) {
  if (!is_engine_dir(output)) return std::nullopt;
  try {
    EngineManifest m = read_engine_manifest(output);
    if (m.key == key) return m;
  } catch (const Error&) {  // another format version, or a broken manifest: not this engine
  }
  return std::nullopt;
}

void check_replaceable(const fs::path& output, bool force) {
  if (!fs::exists(output) || force) return;
  if (!fs::is_directory(output)) {
    fail(StatusCode::kFailedPrecondition, "--output '{}' exists and is not a directory",
         output.string());
  }
  if (is_engine_dir(output)) {
    std::string what = "another engine";
    try {
      const EngineManifest m = read_engine_manifest(output);
      what = fmt::format(
          "another engine (from {}, {} {} --quantization {} --tp {} --pp {}, built {})", m.source,
          m.device, dtype_name(m.dtype), quantization_name(m.quantization), m.tp, m.pp, m.created);
    } catch (const Error& e) {
      what = fmt::format("another engine ({})", e.what());
    }
    fail(StatusCode::kFailedPrecondition,
         "--output '{}' holds {}; pass --force to replace it, or choose another --output",
         output.string(), what);
  }
  if (!fs::is_empty(output)) {
    fail(StatusCode::kFailedPrecondition,
         "--output '{}' is a non-empty directory that is not an engine; "
         "choose an empty or new directory (or pass --force to replace it)",
         output.string());
  }
}

std::string unique_suffix() {
  char host[64] = {};
  ::gethostname(host, sizeof host - 1);
  std::random_device rd;
  return fmt::format("{}-{}-{:08x}", host, ::getpid(), rd());
}

}  // namespace

BuildOptions resolve_build_options(BuildOptions o) {
  if (o.device != "cuda" && o.device != "cpu") {
    fail(StatusCode::kInvalidArgument, "--device must be cuda or cpu, got '{}'", o.device);
  }
  if (is_engine_dir(o.model_dir)) {
    fail(StatusCode::kInvalidArgument,
         "--model '{}' is a built engine already; build from the Hugging Face checkpoint "
         "it came from",
         o.model_dir.string());
  }
  const ModelConfig config = load_model_config(o.model_dir);
  if (o.tp < 1 || o.tp > 64)
    fail(StatusCode::kInvalidArgument, "--tp must be in [1, 64], got {}", o.tp);
  if (o.pp < 1 || o.pp > 64)
    fail(StatusCode::kInvalidArgument, "--pp must be in [1, 64], got {}", o.pp);
  if (o.tp * o.pp > 64)
    fail(StatusCode::kInvalidArgument, "--tp {} x --pp {} is more than 64 ranks", o.tp, o.pp);
  shard_config(config,
               ModelShard{0, o.tp, 0, o.pp});  // names the config field a split does not divide
  if (!o.dtype) {
    o.dtype = o.device == "cpu"                         ? DType::kF32
              : config.checkpoint_dtype == DType::kBF16 ? DType::kBF16
                                                        : DType::kF16;
  }
  if (*o.dtype != DType::kF32 && *o.dtype != DType::kF16 && *o.dtype != DType::kBF16) {
    fail(StatusCode::kInvalidArgument, "--dtype must be float16, bfloat16 or float32, got {}",
         dtype_name(*o.dtype));
  }
  if (o.device == "cpu" && *o.dtype != DType::kF32) {
    fail(StatusCode::kInvalidArgument,
         "--dtype {}: --device cpu engines hold float32 weights for now (serve the checkpoint "
         "itself for 16-bit weights on cpu)",
         dtype_name(*o.dtype));
  }
  if (o.device == "cuda" && *o.dtype == DType::kF32) {
    fail(StatusCode::kInvalidArgument, "--dtype float32: --device cuda runs float16 or bfloat16");
  }
  if (o.max_seq_len < 0 || o.max_seq_len > config.max_position_embeddings) {
    fail(StatusCode::kInvalidArgument,
         "--max-seq-len must be in [0, {}] (the model's max_position_embeddings), got {}",
         config.max_position_embeddings, o.max_seq_len);
  }
  if (o.device == "cuda") {
    if (o.gpu_arch.empty()) {
      o.gpu_arch = cuda_device_arch(0);
      if (o.gpu_arch.empty()) {
        o.gpu_arch = "sm_90";
        LOG_INFO("no GPU visible: building for sm_90 (H100/H200); --gpu-arch names another");
      }
    }
    if (!std::regex_match(o.gpu_arch, std::regex("sm_[0-9]+a?"))) {
      fail(StatusCode::kInvalidArgument, "--gpu-arch must look like sm_90, got '{}'", o.gpu_arch);
    }
    if (o.quantization == Quantization::kFp8 && !gpu_arch_has_fp8(o.gpu_arch)) {
      fail(StatusCode::kInvalidArgument,
           "--quantization fp8 needs fp8 tensor cores (--gpu-arch sm_89 or later), "
           "got --gpu-arch {}",
           o.gpu_arch);
    }
  } else if (!o.gpu_arch.empty()) {
    fail(StatusCode::kInvalidArgument, "--gpu-arch is for --device cuda only");
  }
  if (o.quantization == Quantization::kNone) {  // a pre-quantized checkpoint stays quantized
    const CheckpointQuantizationConfig q = read_checkpoint_quantization(o.model_dir);
    o.quantization = served_quantization(q, o.device == "cuda" && gpu_arch_has_fp8(o.gpu_arch));
    if (o.quantization != Quantization::kNone) {
      LOG_INFO("checkpoint quantized with {}: the engine keeps --quantization {}",
               checkpoint_quantization_name(q.kind), quantization_name(o.quantization));
    }
  }
  return o;
}

std::string checkpoint_hash(const fs::path& model_dir) {
  Hasher h(HashKind::kSha256);
  auto feed = [&](std::string_view label, std::string_view data) {
    h.update(label);
    h.update(std::to_string(data.size()));
    h.update(":");
    h.update(data);
  };
  for (const fs::path& p : checkpoint_files(model_dir)) {
    const std::string name = p.filename().string();
    const uint64_t size = fs::file_size(p);
    if (!is_weights_file(name) || ends_with(name, ".json")) {
      if (size > kMaxCopiedFileBytes) continue;
      feed(name, read_range(p, 0, size));
      continue;
    }
    feed("size:" + name, std::to_string(size));
    if (ends_with(name, ".safetensors") && size >= 8) {
      const std::string len = read_range(p, 0, 8);
      uint64_t n = 0;
      for (int i = 0; i < 8; ++i)
        n |= static_cast<uint64_t>(static_cast<uint8_t>(len[static_cast<size_t>(i)])) << (8 * i);
      const uint64_t header_end = std::min(size, 8 + n);
      feed("header:" + name, read_range(p, 0, header_end));
      const uint64_t data = size - header_end;
      feed("head:" + name, read_range(p, header_end, std::min(data, kEdgeBytes)));
      feed("tail:" + name,
           read_range(p, size - std::min(data, kEdgeBytes), std::min(data, kEdgeBytes)));
    } else {
      feed("head:" + name, read_range(p, 0, std::min(size, kEdgeBytes)));
      feed("tail:" + name,
           read_range(p, size - std::min(size, kEdgeBytes), std::min(size, kEdgeBytes)));
    }
  }
  return h.hex_digest();
}

std::string engine_key(const BuildOptions& o, const std::string& checkpoint) {
  nlohmann::json what = {{"format", kEngineFormatVersion},
                         {"checkpoint", checkpoint},
                         {"device", o.device},
                         {"gpu_arch", o.gpu_arch},
                         {"dtype", o.dtype ? std::string(dtype_name(*o.dtype)) : "auto"},
                         {"quantization", std::string(quantization_name(o.quantization))},
                         {"tp", o.tp},
                         {"pp", o.pp},
                         {"max_seq_len", o.max_seq_len}};
  // Only when set, so the keys of engines built without it stay what they were.
  if (o.quantize_lm_head) what["quantize_lm_head"] = true;
  Hasher h(HashKind::kSha256);
  h.update(what.dump());
  return h.hex_digest();
}

namespace {

// build_engine once the options are resolved and the checkpoint hashed (cached_engine has done
// both to name its directory).
BuildResult build_into(const BuildOptions& o, const std::string& checkpoint, const std::string& key,
                       const fs::path& output_arg, Clock::time_point start) {
  const fs::path output = fs::absolute(output_arg).lexically_normal();
  auto up_to_date = [&]() -> std::optional<BuildResult> {
    auto m = existing_engine(output, key);
    if (!m) return std::nullopt;
    LOG_INFO("engine '{}' is up to date (key {}): nothing to build", output.string(),
             key.substr(0, 16));
    return BuildResult{BuildOutcome::kUpToDate, output, std::move(*m), seconds_since(start)};
  };
  if (auto r = up_to_date()) return *r;
  fs::create_directories(output.parent_path());
  const FileLock lock(lock_path(output));
  if (auto r = up_to_date()) return *r;  // built by whoever held the lock
  check_replaceable(output, o.force);
  // Leftovers of builds that died (we hold the lock, so nobody else is writing one).
  const std::string temp_prefix = "." + output.filename().string() + ".building-";
  for (const auto& e : fs::directory_iterator(output.parent_path())) {
    if (e.path().filename().string().rfind(temp_prefix, 0) == 0) fs::remove_all(e.path());
  }
  const fs::path temp = output.parent_path() / (temp_prefix + unique_suffix());
  fs::create_directories(temp);
  TempDir guard(temp);
  LOG_INFO("building engine '{}' from '{}': {} {}, --quantization {}{}, --tp {} --pp {}{}",
           output.string(), o.model_dir.string(),
           o.device == "cuda" ? o.device + " " + o.gpu_arch : o.device, dtype_name(*o.dtype),
           quantization_name(o.quantization), o.quantize_lm_head ? " --quantize-lm-head" : "", o.tp,
           o.pp, o.max_seq_len > 0 ? fmt::format(", --max-seq-len {}", o.max_seq_len) : "");
  EngineManifest m = write_engine(o, checkpoint, key, temp);
  if (fs::exists(output)) fs::remove_all(output);
  fs::rename(temp, output);
  guard.release();
  sync_dir(output.parent_path());
  uint64_t bytes = 0;
  for (const auto& r : m.ranks) bytes += r.bytes;
  const double secs = seconds_since(start);
  LOG_INFO("built engine '{}' ({} rank file{}, {}) in {:.1f} s", output.string(), m.ranks.size(),
           m.ranks.size() == 1 ? "" : "s", format_bytes(bytes), secs);
  return {BuildOutcome::kBuilt, output, std::move(m), secs};
}

}  // namespace

BuildResult build_engine(const BuildOptions& options, const fs::path& output) {
  const auto start = Clock::now();
  const BuildOptions o = resolve_build_options(options);
  const std::string checkpoint = checkpoint_hash(o.model_dir);
  return build_into(o, checkpoint, engine_key(o, checkpoint), output, start);
}

BuildResult cached_engine(const BuildOptions& options, const fs::path& cache_dir) {
  const auto start = Clock::now();
  BuildOptions o = resolve_build_options(options);
  const std::string checkpoint = checkpoint_hash(o.model_dir);
  const std::string key = engine_key(o, checkpoint);
  const fs::path model = fs::absolute(o.model_dir).lexically_normal();
  std::string name = model.filename().string();
  // A pulled checkpoint's directory is named by its revision (main, a commit): name it by its repo.
  if (name == "main" || std::regex_match(name, std::regex("[0-9a-f]{7,40}"))) {
    name = model.parent_path().filename().string() + "-" + name;
  }
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  const fs::path dir =
      fs::absolute(cache_dir).lexically_normal() / (name + "-" + key.substr(0, 16));
  if (auto m = existing_engine(dir, key)) {
    LOG_INFO("engine cache: using '{}'", dir.string());
    return {BuildOutcome::kUpToDate, dir, std::move(*m), seconds_since(start)};
  }
  LOG_INFO("engine cache: no engine for '{}' with these options in '{}' yet; building it",
           model.string(), cache_dir.string());
  o.force = true;  // the cache owns its directories
  return build_into(o, checkpoint, key, dir, start);
}

}  // namespace llmserve::builder
