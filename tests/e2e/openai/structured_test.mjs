// Structured outputs and tool calls end to end (docs/grammar.md, docs/server.md): the official
// `openai` client's chat.completions.parse with a zod schema and zod tools, forced tool calls
// (tool_choice required / named) streamed and not, response_format json_object / json_schema, vLLM's
// guided_json / guided_regex / guided_choice / guided_grammar, Triton generate's
// guided_decoding_guide_type, streamed and not, greedy and sampled. Every output is checked by a
// real validator (zod through the client, ajv, JavaScript's RegExp), and bad guides must be 400s
// naming the field. Run by tests/e2e/openai_test.sh against `llmserve serve` with the default model.
import OpenAI from 'openai';
import { zodFunction, zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import Ajv from 'ajv';
import { check, expect400, finish, step } from './checks.mjs';

const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: 'x', maxRetries: 0, timeout: 120_000 });
const ajv = new Ajv({ strict: false });
const messages = [{ role: 'user', content: 'Tell me about a person.' }];

const Person = z.object({
  name: z.string().max(12),
  age: z.number().int(),
  mood: z.enum(['happy', 'sad']),
  tags: z.array(z.string().max(8)).max(3),
});
const personFormat = zodResponseFormat(Person, 'person');
const validatePerson = ajv.compile(personFormat.json_schema.schema);

await step('chat.completions.parse with a zod schema', async () => {
  const r = await client.beta.chat.completions.parse({ model: 'default', messages, max_tokens: 200, temperature: 0,
                                                  response_format: personFormat });
  const m = r.choices[0].message;
  check('parse: finish_reason stop', r.choices[0].finish_reason === 'stop', r.choices[0]);
  check('parse: parsed validates with zod', Person.safeParse(m.parsed).success, m);
  check('parse: content validates with ajv', validatePerson(JSON.parse(m.content)), { content: m.content, errors: validatePerson.errors });
  check('parse: members in schema order', Object.keys(JSON.parse(m.content)).join() === 'name,age,mood,tags', m.content);
});

await step('json_schema sampled: every draw validates', async () => {
  for (let seed = 1; seed <= 6; seed++) {
    const r = await client.chat.completions.create({ model: 'default', messages, max_tokens: 200, temperature: 1, seed,
                                                     response_format: personFormat });
    const c = r.choices[0];
    let doc = null;
    try { doc = JSON.parse(c.message.content); } catch { /* checked below */ }
    check(`seed ${seed}: finish_reason stop`, c.finish_reason === 'stop', c);
    check(`seed ${seed}: validates with ajv`, doc !== null && validatePerson(doc), { content: c.message.content, errors: validatePerson.errors });
  }
});

await step('json_schema streamed', async () => {
  const plain = await client.chat.completions.create({ model: 'default', messages, max_tokens: 200, temperature: 0,
                                                       response_format: personFormat });
  const stream = await client.chat.completions.create({ model: 'default', messages, max_tokens: 200, temperature: 0,
                                                        response_format: personFormat, stream: true });
  let text = '', finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  check('stream equals the non-streamed document', text === plain.choices[0].message.content, { text, plain: plain.choices[0].message.content });
  check('stream finish_reason stop', finish === 'stop', finish);
});

await step('json_object', async () => {
  const r = await client.chat.completions.create({ model: 'default', messages, max_tokens: 200, temperature: 0,
                                                   response_format: { type: 'json_object' } });
  const c = r.choices[0];
  if (c.finish_reason === 'stop') {
    let doc = null;
    try { doc = JSON.parse(c.message.content); } catch { /* checked below */ }
    check('json_object: a JSON object', doc !== null && typeof doc === 'object' && !Array.isArray(doc), c.message.content);
  } else {
    check('json_object: cut only by max_tokens, starting an object', c.finish_reason === 'length' && c.message.content.startsWith('{'), c);
  }
});

