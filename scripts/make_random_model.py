#!/usr/bin/env python3
"""Writes a random-weight Hugging Face checkpoint of a real model's shape, for benchmarks.

Needs only numpy (no torch), so it runs on the build machine; without numpy the weights are random
bytes of bounded magnitude (|w| in [2^-8, 2^-4), random signs: as good for timing):
    python3 scripts/make_random_model.py --preset gpt2-124m --out /tmp/gpt2-124m
    python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --out /tmp/llama-3-8b
    python3 scripts/make_random_model.py --preset qwen3-30b-a3b --dtype bf16 --fast --out /tmp/qwen3-30b-a3b
    python3 scripts/make_random_model.py --preset qwen2.5-7b --dtype bf16 --fast --out /tmp/qwen2.5-7b

--layers N keeps the first N layers of a preset (a quick check of the shapes; not for timing).

The tokenizer files of models/default (GPT-2's vocabulary) are copied in for every preset, so
`llmserve generate` and `serve` run on the result. Weights are N(0, 0.02) like HF's init; outputs are
gibberish, which is fine for timing.
"""
import argparse
import json
import math
import os
import shutil
import struct

try:
    import numpy as np
except ImportError:  # the build machine may lack it: random bytes instead (random_bytes below)
    np = None

PRESETS = {
    "gpt2-124m": dict(arch="gpt2", vocab=50257, hidden=768, layers=12, heads=12, positions=1024),
    "llama-3-8b": dict(arch="llama", vocab=128256, hidden=4096, layers=32, heads=32, kv_heads=8,
                       ffn=14336, positions=8192, rope_theta=500000.0),
    "llama-1b": dict(arch="llama", vocab=128256, hidden=2048, layers=16, heads=32, kv_heads=8,
                     ffn=8192, positions=8192, rope_theta=500000.0),
    # Qwen2.5-7B: Llama's layer with q/k/v biases, 28 layers, GQA 28/4, untied lm_head.
    "qwen2.5-7b": dict(arch="qwen2", vocab=152064, hidden=3584, layers=28, heads=28, kv_heads=4,
                       ffn=18944, positions=32768, rope_theta=1000000.0),
    # Mistral-7B v0.3: Llama's layer, 32,768-token vocabulary, no sliding window.
    "mistral-7b": dict(arch="mistral", vocab=32768, hidden=4096, layers=32, heads=32, kv_heads=8,
                       ffn=14336, positions=32768, rope_theta=1000000.0),
    # Qwen3-30B-A3B: 48 layers of 128 SwiGLU experts of 768, top 8 renormalised, Qwen3's attention
    # (head_dim 128, per-head q/k RMSNorm), untied lm_head. 30.5 B weights: 61 GB in bf16.
    "qwen3-30b-a3b": dict(arch="qwen3_moe", vocab=151936, hidden=2048, layers=48, heads=32,
                          kv_heads=4, head_dim=128, experts=128, top_k=8, moe_ffn=768,
                          positions=40960, rope_theta=1000000.0),
}


