#!/usr/bin/env python3
"""Tiny random Hugging Face checkpoints with golden outputs, for llmserve's C++ tests.

Run where PyTorch and transformers are installed (everything runs on the CPU, in seconds):

    python3 scripts/make_reference.py --out tests/data/models [--only gpt2-tiny ...]
    python3 scripts/make_quantized_reference.py --out tests/data/models [--only llama-tiny-awq ...]

One folder per model under --out:
  config.json, generation_config.json   config as transformers writes it; generation_config is ours
  model.safetensors                     or model-0000K-of-0000N.safetensors + model.safetensors.index.json
  reference.safetensors                 golden tensors (keys below)
  reference.json                        seed, versions, dtypes, case lengths, what was checked, and the
                                        effective config + architecture facts a loader needs
and a README.md at the top describing the format (the README constant below, written by both scripts).

Models (this script): gpt2-tiny, gpt2-tiny-fp16, llama-tiny, llama-tiny-bf16, qwen2-tiny, qwen3-tiny,
mistral-tiny, gemma2-tiny, gemma3-tiny, phi3-tiny, phi3-longrope-tiny, qwen2-yarn-tiny, llama-dynamic-tiny,
qwen2-sliding-tiny, mixtral-tiny, qwen2moe-tiny,
qwen3moe-tiny, llama32-tied-tiny (see MODEL_SPECS and the README table). make_quantized_reference.py adds
pre-quantized Llamas in the formats real checkpoints use: llama-tiny-fp8-ct (compressed-tensors fp8, static
per-tensor input scales), llama-tiny-fp8-block (quant_method fp8, 128x128 weight blocks), llama-tiny-awq
(AWQ GEMM, 4 bit, group 32) and llama-tiny-gptq (GPTQ v1, 4 bit, group 32, act-order g_idx); their
references are computed from the dequantized weights, which that script checks against its own files.

reference.safetensors, for each case i (prompt lengths 1, 5, 17, 40; the same prompts for every model):
  case{i}.prompt          int64   [T]     random ids in [1, 511]
  case{i}.prefill_logits  float32 [T, V]  logits at every prompt position, one forward over the prompt
  case{i}.decode_tokens   int64   [S]     S=6 greedy tokens fed one at a time through the KV cache
  case{i}.decode_logits   float32 [S, V]  row j = logits after feeding decode_tokens[j]
  case{i}.greedy          int64   [N]     N=20 greedy new tokens (generate, EOS never stops it);
                                          greedy[:S] == decode_tokens
RoPE models also carry the frequencies that were used, read from the model's rotary module:
  rope.inv_freq           float32 [head_dim / 2]  every layer's (Gemma 3: the full-attention layers';
                                                  Phi-3 LongRoPE: the short factors')
  rope_local.inv_freq     float32 [head_dim / 2]  Gemma 3 only: the sliding-window layers'
  rope.long_inv_freq      float32 [head_dim / 2]  Phi-3 LongRoPE only: with the long factors
LongRoPE also scales cos and sin by an attention factor (reference.json: rope.attention_factor).

Everything is computed in float32 with eager attention from the weights exactly as saved (bf16 and fp16
checkpoints are upcast, which is exact), so an fp32 implementation reading the same files should agree
to about 1e-4. Weights are drawn from fixed seeds with a large std so that logits are far from uniform;
the seed is bumped until every reference position has a top-1 logit ahead of the runner-up by more than
1e-3 (the seed used is in reference.json), and for MoE models until every router's k-th logit beats the
(k+1)-th by more than 1e-3 on every token, so the expert choice is not a rounding accident. The script
checks its own output before writing: it reloads every checkpoint with from_pretrained and compares it to
the file contents and to the model that was saved, compares KV-cache decode logits with a full recompute,
compares generate() with plain argmax chaining, and checks the RoPE frequencies against their formulas.

Sliding windows (Mistral, Gemma 2/3) are 8 tokens, so the 17- and 40-token cases exercise them: a query at
position q sees keys q-7..q (transformers' sliding_window_overlay, kv > q - window). Phi-3 LongRoPE's
original_max_position_embeddings is 38 so that no case crosses it: the 1-, 5- and 17-token cases stay on the
short factors through all 20 greedy tokens (at most 36 positions), the 40-token case is on the long factors
from its first forward. (transformers picks the factors from max(position)+1 of each forward, so a case that crossed it
would keep short-factor keys in its KV cache and disagree with a full recompute.)

A model whose transformers class is missing (an older transformers) or whose checks fail is reported and
left out; the others are still written, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
import shutil
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

VOCAB_SIZE = 512
PROMPT_LENGTHS = (1, 5, 17, 40)
PROMPT_SEED = 20240601
NUM_DECODE_STEPS = 6
NUM_GREEDY_TOKENS = 20
MIN_TOP1_MARGIN = 1e-3
MIN_ROUTER_MARGIN = 1e-3  # MoE: k-th minus (k+1)-th router logit, every token, every layer
DECODE_ATOL = 1e-4
RELOAD_ATOL = 1e-5
MAX_SEED_TRIES = 40
TOTAL_BYTES_WARN = 12_000_000  # all fixtures of both scripts together

INIT_STD = 0.2  # matrices and embeddings
BIAS_STD = 0.1  # biases (random so a missing bias shows up)
NORM_STD = 0.1  # norm weights are 1 + N(0, NORM_STD^2) so a missing gain shows up (Gemma's (1 + w): 2 + noise)

ROPE_THETA = 10000.0
LLAMA3_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 32,
}
# Llama 3.2's numbers (theta 500000, factor 32), with a context short enough that the 8 frequencies of
# head_dim 16 fall in all three regimes (1 unchanged, 1 smoothed, 6 divided).
LLAMA32_THETA = 500000.0
LLAMA32_SCALING = {
    "rope_type": "llama3",
    "factor": 32.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}
SLIDING_WINDOW = 8
# Gemma 3: local (sliding) layers use theta 10000, global layers theta 1e6 with linear scaling, as in
# gemma-3-4b and larger.
GEMMA3_GLOBAL_THETA = 1000000.0
GEMMA3_LOCAL_THETA = 10000.0
GEMMA3_GLOBAL_SCALING = {"rope_type": "linear", "factor": 8.0}
# Phi-3 LongRoPE (Phi-3-mini-128k style), factors for head_dim 16; see the module docstring for 38.
PHI3_LONGROPE_SCALING = {
    "rope_type": "longrope",
    "short_factor": [1.0, 1.02, 1.05, 1.1, 1.15, 1.25, 1.4, 1.6],
    "long_factor": [1.0, 1.25, 1.6, 2.2, 3.0, 4.5, 6.5, 9.0],
    "original_max_position_embeddings": 38,
}
# Qwen2.5 long-context YaRN: factor 4 over an original context of 32 (max_position_embeddings set to 4 x 32,
# so transformers versions that derive the factor from the two agree with those that read it). With head_dim 16
# and theta 10000 the correction range is dims [0, 2]: frequency 0 extrapolated, 1 blended, 2-7 interpolated.
QWEN2_YARN_SCALING = {
    "rope_type": "yarn",
    "factor": 4.0,
    "original_max_position_embeddings": 32,
}

# Dynamic NTK, factor 2: transformers keeps the unscaled frequencies while a forward stays within
# max_position_embeddings (128 here, past every case's 59 positions) and recomputes a larger base past it, which
# llmserve does not serve (it caps the context there); so every case checks the in-context behaviour.
LLAMA_DYNAMIC_SCALING = {
    "rope_type": "dynamic",
    "factor": 2.0,
}

# name -> how to build it. Seeds are the first tried; see MAX_SEED_TRIES. "shape" overrides LLAMA_SHAPE.
MODEL_SPECS = {
    "gpt2-tiny": {"arch": "gpt2", "seed": 1000, "save_dtype": "float32"},
    "llama-tiny": {
        "arch": "llama",
        "seed": 2000,
        "save_dtype": "float32",
        "num_kv_heads": 2,
        "tie": False,
        "rope_scaling": LLAMA3_SCALING,
        "max_shard_size": "100KB",
    },
    "llama-tiny-bf16": {
        "arch": "llama",
        "seed": 3000,
        "save_dtype": "bfloat16",
        "num_kv_heads": 4,
        "tie": True,
        "rope_scaling": None,
    },
    "gpt2-tiny-fp16": {"arch": "gpt2", "seed": 4000, "save_dtype": "float16"},
    # Qwen2: Llama's layer with biases on q/k/v (none on o_proj), tied embeddings as Qwen2-0.5B.
    "qwen2-tiny": {
        "arch": "qwen2",
        "seed": 5000,
        "save_dtype": "float32",
        "num_kv_heads": 2,
        "tie": True,
        "rope_scaling": None,
    },
    # Qwen2 with YaRN rope scaling (static: the same frequencies at every length; cos/sin x attention factor).
    "qwen2-yarn-tiny": {
        "arch": "qwen2",
        "seed": 15000,
        "save_dtype": "bfloat16",
        "num_kv_heads": 2,
        "tie": False,
        "rope_scaling": QWEN2_YARN_SCALING,
        "shape": {"max_position_embeddings": 128},
    },
    # Llama with dynamic NTK rope scaling, within its context (the unscaled frequencies).
    "llama-dynamic-tiny": {
        "arch": "llama",
        "seed": 16000,
        "save_dtype": "bfloat16",
        "num_kv_heads": 2,
        "tie": False,
        "rope_scaling": LLAMA_DYNAMIC_SCALING,
        "shape": {"max_position_embeddings": 128},
    },
    # Qwen2 with use_sliding_window: layer 0 full attention, layer 1 sliding (max_window_layers 1).
    "qwen2-sliding-tiny": {
        "arch": "qwen2",
        "seed": 17000,
        "save_dtype": "bfloat16",
        "num_kv_heads": 2,
        "tie": False,
        "rope_scaling": None,
        "use_sliding_window": True,
        "sliding_window": SLIDING_WINDOW,
        "max_window_layers": 1,
    },
    # Qwen3: no biases, per-head RMSNorm on q and k (q_norm/k_norm) before RoPE, tied as Qwen3-0.6B.
    "qwen3-tiny": {
        "arch": "qwen3",
        "seed": 6000,
        "save_dtype": "bfloat16",
        "num_kv_heads": 2,
        "tie": True,
        "rope_scaling": None,
    },
    # Mistral: Llama's layer with an 8-token sliding window on every layer, GQA 4/2, untied.
    "mistral-tiny": {
        "arch": "mistral",
        "seed": 7000,
        "save_dtype": "bfloat16",
        "num_kv_heads": 2,
        "tie": False,
        "rope_scaling": None,
        "sliding_window": SLIDING_WINDOW,
    },
    # Gemma 2: GeGLU, embeddings * sqrt(hidden), (1 + w) norms incl. pre/post-feedforward, attention and
    # final logit softcapping, query_pre_attn_scalar 32 != head_dim 16, sliding / full layers alternating.
    "gemma2-tiny": {
        "arch": "gemma2",
        "seed": 8000,
        "save_dtype": "float32",
        "num_kv_heads": 2,
        "tie": True,
        "rope_scaling": None,
        "rms_norm_eps": 1e-6,
        "sliding_window": SLIDING_WINDOW,
        "layer_types": ["sliding_attention", "full_attention"],
        "query_pre_attn_scalar": 32,
        "attn_logit_softcapping": 20.0,
        "final_logit_softcapping": 8.0,
    },
    # Gemma 3 (text-only Gemma3ForCausalLM): Gemma 2's layer without softcapping, plus (1 + w) q_norm/k_norm;
    # local layers theta 10000, global layers theta 1e6 with linear scaling 8; layers sliding, sliding, full,
    # sliding (sliding_window_pattern 3).
    "gemma3-tiny": {
        "arch": "gemma3",
        "seed": 9000,
        "save_dtype": "bfloat16",
        "num_kv_heads": 2,
        "tie": True,
        "rope_theta": GEMMA3_GLOBAL_THETA,
        "rope_local_theta": GEMMA3_LOCAL_THETA,
        "rope_scaling": GEMMA3_GLOBAL_SCALING,
        "rms_norm_eps": 1e-6,
        "sliding_window": SLIDING_WINDOW,
        "sliding_window_pattern": 3,
        "layer_types": ["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
        "query_pre_attn_scalar": 32,
        "shape": {"num_hidden_layers": 4},
    },
    # Phi-3: fused qkv_proj [q; k; v] and gate_up_proj [gate; up], MHA as Phi-3-mini, plain RoPE.
    "phi3-tiny": {
        "arch": "phi3",
        "seed": 10000,
        "save_dtype": "float32",
        "num_kv_heads": 4,
        "tie": False,
        "rope_scaling": None,
    },
    # Phi-3 with LongRoPE (short/long factors, attention factor on cos/sin), GQA 4/2.
    "phi3-longrope-tiny": {
        "arch": "phi3",
        "seed": 11000,
        "save_dtype": "bfloat16",
        "num_kv_heads": 2,
        "tie": False,
        "rope_scaling": PHI3_LONGROPE_SCALING,
    },
    # Mixtral: every MLP is 4 SwiGLU experts, top-2, softmax router, top-k weights renormalized.
    "mixtral-tiny": {
        "arch": "mixtral",
        "seed": 12000,
        "save_dtype": "bfloat16",
        "num_kv_heads": 2,
        "tie": False,
        "rope_scaling": None,
        "num_experts": 4,
        "top_k": 2,
        "shape": {"intermediate_size": 64},
    },
    # Qwen2-MoE (Qwen1.5-MoE): q/k/v biases, 4 experts top-2 without renormalization, plus a shared expert
    # scaled by sigmoid(shared_expert_gate(x)); every layer sparse.
    "qwen2moe-tiny": {
        "arch": "qwen2_moe",
        "seed": 13000,
        "save_dtype": "float32",
        "num_kv_heads": 2,
        "tie": False,
        "rope_scaling": None,
        "num_experts": 4,
        "top_k": 2,
        "moe_intermediate_size": 32,
        "shared_expert_intermediate_size": 32,
        "norm_topk_prob": False,
    },
    # Qwen3-MoE: Qwen3's attention (q/k norms), 4 experts top-2 renormalized, no shared expert.
    "qwen3moe-tiny": {
        "arch": "qwen3_moe",
        "seed": 14000,
        "save_dtype": "bfloat16",
        "num_kv_heads": 2,
        "tie": False,
        "rope_scaling": None,
        "num_experts": 4,
        "top_k": 2,
        "moe_intermediate_size": 32,
        "norm_topk_prob": True,
    },
    # Llama 3.2 style: tied embeddings, llama3 RoPE scaling with theta 500000 and factor 32.
    "llama32-tied-tiny": {
        "arch": "llama",
        "seed": 15000,
        "save_dtype": "float32",
        "num_kv_heads": 2,
        "tie": True,
        "rope_theta": LLAMA32_THETA,
        "rope_scaling": LLAMA32_SCALING,
    },
}

# arch -> (config class, model class), looked up by name so that a transformers without one fails only the
# models that need it.
ARCH_CLASSES = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel"),
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
    "mistral": ("MistralConfig", "MistralForCausalLM"),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM"),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM"),
    "phi3": ("Phi3Config", "Phi3ForCausalLM"),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM"),
    "qwen2_moe": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM"),
    "qwen3_moe": ("Qwen3MoeConfig", "Qwen3MoeForCausalLM"),
}
MOE_ARCHS = ("mixtral", "qwen2_moe", "qwen3_moe")
GEMMA_ARCHS = ("gemma2", "gemma3")
# Config kwargs of the common Llama-like set that a family has no field for (left out of its config.json).
DROPPED_KWARGS = {
    "gemma2": ("hidden_act",),  # Gemma names it hidden_activation
    "gemma3": ("hidden_act",),
    "phi3": ("head_dim",),  # always hidden_size / num_attention_heads
    "qwen2_moe": ("head_dim",),
}

GPT2_SHAPE = {"n_layer": 2, "n_embd": 64, "n_head": 4, "n_positions": 128}
LLAMA_SHAPE = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "head_dim": 16,
    "intermediate_size": 160,
    "max_position_embeddings": 256,
}
GPT2_SPECIAL = {"bos_token_id": 0, "eos_token_id": 0}
LLAMA_SPECIAL = {"bos_token_id": 1, "eos_token_id": 2}


class CheckFailed(RuntimeError):
    pass


def check(cond: bool, message: str) -> None:
    if not cond:
        raise CheckFailed(message)


# ---------------------------------------------------------------- pure-python helpers (no torch)


def model_shape(spec: dict) -> dict:
    return {**LLAMA_SHAPE, **spec.get("shape", {})}


def default_inv_freq(theta: float, head_dim: int) -> list[float]:
    return [1.0 / (theta ** (i / head_dim)) for i in range(0, head_dim, 2)]


def llama3_inv_freq(theta: float, head_dim: int, scaling: dict) -> list[float]:
    """RoPE frequencies of Llama 3.1 scaling, as transformers' _compute_llama3_parameters defines them."""
    factor = scaling["factor"]
    low = scaling["low_freq_factor"]
    high = scaling["high_freq_factor"]
    old_len = scaling["original_max_position_embeddings"]
    low_freq_wavelen = old_len / low
    high_freq_wavelen = old_len / high
    out = []
    for f in default_inv_freq(theta, head_dim):
        wavelen = 2 * math.pi / f
        if wavelen < high_freq_wavelen:
            out.append(f)
        elif wavelen > low_freq_wavelen:
            out.append(f / factor)
        else:
            smooth = (old_len / wavelen - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return out


def longrope_inv_freq(theta: float, head_dim: int, factors: list[float]) -> list[float]:
    """LongRoPE frequencies (transformers' _compute_longrope_parameters): 1 / (factor_i * theta^(2i/d))."""
    return [f / e for f, e in zip(default_inv_freq(theta, head_dim), factors)]


def yarn_parameters(theta: float, head_dim: int, scaling: dict, max_positions: int) -> tuple[list[float], float]:
    """YaRN frequencies and cos/sin multiplier, as transformers' _compute_yarn_parameters defines them: each
    frequency a blend of the original (extrapolated) and the factor-scaled (interpolated) one, by a linear ramp
    over the dims between the corrections for beta_fast and beta_slow rotations of the original context."""
    original = scaling.get("original_max_position_embeddings") or max_positions
    factor = scaling.get("factor") or max_positions / original

    def mscale(scale, m=1.0):
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    attention = scaling.get("attention_factor")
    if attention is None:
        m, m_all = scaling.get("mscale"), scaling.get("mscale_all_dim")
        attention = mscale(factor, m) / mscale(factor, m_all) if m and m_all else mscale(factor)
    beta_fast, beta_slow = scaling.get("beta_fast") or 32, scaling.get("beta_slow") or 1

    def correction_dim(rotations):
        return head_dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if scaling.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, head_dim - 1)
    if low == high:
        high += 0.001
    out = []
    for i, f in enumerate(default_inv_freq(theta, head_dim)):
        extrapolate = 1 - min(max((i - low) / (high - low), 0.0), 1.0)
        out.append(f / factor * (1 - extrapolate) + f * extrapolate)
    return out, attention


