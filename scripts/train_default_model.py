#!/usr/bin/env python3
"""Trains llmserve's embedded default model: GPT-2 architecture, GPT-2's BPE vocabulary, Tiny Shakespeare.

    python3 scripts/train_default_model.py --data shared/data/tinyshakespeare.txt \\
        --vocab-dir models/default --out OUTDIR [--steps 800] [--seed 1234] [--max-minutes 5]

Needs PyTorch, transformers, tokenizers and safetensors, and a GPU (bf16 autocast); no network.
The tokenizer is transformers' GPT-2 tokenizer loaded from the committed vocab.json + merges.txt
(byte-identical to OpenAI's GPT-2 files; their sha256 is checked). The text is split on characters
(last 10% held out for validation) before tokenizing. Training: AdamW, linear warmup + cosine decay,
bf16 autocast, fixed seeds and a fixed batch order; the checkpoint with the best validation loss is kept.
Two runs with the same arguments on the same GPU and software give identical files (checked on an H100).

Why 800 steps: the text is only ~300k tokens, so this 7.7M-parameter model overfits after ~30 epochs.
Measured on an H100 (transformers 5.17, torch 2.11; batch 64 x 256): 800 steps with dropout 0.1 reach
validation loss 4.78 (best); 1200 steps / dropout 0.2: 4.79; 2000 / 0.2: 4.82; 2000 / 0.3: 4.87;
3000 / 0.1: 4.82 at step 600, then rising to 5.93. 800 steps train in about 40 s at ~385k tokens/s.

OUTDIR receives everything the server needs, small: config.json, generation_config.json,
model.safetensors (float16, tied embeddings, <= 16,000,000 bytes), tokenizer_config.json (with a
chat_template), special_tokens_map.json, vocab.json, merges.txt, plus train_log.json,
reference.safetensors + reference.json (golden outputs from the SAVED fp16 weights upcast to fp32, CPU,
eager attention) and MODEL_CARD.md.

reference.safetensors, for each prompt i of REFERENCE_PROMPTS:
  prompt{i}.ids     int64   [T]      the prompt's token ids
  prompt{i}.logits  float32 [K, V]   logits at the last K = min(4, T) prompt positions (one forward)
  prompt{i}.greedy  int64   [40]     greedy continuation, EOS never stops it
Checks that fail after training are collected, reported, and turn the exit code to 1 once every file
has been written, so a long run is never thrown away.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shlex
import shutil
import string
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS; must precede CUDA init

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = "shared/data/tinyshakespeare.txt"
FALLBACK_DATA = "../shared/data/tinyshakespeare.txt"
CARD_TEMPLATE = Path(__file__).resolve().parent / "default_model_card.md.in"

VOCAB_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
MERGES_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
DATA_SHA256_KNOWN = None  # not pinned: any copy of Tiny Shakespeare works; its hash is logged
GPT2_VOCAB_SIZE = 50257
EOT_TOKEN = "<|endoftext|>"
EOT_ID = 50256
MAX_WEIGHT_BYTES = 16_000_000
VAL_FRACTION = 0.1

OUTPUT_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer_config.json",
                "special_tokens_map.json", "vocab.json", "merges.txt", "tokenizer.json", "train_log.json",
                "reference.safetensors", "reference.json", "MODEL_CARD.md")

REFERENCE_PROMPTS = ["ROMEO:", "First Citizen:\nBefore we proceed", "To be, or not to be"]
REFERENCE_LOGIT_ROWS = 4
REFERENCE_GREEDY_TOKENS = 40
SAMPLE_TEMPERATURE = 0.8
SAMPLE_TOP_K = 40
SAMPLE_NEW_TOKENS = 200

# HF renders chat templates with trim_blocks and lstrip_blocks; this template has no whitespace that
# either option would touch, so any Jinja renderer gives the same text.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] | upper }}:\n{{ message['content'] }}\n\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:\n{% endif %}"
)
CHAT_TEST_MESSAGES = [
    {"role": "system", "content": "You are a poet."},
    {"role": "user", "content": "Speak, speak."},
]
CHAT_TEST_EXPECTED = "SYSTEM:\nYou are a poet.\n\nUSER:\nSpeak, speak.\n\nASSISTANT:\n"

# Known GPT-2 ids (OpenAI's encoder / js-tiktoken 'gpt2').
TOKENIZER_PROBES = [
    ("Hello world", [15496, 995]),
    (" Hello world", [18435, 995]),
    (EOT_TOKEN, [EOT_ID]),
]


# ---------------------------------------------------------------- pure-python helpers (no torch)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train llmserve's default GPT-2-architecture model on Tiny Shakespeare.")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"text file (default {DEFAULT_DATA}, falls back to {FALLBACK_DATA})")
    p.add_argument("--vocab-dir", default="models/default", help="folder holding GPT-2's vocab.json and merges.txt")
    p.add_argument("--out", required=True, help="output folder (created; our files in it are overwritten)")
    p.add_argument("--steps", type=int, default=800, help="optimizer steps (the cosine schedule spans them)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--max-minutes", type=float, default=5.0, help="stop training after this many minutes")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--block-size", type=int, default=256, help="training context; also n_positions")
    p.add_argument("--n-layer", type=int, default=6)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr = lr * this")
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--eval-interval", type=int, default=100)
    p.add_argument("--train-eval-windows", type=int, default=256, help="fixed training windows scored at each eval")
    p.add_argument("--no-keep-best", dest="keep_best", action="store_false", help="save the last step, not the best")
    p.add_argument("--device", default="cuda")
    p.add_argument("--no-deterministic", dest="deterministic", action="store_false")
    p.add_argument("--tokenizer-json", action="store_true", help="also write tokenizer.json (about 2 MB)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.block_size < 8:
        p.error("--steps, --batch-size must be >= 1 and --block-size >= 8")
    if args.eval_interval < 1 or args.max_minutes <= 0:
        p.error("--eval-interval must be >= 1 and --max-minutes > 0")
    if args.n_embd % args.n_head:
        p.error("--n-embd must be a multiple of --n-head")
    return args


def resolve_data_path(arg: str, repo_root: Path = REPO_ROOT, cwd: Path | None = None) -> Path:
    """The first existing of: ARG (from cwd), ARG (from the repo root), ../shared/... beside cwd and repo."""
    cwd = Path.cwd() if cwd is None else cwd
    given = Path(arg)
    candidates = [given] if given.is_absolute() else [cwd / given, repo_root / given]
    candidates += [cwd / FALLBACK_DATA, repo_root / FALLBACK_DATA]
    seen = []
    for c in candidates:
        c = c.resolve()
        if c in seen:
            continue
        seen.append(c)
        if c.is_file():
            return c
    raise FileNotFoundError("data file not found; tried: " + ", ".join(str(s) for s in seen))


def gpt2_param_count(vocab_size: int, n_positions: int, n_embd: int, n_layer: int) -> int:
    """Parameters of GPT2LMHeadModel with tied embeddings (lm_head shares wte)."""
    inner = 4 * n_embd
    per_layer = (
        2 * n_embd  # ln_1
        + n_embd * 3 * n_embd + 3 * n_embd  # attn.c_attn
        + n_embd * n_embd + n_embd  # attn.c_proj
        + 2 * n_embd  # ln_2
        + n_embd * inner + inner  # mlp.c_fc
        + inner * n_embd + n_embd  # mlp.c_proj
    )
    return vocab_size * n_embd + n_positions * n_embd + n_layer * per_layer + 2 * n_embd


def fit_layers(n_layer: int, n_embd: int, n_positions: int, vocab_size: int = GPT2_VOCAB_SIZE,
               budget: int = MAX_WEIGHT_BYTES) -> int:
    """Largest layer count <= n_layer whose fp16 weights fit the budget (0 if none does)."""
    while n_layer > 0 and 2 * gpt2_param_count(vocab_size, n_positions, n_embd, n_layer) > budget:
        n_layer -= 1
    return n_layer


def lr_at(step: int, total: int, peak: float, warmup: int, min_ratio: float) -> float:
    """Linear warmup to peak over `warmup` steps, then cosine decay to peak * min_ratio at step total."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def split_text(text: str, val_fraction: float = VAL_FRACTION) -> tuple[str, str]:
    cut = int(len(text) * (1 - val_fraction))
    return text[:cut], text[cut:]


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


