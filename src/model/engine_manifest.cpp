#include "model/engine_manifest.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "common/status.h"
#include "common/version.h"

namespace llmserve {
namespace {

using nlohmann::json;

[[noreturn]] void bad_field(const std::filesystem::path& file, const std::string& field,
                            const std::string& want) {
  fail(StatusCode::kDataLoss, "engine manifest '{}': field '{}' is missing or not {}",
       file.string(), field, want);
}

const json& field(const json& j, const std::filesystem::path& file, const std::string& name,
                  json::value_t type) {
  auto it = j.find(name);
  const bool ok =
      it != j.end() && (it->type() == type || (type == json::value_t::number_integer &&
                                               it->type() == json::value_t::number_unsigned));
  if (!ok) {
    bad_field(file, name,
              type == json::value_t::string   ? "a string"
              : type == json::value_t::object ? "an object"
              : type == json::value_t::array  ? "an array"
                                              : "an integer");
  }
  return *it;
}

std::string str(const json& j, const std::filesystem::path& file, const std::string& name) {
  return field(j, file, name, json::value_t::string).get<std::string>();
}

int32_t int32(const json& j, const std::filesystem::path& file, const std::string& name) {
  return field(j, file, name, json::value_t::number_integer).get<int32_t>();
}

std::string rebuild_hint(const EngineManifest& m, const std::filesystem::path& dir,
                         const std::string& device) {
  return fmt::format("rebuild it: llmserve build --model {} --output {} --device {} --force",
                     m.source.empty() ? "<checkpoint>" : m.source, dir.string(), device);
}

}  // namespace

json EngineManifest::to_json() const {
  json ranks_json = json::array();
  for (const auto& r : ranks) {
    ranks_json.push_back({{"stage", r.stage},
                          {"tp_rank", r.tp_rank},
                          {"file", r.file},
                          {"bytes", r.bytes},
                          {"num_tensors", r.num_tensors}});
  }
  const char* scale_layout =
      quantization == Quantization::kInt8WeightOnly
          ? "I8 codes under the weight's key, one F32 scale per output row under <key>.scales"
      : quantization == Quantization::kFp8
          ? "F8_E4M3 codes under the weight's key, one F32 scale per output row under "
            "<key>.scales; activations quantized per token at run time"
      : quantization == Quantization::kInt4WeightOnly
          ? "I32 packed 4-bit codes [out, in / 8] under the weight's key (src/common/int4.h), "
            "(scale, zero) pairs [out, 2 * in / group] in the engine dtype under <key>.scales"
          : "";
  return {
      {"format", "llmserve-engine"},
      {"builder_version", builder_version},
      {"llmserve_version", llmserve_version},
      {"architecture", architecture},
      {"dims", dims},
      {"dtype", std::string(dtype_name(dtype))},
      {"quantization",
       {{"method", std::string(quantization_name(quantization))},
        {"scale_layout", scale_layout},
        {"quantize_lm_head", quantize_lm_head}}},
      {"target", {{"device", device}, {"gpu_arch", gpu_arch}}},
      {"parallel", {{"tp", tp}, {"pp", pp}}},
      {"max_seq_len", max_seq_len},
      {"key", key},
      {"source",
       {{"path", source}, {"checkpoint_hash", checkpoint_hash}, {"tensors", source_tensors}}},
      {"copied_files", copied_files},
      {"ranks", ranks_json},
      {"created", created},
  };
}

EngineManifest EngineManifest::from_json(const json& j, const std::filesystem::path& file) {
  if (!j.is_object())
    fail(StatusCode::kDataLoss, "engine manifest '{}' is not a JSON object", file.string());
  EngineManifest m;
  if (j.value("format", "") != "llmserve-engine") bad_field(file, "format", "\"llmserve-engine\"");
  m.builder_version = int32(j, file, "builder_version");
  m.llmserve_version = str(j, file, "llmserve_version");
  if (m.builder_version != kEngineFormatVersion) return m;  // the caller says how to rebuild
  m.architecture = str(j, file, "architecture");
  m.dims = j.value("dims", json::object());
  const auto dtype = parse_dtype(str(j, file, "dtype"));
  if (!dtype || (*dtype != DType::kF32 && *dtype != DType::kF16 && *dtype != DType::kBF16)) {
    bad_field(file, "dtype", "F32, F16 or BF16");
  }
  m.dtype = *dtype;
  const json& q = field(j, file, "quantization", json::value_t::object);
  const auto quant = parse_quantization(str(q, file, "method"));
  if (!quant) bad_field(file, "quantization.method", "a known quantization");
  m.quantization = *quant;
  const json& lm_head = q.value("quantize_lm_head", json(false));
  if (!lm_head.is_boolean()) bad_field(file, "quantization.quantize_lm_head", "true or false");
  m.quantize_lm_head = lm_head.get<bool>();
  const json& target = field(j, file, "target", json::value_t::object);
  m.device = str(target, file, "device");
  if (m.device != "cpu" && m.device != "cuda")
    bad_field(file, "target.device", "\"cpu\" or \"cuda\"");
  m.gpu_arch = str(target, file, "gpu_arch");
  const json& parallel = field(j, file, "parallel", json::value_t::object);
  m.tp = int32(parallel, file, "tp");
  m.pp = int32(parallel, file, "pp");
  if (m.tp < 1 || m.pp < 1 || m.tp * m.pp > 64)
    bad_field(file, "parallel", "tp, pp >= 1 with tp * pp <= 64");
  m.max_seq_len = int32(j, file, "max_seq_len");
  m.key = str(j, file, "key");
  const json& source = field(j, file, "source", json::value_t::object);
  m.source = str(source, file, "path");
  m.checkpoint_hash = str(source, file, "checkpoint_hash");
  for (const auto& t : field(source, file, "tensors", json::value_t::array)) {
    if (!t.is_string()) bad_field(file, "source.tensors", "an array of names");
    m.source_tensors.push_back(t.get<std::string>());
  }
  std::sort(m.source_tensors.begin(), m.source_tensors.end());
  for (const auto& f : j.value("copied_files", json::array())) {
    if (f.is_string()) m.copied_files.push_back(f.get<std::string>());
  }
  for (const auto& r : field(j, file, "ranks", json::value_t::array)) {
    EngineRankFile rank;
    rank.stage = int32(r, file, "stage");
    rank.tp_rank = int32(r, file, "tp_rank");
    rank.file = str(r, file, "file");
    if (rank.file.find('/') != std::string::npos || rank.file.find("..") != std::string::npos) {
      bad_field(file, "ranks[].file", "a plain file name");
    }
    rank.bytes = r.value("bytes", uint64_t{0});
    rank.num_tensors = r.value("num_tensors", 0);
    m.ranks.push_back(rank);
  }
  if (m.ranks.size() != static_cast<size_t>(m.tp * m.pp))
    bad_field(file, "ranks", "one entry per rank (tp x pp)");
  m.created = j.value("created", "");
  return m;
}

bool is_engine_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  return std::filesystem::is_regular_file(dir / kEngineManifestName, ec);
}

