// The official `openai` client against llmserve's /v1 API. Env: BASE_URL, REFERENCE (the default
// model's reference.json). Prints one line per check and `N passed, M failed`; exit 1 on failure.
import fs from 'node:fs';
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: 'x', maxRetries: 0, timeout: 60_000 });
const reference = JSON.parse(fs.readFileSync(process.env.REFERENCE, 'utf8'));
const want = reference.prompts[0].greedy_text;
const prompt = reference.prompts[0].prompt;

let passed = 0, failed = 0;
function check(name, cond, detail) {
  if (cond) { passed++; console.log(`ok   ${name}`); }
  else { failed++; console.log(`FAIL ${name}${detail !== undefined ? ': ' + JSON.stringify(detail) : ''}`); }
}
async function step(name, fn) {
  try { await fn(); } catch (e) { failed++; console.log(`FAIL ${name}: threw ${e?.status ?? ''} ${e?.message ?? e}`); }
}
async function expectError(name, fn, status, param) {
  try {
    await fn();
    failed++; console.log(`FAIL ${name}: no error`);
  } catch (e) {
    check(`${name} status ${status}`, e.status === status, { status: e.status, message: e.message });
    if (param !== undefined) check(`${name} param ${param}`, e.param === param, { param: e.param, error: e.error });
    check(`${name} OpenAI envelope`, typeof e.error?.message === 'string' && typeof e.error?.type === 'string', e.error);
    return e;
  }
}

await step('models.list', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m);
  check('models.list has default', ids.some((m) => m.id === 'default' && m.object === 'model' && m.owned_by === 'llmserve'), ids);
});

await step('completion', async () => {
  const r = await client.completions.create({ model: 'default', prompt, max_tokens: 40, temperature: 0 });
  check('completion text equals reference greedy_text', r.choices[0].text === want, { got: r.choices[0].text, want });
  check('completion usage.completion_tokens 40', r.usage?.completion_tokens === 40, r.usage);
  check('completion usage total', r.usage?.total_tokens === r.usage?.prompt_tokens + 40 && r.usage?.prompt_tokens > 0, r.usage);
  check('completion finish_reason length', r.choices[0].finish_reason === 'length', r.choices[0]);
  check('completion id/object', r.id.startsWith('cmpl-') && r.object === 'text_completion' && r.model === 'default'
        && Number.isInteger(r.created), r);
});

await step('completion token-id prompt', async () => {
  const r = await client.completions.create({ model: 'default', prompt: reference.prompts[0].ids, max_tokens: 40, temperature: 0 });
  check('token-id prompt gives the same text', r.choices[0].text === want, r.choices[0].text);
});

await step('completion stream', async () => {
  const stream = await client.completions.create({ model: 'default', prompt, max_tokens: 40, temperature: 0, stream: true,
                                                   stream_options: { include_usage: true } });
  let text = '', usage = null, finish = null, n = 0;
  for await (const c of stream) {
    n++;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) { text += ch.text; if (ch.finish_reason) finish = ch.finish_reason; }
  }
  check('stream concatenates to the reference text', text === want, { text, want });
  check('stream has several chunks', n > 2, n);
  check('stream finish_reason length', finish === 'length', finish);
  check('stream include_usage chunk', usage?.completion_tokens === 40, usage);
});

let chatText = null;
await step('chat', async () => {
  const r = await client.chat.completions.create({
    model: 'default', messages: [{ role: 'user', content: 'Who is Romeo?' }], max_tokens: 24, temperature: 0 });
  chatText = r.choices[0].message.content;
  check('chat role assistant', r.choices[0].message.role === 'assistant', r.choices[0].message);
  check('chat content non-empty', typeof chatText === 'string' && chatText.length > 0, chatText);
  check('chat id/object', r.id.startsWith('chatcmpl-') && r.object === 'chat.completion', r);
  check('chat usage', r.usage?.completion_tokens > 0 && r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, r.usage);
  check('chat finish_reason', ['stop', 'length'].includes(r.choices[0].finish_reason), r.choices[0].finish_reason);
});