def tensors_for(p):
    d = p["hidden"]
    if p["arch"] == "gpt2":
        f = 4 * d
        yield "transformer.wte.weight", (p["vocab"], d)
        yield "transformer.wpe.weight", (p["positions"], d)
        for i in range(p["layers"]):
            h = f"transformer.h.{i}."
            yield h + "ln_1.weight", (d,)
            yield h + "ln_1.bias", (d,)
            yield h + "attn.c_attn.weight", (d, 3 * d)
            yield h + "attn.c_attn.bias", (3 * d,)
            yield h + "attn.c_proj.weight", (d, d)
            yield h + "attn.c_proj.bias", (d,)
            yield h + "ln_2.weight", (d,)
            yield h + "ln_2.bias", (d,)
            yield h + "mlp.c_fc.weight", (d, f)
            yield h + "mlp.c_fc.bias", (f,)
            yield h + "mlp.c_proj.weight", (f, d)
            yield h + "mlp.c_proj.bias", (d,)
        yield "transformer.ln_f.weight", (d,)
        yield "transformer.ln_f.bias", (d,)
    elif p["arch"] == "qwen3_moe":
        hd = p["head_dim"]
        yield "model.embed_tokens.weight", (p["vocab"], d)
        for i in range(p["layers"]):
            h = f"model.layers.{i}."
            yield h + "input_layernorm.weight", (d,)
            yield h + "self_attn.q_proj.weight", (p["heads"] * hd, d)
            yield h + "self_attn.k_proj.weight", (p["kv_heads"] * hd, d)
            yield h + "self_attn.v_proj.weight", (p["kv_heads"] * hd, d)
            yield h + "self_attn.o_proj.weight", (d, p["heads"] * hd)
            yield h + "self_attn.q_norm.weight", (hd,)
            yield h + "self_attn.k_norm.weight", (hd,)
            yield h + "post_attention_layernorm.weight", (d,)
            yield h + "mlp.gate.weight", (p["experts"], d)
            for e in range(p["experts"]):
                x = f"{h}mlp.experts.{e}."
                yield x + "gate_proj.weight", (p["moe_ffn"], d)
                yield x + "up_proj.weight", (p["moe_ffn"], d)
                yield x + "down_proj.weight", (d, p["moe_ffn"])
        yield "model.norm.weight", (d,)
        yield "lm_head.weight", (p["vocab"], d)
    else:
        hd = d // p["heads"]
        kv = p["kv_heads"] * hd
        yield "model.embed_tokens.weight", (p["vocab"], d)
        for i in range(p["layers"]):
            h = f"model.layers.{i}."
            yield h + "input_layernorm.weight", (d,)
            yield h + "self_attn.q_proj.weight", (d, d)
            yield h + "self_attn.k_proj.weight", (kv, d)
            yield h + "self_attn.v_proj.weight", (kv, d)
            if p["arch"] == "qwen2":
                yield h + "self_attn.q_proj.bias", (d,)
                yield h + "self_attn.k_proj.bias", (kv,)
                yield h + "self_attn.v_proj.bias", (kv,)
            yield h + "self_attn.o_proj.weight", (d, d)
            yield h + "post_attention_layernorm.weight", (d,)
            yield h + "mlp.gate_proj.weight", (p["ffn"], d)
            yield h + "mlp.up_proj.weight", (p["ffn"], d)
            yield h + "mlp.down_proj.weight", (d, p["ffn"])
        yield "model.norm.weight", (d,)
        yield "lm_head.weight", (p["vocab"], d)


def config_for(p, dtype):
    torch_dtype = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dtype]
    if p["arch"] == "gpt2":
        return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": p["vocab"],
                "n_embd": p["hidden"], "n_layer": p["layers"], "n_head": p["heads"],
                "n_positions": p["positions"], "n_ctx": p["positions"], "layer_norm_epsilon": 1e-5,
                "activation_function": "gelu_new", "bos_token_id": 50256, "eos_token_id": 50256,
                "torch_dtype": torch_dtype}
    if p["arch"] == "qwen3_moe":
        return {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
                "vocab_size": p["vocab"], "hidden_size": p["hidden"],
                "num_hidden_layers": p["layers"], "num_attention_heads": p["heads"],
                "num_key_value_heads": p["kv_heads"], "head_dim": p["head_dim"],
                "intermediate_size": 6144, "moe_intermediate_size": p["moe_ffn"],
                "num_experts": p["experts"], "num_experts_per_tok": p["top_k"],
                "norm_topk_prob": True, "decoder_sparse_step": 1, "mlp_only_layers": [],
                "max_position_embeddings": p["positions"], "rms_norm_eps": 1e-6,
                "rope_theta": p["rope_theta"], "hidden_act": "silu", "attention_bias": False,
                "tie_word_embeddings": False, "bos_token_id": 151643, "eos_token_id": 151645,
                "torch_dtype": torch_dtype}
    c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": p["vocab"],
         "hidden_size": p["hidden"], "num_hidden_layers": p["layers"],
         "num_attention_heads": p["heads"], "num_key_value_heads": p["kv_heads"],
         "intermediate_size": p["ffn"], "max_position_embeddings": p["positions"],
         "rms_norm_eps": 1e-5, "rope_theta": p["rope_theta"], "hidden_act": "silu",
         "tie_word_embeddings": False, "bos_token_id": 128000, "eos_token_id": 128001,
         "torch_dtype": torch_dtype}
    if p["arch"] == "qwen2":
        c.update(architectures=["Qwen2ForCausalLM"], model_type="qwen2", rms_norm_eps=1e-6,
                 use_sliding_window=False, sliding_window=None, bos_token_id=151643,
                 eos_token_id=151645)
    elif p["arch"] == "mistral":
        c.update(architectures=["MistralForCausalLM"], model_type="mistral", sliding_window=None,
                 bos_token_id=1, eos_token_id=2)
    return c