class ReferenceBPE:
    """Plain GPT-2 byte-level BPE (OpenAI's encoder.py algorithm): an independent check of the tokenizer."""

    PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

    def __init__(self, vocab_path: Path, merges_path: Path):
        import regex  # a dependency of transformers; the caller skips the check if it is missing

        self.encoder = json.loads(Path(vocab_path).read_text(encoding="utf-8"))
        self.decoder = {v: k for k, v in self.encoder.items()}
        lines = Path(merges_path).read_text(encoding="utf-8").split("\n")
        merges = [tuple(line.split(" ")) for line in lines[1:] if line]
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.pat = regex.compile(self.PATTERN)
        self.cache: dict[str, list[str]] = {}

    def _bpe(self, token: str) -> list[str]:
        if token in self.cache:
            return self.cache[token]
        word = list(token)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, math.inf))
            if best not in self.ranks:
                break
            first, second = best
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self.cache[token] = word
        return word

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in self.pat.findall(text):
            mapped = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(mapped))
        return ids

    def decode(self, ids: list[int]) -> str:
        text = "".join(self.decoder[i] for i in ids)
        return bytearray(self.byte_decoder[c] for c in text).decode("utf-8", errors="replace")


def render_chat_template_jinja(template: str, messages: list[dict], add_generation_prompt: bool) -> str:
    """Renders like transformers does (jinja2, trim_blocks + lstrip_blocks); used as a local check."""
    import jinja2

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt)


def tokenizer_config() -> dict:
    special = {"content": EOT_TOKEN, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False,
               "special": True}
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {str(EOT_ID): special},
        "bos_token": EOT_TOKEN,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": EOT_TOKEN,
        "errors": "replace",
        "model_max_length": None,  # filled with the block size
        "tokenizer_class": "GPT2Tokenizer",
        "unk_token": EOT_TOKEN,
    }


def special_tokens_map() -> dict:
    return {"bos_token": EOT_TOKEN, "eos_token": EOT_TOKEN, "unk_token": EOT_TOKEN}


def write_json(path: Path, obj, sort_keys: bool = False) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=sort_keys) + "\n", encoding="utf-8")