await step('chat stream', async () => {
  const stream = await client.chat.completions.create({
    model: 'default', messages: [{ role: 'user', content: [{ type: 'text', text: 'Who is Romeo?' }] }], max_tokens: 24,
    temperature: 0, stream: true, stream_options: { include_usage: true } });
  let text = '', role = null, finish = null, usage = null, first = null;
  for await (const c of stream) {
    if (first === null) first = c;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      if (ch.delta?.role) role = ch.delta.role;
      if (ch.delta?.content) text += ch.delta.content;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  check('chat stream first chunk role assistant', first?.choices?.[0]?.delta?.role === 'assistant' && first.object === 'chat.completion.chunk', first);
  check('chat stream role', role === 'assistant', role);
  check('chat stream equals non-stream', text === chatText, { text, chatText });
  check('chat stream finish_reason', ['stop', 'length'].includes(finish), finish);
  check('chat stream usage chunk', usage?.completion_tokens > 0, usage);
});

await step('stop string', async () => {
  const stop = ' and';
  const r = await client.completions.create({ model: 'default', prompt, max_tokens: 40, temperature: 0, stop });
  const idx = want.indexOf(stop);
  check('stop finish_reason stop', r.choices[0].finish_reason === 'stop', r.choices[0]);
  check('stop text ends before the stop string', r.choices[0].text === want.slice(0, idx), { got: r.choices[0].text, want: want.slice(0, idx), stop });
});

await step('logprobs', async () => {
  const r = await client.completions.create({ model: 'default', prompt, max_tokens: 5, temperature: 0, logprobs: 2 });
  const lp = r.choices[0].logprobs;
  check('logprobs tokens/token_logprobs length 5', lp?.tokens?.length === 5 && lp.token_logprobs.length === 5, lp);
  check('logprobs tokens join to text', lp?.tokens?.join('') === r.choices[0].text, { tokens: lp?.tokens, text: r.choices[0].text });
  check('logprobs are <= 0', lp?.token_logprobs?.every((x) => typeof x === 'number' && x <= 0), lp?.token_logprobs);
  check('top_logprobs has alternatives', lp?.top_logprobs?.every((t) => Object.keys(t).length >= 2), lp?.top_logprobs);
  const c = await client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'Hi' }],
                                                   max_tokens: 3, temperature: 0, logprobs: true, top_logprobs: 2 });
  const content = c.choices[0].logprobs?.content;
  check('chat logprobs content', Array.isArray(content) && content.length === c.usage.completion_tokens
        && content.every((t) => typeof t.token === 'string' && t.top_logprobs.length === 2), c.choices[0].logprobs);
});

await step('logit_bias', async () => {
  const greedy = reference.prompts[0].greedy;
  const ask = (logit_bias, n) => client.completions.create({ model: 'default', prompt, max_tokens: n, temperature: 0,
                                                             logprobs: 1, logit_bias });
  const plain = await ask(undefined, 1);
  const banned = await ask({ [greedy[0]]: -100 }, 1);
  check('logit_bias -100 bans the greedy token', banned.choices[0].text !== plain.choices[0].text,
        { plain: plain.choices[0].text, banned: banned.choices[0].text });
  check('logit_bias leaves logprobs those of the model', banned.choices[0].logprobs.top_logprobs[0][plain.choices[0].text] !== undefined,
        banned.choices[0].logprobs);
  const forced_id = reference.prompts[0].ids[1];
  const forced = await ask({ [forced_id]: 100 }, 3);
  const tokens = forced.choices[0].logprobs?.tokens ?? [];
  check('logit_bias +100 forces one token every step', tokens.length === 3 && tokens.every((t) => t === tokens[0])
        && forced.choices[0].text === tokens.join(''), tokens);
  const chat = await client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'Hi' }],
                                                     max_tokens: 2, temperature: 0, logit_bias: { [forced_id]: 100 } });
  check('chat logit_bias forces the token too', chat.choices[0].message.content === tokens[0] + tokens[0], chat.choices[0].message);
});
await expectError('logit_bias key not a token id', () => client.completions.create({ model: 'default', prompt, max_tokens: 2, logit_bias: { abc: 1 } }), 400, 'logit_bias');
await expectError('logit_bias above 100', () => client.completions.create({ model: 'default', prompt, max_tokens: 2, logit_bias: { 5: 101 } }), 400)
  .then((e) => { if (e) check('logit_bias range named', /logit_bias/.test(e.error?.message ?? ''), e?.error); });
