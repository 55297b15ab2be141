// Prompt logprobs end to end (docs/server.md): the official `openai` client's completions with
// echo + logprobs, scoring with max_tokens 0 as lm-eval-harness asks it, the same streamed, and
// vLLM's prompt_logprobs on completions and chat; bad values must be 400s naming the field. Run
// by tests/e2e/openai_test.sh against `llmserve serve` with the default model.
import OpenAI from 'openai';
import { check, expect400, finish, step } from './checks.mjs';

const base = process.env.BASE_URL;
const client = new OpenAI({ baseURL: base, apiKey: 'x', maxRetries: 0, timeout: 120_000 });
const close = (a, b, tol = 1e-4) => Math.abs(a - b) <= tol;
const sum = (xs) => xs.reduce((s, x) => s + x, 0);
const prompt = 'ROMEO: But soft, what light through yonder window breaks?';
const ids = await (await fetch(base.replace(/\/v1$/, '') + '/tokenize', {
  method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer x' },
  body: JSON.stringify({ model: 'default', prompt, add_special_tokens: false }),
})).json().then((r) => r.tokens);

// The checks every echoed prompt's logprobs must pass; returns its token logprobs (null first).
function checkEchoedPrompt(name, lp, numPrompt) {
  const tl = lp?.token_logprobs ?? [];
  check(`${name}: first prompt token has null logprob and top_logprobs`,
        tl[0] === null && lp.top_logprobs[0] === null, { tokens: lp?.tokens?.slice(0, 2), tl: tl.slice(0, 2) });
  const rest = tl.slice(1, numPrompt);
  check(`${name}: prompt token logprobs are finite and <= 0`,
        rest.length === numPrompt - 1 && rest.every((x) => Number.isFinite(x) && x <= 0), rest);
  for (let i = 1; i < numPrompt; i++) {
    const top = lp.top_logprobs[i];
    const keys = Object.keys(top ?? {});
    // The token's own entry is always there: one of the top 2, or a third entry below both.
    check(`${name}: top_logprobs[${i}] holds the token with its logprob`,
          top && close(top[lp.tokens[i]], tl[i], 1e-6) && keys.length >= 2 && keys.length <= 3, { i, top, token: lp.tokens[i], lp: tl[i] });
    if (keys.length === 3) {
      check(`${name}: a token outside the top 2 is below them`,
            keys.every((k) => k === lp.tokens[i] || top[k] >= tl[i] - 1e-6), { i, top, token: lp.tokens[i] });
    }
  }
  check(`${name}: text_offset runs on from 0`,
        lp.text_offset.every((o, i) => o === (i === 0 ? 0 : lp.text_offset[i - 1] + lp.tokens[i - 1].length)),
        { offsets: lp.text_offset, tokens: lp.tokens });
  return tl.slice(0, numPrompt);
}

let scored = null;
await step('echo + logprobs, max_tokens 0 (scoring)', async () => {
  const r = await client.completions.create({ model: 'default', prompt, echo: true, logprobs: 2, max_tokens: 0 });
  const c = r.choices[0];
  check('scoring: the text is the prompt alone', c.text === prompt, c.text);
  check('scoring: usage has no completion', r.usage.prompt_tokens === ids.length && r.usage.completion_tokens === 0, r.usage);
  check('scoring: finish_reason length', c.finish_reason === 'length', c.finish_reason);
  check('scoring: one logprobs entry per prompt token', c.logprobs?.tokens?.length === ids.length, c.logprobs);
  check('scoring: tokens join to the prompt', c.logprobs?.tokens?.join('') === prompt, c.logprobs?.tokens);
  scored = checkEchoedPrompt('scoring', c.logprobs, ids.length);
  const again = await client.completions.create({ model: 'default', prompt, echo: true, logprobs: 0, max_tokens: 0 });
  const lp0 = again.choices[0].logprobs;
  check('scoring twice: the same sum', close(sum(lp0.token_logprobs.slice(1)), sum(scored.slice(1))),
        { a: sum(lp0.token_logprobs.slice(1)), b: sum(scored.slice(1)) });
  check('logprobs 0: top_logprobs hold the token alone', lp0.top_logprobs.slice(1).every((t, i) => Object.keys(t).length === 1
        && close(t[lp0.tokens[i + 1]], lp0.token_logprobs[i + 1], 1e-6)), lp0.top_logprobs);
});

