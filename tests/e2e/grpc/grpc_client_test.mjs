// The gRPC end-to-end checks behind tests/e2e/grpc_test.sh: a real client (@grpc/grpc-js, with
// @grpc/proto-loader reading OUR proto/) against grpc_test_server on the embedded default model.
//
// usage: node grpc_client_test.mjs PORT AUTH_PORT API_KEY SOURCE_DIR
// Every call has a deadline; the script prints one line per check and ends with "N passed, M failed".
import fs from 'node:fs';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const [port, authPort, apiKey, sourceDir] = process.argv.slice(2);
const protoDir = path.join(sourceDir, 'proto');
const loaderOptions = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protoDir] };
const def = protoLoader.loadSync([path.join(protoDir, 'grpc_service.proto'), path.join(protoDir, 'health.proto')], loaderOptions);
const pkg = grpc.loadPackageDefinition(def);
const reference = JSON.parse(fs.readFileSync(path.join(sourceDir, 'models/default/reference.json'), 'utf8'));
const greedyText = reference.prompts[0].greedy_text;

const address = (p) => `127.0.0.1:${p}`;
const client = new pkg.inference.GRPCInferenceService(address(port), grpc.credentials.createInsecure());
const authClient = new pkg.inference.GRPCInferenceService(address(authPort), grpc.credentials.createInsecure());
const health = new pkg.grpc.health.v1.Health(address(port), grpc.credentials.createInsecure());

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail}`); }
}
const deadline = (ms = 20000) => new Date(Date.now() + ms);

// Resolves {err, res}; never rejects.
function unary(c, method, request, metadata = new grpc.Metadata()) {
  return new Promise((resolve) => {
    c[method](request, metadata, { deadline: deadline() }, (err, res) => resolve({ err, res }));
  });
}

// Tensor helpers: typed `contents` or BYTES/fixed-width raw encodings.
const bytesInput = (name, values) => ({ name, datatype: 'BYTES', shape: [1, values.length], contents: { bytes_contents: values.map((v) => Buffer.from(v)) } });
const int32Input = (name, v) => ({ name, datatype: 'INT32', shape: [1, 1], contents: { int_contents: [v] } });
const fp32Input = (name, v) => ({ name, datatype: 'FP32', shape: [1, 1], contents: { fp32_contents: [v] } });
function rawBytes(values) {
  return Buffer.concat(values.flatMap((v) => { const b = Buffer.from(v); const len = Buffer.alloc(4); len.writeUInt32LE(b.length); return [len, b]; }));
}
function generateRequest(prompt, maxTokens, extra = {}) {
  return {
    model_name: 'default', id: extra.id ?? '',
    inputs: [bytesInput('text_input', [prompt]), int32Input('max_tokens', maxTokens), fp32Input('temperature', 0), ...(extra.inputs ?? [])],
  };
}
// text_output of a ModelInferResponse (raw_output_contents, as Triton sends it, or typed contents).
function textOutput(res) {
  const i = res.outputs.findIndex((o) => o.name === 'text_output');
  if (i < 0) return undefined;
  if (res.raw_output_contents.length > i) {
    const raw = res.raw_output_contents[i];
    const len = raw.readUInt32LE(0);
    return raw.subarray(4, 4 + len).toString('utf8');
  }
  return res.outputs[i].contents.bytes_contents[0].toString('utf8');
}
const isFinal = (r) => r.infer_response.parameters.triton_final_response?.bool_param === true;

// Sends `requests` on one stream and collects responses until `count` final/error responses came.
function stream(requests, { expected = requests.length, timeoutMs = 20000, metadata = new grpc.Metadata(), c = client } = {}) {
  return new Promise((resolve) => {
    const call = c.ModelStreamInfer(metadata, { deadline: deadline(timeoutMs) });
    const responses = [];
    let done = 0;
    call.on('data', (r) => {
      responses.push(r);
      if (r.error_message || isFinal(r)) { done++; if (done === expected) call.end(); }
    });
    call.on('error', (err) => resolve({ err, responses }));
    call.on('end', () => resolve({ err: null, responses }));
    for (const r of requests) call.write(r);
  });
}

async function stats() {
  const { err, res } = await unary(client, 'ModelStatistics', { name: 'default' });
  if (err) return null;
  const m = res.model_stats[0];
  return { success: Number(m.inference_stats.success.count), fail: Number(m.inference_stats.fail.count), cancel: Number(m.response_stats['0']?.cancel?.count ?? 0) };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  // Health and metadata.
  let r = await unary(client, 'ServerLive', {});
  check('ServerLive live', !r.err && r.res.live === true, r.err?.message);
  r = await unary(client, 'ServerReady', {});
  check('ServerReady ready', !r.err && r.res.ready === true, r.err?.message);
  r = await unary(client, 'ModelReady', { name: 'default' });
  check('ModelReady default', !r.err && r.res.ready === true, r.err?.message);
  r = await unary(client, 'ModelReady', { name: 'gpt2' });
  check('ModelReady alias gpt2', !r.err && r.res.ready === true, r.err?.message);
  r = await unary(client, 'ModelReady', { name: 'nope' });
  check('ModelReady unknown is false', !r.err && r.res.ready === false, r.err?.message);
  r = await unary(client, 'ServerMetadata', {});
  check('ServerMetadata', !r.err && r.res.name === 'llmserve' && r.res.extensions.includes('statistics')
        && !r.res.extensions.includes('model_repository'), JSON.stringify(r.res ?? r.err?.message));
  r = await unary(client, 'ModelMetadata', { name: 'default' });
  const textIn = r.res?.inputs.find((t) => t.name === 'text_input');
  check('ModelMetadata text_input BYTES [-1,1]', !r.err && textIn?.datatype === 'BYTES' && textIn.shape.join(',') === '-1,1' &&
        r.res.outputs.some((t) => t.name === 'text_output') && r.res.versions.includes('1'), JSON.stringify(r.res ?? r.err?.message));
  r = await unary(client, 'ModelMetadata', { name: 'nope' });
  check('ModelMetadata unknown -> INVALID_ARGUMENT (Triton)', r.err?.code === grpc.status.INVALID_ARGUMENT, r.err?.message);
  r = await unary(client, 'ModelConfig', { name: 'default' });
  const maxTokensIn = r.res?.config.input.find((t) => t.name === 'max_tokens');
  check('ModelConfig', !r.err && r.res.config.name === 'default' && maxTokensIn?.data_type === 'TYPE_INT32' &&
        r.res.config.max_batch_size > 0 && r.res.config.model_transaction_policy.decoupled === true, JSON.stringify(r.res ?? r.err?.message));
  r = await unary(client, 'RepositoryIndex', { ready: true });
  check('RepositoryIndex', !r.err && r.res.models.some((m) => m.name === 'default' && m.state === 'READY' && m.version === '1'), JSON.stringify(r.res ?? r.err?.message));
  const before = await stats();
  check('ModelStatistics answers', before !== null);
  r = await new Promise((resolve) => health.Check({ service: '' }, { deadline: deadline() }, (err, res) => resolve({ err, res })));
  check('Health Check SERVING', !r.err && r.res.status === 'SERVING', r.err?.message);
  r = await new Promise((resolve) => health.Check({ service: 'bogus' }, { deadline: deadline() }, (err, res) => resolve({ err, res })));
  check('Health Check unknown service -> NOT_FOUND', r.err?.code === grpc.status.NOT_FOUND, r.err?.message);

  // ModelInfer: greedy text equals transformers' reference.
  r = await unary(client, 'ModelInfer', generateRequest('ROMEO:', 20, { id: 'req-20' }));
  const text20 = r.res && textOutput(r.res);
  check('ModelInfer 20 tokens is a prefix of the reference', !r.err && text20.length > 0 && greedyText.startsWith(text20) && r.res.id === 'req-20',
        r.err?.message ?? JSON.stringify(text20));
  r = await unary(client, 'ModelInfer', generateRequest('ROMEO:', 40));
  check('ModelInfer 40 tokens equals the reference', !r.err && textOutput(r.res) === greedyText, r.err?.message ?? JSON.stringify(r.res && textOutput(r.res)));
  r = await unary(client, 'ModelInfer', { ...generateRequest('ROMEO:', 40), model_name: 'gpt2' });
  check('ModelInfer through an alias', !r.err && textOutput(r.res) === greedyText, r.err?.message);
  r = await unary(client, 'ModelInfer', generateRequest('ROMEO:', 5, { inputs: [{ name: 'exclude_input_in_output', datatype: 'BOOL', shape: [1, 1], contents: { bool_contents: [false] } }] }));
  check('exclude_input_in_output=false echoes the prompt', !r.err && textOutput(r.res).startsWith('ROMEO:\n'), r.err?.message ?? textOutput(r.res));

  r = await unary(client, 'ModelInfer', generateRequest('ROMEO:', 6, { inputs: [{ name: 'return_log_probs', datatype: 'BOOL', shape: [1, 1], contents: { bool_contents: [true] } }] }));
  {
    const fp32 = (name) => {
      const i = r.res?.outputs.findIndex((o) => o.name === name) ?? -1;
      if (i < 0) return undefined;
      const raw = r.res.raw_output_contents[i];
      return { shape: r.res.outputs[i].shape.map(Number), values: Array.from({ length: raw.length / 4 }, (_, k) => raw.readFloatLE(4 * k)) };
    };
    const out = fp32('output_log_probs'), cum = fp32('cum_log_probs');
    check('return_log_probs: output_log_probs has one value per token, all <= 0', !r.err && out?.values.length === 6
          && JSON.stringify(out.shape) === '[1,1,6]' && out.values.every((x) => x <= 0), r.err?.message ?? JSON.stringify(out));
    check('return_log_probs: cum_log_probs is their sum', cum?.values.length === 1
          && Math.abs(cum.values[0] - out.values.reduce((a, b) => a + b, 0)) < 1e-3, JSON.stringify(cum));
    check('return_log_probs leaves the text as without it', textOutput(r.res) === greedyText.slice(0, textOutput(r.res).length), textOutput(r.res));
  }

  // raw_input_contents: every tensor in its raw little-endian form.
  const maxTokensRaw = Buffer.alloc(4); maxTokensRaw.writeInt32LE(40);
  const temperatureRaw = Buffer.alloc(4); temperatureRaw.writeFloatLE(0);
  r = await unary(client, 'ModelInfer', {
    model_name: 'default',
    inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [1, 1] }, { name: 'max_tokens', datatype: 'INT32', shape: [1, 1] },
             { name: 'temperature', datatype: 'FP32', shape: [1, 1] }],
    raw_input_contents: [rawBytes(['ROMEO:']), maxTokensRaw, temperatureRaw],
  });
  check('ModelInfer raw_input_contents equals the reference', !r.err && textOutput(r.res) === greedyText, r.err?.message ?? JSON.stringify(r.res && textOutput(r.res)));

  // Errors.
  r = await unary(client, 'ModelInfer', { ...generateRequest('ROMEO:', 5), model_name: 'nope' });
  check('ModelInfer unknown model -> INVALID_ARGUMENT (Triton)', r.err?.code === grpc.status.INVALID_ARGUMENT, r.err?.message);
  r = await unary(client, 'ModelInfer', { model_name: 'default', inputs: [bytesInput('text_input', ['hi']), fp32Input('max_tokens', 5)] });
  check('ModelInfer bad datatype -> INVALID_ARGUMENT naming the tensor', r.err?.code === grpc.status.INVALID_ARGUMENT && /max_tokens/.test(r.err.details), r.err?.message);
  r = await unary(client, 'ModelInfer', { model_name: 'default', inputs: [bytesInput('text_input', ['hi']), fp32Input('temperature', -1)] });
  check('ModelInfer bad temperature -> INVALID_ARGUMENT naming it', r.err?.code === grpc.status.INVALID_ARGUMENT && /temperature/.test(r.err.details), r.err?.message);
  r = await unary(client, 'ModelInfer', { model_name: 'default', inputs: [int32Input('max_tokens', 5)] });
  check('ModelInfer missing text_input -> INVALID_ARGUMENT', r.err?.code === grpc.status.INVALID_ARGUMENT && /text_input/.test(r.err.details), r.err?.message);
  r = await unary(client, 'ModelInfer', { model_name: 'default', inputs: [{ name: 'text_input', datatype: 'BYTES', shape: [1, 1] }], raw_input_contents: [Buffer.from([9, 0, 0, 0, 65])] });
  check('ModelInfer truncated raw BYTES -> INVALID_ARGUMENT', r.err?.code === grpc.status.INVALID_ARGUMENT && /text_input/.test(r.err.details), r.err?.message);
  // 7 x 7905747460161236407 is 1 modulo 2^64: a wrapping element count would accept one element.
  r = await unary(client, 'ModelInfer', { model_name: 'default', inputs: [{ ...bytesInput('text_input', ['hi']), shape: ['7', '7905747460161236407'] }] });
  check('ModelInfer shape whose element count overflows -> INVALID_ARGUMENT', r.err?.code === grpc.status.INVALID_ARGUMENT && /overflows/.test(r.err.details), r.err?.message);
  r = await unary(client, 'ModelInfer', generateRequest('ROMEO:', 1000));
  check('ModelInfer past the context -> INVALID_ARGUMENT', r.err?.code === grpc.status.INVALID_ARGUMENT, r.err?.message);

  // ModelStreamInfer: one response per chunk, the last one final.
  let s = await stream([generateRequest('ROMEO:', 40, { id: 's1' })]);
  const texts = s.responses.map((x) => textOutput(x.infer_response));
  const finals = s.responses.map(isFinal);
  check('ModelStreamInfer chunks concatenate to the reference', !s.err && texts.join('') === greedyText, s.err?.message ?? JSON.stringify(texts));
  check('ModelStreamInfer streams several chunks', s.responses.length > 1, `${s.responses.length} responses`);
  check('ModelStreamInfer only the last is final', finals.length > 0 && finals[finals.length - 1] && finals.slice(0, -1).every((f) => !f), JSON.stringify(finals));
  check('ModelStreamInfer echoes the id', s.responses.every((x) => x.infer_response.id === 's1'));
  s = await stream([generateRequest('ROMEO:', 40, { inputs: [{ name: 'stream', datatype: 'BOOL', shape: [1, 1], contents: { bool_contents: [false] } }] })]);
  check('ModelStreamInfer stream=false gives one final response', !s.err && s.responses.length === 1 && isFinal(s.responses[0]) && textOutput(s.responses[0].infer_response) === greedyText,
        s.err?.message ?? s.responses.length);
  // An error is in band and the stream goes on.
  s = await stream([{ model_name: 'nope', id: 'bad', inputs: [bytesInput('text_input', ['hi'])] }, generateRequest('ROMEO:', 40, { id: 'good' })]);
  const bad = s.responses.find((x) => x.error_message);
  const good = s.responses.filter((x) => x.infer_response.id === 'good' && !x.error_message).map((x) => textOutput(x.infer_response)).join('');
  check('ModelStreamInfer error in band, stream stays open', !s.err && bad?.infer_response.id === 'bad' && /nope/.test(bad.error_message) && good === greedyText,
        s.err?.message ?? JSON.stringify(s.responses.map((x) => x.error_message)));
  // Two requests interleaved on one stream.
  s = await stream([generateRequest('ROMEO:', 40, { id: 'a' }), generateRequest('ROMEO:', 40, { id: 'b' })]);
  const byId = (id) => s.responses.filter((x) => x.infer_response.id === id).map((x) => textOutput(x.infer_response)).join('');
  check('ModelStreamInfer two requests on one stream', !s.err && byId('a') === greedyText && byId('b') === greedyText, s.err?.message);
  // Many streams at once.
  const many = await Promise.all(Array.from({ length: 8 }, (_, i) => stream([generateRequest('ROMEO:', 40, { id: `m${i}` })])));
  check('8 concurrent streams all match the reference', many.every((m) => !m.err && m.responses.map((x) => textOutput(x.infer_response)).join('') === greedyText));

  // The client cancels a long stream: the engine request is cancelled and the server goes on.
  const cancelledBefore = (await stats()).cancel;
  const cancelResult = await new Promise((resolve) => {
    const call = client.ModelStreamInfer({ deadline: deadline() });
    let chunks = 0;
    call.on('data', () => { if (++chunks === 2) call.cancel(); });
    call.on('error', (err) => resolve({ err, chunks }));
    call.on('end', () => resolve({ err: null, chunks }));
    call.write(generateRequest('ROMEO:', 250));
  });
  check('client cancel ends the stream with CANCELLED', cancelResult.err?.code === grpc.status.CANCELLED && cancelResult.chunks >= 2, JSON.stringify(cancelResult));
  let cancelledAfter = cancelledBefore;
  for (let i = 0; i < 50 && cancelledAfter === cancelledBefore; i++) { await sleep(100); cancelledAfter = (await stats()).cancel; }
  check('the cancelled request is counted as cancelled', cancelledAfter === cancelledBefore + 1, `${cancelledBefore} -> ${cancelledAfter}`);
  r = await unary(client, 'ModelInfer', generateRequest('ROMEO:', 40));
  check('server keeps serving after a cancel', !r.err && textOutput(r.res) === greedyText, r.err?.message);
  // A client deadline shorter than the generation cancels it too.
  r = await new Promise((resolve) => client.ModelInfer(generateRequest('ROMEO:', 250), new grpc.Metadata(), { deadline: new Date(Date.now() + 30) }, (err, res) => resolve({ err, res })));
  check('short client deadline -> DEADLINE_EXCEEDED', r.err?.code === grpc.status.DEADLINE_EXCEEDED, r.err?.message);

  const after = await stats();
  check('ModelStatistics counts successes', after.success > before.success && after.fail > before.fail, JSON.stringify({ before, after }));

  // Api key.
  const withKey = new grpc.Metadata(); withKey.set('authorization', `Bearer ${apiKey}`);
  const wrongKey = new grpc.Metadata(); wrongKey.set('authorization', 'Bearer wrong');
  r = await unary(authClient, 'ModelInfer', generateRequest('ROMEO:', 3));
  check('api key: missing -> UNAUTHENTICATED', r.err?.code === grpc.status.UNAUTHENTICATED, r.err?.message);
  r = await unary(authClient, 'ModelInfer', generateRequest('ROMEO:', 3), wrongKey);
  check('api key: wrong -> UNAUTHENTICATED', r.err?.code === grpc.status.UNAUTHENTICATED, r.err?.message);
  r = await unary(authClient, 'ModelInfer', generateRequest('ROMEO:', 40), withKey);
  check('api key: right -> OK', !r.err && textOutput(r.res) === greedyText, r.err?.message);
  s = await stream([generateRequest('ROMEO:', 3)], { c: authClient });
  check('api key: stream without it -> UNAUTHENTICATED', s.err?.code === grpc.status.UNAUTHENTICATED, s.err?.message);
  r = await unary(authClient, 'ServerLive', {});
  check('api key: health needs none', !r.err && r.res.live === true, r.err?.message);
  r = await unary(authClient, 'ServerReady', {});
  check('api key: server readiness needs none', !r.err && r.res.ready === true, r.err?.message);
  r = await unary(authClient, 'ModelReady', { name: 'default', version: '' });
  check('api key: model readiness needs it, as on HTTP', r.err?.code === grpc.status.UNAUTHENTICATED, r.err?.message);
  const lower = new grpc.Metadata(); lower.set('authorization', `bearer ${apiKey}`);
  r = await unary(authClient, 'ModelReady', { name: 'default', version: '' }, lower);
  check('api key: the scheme is case-insensitive', !r.err && r.res.ready === true, r.err?.message);

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

const guard = setTimeout(() => { console.log('FAIL global timeout'); console.log(`${passed} passed, ${failed + 1} failed`); process.exit(1); }, 120000);
guard.unref();
main().catch((e) => { console.log(`FAIL exception ${e.stack}`); console.log(`${passed} passed, ${failed + 1} failed`); process.exit(1); });