def longrope_attention_factor(max_positions: int, scaling: dict) -> float:
    """cos/sin multiplier of LongRoPE when the config gives no attention_factor: factor = max_position_embeddings
    / original_max_position_embeddings, sqrt(1 + ln(factor) / ln(original)) (1 if factor <= 1)."""
    original = scaling["original_max_position_embeddings"]
    factor = scaling.get("factor") or max_positions / original
    if scaling.get("attention_factor") is not None:
        return scaling["attention_factor"]
    return 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(original))


def rope_regimes(theta: float, head_dim: int, scaling: dict) -> dict:
    """How many frequencies fall in each llama3 regime (so the fixture provably exercises all three)."""
    old_len = scaling["original_max_position_embeddings"]
    hi_w = old_len / scaling["high_freq_factor"]
    lo_w = old_len / scaling["low_freq_factor"]
    counts = {"unchanged": 0, "smoothed": 0, "divided": 0}
    for f in default_inv_freq(theta, head_dim):
        w = 2 * math.pi / f
        counts["unchanged" if w < hi_w else "divided" if w > lo_w else "smoothed"] += 1
    return counts


def rope_type(spec: dict) -> str:
    scaling = spec.get("rope_scaling")
    return scaling["rope_type"] if scaling else "default"


def rope_expectations(spec: dict) -> dict:
    """The inv_freq the freshly loaded model should hold: 'global' (full-attention layers) and 'local' (sliding
    layers); the same list for both except in Gemma 3. LongRoPE starts on its short factors."""
    head_dim = model_shape(spec)["head_dim"]
    theta = spec.get("rope_theta", ROPE_THETA)
    scaling = spec.get("rope_scaling")
    kind = rope_type(spec)
    if kind == "llama3":
        freqs = llama3_inv_freq(theta, head_dim, scaling)
    elif kind == "linear":
        freqs = [f / scaling["factor"] for f in default_inv_freq(theta, head_dim)]
    elif kind == "longrope":
        freqs = longrope_inv_freq(theta, head_dim, scaling["short_factor"])
    elif kind == "yarn":
        freqs, _ = yarn_parameters(theta, head_dim, scaling, model_shape(spec)["max_position_embeddings"])
    elif kind == "dynamic":  # at load (and within the context) the unscaled frequencies
        freqs = default_inv_freq(theta, head_dim)
    else:
        check(kind == "default", f"no formula for rope_type {kind}")
        freqs = default_inv_freq(theta, head_dim)
    if spec["arch"] == "gemma3":
        return {"global": freqs, "local": default_inv_freq(spec["rope_local_theta"], head_dim)}
    return {"global": freqs, "local": freqs}