def num_values(shape):
    return math.prod(shape)


def random_bytes(n, dtype):
    """n random values of magnitude in [2^-8, 2^-4) with random signs, as little-endian bytes."""
    if dtype == "f32":  # exponent 120 or 121 (its low bit is the third byte's top bit)
        out = bytearray(os.urandom(4 * n))
        out[3::4] = bytes(out[3::4]).translate(bytes((b & 0x80) | 0x3C for b in range(256)))
        return bytes(out)
    out = bytearray(2 * n)
    out[0::2] = os.urandom(n)
    if dtype == "f16":  # exponent 7-10 of 5 bits
        table = bytes((b & 0x80) | ((7 + ((b >> 2) & 3)) << 2) | (b & 3) for b in range(256))
    else:  # bf16: exponent 120 or 121 (its low bit is the low byte's top bit)
        table = bytes((b & 0x80) | 0x3C for b in range(256))
    out[1::2] = os.urandom(n).translate(table)
    return bytes(out)


def ones_bytes(n, dtype):
    return {"f32": b"\x00\x00\x80\x3f", "f16": b"\x00\x3c", "bf16": b"\x80\x3f"}[dtype] * n


def encode(values, dtype):
    if dtype == "f32":
        return values.astype("<f4").tobytes()
    if dtype == "f16":
        return values.astype("<f2").tobytes()
    bits = values.astype("<f4").view("<u4")
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fast", action="store_true",
                    help="fill weights from one 16M-value random pool at random offsets: ~5x faster for 8B "
                         "shapes (disk-bound), fine for timing")
    ap.add_argument("--layers", type=int, help="keep only the first N layers")
    args = ap.parse_args()
    p = dict(PRESETS[args.preset])
    if args.layers:
        p["layers"] = min(args.layers, p["layers"])
    os.makedirs(args.out, exist_ok=True)
    st_dtype = {"f32": "F32", "f16": "F16", "bf16": "BF16"}[args.dtype]
    size = {"f32": 4, "f16": 2, "bf16": 2}[args.dtype]
    header, offset, specs = {}, 0, list(tensors_for(p))
    for name, shape in specs:
        n = num_values(shape) * size
        header[name] = {"dtype": st_dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    rng = np.random.default_rng(args.seed) if np is not None else None
    pool = encode(rng.standard_normal(size=1 << 24, dtype=np.float32) * 0.02, args.dtype) if args.fast and np is not None else None
    with open(os.path.join(args.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for name, shape in specs:
            is_norm = len(shape) == 1 and ("ln" in name or "norm" in name) and name.endswith("weight")
            if is_norm:
                f.write(ones_bytes(num_values(shape), args.dtype))
            elif np is None:
                f.write(random_bytes(num_values(shape), args.dtype))
            elif pool is not None:
                left = num_values(shape) * size
                at = int(rng.integers(0, len(pool) // size)) * size
                while left > 0:
                    chunk = pool[at:at + left]
                    f.write(chunk)
                    left -= len(chunk)
                    at = 0
            else:
                f.write(encode(rng.standard_normal(size=shape, dtype=np.float32) * 0.02, args.dtype))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config_for(p, args.dtype), f, indent=2)
    here = os.path.dirname(os.path.abspath(__file__))
    # GPT-2's tokenizer for every preset, so `serve` and `generate` run on the result (for Llama
    # shapes its 50,257 ids are a subset of the 128,256-row vocabulary).
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(here, "..", "models", "default", name), args.out)
    print(f"wrote {args.out}: {args.preset} {args.dtype}, {offset / 1e6:.1f} MB of weights")


if __name__ == "__main__":
    main()
