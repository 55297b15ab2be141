#include "model/arch/moe.h"

#include "common/status.h"

namespace llmserve {

void parse_qwen_moe_config(const ConfigReader& r, ModelConfig& c) {
  MoeConfig& m = c.moe;
  m.num_experts = r.has("num_experts") ? r.get_int("num_experts") : r.get_int("num_local_experts");
  m.top_k = r.get_int("num_experts_per_tok");
  m.intermediate_size = r.get_int("moe_intermediate_size");
  m.renormalize = r.get_bool("norm_topk_prob", false);
  m.shared_intermediate_size = r.get_int("shared_expert_intermediate_size", 0);
  m.sparse_step = r.get_int("decoder_sparse_step", 1);
  if (r.has("mlp_only_layers")) {
    for (const auto& v : r.json().at("mlp_only_layers")) m.dense_layers.push_back(v.get<int32_t>());
  }
}

void load_moe_mlp(WeightLoader& w, const ModelConfig& c, Quantization quantization,
                  const std::string& prefix, DecoderLayer& layer) {
  if (quantization == Quantization::kFp8) {
    fail(StatusCode::kUnimplemented,
         "--quantization fp8 is not supported for {}'s experts (int8-wo and int4-wo are)",
         c.architecture);
  }
  const MoeConfig& m = c.moe;
  const int64_t d = c.hidden_size, f = m.intermediate_size, e = m.num_experts;
  // Mixtral names its MoE block block_sparse_moe and its experts' layers w1 / w3 / w2;
  // transformers 5 names it mlp.
  const std::string moe =
      prefix + (w.contains(prefix + "block_sparse_moe.gate.weight") ? "block_sparse_moe." : "mlp.");
  const bool w123 = w.contains(moe + "experts.0.w1.weight");
  const std::string expert = moe + "experts.{e}.";
  const std::string gate = expert + (w123 ? "w1.weight" : "gate_proj.weight");
  const std::string up = expert + (w123 ? "w3.weight" : "up_proj.weight");
  const std::string down = expert + (w123 ? "w2.weight" : "down_proj.weight");
  const bool has_shared = m.shared_intermediate_size > 0;
  // Not quantized: the routing is the choice of experts, which rounding would move.
  layer.router_w =
      has_shared
          ? w.load_stacked({moe + "gate.weight", moe + "shared_expert_gate.weight"}, {e, 1}, d)
          : w.load(moe + "gate.weight", {e, d});
  layer.experts_gate_up = w.linear([&] {
    return w.load_experts(moe + "experts.gate_up_proj", {gate, up}, e, {f, f}, d, Split::kRows);
  });
  layer.experts_down = w.linear(
      [&] { return w.load_experts(moe + "experts.down_proj", {down}, e, {d}, f, Split::kCols); });
  if (!has_shared) return;
  const int64_t fs = m.shared_intermediate_size;
  const std::string shared = moe + "shared_expert.";
  layer.shared_up_w = w.linear([&] {
    return w.load_stacked({shared + "gate_proj.weight", shared + "up_proj.weight"}, {fs, fs}, d,
                          Split::kRows);
  });
  layer.shared_down_w = w.linear([&] {
    return w.load(shared + "down_proj.weight", {d, fs}, Split::kCols);
  });
}

}  // namespace llmserve