def check_longrope_cases(spec: dict) -> None:
    """Every case must stay on one side of original_max_position_embeddings (see the module docstring)."""
    original = spec["rope_scaling"]["original_max_position_embeddings"]
    for t in PROMPT_LENGTHS:
        longest = t + NUM_GREEDY_TOKENS - 1  # max(position) + 1 of the last decode step and of the recompute
        check(t > original or longest <= original, f"case of {t} tokens crosses original_max_position_embeddings "
              f"{original} (positions up to {longest - 1}); KV-cache decode would not match a recompute")
    check(any(t > original for t in PROMPT_LENGTHS), "no case uses the long factors")
    check(any(t <= original for t in PROMPT_LENGTHS), "no case uses the short factors")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder that receives one subfolder per model")
    p.add_argument("--only", nargs="*", choices=sorted(MODEL_SPECS), help="build only these models")
    args = p.parse_args(argv)
    args.models = list(args.only) if args.only else list(MODEL_SPECS)
    return args


# ---------------------------------------------------------------- torch side


def setup_torch():
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)  # tiny models; one thread keeps CPU sums in one order
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    return torch


def versions() -> dict:
    import safetensors
    import torch
    import transformers

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
    }


def torch_dtype(torch, name: str):
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def arch_class(transformers, spec: dict, which: int):
    """The config (which=0) or model (which=1) class of spec's family; a clear error if this transformers lacks it."""
    name = ARCH_CLASSES[spec["arch"]][which]
    try:
        return getattr(transformers, name)
    except Exception as e:  # noqa: BLE001 - AttributeError, or an import error inside the lazy module
        raise CheckFailed(
            f"transformers {transformers.__version__} has no {name} ({type(e).__name__}: {e}); "
            f"this model needs a transformers version that has it"
        ) from e


_USES_ROPE_PARAMETERS: dict = {}


def config_uses_rope_parameters(config_cls) -> bool:
    """transformers 5 keeps RoPE settings in config.rope_parameters (rope_theta inside); 4.x uses
    rope_theta + rope_scaling. 5.x still accepts the old kwargs, but we pass the native form."""
    if config_cls not in _USES_ROPE_PARAMETERS:
        try:
            _USES_ROPE_PARAMETERS[config_cls] = hasattr(config_cls(), "rope_parameters")
        except Exception:  # noqa: BLE001 - any failure means: use the 4.x form
            _USES_ROPE_PARAMETERS[config_cls] = False
    return _USES_ROPE_PARAMETERS[config_cls]


def llama_config_uses_rope_parameters(transformers) -> bool:
    return config_uses_rope_parameters(transformers.LlamaConfig)


def rope_kwargs(config_cls, spec: dict) -> dict:
    """RoPE config kwargs in the form this transformers wants. Gemma 3 (5.x) keys them by layer type."""
    theta = spec.get("rope_theta", ROPE_THETA)
    scaling = copy.deepcopy(spec.get("rope_scaling"))
    native = config_uses_rope_parameters(config_cls)
    if spec["arch"] == "gemma3":
        local_theta = spec["rope_local_theta"]
        if native:
            full = {"rope_type": "default", "rope_theta": theta, **(scaling or {})}
            local = {"rope_type": "default", "rope_theta": local_theta}
            return {"rope_parameters": {"full_attention": full, "sliding_attention": local}}
        return {"rope_theta": theta, "rope_local_base_freq": local_theta, "rope_scaling": scaling}
    if native:
        rope = {"rope_type": "default", "rope_theta": theta}
        if scaling:
            rope.update(scaling)
        return {"rope_parameters": rope}
    return {"rope_theta": theta, "rope_scaling": scaling}


def family_kwargs(spec: dict, shape: dict) -> dict:
    """Config kwargs beyond the common Llama-like set (names as in transformers' configuration_*.py)."""
    arch = spec["arch"]
    if arch == "llama":
        return {"attention_bias": False, "mlp_bias": False}
    if arch == "qwen2":
        if spec.get("use_sliding_window"):
            return {
                "use_sliding_window": True,
                "sliding_window": spec["sliding_window"],
                "max_window_layers": spec["max_window_layers"],
            }
        return {"use_sliding_window": False}
    if arch == "qwen3":
        return {"attention_bias": False, "use_sliding_window": False}
    if arch == "mistral":
        return {"sliding_window": spec["sliding_window"]}
    if arch in GEMMA_ARCHS:
        out = {
            "hidden_activation": "gelu_pytorch_tanh",
            "query_pre_attn_scalar": spec["query_pre_attn_scalar"],
            "sliding_window": spec["sliding_window"],
            "layer_types": list(spec["layer_types"]),
            "attn_logit_softcapping": spec.get("attn_logit_softcapping"),
            "final_logit_softcapping": spec.get("final_logit_softcapping"),
            "attention_bias": False,
            "pad_token_id": 0,
        }
        if arch == "gemma3":
            out["sliding_window_pattern"] = spec["sliding_window_pattern"]  # 4.x; 5.x derives it from layer_types
        return out
    if arch == "phi3":
        scaling = spec.get("rope_scaling") or {}
        original = scaling.get("original_max_position_embeddings", shape["max_position_embeddings"])
        # pad_token_id defaults to 32000, outside our vocabulary (nn.Embedding's padding_idx must be inside)
        return {"original_max_position_embeddings": original, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "pad_token_id": 0}
    if arch == "mixtral":
        return {
            "sliding_window": None,
            "num_local_experts": spec["num_experts"],
            "num_experts_per_tok": spec["top_k"],
            "router_jitter_noise": 0.0,
            "output_router_logits": False,
        }
    if arch in ("qwen2_moe", "qwen3_moe"):
        out = {
            "use_sliding_window": False,
            "decoder_sparse_step": 1,  # every layer is a MoE layer ...
            "mlp_only_layers": [],  # ... none is dense
            "num_experts": spec["num_experts"],
            "num_experts_per_tok": spec["top_k"],
            "moe_intermediate_size": spec["moe_intermediate_size"],
            "norm_topk_prob": spec["norm_topk_prob"],
            "output_router_logits": False,
        }
        if arch == "qwen2_moe":
            out["shared_expert_intermediate_size"] = spec["shared_expert_intermediate_size"]
            out["qkv_bias"] = True  # 5.x field; 4.x always has the biases
        else:
            out["attention_bias"] = False
        return out
    raise CheckFailed(f"unknown arch {arch}")