await step('echo + logprobs, max_tokens 3', async () => {
  const r = await client.completions.create({ model: 'default', prompt, echo: true, logprobs: 2, max_tokens: 3, temperature: 0 });
  const c = r.choices[0], lp = c.logprobs;
  const plain = await client.completions.create({ model: 'default', prompt, max_tokens: 3, temperature: 0, logprobs: 2 });
  check('echo: text is prompt + completion', c.text === prompt + plain.choices[0].text, { echo: c.text, plain: plain.choices[0].text });
  check('echo: prompt then completion tokens', lp?.tokens?.length === ids.length + r.usage.completion_tokens
        && r.usage.completion_tokens === 3, { n: lp?.tokens?.length, usage: r.usage });
  const head = checkEchoedPrompt('echo', lp, ids.length);
  check('echo: the prompt part sums as a scoring request', scored && close(sum(head.slice(1)), sum(scored.slice(1))),
        { echo: sum(head.slice(1)), scored: scored && sum(scored.slice(1)) });
  check('echo: the completion part is the plain request\'s',
        lp.token_logprobs.slice(ids.length).every((x, i) => close(x, plain.choices[0].logprobs.token_logprobs[i])),
        { echo: lp.token_logprobs.slice(ids.length), plain: plain.choices[0].logprobs.token_logprobs });
});

await step('echo + logprobs streamed', async () => {
  const stream = await client.completions.create({ model: 'default', prompt, echo: true, logprobs: 1, max_tokens: 3,
                                                  temperature: 0, stream: true });
  const chunks = [];
  for await (const c of stream) chunks.push(c.choices[0]);
  const first = chunks[0];
  check('stream: the first chunk starts with the prompt', first?.text?.startsWith(prompt), first?.text);
  check('stream: the first chunk carries the prompt\'s logprobs', first?.logprobs?.tokens?.length >= ids.length
        && first.logprobs.token_logprobs[0] === null, first?.logprobs);
  const tl = chunks.flatMap((c) => c.logprobs?.token_logprobs ?? []);
  const offsets = chunks.flatMap((c) => c.logprobs?.text_offset ?? []);
  const tokens = chunks.flatMap((c) => c.logprobs?.tokens ?? []);
  check('stream: every token once', tl.length === ids.length + 3, tl.length);
  check('stream: the prompt part sums as a scoring request', scored && close(sum(tl.slice(1, ids.length)), sum(scored.slice(1))), tl);
  check('stream: text_offset runs on across chunks',
        offsets.every((o, i) => o === (i === 0 ? 0 : offsets[i - 1] + tokens[i - 1].length)), offsets);
  const scoring = await client.completions.create({ model: 'default', prompt, echo: true, logprobs: 1, max_tokens: 0, stream: true });
  const parts = [];
  for await (const c of scoring) parts.push(c.choices[0]);
  check('stream scoring: the prompt alone, length', parts.map((p) => p.text).join('') === prompt
        && parts.at(-1).finish_reason === 'length', parts);
});

await step('vLLM prompt_logprobs', async () => {
  const r = await client.completions.create({ model: 'default', prompt, max_tokens: 2, temperature: 0, prompt_logprobs: 3 });
  const pl = r.choices[0].prompt_logprobs;
  check('prompt_logprobs: one entry per prompt token, null first', Array.isArray(pl) && pl.length === ids.length && pl[0] === null, pl?.slice(0, 2));
  let ok = true;
  for (let i = 1; i < (pl?.length ?? 0); i++) {
    const own = pl[i][String(ids[i])];
    const ranks = Object.values(pl[i]).map((e) => e.rank).sort((a, b) => a - b);
    ok &&= own && Number.isFinite(own.logprob) && own.rank >= 1 && typeof own.decoded_token === 'string'
      && Object.keys(pl[i]).length >= 3 && Object.keys(pl[i]).length <= 4 && ranks.slice(0, 3).join() === '1,2,3'
      && (scored === null || close(own.logprob, scored[i]));
    if (!ok) { check('prompt_logprobs entry', false, { i, entry: pl[i], id: ids[i], scored: scored?.[i] }); break; }
  }
  check('prompt_logprobs: the token, its rank and the top 3, as the scoring request', ok, null);
  const chat = await client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'Hi' }],
                                                     max_tokens: 2, temperature: 0, prompt_logprobs: 0 });
  check('chat: prompt_logprobs beside the choices', Array.isArray(chat.prompt_logprobs) && chat.prompt_logprobs[0] === null
        && chat.prompt_logprobs.length === chat.usage.prompt_tokens
        && chat.prompt_logprobs.slice(1).every((e) => Object.keys(e).length === 1), chat.prompt_logprobs?.slice(0, 3));
});

await expect400('logprobs 6', () => client.completions.create({ model: 'default', prompt, echo: true, logprobs: 6, max_tokens: 0 }), 'logprobs');
await expect400('prompt_logprobs 21', () => client.completions.create({ model: 'default', prompt, prompt_logprobs: 21 }), 'prompt_logprobs');
await expect400('max_tokens 0 without echo', () => client.completions.create({ model: 'default', prompt, max_tokens: 0 }), 'max_tokens');
await expect400('prompt_logprobs with stream', () => client.completions.create({ model: 'default', prompt, prompt_logprobs: 1, stream: true }), 'prompt_logprobs');

finish();