def render_card(template: str, values: dict) -> str:
    return string.Template(template).safe_substitute({k: str(v) for k, v in values.items()})


FALLBACK_CARD = """# llmserve default model

Trained by `$command` on $date. Validation loss $saved_val_loss (perplexity $saved_val_ppl).
See train_log.json and reference.json beside this file.
"""


# ---------------------------------------------------------------- torch side


class Run:
    """Collects non-fatal check failures so that a finished training run is always written out."""

    def __init__(self):
        self.failures: list[str] = []

    def check(self, cond: bool, message: str) -> bool:
        if not cond:
            self.failures.append(message)
            print(f"CHECK FAILED: {message}")
        return cond


def setup_tokenizer_files(out: Path, vocab_dir: Path, block_size: int) -> dict:
    vocab, merges = vocab_dir / "vocab.json", vocab_dir / "merges.txt"
    for path, want in ((vocab, VOCAB_SHA256), (merges, MERGES_SHA256)):
        if not path.is_file():
            raise SystemExit(f"missing {path}")
        got = sha256_file(path)
        if got != want:
            raise SystemExit(f"{path} has sha256 {got}, expected GPT-2's {want}")
    for src, name in ((vocab, "vocab.json"), (merges, "merges.txt")):
        if src.resolve() != (out / name).resolve():
            shutil.copyfile(src, out / name)
    cfg = tokenizer_config()
    cfg["model_max_length"] = block_size
    write_json(out / "tokenizer_config.json", cfg)
    write_json(out / "special_tokens_map.json", special_tokens_map())
    return {"vocab_sha256": VOCAB_SHA256, "merges_sha256": MERGES_SHA256}


def tokenizer_problems(tok) -> list[str]:
    problems = []
    for text, want in TOKENIZER_PROBES:
        got = list(tok.encode(text, add_special_tokens=False))
        if got != want:
            problems.append(f"encode({text!r}) = {got}, want {want}")
    got = list(tok.encode("Hello world"))  # default add_special_tokens: GPT-2 adds nothing
    if got != [15496, 995]:
        problems.append(f"encode('Hello world') with special tokens = {got}")
    if tok.eos_token_id != EOT_ID or tok.bos_token_id != EOT_ID:
        problems.append(f"bos/eos ids {tok.bos_token_id}/{tok.eos_token_id}, want {EOT_ID}")
    if len(tok) != GPT2_VOCAB_SIZE:
        problems.append(f"len(tokenizer) = {len(tok)}, want {GPT2_VOCAB_SIZE}")
    text = tok.decode([15496, 995])
    if text != "Hello world":
        problems.append(f"decode([15496, 995]) = {text!r}")
    return problems


def load_tokenizer(transformers, out: Path):
    """transformers' GPT-2 tokenizer from OUT (vocab.json, merges.txt, tokenizer_config.json).

    Uses from_pretrained on the folder rather than GPT2TokenizerFast(vocab_file=..., merges_file=...):
    in transformers 5 the constructors take vocab/merges (not *_file) and silently build an empty
    vocabulary from the old keywords. Tries AutoTokenizer, then GPT2TokenizerFast, then GPT2Tokenizer;
    the first whose encodings match GPT-2's known ids wins."""
    tried = []
    for name in ("AutoTokenizer", "GPT2TokenizerFast", "GPT2Tokenizer"):
        cls = getattr(transformers, name, None)
        if cls is None:
            tried.append(f"{name}: not in this transformers")
            continue
        try:
            tok = cls.from_pretrained(str(out))
        except Exception as e:  # noqa: BLE001 - try the next class
            tried.append(f"{name}: {type(e).__name__}: {e}")
            continue
        problems = tokenizer_problems(tok)
        if not problems:
            print(f"tokenizer: {name} -> {type(tok).__name__}")
            return tok, name
        tried.append(f"{name} ({type(tok).__name__}): " + "; ".join(problems))
    raise SystemExit("no working GPT-2 tokenizer:\n  " + "\n  ".join(tried))


def check_chat_template(tok) -> str | None:
    """Returns a problem description, or None if HF renders our chat template as expected."""
    try:
        local = render_chat_template_jinja(CHAT_TEMPLATE, CHAT_TEST_MESSAGES, True)
    except ImportError:
        local = CHAT_TEST_EXPECTED  # no jinja2 here; apply_chat_template below still checks
    if local != CHAT_TEST_EXPECTED:
        return f"jinja2 renders {local!r}, expected {CHAT_TEST_EXPECTED!r}"
    try:
        got = tok.apply_chat_template(CHAT_TEST_MESSAGES, tokenize=False, add_generation_prompt=True)
    except Exception as e:  # noqa: BLE001
        return f"apply_chat_template raised {type(e).__name__}: {e}"
    if not isinstance(got, str):
        return f"apply_chat_template returned {type(got).__name__}"
    if got != CHAT_TEST_EXPECTED:
        return f"apply_chat_template gives {got!r}, expected {CHAT_TEST_EXPECTED!r}"
    return None


def encode_text(tok, text: str) -> list[int]:
    limit = getattr(tok, "model_max_length", None)
    try:
        tok.model_max_length = 1 << 40  # whole-corpus encodes would otherwise warn about the 256 limit
    except Exception:  # noqa: BLE001 - only a warning is at stake
        pass
    try:
        return list(tok.encode(text, add_special_tokens=False))
    finally:
        if limit is not None:
            try:
                tok.model_max_length = limit
            except Exception:  # noqa: BLE001
                pass