EngineManifest read_engine_manifest(const std::filesystem::path& dir) {
  const auto file = dir / kEngineManifestName;
  std::ifstream in(file);
  if (!in)
    fail(StatusCode::kNotFound,
         "'{}' is missing: not an engine directory (llmserve build writes one)", file.string());
  const json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    fail(StatusCode::kDataLoss, "engine manifest '{}' is not valid JSON", file.string());
  EngineManifest m = EngineManifest::from_json(j, file);
  if (m.builder_version != kEngineFormatVersion) {
    fail(StatusCode::kFailedPrecondition,
         "engine '{}' was built by llmserve {} (engine format {}); this llmserve {} reads format "
         "{}: rebuild it: "
         "llmserve build --model <checkpoint> --output {} --force",
         dir.string(), m.llmserve_version, m.builder_version, kVersion, kEngineFormatVersion,
         dir.string());
  }
  return m;
}

void write_engine_manifest(const std::filesystem::path& dir, const EngineManifest& manifest) {
  const auto file = dir / kEngineManifestName;
  const auto tmp = dir / (std::string(kEngineManifestName) + ".tmp." + std::to_string(::getpid()));
  {
    std::ofstream out(tmp);
    out << manifest.to_json().dump(2) << '\n';
    out.flush();
    if (!out) fail(StatusCode::kDataLoss, "cannot write '{}'", tmp.string());
  }
  std::filesystem::rename(tmp, file);
}

std::string engine_device_name(const Backend& backend) {
  return std::string(backend.name());
}

void check_engine_target(const EngineManifest& m, const std::filesystem::path& dir,
                         const Backend& backend) {
  const std::string device = engine_device_name(backend);
  if (device != "null") {
    if (device != m.device) {
      fail(StatusCode::kFailedPrecondition, "engine '{}' was built for --device {}, not {}; {}",
           dir.string(), m.device, device, rebuild_hint(m, dir, device));
    }
    if (!m.gpu_arch.empty() && m.gpu_arch != backend.device_arch()) {
      fail(StatusCode::kFailedPrecondition, "engine '{}' was built for {} GPUs, this GPU is {}; {}",
           dir.string(), m.gpu_arch, backend.device_arch(), rebuild_hint(m, dir, device));
    }
  }
  if (m.dtype != backend.weight_dtype()) {
    fail(StatusCode::kFailedPrecondition,
         "engine '{}' holds {} weights; the {} backend was created for {} (pass --dtype {} or "
         "leave it at auto)",
         dir.string(), dtype_name(m.dtype), device, dtype_name(backend.weight_dtype()),
         dtype_name(m.dtype));
  }
  if (backend.group_size() != m.tp || backend.num_stages() != m.pp) {
    fail(StatusCode::kFailedPrecondition,
         "engine '{}' was built for --tp {} --pp {}, not --tp {} --pp {}; {}", dir.string(), m.tp,
         m.pp, backend.group_size(), backend.num_stages(), rebuild_hint(m, dir, m.device));
  }
}

}  // namespace llmserve
