// Test inputs for the differential tokenizer test: a fixed corpus of known-tricky strings, random
// strings drawn from many scripts (seeded, so a failure can be replayed with --seed), and byte
// strings with invalid UTF-8 whose valid/invalid segmentation is known by construction.
//
// Code points where the references disagree with Hugging Face for reasons outside llmserve are
// never generated (see README.md): U+0085 and U+FEFF (JavaScript's \s differs from Unicode
// White_Space), U+017F and U+212A (case folding under (?i:...)), and characters assigned after
// Unicode 13 (property tables differ between PCRE2 and V8).

export const kFixedCorpus = [
  '', ' ', '  ', '\n', '\n\n', ' \n ', '\t\t', 'a  b', 'a   b   ', '   leading', 'trailing   ',
  'Hello world', 'Hello, World!', "I'm here, you're there, they'll go, it's 'quoted' and we'd've",
  "DON'T SHOUT'S HE'LL WE'VE", "rock 'n' roll '' ' '", 'Numbers: 1234567 3.14159 -42 1e10 0x1F 007',
  '2024-01-01T12:34:56Z', 'ümlaut naïve café résumé São Paulo Zürich', 'Ελληνικά Русский язык',
  '中文字符测试，这是一个句子。', '日本語のテキスト、ひらがなとカタカナ。', '한국어 문장입니다.',
  'مرحبا بالعالم', 'नमस्ते दुनिया', 'ภาษาไทย',
  '😀😃😄 👍🏽 🇺🇸 🏳️‍🌈 👨‍👩‍👧‍👦 ❤️ 🧑🏿‍🚀', 'emoji😀inside', 'a\u200db\u200cc',
  'def f(x):\n    return x ** 2  # square\n', 'for (int i = 0; i < n; ++i) { sum += a[i]; }',
  '<html><body class="x">&amp; &lt;</body></html>', '{"key": [1, 2, {"nested": null}]}',
  'https://example.com/path?q=1&r=two#frag', 'user@example.org', '$HOME/.config ~/x C:\\Windows',
  'mixed中文English123日本語😀!!', 'Ｆｕｌｌｗｉｄｔｈ　ｓｐａｃｅ', '١٢٣٤ ٥٦ ²³ Ⅻ ½',
  '...!!!???---___***', '\u00a0nbsp\u2003em\u3000ideographic', 'line\r\nwindows\r\n\r\n',
  'tabs\tand\u000bvertical\u000cform', '\u180e!mongolian vowel separator',
  '<|endoftext|>', 'before<|endoftext|>after', '<|endoftext|><|endoftext|>', 'a <|endoftext|> b',
  '<|endofprompt|> <|fim_prefix|>x<|fim_middle|>y<|fim_suffix|>', '<|endof', '<|endoftext|',
  'x'.repeat(300), ' '.repeat(100) + 'x', '\n'.repeat(50) + ' '.repeat(50), 'ab'.repeat(200),
  '1'.repeat(100), '😀'.repeat(40), 'The quick brown fox jumps over the lazy dog. '.repeat(5),
];

// mulberry32: small, seedable, identical everywhere.
export function makeRng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const kRanges = [
  [0x20, 0x7e, 30], [0x30, 0x39, 6], [0x61, 0x7a, 10], // ASCII, digits, lower case
  [0xa1, 0x17e, 4], [0x391, 0x3c9, 2], [0x410, 0x44f, 2], // Latin-1/Extended-A, Greek, Cyrillic
  [0x621, 0x64a, 2], [0x660, 0x669, 1], [0x905, 0x94d, 2], [0xe01, 0xe3a, 1], // Arabic, Devanagari, Thai
  [0x3041, 0x30ff, 3], [0x4e00, 0x9fef, 6], [0xac00, 0xd7a3, 2], // kana, CJK, Hangul
  [0x2010, 0x2027, 2], [0x3001, 0x3003, 1], [0xff01, 0xff5e, 1], // punctuation, fullwidth
  [0x2160, 0x216f, 1], [0x2000, 0x200a, 2], [0x1f300, 0x1f5ff, 3], [0x1f600, 0x1f64f, 3],
  [0x1f3fb, 0x1f3ff, 1], [0x1f9d0, 0x1f9ff, 1], // emoji, skin tones
];
const kSnippets = [
  ' ', ' ', ' ', '  ', '\n', '\n\n', '\t', '\r\n', "'s", "'LL", "'Re", "'d", "'", '\u200d', '\ufe0f',
  '\u00a0', '\u3000', '\u2028', '\u180e', ' the', ' of', 'ing', '123', '4567', '<|endoftext|>', '<|endof',
  '<|fim_prefix|>', '...', '://', ' 😀', '👨\u200d👩\u200d👧',
];
const kTotalWeight = kRanges.reduce((s, r) => s + r[2], 0);

function randomChar(rng) {
  let pick = rng() * kTotalWeight;
  for (const [lo, hi, w] of kRanges) {
    if ((pick -= w) < 0) return String.fromCodePoint(lo + Math.floor(rng() * (hi - lo + 1)));
  }
  return 'x';
}

export function randomStrings(seed, count) {
  const rng = makeRng(seed);
  const out = [];
  for (let i = 0; i < count; ++i) {
    const length = 1 + Math.floor(rng() * (rng() < 0.1 ? 200 : 40));
    let s = '';
    for (let k = 0; k < length; ++k) {
      s += rng() < 0.2 ? kSnippets[Math.floor(rng() * kSnippets.length)] : randomChar(rng);
    }
    out.push(s);
  }
  return out;
}

// Invalid chunks; each is exactly one or more maximal invalid subparts ending at its last byte
// (a truncated sequence is always followed by a non-continuation byte or the end).
const kInvalidChunks = [
  [0xff], [0xfe, 0xff], [0x80], [0xbf, 0x80], [0xc0, 0x80], [0xc3], [0xe4, 0xb8], [0xf0, 0x9f, 0x98],
  [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80],
];

// Byte strings alternating valid text and invalid chunks: [{valid: string} | {invalid: bytes}].
export function invalidUtf8Cases(seed, count) {
  const rng = makeRng(seed ^ 0x5eed);
  const valid = randomStrings(seed ^ 0xbad, count * 3).map((s) => Array.from(s).slice(0, 12).join(''));
  const out = [
    [{ invalid: [0xff] }],
    [{ valid: 'ab' }, { invalid: [0xff] }, { valid: 'cd' }],
    [{ valid: 'a ' }, { invalid: [0xff, 0xfe] }, { valid: ' b' }],
    [{ valid: '中' }, { invalid: [0xe4, 0xb8] }, { valid: '中' }],
    [{ valid: 'x' }, { invalid: [0xf0, 0x9f, 0x98] }],
  ];
  let v = 0;
  for (let i = 0; i < count; ++i) {
    const segments = [];
    const n = 1 + Math.floor(rng() * 5);
    let wantInvalid = rng() < 0.5;
    for (let k = 0; k < n; ++k, wantInvalid = !wantInvalid) {
      if (wantInvalid) {
        segments.push({ invalid: kInvalidChunks[Math.floor(rng() * kInvalidChunks.length)] });
      } else {
        const text = valid[v++ % valid.length];
        if (text) segments.push({ valid: text }); else wantInvalid = !wantInvalid;
      }
    }
    if (segments.length) out.push(segments);
  }
  return out;
}
