#!/usr/bin/env python3
"""The baseline of docs/performance.md: Hugging Face transformers `generate` decode speed.

    python3 scripts/bench_hf.py --model DIR --dtype float16 --input-len 32 --output-len 512

Greedy, batch 1 by default, KV cache on (transformers' default dynamic cache), eos ignored via
min_new_tokens. Prints one JSON line: decode tokens/s = (output_len - 1) / (time of the whole
generate - time of a 1-token generate), i.e. prefill excluded, median of --repeats runs.
"""
import argparse
import json
import statistics
import time

import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16"])
    ap.add_argument("--input-len", type=int, default=32)
    ap.add_argument("--output-len", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    dtype = getattr(torch, a.dtype)
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype).cuda().eval()
    load_s = time.perf_counter() - t0
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (a.batch, a.input_len), generator=g).cuda()
    mask = torch.ones_like(ids)

    def run(n):
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                 pad_token_id=0)
        torch.cuda.synchronize()
        assert out.shape[1] == a.input_len + n, out.shape
        return time.perf_counter() - start

    run(8)  # warm-up
    prefill = statistics.median(run(1) for _ in range(a.repeats))
    full = statistics.median(run(a.output_len) for _ in range(a.repeats))
    decode_tok_s = a.batch * (a.output_len - 1) / (full - prefill)
    print(json.dumps({"engine": "hf-transformers", "model": a.model, "dtype": a.dtype, "batch": a.batch,
                      "input_len": a.input_len, "output_len": a.output_len, "load_s": round(load_s, 2),
                      "prefill_s": round(prefill, 4), "generate_s": round(full, 4),
                      "decode_tok_s": round(decode_tok_s, 1), "gpu": torch.cuda.get_device_name(0),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