def make_config(transformers, spec: dict):
    if spec["arch"] == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=VOCAB_SIZE,
            activation_function="gelu_new",
            layer_norm_epsilon=1e-5,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            tie_word_embeddings=True,
            **GPT2_SHAPE,
            **GPT2_SPECIAL,
        )
    else:
        cls = arch_class(transformers, spec, 0)
        shape = model_shape(spec)
        kwargs = dict(
            vocab_size=VOCAB_SIZE,
            num_key_value_heads=spec["num_kv_heads"],
            hidden_act="silu",
            rms_norm_eps=spec.get("rms_norm_eps", 1e-5),
            attention_dropout=0.0,
            tie_word_embeddings=spec["tie"],
            **shape,
            **LLAMA_SPECIAL,
        )
        kwargs.update(family_kwargs(spec, shape))
        for key in DROPPED_KWARGS.get(spec["arch"], ()):
            kwargs.pop(key, None)
        config = cls(**rope_kwargs(cls, spec), **kwargs)
    try:
        config._attn_implementation = "eager"
    except Exception:  # noqa: BLE001 - only affects the in-memory model; references use a reload
        pass
    return config


def model_class(transformers, spec: dict):
    return arch_class(transformers, spec, 1)


def init_weights_(torch, model, seed: int) -> None:
    """Overwrites every parameter from one seeded generator (tied parameters are visited once).

    MoE routers and fused expert tensors are matrices like any other, so routing differs per token."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if p.ndim >= 2:
                value = INIT_STD * noise
            elif name.endswith("weight"):  # LayerNorm / RMSNorm gain
                value = 1.0 + NORM_STD * noise
            else:
                value = BIAS_STD * noise
            p.copy_(value.to(p.dtype))


def is_tied(model) -> bool:
    out = model.get_output_embeddings()
    inp = model.get_input_embeddings()
    return out is not None and out.weight.data_ptr() == inp.weight.data_ptr()


def build_model(torch, transformers, spec: dict, seed: int):
    config = make_config(transformers, spec)
    torch.manual_seed(seed)
    model = model_class(transformers, spec)(config)
    model.eval()
    want_tied = spec["arch"] == "gpt2" or spec["tie"]
    if want_tied and not is_tied(model):
        model.tie_weights()
    check(is_tied(model) == want_tied, f"tied={is_tied(model)} but wanted {want_tied}")
    init_weights_(torch, model, seed)
    return model, want_tied


def saved_weight_files(model_dir: Path) -> list[str]:
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        return sorted(set(weight_map.values()))
    if (model_dir / "model.safetensors").exists():
        return ["model.safetensors"]
    found = sorted(p.name for p in model_dir.iterdir())
    raise CheckFailed(f"no safetensors weights in {model_dir} (found {found}); is transformers too old?")


def read_checkpoint(model_dir: Path) -> tuple[dict, dict]:
    """All tensors of the saved checkpoint (name -> tensor, name -> file)."""
    from safetensors import safe_open

    tensors, where = {}, {}
    for fname in saved_weight_files(model_dir):
        with safe_open(str(model_dir / fname), framework="pt") as f:
            for key in f.keys():
                check(key not in tensors, f"tensor {key} stored twice")
                tensors[key] = f.get_tensor(key)
                where[key] = fname
    return tensors, where


def rewrite_without(model_dir: Path, drop: str) -> None:
    """Drops one tensor from the checkpoint (used if a transformers version saved a tied lm_head)."""
    from safetensors.torch import save_file

    tensors, where = read_checkpoint(model_dir)
    fname = where[drop]
    keep = {k: v.contiguous() for k, v in tensors.items() if where[k] == fname and k != drop}
    save_file(keep, str(model_dir / fname), metadata={"format": "pt"})
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        data = json.loads(index.read_text())
        data["weight_map"].pop(drop, None)
        index.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def shard_manually(model_dir: Path, num_shards: int = 3) -> None:
    """Fallback when save_pretrained wrote one file despite max_shard_size: split it in HF's layout."""
    from safetensors.torch import save_file

    tensors, _ = read_checkpoint(model_dir)
    names = list(tensors)
    sizes = [tensors[n].numel() * tensors[n].element_size() for n in names]
    total = sum(sizes)
    groups, current, acc = [], [], 0
    for name, size in zip(names, sizes):
        current.append(name)
        acc += size
        if acc >= total * (len(groups) + 1) / num_shards and len(groups) < num_shards - 1:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    n = len(groups)
    weight_map = {}
    for k, group in enumerate(groups, start=1):
        fname = f"model-{k:05d}-of-{n:05d}.safetensors"
        save_file({name: tensors[name].contiguous() for name in group}, str(model_dir / fname), metadata={"format": "pt"})
        weight_map.update({name: fname for name in group})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (model_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    (model_dir / "model.safetensors").unlink()


def rename_saved(model_dir: Path, rename) -> None:
    """Renames checkpoint tensors in place (rename: old name -> new name), index included."""
    from safetensors.torch import save_file

    tensors, where = read_checkpoint(model_dir)
    for fname in sorted(set(where.values())):
        keep = {rename(k): v.contiguous() for k, v in tensors.items() if where[k] == fname}
        save_file(keep, str(model_dir / fname), metadata={"format": "pt"})
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        data = json.loads(index.read_text())
        data["weight_map"] = {rename(k): v for k, v in data["weight_map"].items()}
        index.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_checkpoint(torch, transformers, model, spec: dict, model_dir: Path, tied: bool) -> dict:
    dtype = torch_dtype(torch, spec["save_dtype"])
    to_save = copy.deepcopy(model).to(dtype) if dtype != torch.float32 else model
    kwargs = {}
    if spec.get("max_shard_size"):
        kwargs["max_shard_size"] = spec["max_shard_size"]
    to_save.save_pretrained(str(model_dir), **kwargs)
    notes = []

    if spec.get("max_shard_size") and len(saved_weight_files(model_dir)) < 2:
        notes.append("save_pretrained wrote one file despite max_shard_size; sharded by this script")
        print(f"  WARNING: {notes[-1]}")
        shard_manually(model_dir)

    tensors, _ = read_checkpoint(model_dir)
    vlm_prefix = "language_model."
    if any(k.startswith(vlm_prefix) for k in tensors):
        # Some transformers versions save text-only Gemma 3 under the multimodal model's names; real
        # Gemma3ForCausalLM checkpoints (gemma-3-1b) use model.* / lm_head.*.
        notes.append(f"save_pretrained prefixed tensor names with '{vlm_prefix}'; removed the prefix")
        print(f"  WARNING: {notes[-1]}")
        rename_saved(model_dir, lambda k: k[len(vlm_prefix):] if k.startswith(vlm_prefix) else k)
        tensors, _ = read_checkpoint(model_dir)
    out_name = "lm_head.weight"
    if tied and out_name in tensors:
        notes.append("save_pretrained kept the tied lm_head.weight; removed it as transformers normally does")
        print(f"  WARNING: {notes[-1]}")
        rewrite_without(model_dir, out_name)
        tensors, _ = read_checkpoint(model_dir)
    if tied:
        check(out_name not in tensors, "tied checkpoint still stores lm_head.weight")
    else:
        check(out_name in tensors, "untied checkpoint lacks lm_head.weight")
    for name, t in tensors.items():
        check(t.dtype == dtype, f"{name} saved as {t.dtype}, wanted {dtype}")
    files = saved_weight_files(model_dir)
    if spec.get("max_shard_size"):
        check(len(files) >= 2, f"wanted >= 2 shards, got {files}")
        weight_map = json.loads((model_dir / "model.safetensors.index.json").read_text())["weight_map"]
        check(set(weight_map) == set(tensors), "index weight_map does not list exactly the saved tensors")
    else:
        check(files == ["model.safetensors"], f"wanted a single model.safetensors, got {files}")
    stray = sorted(p.name for p in model_dir.glob("*.safetensors") if p.name not in files)
    check(not stray, f"unexpected safetensors files {stray}")
    stray_bin = sorted(p.name for p in model_dir.glob("*.bin"))
    check(not stray_bin, f"unexpected .bin files {stray_bin}")

    write_generation_config(transformers, spec, model_dir)
    return {"files": files, "tensor_names": sorted(tensors), "notes": notes}


def write_generation_config(transformers, spec: dict, model_dir: Path) -> None:
    special = GPT2_SPECIAL if spec["arch"] == "gpt2" else LLAMA_SPECIAL
    gen = {**special, "do_sample": False, "transformers_version": transformers.__version__}
    (model_dir / "generation_config.json").write_text(json.dumps(gen, indent=2, sort_keys=True) + "\n")


def load_fp32(torch, cls, model_dir: Path, spec: dict | None = None):
    """from_pretrained in float32 with eager attention, across transformers 4.x ('torch_dtype') and 5.x ('dtype').

    MoE models also ask for the eager (per-expert loop) experts implementation of transformers 5, the plainest
    one; a version that does not know the keyword is asked again without it."""
    extra = {"experts_implementation": "eager"} if spec and spec.get("arch") in MOE_ARCHS else {}
    attempts = []
    for kw in ({"dtype": torch.float32}, {"torch_dtype": torch.float32}):
        if extra:
            attempts.append({**kw, **extra})
        attempts.append(kw)
    model, err = None, None
    for kw in attempts:
        try:
            model = cls.from_pretrained(str(model_dir), attn_implementation="eager", **kw)
            break
        except (TypeError, ValueError) as e:  # the other keyword is the one this version knows
            err = e
    if model is None:
        raise err
    model = model.float().eval()
    for name, p in model.named_parameters():
        check(p.dtype == torch.float32, f"reloaded {name} is {p.dtype}")
    impl = getattr(model.config, "_attn_implementation", None)
    if impl not in (None, "eager"):
        print(f"  WARNING: reloaded model uses attention '{impl}', not eager")
    return model


EXPERT_ROLES = {"w1": "gate", "gate_proj": "gate", "w3": "up", "up_proj": "up", "w2": "down", "down_proj": "down"}


def checkpoint_to_params(torch, tensors: dict, params: dict, prefix: str) -> dict:
    """The saved tensors under the model's parameter names (param name -> tensor).

    Besides identical names and names without the base-model prefix (how the original GPT-2 checkpoints are
    stored), this knows the per-expert MoE layout that transformers 5 saves and fuses at load time
    (conversion_mapping.py): Mixtral's block_sparse_moe.gate and block_sparse_moe.experts.E.w1/w3/w2, Qwen-MoE's
    mlp.experts.E.gate_proj/up_proj/down_proj, into mlp.gate, mlp.experts.gate_up_proj [E, 2I, H] (gate rows
    first) and mlp.experts.down_proj [E, H, I]. transformers 4.x keeps the per-expert names as parameters."""
    out, experts = {}, {}
    for name, t in tensors.items():
        if name in params:
            out[name] = t
            continue
        if prefix and f"{prefix}.{name}" in params:
            out[f"{prefix}.{name}"] = t
            print(f"  NOTE: saved tensor {name} has no '{prefix}.' prefix")
            continue
        m = re.fullmatch(r"(.+)\.block_sparse_moe\.gate\.weight", name)
        if m and f"{m[1]}.mlp.gate.weight" in params:
            out[f"{m[1]}.mlp.gate.weight"] = t
            continue
        m = re.fullmatch(r"(.+)\.(?:block_sparse_moe|mlp)\.experts\.(\d+)\.(\w+)\.weight", name)
        if m and m[3] in EXPERT_ROLES:
            experts.setdefault(m[1], {}).setdefault(EXPERT_ROLES[m[3]], {})[int(m[2])] = t
            continue
        raise CheckFailed(f"saved tensor {name} is not a parameter of the model")
    for layer, roles in sorted(experts.items()):
        stacked = {}
        for role in ("gate", "up", "down"):
            got = roles.get(role, {})
            check(bool(got) and sorted(got) == list(range(len(got))), f"{layer}: saved experts for {role}: {sorted(got)}")
            stacked[role] = torch.stack([got[e] for e in range(len(got))])
        check(len({len(v) for v in stacked.values()}) == 1, f"{layer}: gate/up/down expert counts differ")
        fused = {
            f"{layer}.mlp.experts.gate_up_proj": torch.cat([stacked["gate"], stacked["up"]], dim=1),
            f"{layer}.mlp.experts.down_proj": stacked["down"],
        }
        for pname, value in fused.items():
            check(pname in params, f"the model has no {pname} for the saved per-expert tensors of {layer}")
            check(
                tuple(params[pname].shape) == tuple(value.shape),
                f"{pname} is {tuple(params[pname].shape)} but the saved experts stack to {tuple(value.shape)}",
            )
            out[pname] = value
    return out


def verify_reload(torch, model, tensors: dict, tied: bool, original=None, dtype=None) -> None:
    """Every parameter of the reloaded model equals the file contents (upcast), nothing missing or extra;
    and, given the model that was saved (and the dtype it was saved in), equals that model's parameter."""
    params = dict(model.named_parameters(remove_duplicate=False))
    prefix = getattr(model, "base_model_prefix", "") or ""
    covered = {}
    for param_name, value in checkpoint_to_params(torch, tensors, params, prefix).items():
        p = params[param_name]
        check(torch.equal(p.detach(), value.float()), f"reloaded {param_name} differs from the file")
        covered[param_name] = p.data_ptr()
    saved_ptrs = set(covered.values())
    for name, p in params.items():
        if name in covered:
            continue
        check(tied and p.data_ptr() in saved_ptrs, f"parameter {name} is not in the saved file")
    check(is_tied(model) == tied, f"reloaded model tied={is_tied(model)}, wanted {tied}")
    if original is not None:
        before = dict(original.named_parameters(remove_duplicate=False))
        check(set(before) == set(params), f"parameters differ: {sorted(set(before) ^ set(params))[:8]}")
        for name, p in params.items():
            want = before[name].detach().to(dtype if dtype is not None else p.dtype).float()
            check(torch.equal(p.detach(), want), f"reloaded {name} differs from the model that was saved")


def rope_buffers(model) -> list:
    """(name, tensor) of every RoPE inv_freq buffer in use (the '*original_inv_freq' / 'long_inv_freq' copies left out)."""
    return [
        (n, b)
        for n, b in model.named_buffers()
        if n.endswith("inv_freq") and "original" not in n and not n.endswith("long_inv_freq")
    ]


def verify_rope(torch, model, spec: dict, want: dict | None = None) -> tuple[dict, str]:
    """Compares the model's RoPE inv_freq buffers with the formulas; returns {'global'/'local': list} for the
    reference file. A buffer whose name says sliding/local is a sliding layers' one (Gemma 3: transformers 5's
    sliding_attention_inv_freq, 4.x's rotary_emb_local)."""
    want = want or rope_expectations(spec)
    found = rope_buffers(model)
    if not found:
        return {}, "no inv_freq buffer found; RoPE frequencies not checked"
    got = {}
    for name, buf in found:
        key = "local" if ("sliding" in name or "local" in name) else "global"
        values = buf.detach().float().cpu().tolist()
        w = want[key]
        check(len(values) == len(w), f"{name} has {len(values)} entries, wanted {len(w)}")
        for g, x in zip(values, w):
            check(abs(g - x) <= 1e-5 * abs(x) + 1e-12, f"{name} = {values}, formula gives {w}")
        got.setdefault(key, values)
    if spec["arch"] == "gemma3":
        check(set(got) == {"global", "local"}, f"Gemma 3 wants global and local RoPE buffers, found {[n for n, _ in found]}")
    return got, f"checked {[n for n, _ in found]}"


def rope_attention_scaling(model) -> dict:
    """The cos/sin multipliers of the rotary modules (attention_scaling; '<layer type>_attention_scaling' in 5.x)."""
    out = {}
    for name, module in model.named_modules():
        for attr, value in vars(module).items():
            if attr == "attention_scaling" or attr.endswith("_attention_scaling"):
                if isinstance(value, (int, float)):
                    out[f"{name}.{attr}"] = float(value)
    return out


def verify_longrope(torch, model, spec: dict, prompts: list) -> dict:
    """Phi-3 LongRoPE swaps inv_freq by sequence length (transformers' dynamic_rope_update): short factors while
    max(position)+1 <= original_max_position_embeddings, long beyond. Runs one long and one short prompt,
    checks the buffer after each, and checks the attention factor; returns what the reference file records."""
    scaling = spec["rope_scaling"]
    head_dim = model_shape(spec)["head_dim"]
    theta = spec.get("rope_theta", ROPE_THETA)
    original = scaling["original_max_position_embeddings"]
    long_freqs = longrope_inv_freq(theta, head_dim, scaling["long_factor"])
    short_freqs = longrope_inv_freq(theta, head_dim, scaling["short_factor"])
    with torch.no_grad():
        model(input_ids=next(p for p in prompts if p.numel() > original)[None], use_cache=False)
    got_long, _ = verify_rope(torch, model, spec, want={"global": long_freqs, "local": long_freqs})
    with torch.no_grad():
        model(input_ids=next(p for p in prompts if p.numel() <= original)[None], use_cache=False)
    got_short, _ = verify_rope(torch, model, spec, want={"global": short_freqs, "local": short_freqs})
    check(bool(got_long) and bool(got_short), "LongRoPE model has no inv_freq buffer")
    want_factor = longrope_attention_factor(model_shape(spec)["max_position_embeddings"], scaling)
    scalings = rope_attention_scaling(model)
    check(bool(scalings), "LongRoPE model has no attention_scaling")
    for name, value in scalings.items():
        check(abs(value - want_factor) <= 1e-6 * want_factor, f"{name} = {value}, formula gives {want_factor}")
    return {"long_inv_freq": got_long["global"], "short_inv_freq": got_short["global"], "attention_scaling": want_factor}


def make_prompts(torch) -> list:
    g = torch.Generator().manual_seed(PROMPT_SEED)
    return [torch.randint(1, VOCAB_SIZE, (n,), generator=g, dtype=torch.int64) for n in PROMPT_LENGTHS]


def top1_margin(torch, rows) -> float:
    top2 = torch.topk(rows, 2, dim=-1).values
    return float((top2[..., 0] - top2[..., 1]).min())




def router_monitor(torch, model, spec: dict) -> dict:
    """Forward pre-hooks on every MoE router (mlp.gate; 4.x Mixtral: block_sparse_moe.gate) that record, over
    every token the model sees, the smallest gap between the k-th and (k+1)-th router logit (a gap near 0
    makes the expert choice a rounding accident) and how often each expert is chosen. Remove with
    for h in stats['handles']: h.remove()."""
    num_experts, k = spec["num_experts"], spec["top_k"]
    routers = [
        (n, m)
        for n, m in model.named_modules()
        if (n.endswith(".mlp.gate") or n.endswith(".block_sparse_moe.gate"))
        and isinstance(getattr(m, "weight", None), torch.Tensor)
        and m.weight.ndim == 2
        and m.weight.shape[0] == num_experts
    ]
    layers = model_shape(spec)["num_hidden_layers"]
    check(len(routers) == layers, f"found {len(routers)} MoE routers {[n for n, _ in routers]}, wanted one per layer ({layers})")
    stats = {"routers": [n for n, _ in routers], "min_gap": math.inf, "counts": [0] * num_experts, "handles": []}

    def hook(module, args, kwargs):
        x = args[0] if args else kwargs["hidden_states"]
        logits = x.detach().reshape(-1, x.shape[-1]).float() @ module.weight.detach().float().t()
        top = torch.topk(logits, k + 1, dim=-1)
        stats["min_gap"] = min(stats["min_gap"], float((top.values[:, k - 1] - top.values[:, k]).min()))
        for e in top.indices[:, :k].reshape(-1).tolist():
            stats["counts"][e] += 1

    stats["handles"] = [m.register_forward_pre_hook(hook, with_kwargs=True) for _, m in routers]
    return stats


def run_case(torch, model, prompt, unused_token_for: callable) -> tuple[dict, dict]:
    """Prefill, KV-cache decode, full recompute and generate() for one prompt; returns tensors + stats."""
    T, S, N = prompt.numel(), NUM_DECODE_STEPS, NUM_GREEDY_TOKENS
    with torch.no_grad():
        out = model(input_ids=prompt[None], use_cache=True)
        prefill = out.logits[0].float().clone()
        past = out.past_key_values
        check(past is not None, "forward with use_cache=True returned no past_key_values")
        chain = [int(prefill[-1].argmax())]
        chain_logits = []
        for _ in range(N - 1):
            out = model(input_ids=torch.tensor([[chain[-1]]]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            row = out.logits[0, -1].float().clone()
            chain_logits.append(row)
            chain.append(int(row.argmax()))
        chain_logits = torch.stack(chain_logits)  # [N-1, V]; row j follows chain[j]

        full_ids = torch.cat([prompt, torch.tensor(chain[:-1], dtype=torch.int64)])
        full = model(input_ids=full_ids[None], use_cache=False).logits[0].float()  # [T+N-1, V]
        prefill_diff = float((full[:T] - prefill).abs().max())
        decode_diff = float((full[T:] - chain_logits).abs().max())
        check(prefill_diff <= DECODE_ATOL, f"prefill vs longer forward differ by {prefill_diff}")
        check(decode_diff <= DECODE_ATOL, f"KV-cache decode vs full recompute differ by {decode_diff}")
        recompute_chain = [int(full[T - 1 + j].argmax()) for j in range(N)]
        check(recompute_chain == chain, "argmax chain differs between KV-cache decode and full recompute")

        unused = unused_token_for(chain)
        gen = model.generate(
            input_ids=prompt[None],
            attention_mask=torch.ones(1, T, dtype=torch.int64),
            max_new_tokens=N,
            min_new_tokens=N,
            do_sample=False,
            num_beams=1,
            eos_token_id=unused,
            pad_token_id=unused,
        )
        generated = gen[0, T:].tolist()
        check(generated == chain, f"generate() gave {generated}, argmax chaining gave {chain}")

    margin = min(top1_margin(torch, prefill), top1_margin(torch, chain_logits))
    tensors = {
        "prompt": prompt.clone(),
        "prefill_logits": prefill.contiguous(),
        "decode_tokens": torch.tensor(chain[:S], dtype=torch.int64),
        "decode_logits": chain_logits[:S].contiguous(),
        "greedy": torch.tensor(chain, dtype=torch.int64),
    }
    stats = {
        "prompt_len": T,
        "decode_steps": S,
        "greedy_new_tokens": N,
        "min_top1_margin": margin,
        "max_abs_diff_prefill_vs_recompute": prefill_diff,
        "max_abs_diff_decode_vs_recompute": decode_diff,
        "generate_eos_token_id_used": unused,
    }
    return tensors, stats


def unused_token_picker(chain: list[int]) -> int:
    """An id the greedy chain never produces, so that EOS handling in generate() cannot stop it."""
    for t in range(VOCAB_SIZE - 1, 2, -1):
        if t not in chain:
            return t
    raise CheckFailed("every token id appears in the chain")


def effective_config(model) -> dict:
    c = model.config
    keys = [
        "model_type",
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "tie_word_embeddings",
        "rope_theta",
        "rope_scaling",
        "rope_parameters",
        "rope_local_base_freq",
        "partial_rotary_factor",
        "original_max_position_embeddings",
        "head_dim",
        "num_key_value_heads",
        "n_positions",
        "max_position_embeddings",
        "layer_norm_epsilon",
        "rms_norm_eps",
        "activation_function",
        "hidden_act",
        "hidden_activation",
        "attention_bias",
        "qkv_bias",
        "mlp_bias",
        "sliding_window",
        "use_sliding_window",
        "max_window_layers",
        "sliding_window_pattern",
        "layer_types",
        "query_pre_attn_scalar",
        "attn_logit_softcapping",
        "final_logit_softcapping",
        "num_local_experts",
        "num_experts",
        "num_experts_per_tok",
        "norm_topk_prob",
        "moe_intermediate_size",
        "shared_expert_intermediate_size",
        "decoder_sparse_step",
        "mlp_only_layers",
        "router_jitter_noise",
        "_experts_implementation",
        "_attn_implementation",
    ]
    out = {}
    for k in keys:
        try:
            v = getattr(c, k)
        except Exception:  # noqa: BLE001 - attribute absent in this version
            continue
        try:
            json.dumps(v)
        except TypeError:
            v = repr(v)
        out[k] = v
    return out


SLIDING_RULE = (
    "a query at position q attends to keys at positions max(0, q - W + 1) .. q (W keys, itself included; "
    "transformers masking_utils.sliding_window_overlay: kv_idx > q_idx - W); the KV cache of a sliding layer "
    "needs only the last W - 1 tokens"
)


def architecture_facts(spec: dict, config) -> dict:
    """What a loader must do beyond plain Llama, in words and numbers (the numbers are in config.json too)."""
    arch = spec["arch"]
    if arch == "gpt2":
        return {"family": "gpt2"}
    shape = model_shape(spec)
    gemma = arch in GEMMA_ARCHS
    layers = shape["num_hidden_layers"]
    layer_types = list(getattr(config, "layer_types", None) or [])
    if not layer_types:
        layer_types = ["sliding_attention" if spec.get("sliding_window") else "full_attention"] * layers
    facts = {
        "family": arch,
        "hidden_size": shape["hidden_size"],
        "num_layers": layers,
        "num_attention_heads": shape["num_attention_heads"],
        "num_key_value_heads": spec["num_kv_heads"],
        "head_dim": shape["head_dim"],
        "attention_scale": (spec["query_pre_attn_scalar"] if gemma else shape["head_dim"]) ** -0.5,
        "qkv_bias": arch in ("qwen2", "qwen2_moe"),
        "o_proj_bias": False,
        "qk_norm": (
            "q_norm/k_norm: RMSNorm over head_dim on every head of q and k, before RoPE"
            + (", (1 + w) gain" if arch == "gemma3" else "")
            if arch in ("qwen3", "qwen3_moe", "gemma3")
            else None
        ),
        "norm": "RMSNorm x * rsqrt(mean(x^2) + eps) * " + ("(1 + w), computed in float32" if gemma else "w"),
        "rms_norm_eps": spec.get("rms_norm_eps", 1e-5),
        "activation": "gelu_pytorch_tanh (tanh-approximated GELU)" if gemma else "silu",
        "mlp": "down(act(gate(x)) * up(x))",
        "embedding_multiplier": math.sqrt(shape["hidden_size"]) if gemma else 1.0,
        "tied_embeddings": spec["tie"],
        "layer_types": layer_types,
    }
    if "sliding_attention" in layer_types:
        facts["sliding_window"] = {"size": spec["sliding_window"], "rule": SLIDING_RULE}
    if gemma:
        facts["residual_block"] = (
            "h += post_attention_layernorm(attn(input_layernorm(h))); "
            "h += post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h))); logits = lm_head(norm(h))"
        )
        facts["attn_logit_softcapping"] = spec.get("attn_logit_softcapping")
        facts["final_logit_softcapping"] = spec.get("final_logit_softcapping")
        facts["softcap"] = "c * tanh(x / c): attention scores after scaling, before the mask; final logits"
    if arch == "phi3":
        q = shape["num_attention_heads"] * shape["head_dim"]
        kv = spec["num_kv_heads"] * shape["head_dim"]
        facts["fused"] = {
            "qkv_proj": f"rows [0, {q}) q, [{q}, {q + kv}) k, [{q + kv}, {q + 2 * kv}) v",
            "gate_up_proj": f"rows [0, {shape['intermediate_size']}) gate, then up",
        }
    if arch in MOE_ARCHS:
        renorm = arch == "mixtral" or spec["norm_topk_prob"]
        moe = {
            "num_experts": spec["num_experts"],
            "top_k": spec["top_k"],
            "expert_intermediate_size": shape["intermediate_size"] if arch == "mixtral" else spec["moe_intermediate_size"],
            "every_layer_sparse": True,
            "router": "logits = x @ gate.weight^T (no bias); p = softmax(logits) in float32 over all experts; top-k p",
            "renormalize_top_k": renorm,
            "combine": "sum over the chosen experts of w_e * down_e(silu(gate_e(x)) * up_e(x)), w_e = p_e"
            + (" / sum of the top-k p" if renorm else ""),
        }
        if arch == "mixtral":
            moe["checkpoint_names"] = (
                "model.layers.L.block_sparse_moe.gate.weight [E, H]; "
                "model.layers.L.block_sparse_moe.experts.E.w1 (gate) / w3 (up) / w2 (down).weight"
            )
        else:
            moe["checkpoint_names"] = (
                "model.layers.L.mlp.gate.weight [E, H]; model.layers.L.mlp.experts.E.{gate,up,down}_proj.weight"
            )
        if arch == "qwen2_moe":
            moe["shared_expert"] = (
                "out += sigmoid(x @ shared_expert_gate.weight^T) * shared_expert.down(silu(shared_expert.gate(x)) "
                f"* shared_expert.up(x)), intermediate {spec['shared_expert_intermediate_size']}"
            )
        facts["moe"] = moe
    return facts


def rope_meta(spec: dict, model, note: str, longrope: dict | None) -> dict:
    theta = spec.get("rope_theta", ROPE_THETA)
    head_dim = model_shape(spec)["head_dim"]
    meta = {
        "type": rope_type(spec),
        "theta": theta,
        "scaling": spec.get("rope_scaling"),
        "check": note,
        "attention_scaling": rope_attention_scaling(model),
    }
    if rope_type(spec) == "llama3":
        meta["regimes"] = rope_regimes(theta, head_dim, spec["rope_scaling"])
    if spec["arch"] == "gemma3":
        meta["theta"] = {"full_attention": theta, "sliding_attention": spec["rope_local_theta"]}
        meta["scaling_applies_to"] = "full_attention layers only; sliding layers use plain RoPE"
    if rope_type(spec) == "yarn":
        _, want = yarn_parameters(theta, head_dim, spec["rope_scaling"], model_shape(spec)["max_position_embeddings"])
        for name, value in meta["attention_scaling"].items():
            check(abs(value - want) <= 1e-6 * want, f"{name} = {value}, the YaRN formula gives {want}")
        check(bool(meta["attention_scaling"]), "YaRN model has no attention_scaling")
        meta["attention_factor"] = want
    if longrope:
        original = spec["rope_scaling"]["original_max_position_embeddings"]
        meta["attention_factor"] = longrope["attention_scaling"]
        meta["rule"] = (
            f"per forward, long factors if max(position) + 1 > {original} else short factors; cos and sin are "
            f"multiplied by the attention factor either way. Cases 0-2 use the short factors throughout, case 3 "
            f"the long ones."
        )
    return meta


def build_one(torch, transformers, name: str, spec: dict, out_root: Path, prompts: list) -> dict:
    from safetensors.torch import save_file

    model_dir = out_root / name
    cls = model_class(transformers, spec)
    arch = spec["arch"]
    moe = arch in MOE_ARCHS
    longrope = rope_type(spec) == "longrope"
    if longrope:
        check_longrope_cases(spec)
    failures = []
    for attempt in range(MAX_SEED_TRIES):
        seed = spec["seed"] + attempt
        if model_dir.exists():
            shutil.rmtree(model_dir)
        model_dir.mkdir(parents=True)
        model, tied = build_model(torch, transformers, spec, seed)
        saved = save_checkpoint(torch, transformers, model, spec, model_dir, tied)
        tensors, _ = read_checkpoint(model_dir)
        ref = load_fp32(torch, cls, model_dir, spec)
        verify_reload(torch, ref, tensors, tied, original=model, dtype=torch_dtype(torch, spec["save_dtype"]))
        rope, rope_note = {}, ""
        if arch != "gpt2":
            rope, rope_note = verify_rope(torch, ref, spec)
            print(f"  rope: {rope_note}")

        router = router_monitor(torch, ref, spec) if moe else None
        case_tensors, case_stats = [], []
        try:
            for prompt in prompts:
                t, s = run_case(torch, ref, prompt, unused_token_picker)
                case_tensors.append(t)
                case_stats.append(s)
        except CheckFailed as e:
            # With a router near a tie, decode and recompute may pick different experts: such a seed is as
            # unusable as one with a small top-1 margin. Any other failure is a real one.
            if router is None or router["min_gap"] > MIN_ROUTER_MARGIN:
                raise
            failures.append({"seed": seed, "router_min_gap": router["min_gap"], "error": str(e)})
            print(f"  WARNING: seed {seed}: {e} (router gap {router['min_gap']:.2e}); trying seed {seed + 1}")
            continue
        finally:
            for h in router["handles"] if router else []:
                h.remove()
        margin = min(s["min_top1_margin"] for s in case_stats)
        ok = margin > MIN_TOP1_MARGIN
        if router is not None:
            ok = ok and router["min_gap"] > MIN_ROUTER_MARGIN and min(router["counts"]) > 0
        if ok:
            break
        failure = {"seed": seed, "min_top1_margin": margin}
        if router is not None:
            failure.update(router_min_gap=router["min_gap"], expert_counts=router["counts"])
        failures.append(failure)
        print(f"  WARNING: seed {seed}: {failure} too small; trying seed {seed + 1}")
    else:
        raise CheckFailed(f"{name}: no seed in {MAX_SEED_TRIES} tries gave large enough margins")

    long_info = verify_longrope(torch, ref, spec, prompts) if longrope else None
    out = {}
    for i, t in enumerate(case_tensors):
        for key, value in t.items():
            out[f"case{i}.{key}"] = value
    if rope:
        out["rope.inv_freq"] = torch.tensor(rope.get("global", rope.get("local")), dtype=torch.float32)
        if arch == "gemma3":
            out["rope_local.inv_freq"] = torch.tensor(rope["local"], dtype=torch.float32)
    if long_info:
        out["rope.long_inv_freq"] = torch.tensor(long_info["long_inv_freq"], dtype=torch.float32)
    save_file(out, str(model_dir / "reference.safetensors"), metadata={"format": "pt"})

    config_json = json.loads((model_dir / "config.json").read_text())
    meta = {
        "model": name,
        "architecture": cls.__name__,
        "seed": seed,
        "seeds_rejected_for_small_margins": failures,
        "init": {"matrix_std": INIT_STD, "bias_std": BIAS_STD, "norm_weight": f"1 + N(0, {NORM_STD}^2)"},
        "saved_dtype": spec["save_dtype"],
        "reference_dtype": "float32 (saved weights upcast), CPU, eager attention, 1 thread",
        "tied_word_embeddings": tied,
        "weight_files": saved["files"],
        "tensor_names": saved["tensor_names"],
        "save_notes": saved["notes"],
        "generation": {**(GPT2_SPECIAL if arch == "gpt2" else LLAMA_SPECIAL), "greedy_ignores_eos": True},
        "prompt_seed": PROMPT_SEED,
        "prompt_lengths": list(PROMPT_LENGTHS),
        "decode_steps": NUM_DECODE_STEPS,
        "greedy_new_tokens": NUM_GREEDY_TOKENS,
        "cases": case_stats,
        "min_top1_margin": min(s["min_top1_margin"] for s in case_stats),
        "tolerances": {"decode_vs_recompute_atol": DECODE_ATOL, "top1_margin_min": MIN_TOP1_MARGIN},
        "effective_config": effective_config(ref),
        "architecture_facts": architecture_facts(spec, ref.config),
        "config_rope_keys": sorted(k for k in config_json if k.startswith("rope")),
        "reference_keys": sorted(out),
        "versions": versions(),
    }
    if arch != "gpt2":
        meta["rope"] = rope_meta(spec, ref, rope_note, long_info)
    if router is not None:
        meta["moe_routing"] = {
            "routers": router["routers"],
            "min_gap_kth_vs_next_logit": router["min_gap"],
            "expert_choices_over_all_forwards": router["counts"],
            "router_margin_min": MIN_ROUTER_MARGIN,
        }
    (model_dir / "reference.json").write_text(json.dumps(meta, indent=2) + "\n")

    # Read back what was written: the reference file must hold exactly what we computed.
    check_reference_file(torch, model_dir, out)
    print(
        f"  seed {seed}, min top-1 margin {meta['min_top1_margin']:.3g}, "
        f"max decode/recompute diff {max(s['max_abs_diff_decode_vs_recompute'] for s in case_stats):.2e}, "
        f"files {saved['files']}"
    )
    return meta


def check_reference_file(torch, model_dir: Path, out: dict) -> None:
    from safetensors import safe_open

    with safe_open(str(model_dir / "reference.safetensors"), framework="pt") as f:
        check(sorted(f.keys()) == sorted(out), "reference.safetensors keys differ after writing")
        for key in f.keys():
            check(torch.equal(f.get_tensor(key), out[key]), f"reference tensor {key} differs after writing")


README = """# Golden model fixtures

Written by `scripts/make_reference.py` and `scripts/make_quantized_reference.py` (see their headers); do not
edit by hand. Regenerate with `bash scripts/run_on_device.sh references` (or
`python3 scripts/make_reference.py --out DIR`), and the quantized ones with
`python3 scripts/make_quantized_reference.py --out DIR`.

Each folder is a tiny random Hugging Face checkpoint (vocab 512, no tokenizer files) plus
`reference.safetensors` and `reference.json`. For each case i:

| key | dtype | shape | meaning |
| --- | --- | --- | --- |
| `case{i}.prompt` | int64 | [T] | prompt ids, random in [1, 511] |
| `case{i}.prefill_logits` | float32 | [T, V] | logits at every prompt position (one forward) |
| `case{i}.decode_tokens` | int64 | [6] | greedy tokens fed one at a time through the KV cache |
| `case{i}.decode_logits` | float32 | [6, V] | row j: logits after feeding `decode_tokens[j]` |
| `case{i}.greedy` | int64 | [20] | greedy continuation, EOS ignored; `greedy[:6] == decode_tokens` |
| `rope.inv_freq` (RoPE models) | float32 | [head_dim/2] | RoPE frequencies used (gemma3: full-attention layers; phi3-longrope: short factors) |
| `rope_local.inv_freq` (gemma3) | float32 | [head_dim/2] | RoPE frequencies of the sliding-window layers |
| `rope.long_inv_freq` (phi3-longrope) | float32 | [head_dim/2] | LongRoPE frequencies with the long factors (case 3) |

References are float32 on the CPU with eager attention, from the saved weights upcast
(bf16/fp16 checkpoints included; quantized checkpoints: from their dequantized weights, activations not
quantized). Every top-1 logit beats the runner-up by more than 1e-3; in the MoE models every router's
k-th logit beats the (k+1)-th by more than 1e-3 on every token. `reference.json` also records the
effective config and the architecture facts a loader needs (`architecture_facts`: sliding window rule,
softcaps, layer types, experts and routing, fused layouts; `rope`; for the quantized ones `quantization`).
Sliding windows are 8 tokens: a query at position q sees keys q-7..q.

| model | architecture | notes |
| --- | --- | --- |
| gpt2-tiny | GPT2LMHeadModel | fp32, tied lm_head (not stored), gelu_new |
| gpt2-tiny-fp16 | GPT2LMHeadModel | same shapes, other seed, float16 |
| llama-tiny | LlamaForCausalLM | fp32, GQA 4 q / 2 kv heads, llama3 rope scaling, untied, sharded |
| llama-tiny-bf16 | LlamaForCausalLM | bfloat16, MHA, tied lm_head (not stored), plain RoPE |
| qwen2-tiny | Qwen2ForCausalLM | fp32, q/k/v biases (none on o_proj), GQA 4 q / 2 kv heads, tied lm_head, plain RoPE |
| qwen3-tiny | Qwen3ForCausalLM | bf16, per-head q_norm/k_norm, no biases, GQA 4/2, tied, plain RoPE |
| mistral-tiny | MistralForCausalLM | bf16, sliding window 8 on every layer, GQA 4/2, untied |
| gemma2-tiny | Gemma2ForCausalLM | fp32, GeGLU (gelu_pytorch_tanh), embeddings x sqrt(64), (1 + w) norms incl. pre/post-feedforward, attention softcap 20, final softcap 8, query_pre_attn_scalar 32 (head_dim 16), layers sliding(8)/full, GQA 4/2, tied |
| gemma3-tiny | Gemma3ForCausalLM | bf16, 4 layers sliding/sliding/full/sliding (window 8), (1 + w) q/k norms, local theta 1e4, global theta 1e6 with linear scaling 8, query_pre_attn_scalar 32, no softcaps, tied |
| phi3-tiny | Phi3ForCausalLM | fp32, fused qkv_proj and gate_up_proj, MHA, plain RoPE, untied |
| qwen2-yarn-tiny | Qwen2ForCausalLM | bf16, YaRN factor 4 over an original context of 32 (frequency 0 extrapolated, 1 blended, 2-7 interpolated; cos/sin x attention factor), GQA 4/2, untied |
| llama-dynamic-tiny | LlamaForCausalLM | bf16, dynamic NTK factor 2 within its 128-position context (the unscaled frequencies), GQA 4/2, untied |
| qwen2-sliding-tiny | Qwen2ForCausalLM | bf16, use_sliding_window with max_window_layers 1: layer 0 full attention, layer 1 a window of 8, GQA 4/2, untied |
| phi3-longrope-tiny | Phi3ForCausalLM | bf16, LongRoPE (original 38: cases 0-2 short factors, case 3 long; cos/sin x attention factor), GQA 4/2 |
| mixtral-tiny | MixtralForCausalLM | bf16, 4 experts top-2 renormalized, expert size 64, GQA 4/2, per-expert w1/w3/w2 tensors |
| qwen2moe-tiny | Qwen2MoeForCausalLM | fp32, q/k/v biases, 4 experts top-2 not renormalized + shared expert x sigmoid(shared_expert_gate) |
| qwen3moe-tiny | Qwen3MoeForCausalLM | bf16, q/k norms, 4 experts top-2 renormalized, no shared expert |
| llama32-tied-tiny | LlamaForCausalLM | fp32, tied, llama3 rope scaling with theta 5e5 and factor 32 (original 64), GQA 4/2 |
| llama-tiny-fp8-ct | LlamaForCausalLM | compressed-tensors float-quantized: fp8 e4m3 weights, float32 per-channel weight_scale [out, 1], static per-tensor input_scale [1], bf16 rest, lm_head not quantized |
| llama-tiny-fp8-block | LlamaForCausalLM | quant_method fp8, 128x128 blocks, float32 weight_scale_inv [ceil(out/128), ceil(in/128)], dynamic activations; hidden 256, intermediate 512, 1 layer, 1 kv head (k/v: a half block), bf16 rest, tied |
| llama-tiny-awq | LlamaForCausalLM | AWQ GEMM 4 bit, group 32, zero points, qweight [in, out/8] in order 0 2 4 6 1 3 5 7, fp16 scales, fp16 rest |
| llama-tiny-gptq | LlamaForCausalLM | GPTQ v1 4 bit, group 32, sym (stored zero 7 = 8 - 1), desc_act with g_idx, qweight [in/8, out], fp16 rest |
"""


def report_outputs(out_root: Path, t0: float, summary: dict, failed: dict) -> int:
    """Writes the README, lists what is in out_root, reports failures; returns the exit status."""
    (out_root / "README.md").write_text(README)
    total = 0
    for path in sorted(out_root.rglob("*")):
        if path.is_file():
            size = path.stat().st_size
            total += size
            print(f"  {size:>9}  {path.relative_to(out_root)}")
    print(f"total {total} bytes in {out_root}; {time.time() - t0:.1f}s")
    if total > TOTAL_BYTES_WARN:
        print(f"WARNING: fixtures take {total} bytes (> {TOTAL_BYTES_WARN})")
    if failed:
        print(f"built {json.dumps(summary)}")
        for name, why in failed.items():
            print(f"FAILED {name}: {why}", file=sys.stderr)
        print(f"FAILED {len(failed)} of {len(failed) + len(summary)} models: {sorted(failed)}", file=sys.stderr)
        return 1
    print(f"OK {json.dumps(summary)}")
    return 0


def build_all(names: list, out_root: Path, build) -> tuple[dict, dict]:
    """Calls build(name) for each model; a failure (a class this transformers lacks, a failed check) is
    reported and its folder removed, and the others still get built. Returns (summary, failed)."""
    summary, failed = {}, {}
    for name in names:
        print(f"== {name}")
        try:
            meta = build(name)
        except Exception as e:  # noqa: BLE001 - one model's failure must not stop the others
            traceback.print_exc()
            failed[name] = f"{type(e).__name__}: {e}"
            print(f"  FAILED: {failed[name]}")
            shutil.rmtree(out_root / name, ignore_errors=True)
            continue
        summary[name] = {"seed": meta["seed"], "min_top1_margin": meta["min_top1_margin"]}
    return summary, failed


def main(argv=None) -> int:
    args = parse_args(argv)
    torch = setup_torch()
    import transformers

    out_root = Path(args.out).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    print(f"versions: {versions()}")
    print(f"output: {out_root}")
    t0 = time.time()
    prompts = make_prompts(torch)
    summary, failed = build_all(
        args.models, out_root, lambda name: build_one(torch, transformers, name, MODEL_SPECS[name], out_root, prompts)
    )
    return report_outputs(out_root, t0, summary, failed)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CheckFailed as e:
        print(f"CHECK FAILED: {e}", file=sys.stderr)
        sys.exit(1)