await expectError('logit_bias token outside the vocabulary', () => client.completions.create({ model: 'default', prompt, max_tokens: 2, logit_bias: { 99999999: 1 } }), 400)
  .then((e) => { if (e) check('logit_bias vocabulary named', /logit_bias token 99999999/.test(e.error?.message ?? ''), e?.error); });

await step('response_format text', async () => {
  const r = await client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2,
                                                  temperature: 0, response_format: { type: 'text' } });
  check('response_format text is plain generation', r.choices[0].message.content.length > 0, r.choices[0]);
});

await step('echo', async () => {
  const r = await client.completions.create({ model: 'default', prompt, max_tokens: 40, temperature: 0, echo: true });
  check('echo prepends the prompt', r.choices[0].text === prompt + want, r.choices[0].text);
});

await expectError('unknown model', () => client.completions.create({ model: 'nope', prompt, max_tokens: 4 }), 404, 'model')
  .then((e) => { if (e) check('unknown model is NotFoundError', e instanceof OpenAI.NotFoundError && e.code === 'model_not_found', e?.error); });
await step('n choices', async () => {
  const greedy = await client.completions.create({ model: 'default', prompt, max_tokens: 40, temperature: 0, n: 2 });
  check('n=2 greedy: two choices equal to the reference', greedy.choices.length === 2
        && greedy.choices.every((c, i) => c.index === i && c.text === want && c.finish_reason === 'length')
        && greedy.usage.completion_tokens === 80, greedy);
  const ask = () => client.completions.create({ model: 'default', prompt, max_tokens: 12, temperature: 1.0, n: 3, seed: 7 });
  const [a, b] = [await ask(), await ask()];
  check('n=3 sampled: choices differ', new Set(a.choices.map((c) => c.text)).size > 1, a.choices.map((c) => c.text));
  check('n=3 with a seed is reproducible', JSON.stringify(a.choices) === JSON.stringify(b.choices), { a: a.choices, b: b.choices });
  const one = await client.completions.create({ model: 'default', prompt, max_tokens: 12, temperature: 1.0, seed: 7 });
  check('choice 0 of n=3 equals n=1 with the same seed', one.choices[0].text === a.choices[0].text, { one: one.choices[0].text, a: a.choices[0].text });
  const stream = await client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6,
                                                        temperature: 0, n: 2, stream: true, stream_options: { include_usage: true } });
  const texts = ['', ''], roles = [null, null], finishes = [null, null];
  let usage = null;
  for await (const c of stream) {
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      if (ch.delta?.role) roles[ch.index] = ch.delta.role;
      texts[ch.index] += ch.delta?.content ?? '';
      if (ch.finish_reason) finishes[ch.index] = ch.finish_reason;
    }
  }
  const plain = await client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, temperature: 0 });
  check('chat stream n=2: both choices streamed in full', texts.every((t) => t === plain.choices[0].message.content)
        && roles.every((r) => r === 'assistant') && finishes.every((f) => f !== null), { texts, roles, finishes });
  check('chat stream n=2: usage sums the choices', usage?.completion_tokens === 2 * plain.usage.completion_tokens, usage);
});
await step('batched prompts', async () => {
  const ids = reference.prompts[0].ids;
  const other = reference.prompts[1]?.prompt ?? 'JULIET:';
  const r = await client.completions.create({ model: 'default', prompt: [prompt, other], max_tokens: 40, temperature: 0, n: 2 });
  const solo = await client.completions.create({ model: 'default', prompt: other, max_tokens: 40, temperature: 0 });
  check('two prompts x n=2: four choices in prompt-major order', r.choices.length === 4
        && r.choices.every((c, i) => c.index === i) && r.choices[0].text === want && r.choices[1].text === want
        && r.choices[2].text === solo.choices[0].text && r.choices[3].text === solo.choices[0].text, r.choices);
  check('batched usage sums prompts and choices', r.usage.prompt_tokens === ids.length + solo.usage.prompt_tokens
        && r.usage.completion_tokens === 160, r.usage);
  const t = await client.completions.create({ model: 'default', prompt: [ids, ids], max_tokens: 40, temperature: 0 });
  check('array of token-id prompts', t.choices.length === 2 && t.choices.every((c) => c.text === want), t.choices);
});
await expectError('65 prompts', () => client.completions.create({ model: 'default', prompt: Array(65).fill('a'), max_tokens: 2 }), 400, 'prompt');
await expectError('prompts x n above 64', () => client.completions.create({ model: 'default', prompt: Array(10).fill('a'), max_tokens: 2, n: 7 }), 400, 'n');
await expectError('n=17', () => client.completions.create({ model: 'default', prompt, max_tokens: 4, n: 17 }), 400, 'n');
await expectError('best_of other than n', () => client.completions.create({ model: 'default', prompt, max_tokens: 4, n: 2, best_of: 3 }), 400, 'best_of');
await expectError('max_tokens 0', () => client.completions.create({ model: 'default', prompt, max_tokens: 0 }), 400, 'max_tokens');
await expectError('chat without messages', () => client.chat.completions.create({ model: 'default', messages: [] }), 400, 'messages');
await expectError('prompt too long', () => client.completions.create({ model: 'default', prompt: 'a '.repeat(5000), max_tokens: 4 }), 400, 'prompt')
  .then((e) => { if (e) check('prompt too long names max_model_len', /max_model_len/.test(e.error?.message ?? ''), e?.error); });