def versions() -> dict:
    import safetensors
    import tokenizers
    import torch
    import transformers

    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
    }


def make_config(transformers, args, n_layer: int):
    return transformers.GPT2Config(
        vocab_size=GPT2_VOCAB_SIZE,
        n_positions=args.block_size,
        n_embd=args.n_embd,
        n_layer=n_layer,
        n_head=args.n_head,
        activation_function="gelu_new",
        layer_norm_epsilon=1e-5,
        resid_pdrop=args.dropout,
        embd_pdrop=args.dropout,
        attn_pdrop=args.dropout,
        bos_token_id=EOT_ID,
        eos_token_id=EOT_ID,
        tie_word_embeddings=True,
    )


def windows(torch, ids, block: int, starts):
    """[len(starts), block + 1] int64: x = w[:, :-1], y = w[:, 1:]."""
    offs = torch.arange(block + 1)
    return ids[torch.as_tensor(starts, dtype=torch.int64)[:, None] + offs[None, :]]


def evaluate(torch, model, wins, batch: int, device, autocast: bool) -> float:
    """Mean next-token cross-entropy over every position of every window."""
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, wins.shape[0], batch):
            chunk = wins[i:i + batch].to(device)
            x, y = chunk[:, :-1], chunk[:, 1:]
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = model(input_ids=x, use_cache=False).logits
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum")
            total += float(loss)
            count += y.numel()
    model.train(was_training)
    return total / count


def load_fp32(torch, cls, path: Path):
    """from_pretrained in float32 with eager attention ('dtype' in transformers 5, 'torch_dtype' in 4.x)."""
    model, err = None, None
    for kw in ({"dtype": torch.float32}, {"torch_dtype": torch.float32}):
        try:
            model = cls.from_pretrained(str(path), attn_implementation="eager", **kw)
            break
        except TypeError as e:
            err = e
    if model is None:
        raise err
    return model.float().eval()


def read_safetensors(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def top1_margin(torch, row) -> float:
    v = torch.topk(row, 2).values
    return float(v[0] - v[1])


def greedy_full_recompute(torch, model, ids: list[int], n: int) -> tuple:
    """n greedy tokens, recomputing the whole sequence each step (no cache involved)."""
    seq = list(ids)
    margins, first_logits = [], None
    with torch.no_grad():
        for step in range(n):
            logits = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0].float()
            if step == 0:
                first_logits = logits.clone()
            margins.append(top1_margin(torch, logits[-1]))
            seq.append(int(logits[-1].argmax()))
    return seq[len(ids):], margins, first_logits


