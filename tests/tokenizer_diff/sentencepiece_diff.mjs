// Differential test of llmserve's tokenizer (through tokenize_driver) against Hugging Face
// tokenizers itself (the npm package `tokenizers`, its Rust core) on SentencePiece-style
// tokenizer.json files (build_sp_models.mjs): Llama-2, Phi-3, Mistral, Gemma and two Unigram
// shapes. For each, on the fixed corpus and seeded random strings (corpus.mjs):
//   - ids with and without the post-processor's special tokens (Phi-3: add_bos_token and
//     add_eos_token from tokenizer_config.json, applied as transformers' LlamaTokenizerFast does);
//   - decode of those ids, with and without skip_special_tokens, and the streamed decode;
//   - random id sequences (half of them byte-fallback tokens, so runs cut and break UTF-8
//     characters) decoded whole and streamed.
// Usage: node sentencepiece_diff.mjs --driver PATH [--seed N] [--random N] [--keep]
// Exits 0 when everything matches, 1 on any mismatch, 2 on misuse.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import hf from 'tokenizers';
import { buildSpModels, kFirstPieceId } from './build_sp_models.mjs';
import { kFixedCorpus, makeRng, randomStrings } from './corpus.mjs';
import { parseArgs, Plan, runPlan } from './diff_common.mjs';

// Reference answers, computed before the driver runs (the binding is asynchronous).
async function planEncodes(plan, name, model, ref, texts) {
  for (const text of texts) {
    const input = JSON.stringify(text);
    const plain = (await ref.encode(text, null, { addSpecialTokens: false })).getIds();
    const special = model.withSpecial ? model.withSpecial(plain)
                                      : (await ref.encode(text, null, { addSpecialTokens: true })).getIds();
    for (const [add, expected] of [[false, plain], [true, special]]) {
      const decoded = await ref.decode(expected, false);
      plan.add({ op: 'encode', dir: model.dir, text, add_special_tokens: add }, (reply) => {
        plan.expectEqual(`${name} ids (add_special=${add})`, input, expected, reply.ids);
        plan.expectEqual(`${name} decode`, input, decoded, reply.decoded);
        plan.expectEqual(`${name} streamed decode`, input, decoded, reply.stream);
      });
    }
    const skipped = await ref.decode(special, true);
    plan.add({ op: 'decode', dir: model.dir, ids: special, skip_special_tokens: true }, (reply) => {
      plan.expectEqual(`${name} decode (skip_special)`, input, skipped, reply.text);
      plan.expectEqual(`${name} streamed decode (skip_special)`, input, skipped, reply.stream);
    });
  }
}

async function planDecodes(plan, name, model, ref, seed, count) {
  const rng = makeRng(seed ^ 0xdec0de);
  for (let i = 0; i < count; ++i) {
    const ids = [];
    const n = 1 + Math.floor(rng() * 16);
    for (let k = 0; k < n; ++k) {
      // Byte pieces 3..258 (high bytes twice as likely), specials 0..2, anything.
      const r = rng();
      ids.push(r < 0.25 ? 3 + 0x80 + Math.floor(rng() * 0x80) : r < 0.45 ? 3 + Math.floor(rng() * 0x80)
               : r < 0.5 ? Math.floor(rng() * 3) : Math.floor(rng() * model.vocabSize));
    }
    const input = `ids ${JSON.stringify(ids)}`;
    for (const skip of [false, true]) {
      const expected = await ref.decode(ids, skip);
      plan.add({ op: 'decode', dir: model.dir, ids, skip_special_tokens: skip }, (reply) => {
        plan.expectEqual(`${name} decode (skip_special=${skip})`, input, expected, reply.text);
        plan.expectEqual(`${name} streamed decode (skip_special=${skip})`, input, expected, reply.stream);
      });
    }
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  console.log(`sentencepiece diff: seed ${args.seed} (replay with --seed ${args.seed}), ${args.random} random strings`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'llmserve-spdiff-'));
  try {
    const { models, numPieces, numMerges } = buildSpModels(root);
    console.log(`pieces from GPT-2: ${numPieces} (first at id ${kFirstPieceId}), ${numMerges} merges`);
    models.phi3.withSpecial = (ids) => [1, ...ids, 2];
    const texts = [...kFixedCorpus, ...randomStrings(args.seed, args.random)];
    const plan = new Plan();
    for (const [name, model] of Object.entries(models)) {
      const ref = hf.Tokenizer.fromFile(path.join(model.dir, 'tokenizer.json'));
      const before = plan.requests.length;
      await planEncodes(plan, name, model, ref, texts);
      await planDecodes(plan, name, model, ref, args.seed, 150);
      console.log(`${name}: ${texts.length} strings, 150 id sequences, ${plan.requests.length - before} requests`);
    }
    process.exitCode = runPlan(args, plan);
  } finally {
    if (args.keep) console.log(`kept ${root}`); else fs.rmSync(root, { recursive: true, force: true });
  }
}

await main();