await step('tokenize / detokenize', async () => {
  const root = process.env.BASE_URL.replace(/\/v1\/?$/, '');
  const post = async (path, body) => {
    const res = await fetch(`${root}${path}`, { method: 'POST', body: JSON.stringify(body),
                                                headers: { 'content-type': 'application/json', authorization: 'Bearer x' } });
    return { status: res.status, body: await res.json() };
  };
  const ids = reference.prompts[0].ids;
  const t = await post('/tokenize', { model: 'default', prompt });
  check('tokenize gives the reference ids', JSON.stringify(t.body.tokens) === JSON.stringify(ids) && t.body.count === ids.length
        && t.body.max_model_len > ids.length, t.body);
  const d = await post('/detokenize', { model: 'default', tokens: ids });
  check('detokenize gives the prompt back', d.status === 200 && d.body.prompt === prompt, d.body);
  const c = await post('/tokenize', { model: 'default', messages: [{ role: 'user', content: 'Hi' }] });
  const chat = await client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1 });
  check('tokenize messages counts the chat prompt', c.body.count === chat.usage.prompt_tokens, { tokenize: c.body, usage: chat.usage });
  const bad = await post('/detokenize', { model: 'default', tokens: [1, 99999999] });
  check('detokenize outside the vocabulary 400 names tokens', bad.status === 400 && bad.body.error?.param === 'tokens', bad);
  const unknown = await post('/tokenize', { model: 'nope', prompt: 'x' });
  check('tokenize unknown model 404', unknown.status === 404 && unknown.body.error?.code === 'model_not_found', unknown);
  const missing = await post('/tokenize', { model: 'default' });
  check('tokenize without prompt 400 names prompt', missing.status === 400 && missing.body.error?.param === 'prompt', missing);
  const res = await fetch(`${root}/tokenize`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  check('tokenize needs the api key', res.status === 401, res.status);
});

await step('malformed JSON', async () => {
  const res = await fetch(`${process.env.BASE_URL}/completions`, { method: 'POST', body: '{"model": ', headers: { 'content-type': 'application/json', authorization: 'Bearer x' } });
  const body = await res.json();
  check('malformed JSON 400 envelope', res.status === 400 && body.error?.type === 'invalid_request_error', { status: res.status, body });
});

// The server runs with --api-key x: a wrong key is the client's AuthenticationError, in OpenAI's envelope.
const wrongKey = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: 'wrong', maxRetries: 0, timeout: 60_000 });
await expectError('wrong api key', () => wrongKey.completions.create({ model: 'default', prompt, max_tokens: 4 }), 401)
  .then((e) => { if (e) check('wrong key is AuthenticationError with code invalid_api_key', e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key' && e.type === 'invalid_request_error', e?.error); });

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