def sample_with_cache(torch, model, ids: list[int], n: int, temperature: float, top_k: int, seed: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    out, past = [], None
    inp = torch.tensor([ids])
    with torch.no_grad():
        for _ in range(n):
            res = model(input_ids=inp, past_key_values=past, use_cache=True)
            past = res.past_key_values
            logits = res.logits[0, -1].float() / temperature
            vals, idx = torch.topk(logits, top_k)
            probs = torch.softmax(vals, dim=-1)
            choice = int(torch.multinomial(probs, 1, generator=g))
            tok = int(idx[choice])
            out.append(tok)
            inp = torch.tensor([[tok]])
    return out


def train(torch, transformers, args, config, train_ids, val_ids, run: Run) -> tuple:
    import torch.nn.functional as F

    device = torch.device(args.device)
    block, B = args.block_size, args.batch_size
    torch.manual_seed(args.seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(args.seed)
    model = transformers.GPT2LMHeadModel(config)
    if model.get_output_embeddings().weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
        model.tie_weights()
    run.check(model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr(),
              "lm_head is not tied to wte")
    model.to(device).train()
    num_params = sum(p.numel() for p in model.parameters())
    expected = gpt2_param_count(GPT2_VOCAB_SIZE, block, args.n_embd, config.n_layer)
    if num_params != expected:
        raise SystemExit(f"model has {num_params} parameters, size arithmetic says {expected}")
    print(f"model: {config.n_layer} layers, n_embd {args.n_embd}, {num_params:,} parameters "
          f"({2 * num_params:,} bytes in fp16), attention {getattr(model.config, '_attn_implementation', '?')}")

    decay = [p for _, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for _, p in model.named_parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=device.type == "cuda")
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    train_gpu = train_ids.to(device)
    val_wins = windows(torch, val_ids, block, list(range(0, val_ids.numel() - block, block)))
    n_tw = min(args.train_eval_windows, max(1, train_ids.numel() - block - 1))
    tw_starts = [int(i * (train_ids.numel() - block - 1) / n_tw) for i in range(n_tw)]
    train_wins = windows(torch, train_ids, block, tw_starts)
    print(f"eval: {val_wins.shape[0]} validation windows, {train_wins.shape[0]} training windows of {block} tokens")

    # The batch order depends on the seed alone; drawn up front so no step waits on a host copy.
    batch_gen = torch.Generator().manual_seed(args.seed)
    high = train_ids.numel() - block - 1
    all_starts = torch.randint(0, high, (args.steps, B), generator=batch_gen).to(device)
    offs = torch.arange(block + 1, device=device)
    history, best = [], {"step": None, "val_loss": math.inf}
    best_state = None
    running, running_n = torch.zeros((), device=device), 0
    tokens_per_step = B * block
    stopped_by_time = False
    eval_seconds = 0.0

    def log_eval(step: int, elapsed: float) -> None:
        nonlocal best_state, running, running_n, eval_seconds
        t_eval = time.time()
        val_loss = evaluate(torch, model, val_wins, B, device, autocast=True)
        train_eval = evaluate(torch, model, train_wins, B, device, autocast=True)
        train_loss = float(running) / running_n if running_n else float("nan")
        running, running_n = torch.zeros((), device=device), 0
        train_only = elapsed - eval_seconds
        entry = {"step": step, "lr": opt.param_groups[0]["lr"], "train_loss": train_loss,
                 "train_eval_loss": train_eval, "val_loss": val_loss, "elapsed_s": round(elapsed, 2),
                 "tokens_per_s": round(step * tokens_per_step / train_only) if train_only > 0 else None}
        history.append(entry)
        mark = ""
        if val_loss < best["val_loss"]:
            best.update(step=step, val_loss=val_loss)
            if args.keep_best:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            mark = " *"
        eval_seconds += time.time() - t_eval
        print(f"step {step:5d}  lr {entry['lr']:.2e}  train {train_loss:.4f}  train-eval {train_eval:.4f}  "
              f"val {val_loss:.4f}  {elapsed:6.1f}s  {entry['tokens_per_s'] or 0:,} tok/s{mark}", flush=True)

    init_val = evaluate(torch, model, val_wins, B, device, autocast=True)
    print(f"initial val loss {init_val:.4f} (ln V = {math.log(GPT2_VOCAB_SIZE):.4f})")
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.time()
    step = 0
    for step in range(1, args.steps + 1):
        lr = lr_at(step - 1, args.steps, args.lr, args.warmup_steps, args.min_lr_ratio)
        for g in opt.param_groups:
            g["lr"] = lr
        chunk = train_gpu[all_starts[step - 1][:, None] + offs[None, :]]
        x, y = chunk[:, :-1], chunk[:, 1:]
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            logits = model(input_ids=x, use_cache=False).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        running += loss.detach()
        running_n += 1
        elapsed = time.time() - t0
        out_of_time = elapsed > args.max_minutes * 60
        if step % args.eval_interval == 0 or step == args.steps or out_of_time:
            if device.type == "cuda":
                torch.cuda.synchronize()
            log_eval(step, time.time() - t0)
        if out_of_time and step < args.steps:
            stopped_by_time = True
            print(f"WARNING: --max-minutes {args.max_minutes} reached at step {step} of {args.steps}")
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_seconds = time.time() - t0
    last_val = history[-1]["val_loss"] if history else float("nan")
    if args.keep_best and best_state is not None:
        model.load_state_dict(best_state)
        print(f"keeping step {best['step']} (val {best['val_loss']:.4f}); last step {step} had val {last_val:.4f}")
    summary = {
        "steps_requested": args.steps,
        "steps_run": step,
        "stopped_by_max_minutes": stopped_by_time,
        "train_seconds": round(train_seconds, 2),
        "eval_seconds": round(eval_seconds, 2),
        "tokens_per_s": (round(step * tokens_per_step / (train_seconds - eval_seconds))
                         if train_seconds > eval_seconds else None),
        "tokens_seen": step * tokens_per_step,
        "initial_val_loss": init_val,
        "best_step": best["step"],
        "best_val_loss": best["val_loss"],
        "last_step_val_loss": last_val,
        "kept": "best" if args.keep_best else "last",
        "num_params": num_params,
    }
    summary["final_val_loss_bf16"] = evaluate(torch, model, val_wins, B, device, autocast=True)
    return model, history, summary, val_wins


def save_model(torch, transformers, model, out: Path, block: int, run: Run) -> dict:
    import copy

    model = model.to("cpu").eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            run.check(bool(torch.isfinite(p).all()), f"{name} has non-finite values")
            run.check(float(p.abs().max()) < 65504, f"{name} overflows float16")
    half = copy.deepcopy(model).half()
    half.save_pretrained(str(out))

    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.setdefault("n_ctx", block)  # older GPT-2 configs carry it; some loaders read it
    write_json(cfg_path, cfg, sort_keys=True)
    write_json(out / "generation_config.json",
               {"bos_token_id": EOT_ID, "eos_token_id": EOT_ID, "transformers_version": transformers.__version__})

    weights = out / "model.safetensors"
    if not weights.is_file():
        raise SystemExit(f"save_pretrained wrote no {weights}: {sorted(p.name for p in out.iterdir())}")
    for extra in sorted(out.glob("model-*.safetensors")) + sorted(out.glob("*.bin")):
        run.check(False, f"unexpected weight file {extra.name}")
    tensors = read_safetensors(weights)
    if "lm_head.weight" in tensors:
        print("WARNING: save_pretrained stored the tied lm_head.weight; removing it as transformers normally does")
        from safetensors.torch import save_file

        tensors.pop("lm_head.weight")
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(weights), metadata={"format": "pt"})
    for name, t in tensors.items():
        run.check(t.dtype == torch.float16, f"{name} saved as {t.dtype}")
    size = weights.stat().st_size
    run.check(size <= MAX_WEIGHT_BYTES, f"model.safetensors is {size} bytes > {MAX_WEIGHT_BYTES}")
    print(f"saved {weights} ({size:,} bytes, {len(tensors)} tensors)")
    return {"weights_bytes": size, "tensor_names": sorted(tensors), "config": cfg}


def verify_saved(torch, transformers, out: Path, run: Run):
    """Reloads OUT's fp16 weights as fp32 (CPU, eager) and checks them against the file."""
    ref = load_fp32(torch, transformers.GPT2LMHeadModel, out)
    tensors = read_safetensors(out / "model.safetensors")
    params = dict(ref.named_parameters(remove_duplicate=False))
    prefix = getattr(ref, "base_model_prefix", "") or ""
    covered = set()
    for name, t in tensors.items():
        pname = name if name in params else f"{prefix}.{name}"
        if not run.check(pname in params, f"saved tensor {name} is not a model parameter"):
            continue
        run.check(torch.equal(params[pname].detach(), t.float()), f"reloaded {pname} differs from the file")
        covered.add(params[pname].data_ptr())
    for pname, p in params.items():
        run.check(p.data_ptr() in covered, f"parameter {pname} is not in the saved file")
    out_w, in_w = ref.get_output_embeddings().weight, ref.get_input_embeddings().weight
    run.check(out_w.data_ptr() == in_w.data_ptr(), "reloaded lm_head is not tied to wte")
    impl = getattr(ref.config, "_attn_implementation", None)
    run.check(impl in (None, "eager"), f"reloaded model uses attention '{impl}', not eager")
    return ref


def make_references(torch, ref, tok, bpe, out: Path, seed: int, run: Run) -> dict:
    from safetensors.torch import save_file

    tensors, prompts_meta, samples = {}, [], []
    max_pos = ref.config.n_positions
    for i, prompt in enumerate(REFERENCE_PROMPTS):
        ids = encode_text(tok, prompt)
        if bpe is not None:
            run.check(bpe.encode(prompt) == ids, f"prompt {prompt!r}: HF ids {ids} != reference BPE {bpe.encode(prompt)}")
        greedy, margins, logits = greedy_full_recompute(torch, ref, ids, REFERENCE_GREEDY_TOKENS)
        k = min(REFERENCE_LOGIT_ROWS, len(ids))
        tensors[f"prompt{i}.ids"] = torch.tensor(ids, dtype=torch.int64)
        tensors[f"prompt{i}.logits"] = logits[-k:].contiguous()
        tensors[f"prompt{i}.greedy"] = torch.tensor(greedy, dtype=torch.int64)
        prompt_margin = min(top1_margin(torch, row) for row in logits[-k:])
        if min(margins + [prompt_margin]) <= 1e-3:
            print(f"WARNING: prompt {i}: a top-1 logit leads the runner-up by <= 1e-3; greedy may be fragile")

        with torch.no_grad():
            gen = ref.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.int64),
                               max_new_tokens=REFERENCE_GREEDY_TOKENS, min_new_tokens=REFERENCE_GREEDY_TOKENS,
                               do_sample=False, num_beams=1, eos_token_id=EOT_ID, pad_token_id=EOT_ID)
        gen_ids = gen[0, len(ids):].tolist()
        run.check(gen_ids == greedy, f"prompt {i}: generate() {gen_ids} != argmax chaining {greedy}")

        text = bpe.decode(greedy) if bpe is not None else tok.decode(greedy)
        hf_text = tok.decode(greedy, skip_special_tokens=False)
        run.check(hf_text == text, f"prompt {i}: tokenizer.decode differs from byte-level decode")
        prompts_meta.append({
            "prompt": prompt, "ids": ids, "logits_positions": list(range(len(ids) - k, len(ids))),
            "greedy": greedy, "greedy_text": text, "min_top1_margin_greedy": min(margins),
            "min_top1_margin_logits": prompt_margin, "generate_matches_greedy": gen_ids == greedy,
        })
        print(f"prompt {i} {prompt!r}: {len(ids)} tokens -> {text!r}")

        n = min(SAMPLE_NEW_TOKENS, max_pos - len(ids))
        sample_seed = seed + i
        s_ids = sample_with_cache(torch, ref, ids, n, SAMPLE_TEMPERATURE, SAMPLE_TOP_K, sample_seed)
        s_text = bpe.decode(s_ids) if bpe is not None else tok.decode(s_ids)
        samples.append({"prompt": prompt, "seed": sample_seed, "temperature": SAMPLE_TEMPERATURE, "top_k": SAMPLE_TOP_K,
                        "new_tokens": n, "ids": s_ids, "text": s_text})

    save_file(tensors, str(out / "reference.safetensors"), metadata={"format": "pt"})
    back = read_safetensors(out / "reference.safetensors")
    run.check(sorted(back) == sorted(tensors) and all(torch.equal(back[k], tensors[k]) for k in tensors),
              "reference.safetensors differs after writing")
    meta = {
        "prompts": prompts_meta,
        "samples": samples,
        "reference_dtype": "float32 from the saved float16 weights, CPU, eager attention",
        "greedy_ignores_eos": True,
        "keys": {"prompt{i}.ids": "int64 [T]", "prompt{i}.logits": "float32 [min(4,T), V], last prompt positions",
                 "prompt{i}.greedy": f"int64 [{REFERENCE_GREEDY_TOKENS}]"},
        "sampling": {"method": "softmax over top_k logits / temperature, torch.multinomial with a CPU "
                               "torch.Generator seeded per prompt, KV cache", "temperature": SAMPLE_TEMPERATURE,
                     "top_k": SAMPLE_TOP_K},
        "chat_template_example": {"messages": CHAT_TEST_MESSAGES, "add_generation_prompt": True,
                                  "rendered": CHAT_TEST_EXPECTED},
    }
    write_json(out / "reference.json", meta)
    return meta