await step('guided_choice / guided_regex / guided_grammar / guided_json', async () => {
  const choice = await client.completions.create({ model: 'default', prompt: 'The answer is', max_tokens: 10, temperature: 0,
                                                   guided_choice: ['yes', 'no', 'maybe not'] });
  check('guided_choice: one of the choices', ['yes', 'no', 'maybe not'].includes(choice.choices[0].text), choice.choices[0]);
  check('guided_choice: finish_reason stop', choice.choices[0].finish_reason === 'stop', choice.choices[0]);
  const regex = '[0-9]{3}-[a-z]{2,4}';
  for (const temperature of [0, 1.2]) {
    const r = await client.completions.create({ model: 'default', prompt: 'Code:', max_tokens: 20, temperature, seed: 7,
                                                guided_regex: regex });
    check(`guided_regex t=${temperature}: matches`, new RegExp(`^(?:${regex})$`).test(r.choices[0].text), r.choices[0]);
  }
  const g = await client.completions.create({ model: 'default', prompt: 'Say', max_tokens: 10, temperature: 0,
                                              guided_grammar: 'root ::= "hello " ("world" | "there") "!"' });
  check('guided_grammar: in the language', /^hello (world|there)!$/.test(g.choices[0].text), g.choices[0]);
  const schema = { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer', minimum: 1, maximum: 9 } }, required: ['ok', 'n'] };
  const j = await client.completions.create({ model: 'default', prompt: 'JSON:', max_tokens: 40, temperature: 0.8, seed: 3,
                                              guided_json: schema });
  let doc = null;
  try { doc = JSON.parse(j.choices[0].text); } catch { /* checked below */ }
  check('guided_json (completions): validates', doc !== null && ajv.validate(schema, doc), j.choices[0]);
});

await step('Triton generate guided_decoding_guide_type', async () => {
  const url = process.env.BASE_URL.replace(/\/v1$/, '') + '/v2/models/default/generate';
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
    body: JSON.stringify({ text_input: 'Code:', max_tokens: 20, temperature: 0,
                           guided_decoding_guide_type: 'regex', guided_decoding_guide: '[a-c]{2}[0-9]' }) });
  const body = await res.json();
  check('generate regex: matches', res.status === 200 && /^[a-c]{2}[0-9]$/.test(body.text_output), body);
  const bad = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
    body: JSON.stringify({ text_input: 'x', max_tokens: 4, guided_decoding_guide_type: 'structural_tag', guided_decoding_guide: '{}' }) });
  check('generate unknown guide type 400', bad.status === 400, await bad.text());
});

await expect400('unknown schema type', () => client.chat.completions.create({ model: 'default', messages, max_tokens: 4,
  response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'integr' } } } } } }),
  'response_format', /response_format\.json_schema\.schema\.properties\.a/);
await expect400('unsupported keyword', () => client.chat.completions.create({ model: 'default', messages, max_tokens: 4,
  response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'array', uniqueItems: true } } } }),
  'response_format', /uniqueItems/);
await expect400('unknown response_format type', () => client.chat.completions.create({ model: 'default', messages, max_tokens: 4,
  response_format: { type: 'yaml' } }), 'response_format');
await expect400('two guides', () => client.completions.create({ model: 'default', prompt: 'x', max_tokens: 4,
  guided_regex: 'a', guided_choice: ['b'] }), 'guided_choice');
await expect400('regex with lookahead', () => client.completions.create({ model: 'default', prompt: 'x', max_tokens: 4,
  guided_regex: 'a(?=b)' }), 'guided_regex', /guided_regex/);
await expect400('EBNF without root', () => client.completions.create({ model: 'default', prompt: 'x', max_tokens: 4,
  guided_grammar: 'start ::= "a"' }), 'guided_grammar');
await expect400('ignore_eos with a grammar', () => client.completions.create({ model: 'default', prompt: 'x', max_tokens: 4,
  guided_choice: ['a'], ignore_eos: true }), 'ignore_eos', /structured output/);

// Tool calls: tool_choice "required" and a named function are forced by the grammar (the
// default model would never write a call by itself), so the arguments always parse and match
// the function's parameters.
const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 10 }, unit: { type: 'string', enum: ['c', 'f'] } },
                  required: ['city', 'unit'], additionalProperties: false } } },
  { type: 'function', function: { name: 'get_time',
    parameters: { type: 'object', properties: { zone: { type: 'integer', minimum: -12, maximum: 14 } }, required: ['zone'] } } },
];
const validators = Object.fromEntries(tools.map((t) => [t.function.name, ajv.compile(t.function.parameters)]));
function checkCall(name, call) {
  let args = null;
  try { args = JSON.parse(call.function.arguments); } catch { /* checked below */ }
  check(`${name}: a function call with an id`, call.type === 'function' && /^call_/.test(call.id), call);
  check(`${name}: a known function`, call.function.name in validators, call);
  check(`${name}: arguments validate`, args !== null && validators[call.function.name]?.(args), { call, errors: validators[call.function.name]?.errors });
}
const toolMessages = [{ role: 'user', content: 'What is the weather in Paris?' }];

await step('tool_choice required', async () => {
  const r = await client.chat.completions.create({ model: 'default', messages: toolMessages, tools, tool_choice: 'required',
                                                   parallel_tool_calls: false, max_tokens: 100, temperature: 0 });
  const c = r.choices[0];
  check('required: finish_reason tool_calls', c.finish_reason === 'tool_calls', c);
  check('required: content null', c.message.content === null, c.message);
  check('required: one call', c.message.tool_calls?.length === 1, c.message);
  if (c.message.tool_calls?.length) checkCall('required', c.message.tool_calls[0]);
});

