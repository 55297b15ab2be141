// The harness both differential scripts share: arguments, the request plan with its checks, the
// driver run (tests/tokenizer_diff/tokenize_driver, JSON lines) and the failure report.
import { spawnSync } from 'node:child_process';

export function parseArgs(argv) {
  const args = { driver: process.env.TOKENIZE_DRIVER, seed: process.env.TOKENIZER_DIFF_SEED, random: 300 };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--driver') args.driver = argv[++i];
    else if (a === '--seed') args.seed = argv[++i];
    else if (a === '--random') args.random = Number(argv[++i]);
    else if (a === '--bench') args.bench = true;
    else if (a === '--keep') args.keep = true;
    else { console.error(`unknown argument ${a}`); process.exit(2); }
  }
  if (!args.driver) { console.error('no driver: pass --driver PATH or set TOKENIZE_DRIVER'); process.exit(2); }
  args.seed = args.seed !== undefined ? Number(args.seed) : Math.floor(Math.random() * 2 ** 31);
  return args;
}

export const utf8 = new TextEncoder();
export const lossy = new TextDecoder('utf-8');  // WHATWG: U+FFFD per maximal invalid subpart
export const hex = (bytes) => Buffer.from(bytes).toString('hex');
// JSON with object keys sorted, so that equal values compare equal.
const canonical = (v) => JSON.stringify(v, (_, x) =>
  (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort()) : x));

// Requests for the driver, each with a check run on its reply.
export class Plan {
  constructor() { this.requests = []; this.checks = []; this.failures = []; this.numChecks = 0; }
  add(request, check) { this.requests.push(request); this.checks.push(check); }
  fail(what, input, expected, got) { this.failures.push({ what, input, expected, got }); }
  expectEqual(what, input, expected, got) {
    ++this.numChecks;
    if (canonical(expected) !== canonical(got)) this.fail(what, input, expected, got);
  }
}

export function firstDifference(a, b) {
  if (!Array.isArray(a) || !Array.isArray(b)) return '';
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) ++i;
  return ` (first difference at index ${i})`;
}

export function runDriver(driver, requests) {
  const input = requests.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const result = spawnSync(driver, [], { input, maxBuffer: 1 << 30, encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    console.error(`driver ${driver} failed: ${result.error ?? `exit ${result.status}`}\n${result.stderr}`);
    process.exit(1);
  }
  const lines = result.stdout.split('\n').filter((l) => l.length > 0);
  if (lines.length !== requests.length) {
    console.error(`driver answered ${lines.length} of ${requests.length} requests`);
    process.exit(1);
  }
  return lines.map((l) => JSON.parse(l));
}

export function report(plan, seed) {
  const byKind = new Map();
  for (const f of plan.failures) byKind.set(f.what, (byKind.get(f.what) ?? 0) + 1);
  console.log(`${plan.numChecks} checks, ${plan.failures.length} failures`);
  for (const [what, n] of byKind) console.log(`  ${n} x ${what}`);
  for (const f of plan.failures.slice(0, 10)) {
    console.log(`\nFAIL ${f.what}${firstDifference(f.expected, f.got)}\n  input:    ${f.input.slice(0, 400)}` +
                `\n  expected: ${JSON.stringify(f.expected)?.slice(0, 600)}\n  got:      ${JSON.stringify(f.got)?.slice(0, 600)}`);
  }
  if (plan.failures.length) console.log(`\nreplay with: --seed ${seed}`);
}


// Runs every request through the driver, checks the replies, prints the report; the exit code.
export function runPlan(args, plan) {
  const replies = runDriver(args.driver, plan.requests);
  replies.forEach((reply, i) => {
    if (reply.error) plan.fail(`driver error on ${plan.requests[i].op}`, JSON.stringify(plan.requests[i]).slice(0, 300), 'no error', reply.error);
    else plan.checks[i](reply);
  });
  report(plan, args.seed);
  return plan.failures.length ? 1 : 0;
}