def md_cell(text: str) -> str:
    """A string as a Markdown table cell: its repr in a code span, pipes escaped."""
    return "`` " + repr(text).replace("|", "\\|") + " ``"


def fmt(x, digits=4) -> str:
    return f"{x:.{digits}f}" if isinstance(x, float) and math.isfinite(x) else str(x)


def write_card(out: Path, values: dict) -> None:
    template = CARD_TEMPLATE.read_text(encoding="utf-8") if CARD_TEMPLATE.is_file() else FALLBACK_CARD
    (out / "MODEL_CARD.md").write_text(render_card(template, values), encoding="utf-8")


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.time()
    run = Run()
    data_path = resolve_data_path(args.data)
    vocab_dir = Path(args.vocab_dir)
    if not vocab_dir.is_absolute() and not vocab_dir.is_dir():
        vocab_dir = REPO_ROOT / vocab_dir
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:  # stale outputs (a tokenizer.json above all) would change what loads
        if (out / name).is_file() and name not in ("vocab.json", "merges.txt"):
            (out / name).unlink()

    n_layer = fit_layers(args.n_layer, args.n_embd, args.block_size)
    if n_layer < 1:
        raise SystemExit(f"n_embd {args.n_embd} does not fit {MAX_WEIGHT_BYTES} bytes of fp16 with any layer count")
    if n_layer != args.n_layer:
        print(f"WARNING: {args.n_layer} layers exceed {MAX_WEIGHT_BYTES} bytes in fp16; using {n_layer}")
    num_params = gpt2_param_count(GPT2_VOCAB_SIZE, args.block_size, args.n_embd, n_layer)
    assert 2 * num_params <= MAX_WEIGHT_BYTES, num_params
    print(f"size: {num_params:,} parameters -> {2 * num_params:,} bytes fp16 (budget {MAX_WEIGHT_BYTES:,})")

    import torch
    import transformers

    vers = versions()
    print(f"versions: {vers}")
    device = torch.device(args.device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {gpu}; data: {data_path}; vocab: {vocab_dir}; out: {out}")
    torch.manual_seed(args.seed)
    if args.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        # SDPA's cuDNN backend has a non-deterministic backward; flash attention honours the flag.
        if hasattr(torch.backends.cuda, "enable_cudnn_sdp"):
            torch.backends.cuda.enable_cudnn_sdp(False)

    # Tokenizer first: a bad tokenizer must fail before the GPU time is spent.
    vocab_info = setup_tokenizer_files(out, vocab_dir, args.block_size)
    tok, tok_class = load_tokenizer(transformers, out)
    problem = check_chat_template(tok)
    if problem:
        raise SystemExit(f"chat template check failed: {problem}")
    try:
        bpe = ReferenceBPE(out / "vocab.json", out / "merges.txt")
    except ImportError:
        bpe = None
        print("WARNING: python 'regex' missing; skipping the independent BPE cross-check")

    text = data_path.read_text(encoding="utf-8")
    data_sha = sha256_file(data_path)
    train_text, val_text = split_text(text)
    t_tok = time.time()
    train_list, val_list = encode_text(tok, train_text), encode_text(tok, val_text)
    print(f"data: {len(text):,} chars (sha256 {data_sha[:16]}...) -> {len(train_list):,} train + "
          f"{len(val_list):,} val tokens in {time.time() - t_tok:.1f}s")
    if bpe is not None:
        t_bpe = time.time()
        same = bpe.encode(train_text) == train_list and bpe.encode(val_text) == val_list
        if not same:
            raise SystemExit("the HF tokenizer and the reference BPE disagree on the data")
        print(f"reference BPE agrees on all {len(train_list) + len(val_list):,} tokens ({time.time() - t_bpe:.1f}s)")
    if max(train_list + val_list) >= GPT2_VOCAB_SIZE or EOT_ID in train_list:
        raise SystemExit("unexpected token ids in the data")
    if len(val_list) <= args.block_size + 1:
        raise SystemExit("validation split is shorter than one block")
    train_ids = torch.tensor(train_list, dtype=torch.int64)
    val_ids = torch.tensor(val_list, dtype=torch.int64)

    config = make_config(transformers, args, n_layer)
    model, history, summary, val_wins = train(torch, transformers, args, config, train_ids, val_ids, run)

    saved = save_model(torch, transformers, model, out, args.block_size, run)
    del model
    ref = verify_saved(torch, transformers, out, run)

    # Validation loss of the SAVED fp16 weights in fp32 (no autocast), on the training device.
    import copy

    saved_eval = copy.deepcopy(ref).to(device)
    saved_val = evaluate(torch, saved_eval, val_wins, args.batch_size, device, autocast=False)
    del saved_eval
    if device.type == "cuda":
        torch.cuda.empty_cache()
    summary["saved_fp16_val_loss"] = saved_val
    summary["saved_fp16_val_ppl"] = math.exp(saved_val)
    summary["final_val_ppl_bf16"] = math.exp(summary["final_val_loss_bf16"])
    print(f"validation: bf16 autocast {summary['final_val_loss_bf16']:.4f}, saved fp16 weights in fp32 "
          f"{saved_val:.4f} (perplexity {summary['saved_fp16_val_ppl']:.2f})")
    run.check(abs(saved_val - summary["final_val_loss_bf16"]) < 0.05,
              "saved fp16 model's val loss is far from the trained model's")

    refs = make_references(torch, ref, tok, bpe, out, args.seed, run)

    if args.tokenizer_json:
        backend = getattr(tok, "backend_tokenizer", None)
        if run.check(backend is not None, "tokenizer has no backend_tokenizer; tokenizer.json not written"):
            backend.save(str(out / "tokenizer.json"))
            again, _ = load_tokenizer(transformers, out)
            run.check(encode_text(again, val_text) == val_list, "tokenizer.json encodes differently")

    elapsed = time.time() - t_start
    command = "python3 scripts/train_default_model.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    log = {
        "command": command,
        "seed": args.seed,
        "args": vars(args),
        "model_config": saved["config"],
        "n_layer_used": n_layer,
        "weights_bytes": saved["weights_bytes"],
        "tensor_names": saved["tensor_names"],
        "data": {"path": str(data_path), "sha256": data_sha, "chars": len(text), "train_chars": len(train_text),
                 "val_chars": len(val_text), "train_tokens": len(train_list), "val_tokens": len(val_list),
                 "split": f"first {1 - VAL_FRACTION:.0%} of characters train, last {VAL_FRACTION:.0%} validation"},
        "tokenizer": {"class": tok_class, **vocab_info},
        "summary": summary,
        "history": history,
        "elapsed_s": round(elapsed, 1),
        "device": gpu,
        "versions": vers,
        "check_failures": run.failures,
    }
    write_json(out / "train_log.json", log)

    samples_md = "\n\n".join(
        f"Prompt `{s['prompt']!r}` (seed {s['seed']}):\n\n```text\n{s['prompt']}{s['text']}\n```" for s in refs["samples"])
    greedy_md = "\n".join(f"| {md_cell(p['prompt'])} | {md_cell(p['greedy_text'])} |" for p in refs["prompts"])
    write_card(out, {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "command": command,
        "n_layer": n_layer, "n_embd": args.n_embd, "n_head": args.n_head, "n_positions": args.block_size,
        "vocab_size": GPT2_VOCAB_SIZE, "num_params": f"{summary['num_params']:,}",
        "weights_bytes": f"{saved['weights_bytes']:,}",
        "steps_run": summary["steps_run"], "steps_requested": args.steps, "batch_size": args.batch_size,
        "block_size": args.block_size, "lr": args.lr, "min_lr": args.lr * args.min_lr_ratio,
        "warmup_steps": args.warmup_steps, "weight_decay": args.weight_decay, "dropout": args.dropout,
        "grad_clip": args.grad_clip, "seed": args.seed,
        "train_tokens": f"{len(train_list):,}", "val_tokens": f"{len(val_list):,}",
        "tokens_seen": f"{summary['tokens_seen']:,}",
        "best_step": summary["best_step"], "kept": summary["kept"],
        "best_val_loss": fmt(summary["best_val_loss"]), "last_val_loss": fmt(summary["last_step_val_loss"]),
        "final_val_loss": fmt(summary["final_val_loss_bf16"]),
        "saved_val_loss": fmt(saved_val), "saved_val_ppl": fmt(summary["saved_fp16_val_ppl"], 2),
        "train_loss_last": fmt(history[-1]["train_loss"]) if history else "n/a",
        "train_seconds": fmt(summary["train_seconds"], 1), "elapsed_min": fmt(elapsed / 60, 1),
        "tokens_per_s": f"{summary['tokens_per_s']:,}" if summary["tokens_per_s"] else "n/a",
        "device": gpu, "versions": ", ".join(f"{k} {v}" for k, v in vers.items()),
        "data_sha256": data_sha, "vocab_sha256": VOCAB_SHA256, "merges_sha256": MERGES_SHA256,
        "samples": samples_md, "greedy_table": greedy_md,
        "sample_temperature": SAMPLE_TEMPERATURE, "sample_top_k": SAMPLE_TOP_K, "sample_tokens": SAMPLE_NEW_TOKENS,
        "stopped_note": " (stopped early by --max-minutes)" if summary["stopped_by_max_minutes"] else "",
    })

    print("outputs:")
    for path in sorted(out.iterdir()):
        if path.is_file():
            print(f"  {path.stat().st_size:>11,}  {path.name}")
    print(f"done in {elapsed / 60:.1f} min")
    if run.failures:
        print(f"{len(run.failures)} CHECK(S) FAILED:\n  " + "\n  ".join(run.failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