await step('tool_choice named', async () => {
  const r = await client.chat.completions.create({ model: 'default', messages: toolMessages, tools, max_tokens: 100, temperature: 0.7, seed: 5,
                                                   tool_choice: { type: 'function', function: { name: 'get_time' } } });
  const calls = r.choices[0].message.tool_calls ?? [];
  check('named: one call of get_time', calls.length === 1 && calls[0].function.name === 'get_time', r.choices[0]);
  if (calls.length) checkCall('named', calls[0]);
});

await step('tool_choice required, sampled, parallel', async () => {
  for (let seed = 1; seed <= 4; seed++) {
    const r = await client.chat.completions.create({ model: 'default', messages: toolMessages, tools, tool_choice: 'required',
                                                     max_tokens: 120, temperature: 1, seed });
    const c = r.choices[0];
    check(`seed ${seed}: calls`, c.finish_reason === 'tool_calls' ? c.message.tool_calls?.length >= 1 : c.finish_reason === 'length', c);
    if (c.finish_reason === 'tool_calls') c.message.tool_calls.forEach((call, k) => checkCall(`seed ${seed} call ${k}`, call));
  }
});

await step('tool calls streamed', async () => {
  const args = { model: 'default', messages: toolMessages, tools, tool_choice: 'required', parallel_tool_calls: false,
                 max_tokens: 100, temperature: 0 };
  const plain = await client.chat.completions.create(args);
  const stream = await client.chat.completions.create({ ...args, stream: true });
  const calls = [];
  let finish = null, content = '';
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta ?? {};
    content += d.content ?? '';
    for (const tc of d.tool_calls ?? []) {
      calls[tc.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } };
      if (tc.id) calls[tc.index].id = tc.id;
      if (tc.function?.name) calls[tc.index].function.name += tc.function.name;
      if (tc.function?.arguments) calls[tc.index].function.arguments += tc.function.arguments;
    }
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  check('stream: finish_reason tool_calls', finish === 'tool_calls', finish);
  check('stream: no content', content === '', content);
  const want = plain.choices[0].message.tool_calls ?? [];
  check('stream: the same call as unary', calls.length === want.length && calls.every((c, k) =>
    c.function.name === want[k].function.name && c.function.arguments === want[k].function.arguments), { calls, want });
  calls.forEach((call, k) => checkCall(`stream call ${k}`, call));
});

await step('zod tools through chat.completions.parse', async () => {
  const Weather = z.object({ city: z.string().max(10), unit: z.enum(['c', 'f']) });
  const r = await client.beta.chat.completions.parse({ model: 'default', messages: toolMessages, max_tokens: 100, temperature: 0,
    tools: [zodFunction({ name: 'get_weather', parameters: Weather })], tool_choice: 'required', parallel_tool_calls: false });
  const call = r.choices[0].message.tool_calls?.[0];
  check('zod tool: parsed_arguments validate with zod', call && Weather.safeParse(call.function.parsed_arguments).success, r.choices[0].message);
});

await step('tool results rendered back through the template', async () => {
  const r = await client.chat.completions.create({ model: 'default', max_tokens: 8, temperature: 0, tools, messages: [
    ...toolMessages,
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"c"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '21 degrees' }] });
  check('tool round trip answers', typeof r.choices[0].message.content === 'string', r.choices[0]);
});

await expect400('named tool not in tools', () => client.chat.completions.create({ model: 'default', messages: toolMessages, tools, max_tokens: 4,
  tool_choice: { type: 'function', function: { name: 'nope' } } }), 'tool_choice', /nope/);
await expect400('tool_choice required without tools', () => client.chat.completions.create({ model: 'default', messages: toolMessages,
  max_tokens: 4, tool_choice: 'required' }), 'tool_choice');
await expect400('malformed tool', () => client.chat.completions.create({ model: 'default', messages: toolMessages, max_tokens: 4,
  tools: [{ type: 'function', function: { parameters: {} } }] }), 'tools', /tools\[0\]/);
await expect400('tool_choice required with response_format', () => client.chat.completions.create({ model: 'default', messages: toolMessages,
  max_tokens: 4, tools, tool_choice: 'required', response_format: { type: 'json_object' } }), 'tool_choice');
await expect400('tool parameters the engine cannot honour', () => client.chat.completions.create({ model: 'default', messages: toolMessages,
  max_tokens: 4, tool_choice: 'required', tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { u: { type: 'string', format: 'uri' } } } } }] }),
  'tool_choice', /format/);

finish();
