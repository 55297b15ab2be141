#!/usr/bin/env python3
"""Pre-quantized tiny Llama checkpoints with golden outputs, for llmserve's C++ tests.

Run where PyTorch and transformers are installed (everything runs on the CPU, in seconds; no quantization
library is needed, the formats are written by this script):

    python3 scripts/make_quantized_reference.py --out tests/data/models [--only llama-tiny-awq ...]

Same conventions as make_reference.py, whose helpers this imports: one folder per model with config.json
(with its quantization_config), generation_config.json, model.safetensors, reference.safetensors (the same
prompts and case keys, plus rope.inv_freq) and reference.json; the README.md at the top is rewritten.

  llama-tiny-fp8-ct     compressed-tensors "float-quantized" (llm-compressor FP8 with static activations):
                        *.weight float8_e4m3fn [out, in], *.weight_scale float32 [out, 1] (per output channel,
                        amax / 448), *.input_scale float32 [1] (static per tensor: amax of the module's input
                        over the prefill of the 4 prompts, in the unquantized model, / 448); bf16 rest.
  llama-tiny-fp8-block  quant_method "fp8", weight_block_size [128, 128], activation_scheme dynamic (DeepSeek-V3 /
                        Qwen3-FP8 style): *.weight float8_e4m3fn, *.weight_scale_inv float32
                        [ceil(out/128), ceil(in/128)], W = weight * weight_scale_inv per block (the name says
                        "inv", the value multiplies). hidden 256, intermediate 512, 1 layer, 4 q heads / 1 kv
                        head of 64, so k_proj/v_proj (64 rows) are half a block; bf16 rest, tied embeddings.
  llama-tiny-awq        AutoAWQ GEMM, 4 bit, group 32, zero point: qweight int32 [in, out/8], qzeros int32
                        [in/32, out/8], scales fp16 [in/32, out]; 8 nibbles per int32 along out, nibble i
                        (bits 4i..4i+3) holding column 8c + (0, 2, 4, 6, 1, 3, 5, 7)[i]; W[o, i] = (q - z) * s of
                        group i // 32; zero points stored as is; fp16 rest.
  llama-tiny-gptq       GPTQ v1 ("checkpoint_format": "gptq"), 4 bit, group 32, sym, desc_act (act-order):
                        qweight int32 [in/8, out] (8 nibbles along in, nibble j = row 8r + j), qzeros int32
                        [in/32, out/8] (nibbles along out, same sequential order) holding zero - 1 (sym: 7 for
                        8), scales fp16 [in/32, out], g_idx int32 [in]: input channel i belongs to group
                        g_idx[i]; act-order numbers the channels by descending mean square input activation,
                        so g_idx is not monotonic. W[o, i] = (q - (stored zero + 1)) * scales[g_idx[i], o]; fp16 rest.

The lm_head, embeddings and norms are never quantized. Quantization is plain round-to-nearest (no AWQ
scale search, no GPTQ error feedback): the formats are what matters here. The references are HF transformers
outputs of a LlamaForCausalLM holding the DEQUANTIZED weights in float32 (eager attention, CPU), loaded back
through from_pretrained like every other fixture; activations are not quantized (fp8-ct's input_scale is in
the files for loaders that quantize activations, which then will not match to 1e-4). Before writing, the
script dequantizes its own model.safetensors with separate straightforward functions (for AWQ with the
reverse order (0, 4, 1, 5, 2, 6, 3, 7) that vLLM's unpacking uses) and asserts that the result equals,
bit for bit, the weights the reference was computed from.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_reference as mr  # noqa: E402 - the sibling script, found through the path set just above

FP8_MAX = 448.0  # largest float8_e4m3fn
FP8_BLOCK = 128
Q_BITS = 4
Q_GROUP = 32
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)  # nibble i of an AWQ int32 holds column 8c + AWQ_ORDER[i]
AWQ_REVERSE_ORDER = (0, 4, 1, 5, 2, 6, 3, 7)  # column j is nibble AWQ_REVERSE_ORDER[j] (vLLM's unpacking)

FP8_ARGS = {
    "num_bits": 8,
    "type": "float",
    "symmetric": True,
    "dynamic": False,
    "group_size": None,
    "block_structure": None,
    "actorder": None,
    "observer": "minmax",
    "observer_kwargs": {},
}
QUANT_CONFIGS = {
    "fp8-ct": {
        "quant_method": "compressed-tensors",
        "format": "float-quantized",
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": {**FP8_ARGS, "strategy": "channel"},
                "input_activations": {**FP8_ARGS, "strategy": "tensor"},
                "output_activations": None,
            }
        },
        "ignore": ["lm_head"],
        "kv_cache_scheme": None,
    },
    "fp8-block": {
        "quant_method": "fp8",
        "fmt": "e4m3",
        "activation_scheme": "dynamic",
        "weight_block_size": [FP8_BLOCK, FP8_BLOCK],
    },
    "awq": {
        "quant_method": "awq",
        "version": "gemm",
        "bits": Q_BITS,
        "group_size": Q_GROUP,
        "zero_point": True,
        "modules_to_not_convert": None,
    },
    "gptq": {
        "quant_method": "gptq",
        "checkpoint_format": "gptq",
        "bits": Q_BITS,
        "group_size": Q_GROUP,
        "desc_act": True,
        "sym": True,
        "static_groups": False,
        "true_sequential": True,
        "damp_percent": 0.01,
        "lm_head": False,
        "model_name_or_path": None,
        "model_file_base_name": None,
    },
}


def llama(**overrides) -> dict:
    """A make_reference.py model spec for the LlamaForCausalLM that gets quantized (rest_dtype: what is not)."""
    spec = {"arch": "llama", "num_kv_heads": 2, "tie": False, "rope_scaling": None, "save_dtype": "float32"}
    spec.update(overrides)
    return spec


QUANT_SPECS = {
    "llama-tiny-fp8-ct": {"format": "fp8-ct", "seed": 21000, "rest_dtype": "bfloat16", "model": llama()},
    "llama-tiny-fp8-block": {
        "format": "fp8-block",
        "seed": 22000,
        "rest_dtype": "bfloat16",
        "model": llama(
            num_kv_heads=1,
            tie=True,
            shape={
                "hidden_size": 256,
                "intermediate_size": 512,
                "num_hidden_layers": 1,
                "num_attention_heads": 4,
                "head_dim": 64,
            },
        ),
    },
    "llama-tiny-awq": {"format": "awq", "seed": 23000, "rest_dtype": "float16", "model": llama()},
    "llama-tiny-gptq": {"format": "gptq", "seed": 24000, "rest_dtype": "float16", "model": llama()},
}

check = mr.check
CheckFailed = mr.CheckFailed


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder that receives one subfolder per model")
    p.add_argument("--only", nargs="*", choices=sorted(QUANT_SPECS), help="build only these models")
    args = p.parse_args(argv)
    args.models = list(args.only) if args.only else list(QUANT_SPECS)
    return args


# ---------------------------------------------------------------- packing helpers


def to_int32(torch, packed):
    """int64 values in [0, 2^32) -> the int32 with the same bits."""
    return torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)


def nibbles(torch, packed, i: int):
    """Bits 4i..4i+3 of every int32 (as int64 0..15; the shift of the sign-extended value is masked)."""
    return (packed.to(torch.int64) >> (4 * i)) & 0xF


def pack_awq(torch, values):
    """values int64 [R, C] in 0..15 -> int32 [R, C/8], nibble i of column c = values[:, 8c + AWQ_ORDER[i]]."""
    packed = torch.zeros(values.shape[0], values.shape[1] // 8, dtype=torch.int64)
    for i, col in enumerate(AWQ_ORDER):
        packed |= values[:, col::8] << (4 * i)
    return to_int32(torch, packed)


def pack_gptq_rows(torch, values):
    """values int64 [R, C] -> int32 [R/8, C], nibble j of row r = values[8r + j]."""
    v = values.reshape(values.shape[0] // 8, 8, values.shape[1])
    packed = torch.zeros(v.shape[0], v.shape[2], dtype=torch.int64)
    for j in range(8):
        packed |= v[:, j, :] << (4 * j)
    return to_int32(torch, packed)


def pack_gptq_cols(torch, values):
    """values int64 [R, C] -> int32 [R, C/8], nibble j of column c = values[:, 8c + j]."""
    v = values.reshape(values.shape[0], values.shape[1] // 8, 8)
    packed = torch.zeros(v.shape[0], v.shape[1], dtype=torch.int64)
    for j in range(8):
        packed |= v[:, :, j] << (4 * j)
    return to_int32(torch, packed)


# ---------------------------------------------------------------- quantizers: (file tensors, dequantized weight)


def quantize_fp8_ct(torch, w, stats: dict):
    scale = (w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / FP8_MAX).float()  # [out, 1]
    q = (w / scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    input_scale = torch.tensor([max(stats["amax"], 1e-12) / FP8_MAX], dtype=torch.float32)
    return {"weight": q, "weight_scale": scale, "input_scale": input_scale}, q.float() * scale


def quantize_fp8_block(torch, w, stats: dict):
    rows, cols = w.shape
    grid = (math.ceil(rows / FP8_BLOCK), math.ceil(cols / FP8_BLOCK))
    scale = torch.empty(grid, dtype=torch.float32)
    for r in range(grid[0]):
        for c in range(grid[1]):
            block = w[r * FP8_BLOCK : (r + 1) * FP8_BLOCK, c * FP8_BLOCK : (c + 1) * FP8_BLOCK]
            scale[r, c] = block.abs().amax().clamp(min=1e-12) / FP8_MAX
    full = scale.repeat_interleave(FP8_BLOCK, 0).repeat_interleave(FP8_BLOCK, 1)[:rows, :cols]
    q = (w / full).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return {"weight": q, "weight_scale_inv": scale}, q.float() * full


def quantize_awq(torch, w, stats: dict):
    """AutoAWQ's asymmetric round-to-nearest: per (row, group) scale (max - min) / 15 and zero -round(min / s)."""
    rows, cols = w.shape
    g = w.reshape(rows, cols // Q_GROUP, Q_GROUP)
    scales = ((g.amax(dim=2) - g.amin(dim=2)).clamp(min=1e-5) / 15).to(torch.float16)  # [out, G]
    s = scales.float()[..., None]
    zeros = (-torch.round(g.amin(dim=2, keepdim=True) / s)).clamp(0, 15)  # [out, G, 1]
    q = (torch.round(g / s) + zeros).clamp(0, 15)
    deq = ((q - zeros) * s).reshape(rows, cols)
    qi = q.reshape(rows, cols).to(torch.int64).t().contiguous()  # [in, out]
    zi = zeros[..., 0].to(torch.int64).t().contiguous()  # [in / group, out]
    files = {"qweight": pack_awq(torch, qi), "qzeros": pack_awq(torch, zi), "scales": scales.t().contiguous()}
    return files, deq


def quantize_gptq(torch, w, stats: dict):
    """GPTQ's symmetric grid (scale 2 * amax / 15, zero 8) on act-order groups: channels sorted by descending
    mean square input (GPTQ's diag(H) order), consecutive runs of 32 of that order form a group."""
    rows, cols = w.shape
    perm = torch.argsort(stats["sumsq"], descending=True, stable=True)
    g_idx = torch.empty(cols, dtype=torch.int64)
    g_idx[perm] = torch.arange(cols) // Q_GROUP
    groups = cols // Q_GROUP
    scales = torch.empty(groups, rows, dtype=torch.float16)
    q = torch.empty(rows, cols)
    for gi in range(groups):
        members = perm[gi * Q_GROUP : (gi + 1) * Q_GROUP]
        block = w[:, members]
        amax = block.abs().amax(dim=1)
        amax = torch.where(amax == 0, torch.ones_like(amax), amax)
        scales[gi] = (2 * amax / 15).to(torch.float16)
        q[:, members] = (torch.round(block / scales[gi].float()[:, None]) + 8).clamp(0, 15)
    deq = (q - 8) * scales.float()[g_idx].t()
    files = {
        "qweight": pack_gptq_rows(torch, q.t().contiguous().to(torch.int64)),
        "qzeros": pack_gptq_cols(torch, torch.full((groups, rows), 8 - 1, dtype=torch.int64)),  # v1: zero - 1
        "scales": scales,
        "g_idx": g_idx.to(torch.int32),
    }
    return files, deq


QUANTIZERS = {"fp8-ct": quantize_fp8_ct, "fp8-block": quantize_fp8_block, "awq": quantize_awq, "gptq": quantize_gptq}


# ---------------------------------------------------------------- independent dequantization of the files


def dequant_fp8_ct(torch, t: dict, name: str):
    check(t[f"{name}.weight"].dtype == torch.float8_e4m3fn, f"{name}.weight is {t[f'{name}.weight'].dtype}")
    check(t[f"{name}.weight_scale"].dtype == torch.float32, f"{name}.weight_scale is not float32")
    check(tuple(t[f"{name}.input_scale"].shape) == (1,), f"{name}.input_scale is not [1]")
    rows = t[f"{name}.weight"].shape[0]
    check(tuple(t[f"{name}.weight_scale"].shape) == (rows, 1), f"{name}.weight_scale is not [{rows}, 1]")
    return t[f"{name}.weight"].float() * t[f"{name}.weight_scale"]


def dequant_fp8_block(torch, t: dict, name: str):
    q = t[f"{name}.weight"]
    s = t[f"{name}.weight_scale_inv"]
    check(q.dtype == torch.float8_e4m3fn and s.dtype == torch.float32, f"{name}: dtypes {q.dtype}, {s.dtype}")
    rows, cols = q.shape
    check(tuple(s.shape) == (-(-rows // FP8_BLOCK), -(-cols // FP8_BLOCK)), f"{name}.weight_scale_inv is {tuple(s.shape)}")
    out = torch.empty(rows, cols)
    for r in range(s.shape[0]):
        for c in range(s.shape[1]):
            rs = slice(r * FP8_BLOCK, min(rows, (r + 1) * FP8_BLOCK))
            cs = slice(c * FP8_BLOCK, min(cols, (c + 1) * FP8_BLOCK))
            out[rs, cs] = q[rs, cs].float() * s[r, c]
    return out


def unpack_awq(torch, packed):
    """int32 [R, C/8] -> int64 [R, C]: nibbles in bit order, then columns put back with AWQ_REVERSE_ORDER."""
    parts = torch.stack([nibbles(torch, packed, i) for i in range(8)], dim=-1)  # [R, C/8, 8], nibble index last
    return parts[:, :, list(AWQ_REVERSE_ORDER)].reshape(packed.shape[0], -1)


def dequant_awq(torch, t: dict, name: str):
    qweight, qzeros, scales = t[f"{name}.qweight"], t[f"{name}.qzeros"], t[f"{name}.scales"]
    check(qweight.dtype == torch.int32 and qzeros.dtype == torch.int32, f"{name}: packed tensors are not int32")
    check(scales.dtype == torch.float16, f"{name}.scales is {scales.dtype}")
    q = unpack_awq(torch, qweight)  # [in, out]
    z = unpack_awq(torch, qzeros)  # [in / group, out]
    check(q.shape[0] == z.shape[0] * Q_GROUP and tuple(z.shape) == tuple(scales.shape), f"{name}: shapes disagree")
    group = torch.arange(q.shape[0]) // Q_GROUP
    return ((q - z[group]).float() * scales.float()[group]).t()


def dequant_gptq(torch, t: dict, name: str):
    qweight, qzeros, scales, g_idx = (t[f"{name}.{k}"] for k in ("qweight", "qzeros", "scales", "g_idx"))
    check(qweight.dtype == torch.int32 and qzeros.dtype == torch.int32 and g_idx.dtype == torch.int32, f"{name}: int dtypes")
    check(scales.dtype == torch.float16, f"{name}.scales is {scales.dtype}")
    q = torch.stack([nibbles(torch, qweight, j) for j in range(8)], dim=1).reshape(-1, qweight.shape[1])  # [in, out]
    z = torch.stack([nibbles(torch, qzeros, j) for j in range(8)], dim=2).reshape(qzeros.shape[0], -1) + 1  # v1
    check(q.shape[0] == g_idx.shape[0], f"{name}: g_idx has {g_idx.shape[0]} entries for {q.shape[0]} inputs")
    g = g_idx.to(torch.int64)
    check(sorted(torch.bincount(g).tolist()) == [Q_GROUP] * scales.shape[0], f"{name}: groups are not {Q_GROUP} wide")
    return ((q - z[g]).float() * scales.float()[g]).t()


DEQUANTIZERS = {"fp8-ct": dequant_fp8_ct, "fp8-block": dequant_fp8_block, "awq": dequant_awq, "gptq": dequant_gptq}
FILE_SUFFIXES = {
    "fp8-ct": ("weight", "weight_scale", "input_scale"),
    "fp8-block": ("weight", "weight_scale_inv"),
    "awq": ("qweight", "qzeros", "scales"),
    "gptq": ("qweight", "qzeros", "scales", "g_idx"),
}


def quantization_facts(fmt: str) -> dict:
    common = {
        "not_quantized": "embed_tokens, every norm, lm_head (stored in the rest dtype)",
        "reference": "HF outputs of the dequantized weights in float32; activations not quantized",
        "method": "round to nearest (no AWQ scale search, no GPTQ error feedback)",
    }
    facts = {
        "fp8-ct": {
            "weight": "float8_e4m3fn [out, in]",
            "weight_scale": "float32 [out, 1]: amax of the row / 448",
            "input_scale": "float32 [1]: amax(|input|) over the prefill of the 4 prompts (unquantized model) / 448; "
            "q/k/v and gate/up share their input and so their value; unused by the reference",
            "dequantized": "weight.float() * weight_scale",
        },
        "fp8-block": {
            "weight": "float8_e4m3fn [out, in]",
            "weight_scale_inv": f"float32 [ceil(out/{FP8_BLOCK}), ceil(in/{FP8_BLOCK})]: amax of the block / 448",
            "dequantized": f"weight[o, i].float() * weight_scale_inv[o // {FP8_BLOCK}, i // {FP8_BLOCK}] (edge blocks partial)",
            "activations": "dynamic (per token group at run time in real engines); not quantized in the reference",
        },
        "awq": {
            "qweight": "int32 [in, out/8]: nibble i (bits 4i..4i+3) of column c = q[in, 8c + order[i]]",
            "qzeros": "int32 [in/32, out/8], same packing, zero points 0..15 stored as is",
            "scales": "float16 [in/32, out]",
            "order": list(AWQ_ORDER),
            "reverse_order": list(AWQ_REVERSE_ORDER),
            "dequantized": "W[o, i] = (q[i, o] - z[i // 32, o]) * scales[i // 32, o]",
        },
        "gptq": {
            "qweight": "int32 [in/8, out]: nibble j of row r = q[8r + j, out]",
            "qzeros": "int32 [in/32, out/8]: nibble j of column c = zero[g, 8c + j] - 1 (GPTQ v1; sym: 7)",
            "scales": "float16 [in/32, out]",
            "g_idx": "int32 [in]: group of input channel i; act-order, not monotonic; every group has 32 channels",
            "dequantized": "W[o, i] = (q[i, o] - (qzeros_nibble[g_idx[i], o] + 1)) * scales[g_idx[i], o]",
        },
    }[fmt]
    return {**facts, **common}


# ---------------------------------------------------------------- building


def quantized_linears(torch, model) -> dict:
    """name -> nn.Linear of every projection in the decoder layers (not lm_head)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".layers." in n}


def activation_stats(torch, model, linears: dict, prompts: list) -> dict:
    """Per quantized module: amax(|input|) and the per-input-channel sum of squares over the prompts' prefill."""
    stats = {n: {"amax": 0.0, "sumsq": torch.zeros(m.in_features)} for n, m in linears.items()}
    handles = []
    for n, m in linears.items():

        def hook(module, args, name=n):
            x = args[0].detach().float().reshape(-1, args[0].shape[-1])
            stats[name]["amax"] = max(stats[name]["amax"], float(x.abs().max()))
            stats[name]["sumsq"] += (x * x).sum(dim=0)

        handles.append(m.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            for prompt in prompts:
                model(input_ids=prompt[None], use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return stats


def build_quantized(torch, transformers, name: str, qspec: dict, out_root: Path, prompts: list) -> dict:
    from safetensors.torch import save_file

    fmt, spec = qspec["format"], qspec["model"]
    rest = mr.torch_dtype(torch, qspec["rest_dtype"])
    cls = mr.model_class(transformers, spec)
    model_dir = out_root / name
    work = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    failures = []
    try:
        for attempt in range(mr.MAX_SEED_TRIES):
            seed = qspec["seed"] + attempt
            if model_dir.exists():
                shutil.rmtree(model_dir)
            model_dir.mkdir(parents=True)
            model, tied = mr.build_model(torch, transformers, spec, seed)
            linears = quantized_linears(torch, model)
            layers = mr.model_shape(spec)["num_hidden_layers"]
            check(len(linears) == 7 * layers, f"found {len(linears)} projections, wanted {7 * layers}: {sorted(linears)}")
            quantized_weights = {f"{n}.weight" for n in linears}
            with torch.no_grad():
                for pname, p in model.named_parameters():
                    if pname not in quantized_weights:
                        p.copy_(p.to(rest).float())  # what the file will hold, exactly
            stats = activation_stats(torch, model, linears, prompts)
            quant_tensors, dequant, errors = {}, {}, {}
            for lname, lin in linears.items():
                w = lin.weight.detach().float().clone()
                files, deq = QUANTIZERS[fmt](torch, w, stats[lname])
                for suffix, t in files.items():
                    quant_tensors[f"{lname}.{suffix}"] = t.contiguous()
                dequant[lname] = deq
                errors[lname] = float((deq - w).abs().max() / w.abs().max())
            with torch.no_grad():
                for lname, lin in linears.items():
                    lin.weight.copy_(dequant[lname])

            # The reference model: the dequantized weights through the same save / from_pretrained path as
            # every other fixture.
            ref_dir = work / f"seed{seed}"
            model.save_pretrained(str(ref_dir))
            ref_tensors, _ = mr.read_checkpoint(ref_dir)
            ref = mr.load_fp32(torch, cls, ref_dir, spec)
            mr.verify_reload(torch, ref, ref_tensors, tied, original=model, dtype=torch.float32)
            rope, rope_note = mr.verify_rope(torch, ref, spec)
            print(f"  rope: {rope_note}")
            case_tensors, case_stats = [], []
            for prompt in prompts:
                t, s = mr.run_case(torch, ref, prompt, mr.unused_token_picker)
                case_tensors.append(t)
                case_stats.append(s)
            margin = min(s["min_top1_margin"] for s in case_stats)
            if margin > mr.MIN_TOP1_MARGIN:
                break
            failures.append({"seed": seed, "min_top1_margin": margin})
            print(f"  WARNING: seed {seed}: top-1 margin {margin:.2e} <= {mr.MIN_TOP1_MARGIN}; trying seed {seed + 1}")
        else:
            raise CheckFailed(f"{name}: no seed in {mr.MAX_SEED_TRIES} tries gave top-1 margins > {mr.MIN_TOP1_MARGIN}")

        # The quantized checkpoint: quantized projections + everything else in the rest dtype.
        file_tensors = dict(quant_tensors)
        for pname, p in model.named_parameters():  # tied lm_head is a duplicate and not listed
            if pname not in quantized_weights:
                file_tensors[pname] = p.detach().to(rest).contiguous()
        if tied:
            check("lm_head.weight" not in file_tensors, "tied checkpoint would store lm_head.weight")
        else:
            check("lm_head.weight" in file_tensors, "untied checkpoint lacks lm_head.weight")
        save_file(file_tensors, str(model_dir / "model.safetensors"), metadata={"format": "pt"})
        config = json.loads((ref_dir / "config.json").read_text())
        dtype_keys = [k for k in ("dtype", "torch_dtype") if k in config] or ["torch_dtype"]
        for k in dtype_keys:
            config[k] = qspec["rest_dtype"]
        config["quantization_config"] = QUANT_CONFIGS[fmt]
        (model_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        mr.write_generation_config(transformers, spec, model_dir)

        # Self-check: read the files back and dequantize them independently.
        back, _ = mr.read_checkpoint(model_dir)
        want_names = {f"{n}.{s}" for n in linears for s in FILE_SUFFIXES[fmt]} | (set(file_tensors) - set(quant_tensors))
        check(set(back) == want_names, f"model.safetensors names differ: {sorted(set(back) ^ want_names)[:8]}")
        ref_params = dict(ref.named_parameters())
        for lname in linears:
            w = DEQUANTIZERS[fmt](torch, back, lname)
            check(torch.equal(w, ref_params[f"{lname}.weight"].detach()), f"{lname}: dequantized file != reference weight")
        for pname in set(file_tensors) - set(quant_tensors):
            check(back[pname].dtype == rest, f"{pname} saved as {back[pname].dtype}")
            check(torch.equal(back[pname].float(), ref_params[pname].detach()), f"{pname}: file != reference weight")
        print(f"  self-check: {len(linears)} dequantized projections equal the reference weights")

        out = {}
        for i, t in enumerate(case_tensors):
            for key, value in t.items():
                out[f"case{i}.{key}"] = value
        if rope:
            out["rope.inv_freq"] = torch.tensor(rope.get("global", rope.get("local")), dtype=torch.float32)
        save_file(out, str(model_dir / "reference.safetensors"), metadata={"format": "pt"})

        meta = {
            "model": name,
            "architecture": cls.__name__,
            "seed": seed,
            "seeds_rejected_for_small_margins": failures,
            "init": {"matrix_std": mr.INIT_STD, "bias_std": mr.BIAS_STD, "norm_weight": f"1 + N(0, {mr.NORM_STD}^2)"},
            "saved_dtype": f"quantized projections, {qspec['rest_dtype']} rest",
            "reference_dtype": "float32 (dequantized / upcast weights), CPU, eager attention, 1 thread",
            "tied_word_embeddings": tied,
            "weight_files": ["model.safetensors"],
            "tensor_names": sorted(back),
            "quantization": {
                "format": fmt,
                "quantization_config": QUANT_CONFIGS[fmt],
                "rest_dtype": qspec["rest_dtype"],
                "quantized_modules": sorted(linears),
                "max_abs_error_over_max_abs_weight": errors,
                "self_check": "files dequantized independently == reference weights, bit for bit",
                **quantization_facts(fmt),
            },
            "generation": {**mr.LLAMA_SPECIAL, "greedy_ignores_eos": True},
            "prompt_seed": mr.PROMPT_SEED,
            "prompt_lengths": list(mr.PROMPT_LENGTHS),
            "decode_steps": mr.NUM_DECODE_STEPS,
            "greedy_new_tokens": mr.NUM_GREEDY_TOKENS,
            "cases": case_stats,
            "min_top1_margin": min(s["min_top1_margin"] for s in case_stats),
            "tolerances": {"decode_vs_recompute_atol": mr.DECODE_ATOL, "top1_margin_min": mr.MIN_TOP1_MARGIN},
            "effective_config": mr.effective_config(ref),
            "architecture_facts": mr.architecture_facts(spec, ref.config),
            "rope": mr.rope_meta(spec, ref, rope_note, None),
            "config_rope_keys": sorted(k for k in config if k.startswith("rope")),
            "reference_keys": sorted(out),
            "versions": mr.versions(),
        }
        if fmt == "fp8-ct":
            meta["quantization"]["input_amax"] = {n: stats[n]["amax"] for n in sorted(linears)}
        (model_dir / "reference.json").write_text(json.dumps(meta, indent=2) + "\n")
        mr.check_reference_file(torch, model_dir, out)
        print(f"  seed {seed}, min top-1 margin {meta['min_top1_margin']:.3g}, max rel. quantization error "
              f"{max(errors.values()):.3f}, {len(back)} tensors")
        return meta
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch = mr.setup_torch()
    import transformers

    check(hasattr(torch, "float8_e4m3fn"), f"torch {torch.__version__} has no float8_e4m3fn")
    out_root = Path(args.out).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    print(f"versions: {mr.versions()}")
    print(f"output: {out_root}")
    t0 = time.time()
    prompts = mr.make_prompts(torch)
    summary, failed = mr.build_all(
        args.models, out_root, lambda name: build_quantized(torch, transformers, name, QUANT_SPECS[name], out_root, prompts)
    )
    return mr.report_outputs(out_root, t0, summary, failed)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CheckFailed as e:
        print(f"CHECK FAILED: {e}", file=sys.stderr)
        sys.exit(1)
