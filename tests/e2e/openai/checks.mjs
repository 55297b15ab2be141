// What the official-client tests (structured_test.mjs, prompt_logprobs_test.mjs) share: named
// checks counted into one tally, steps whose exceptions count as failures, a 400 that must name
// its field, and the closing line ("N passed, M failed") with the exit code.
let passed = 0, failed = 0;

export function check(name, cond, detail) {
  if (cond) { passed++; return; }
  failed++;
  console.log(`FAIL ${name}: ${JSON.stringify(detail)?.slice(0, 800)}`);
}

export async function step(name, fn) {
  try { await fn(); } catch (e) { check(`${name} threw`, false, { message: e.message, error: e.error }); }
}

export async function expect400(name, fn, param, pattern) {
  try {
    await fn();
    check(`${name} is refused`, false, 'no error');
  } catch (e) {
    check(`${name} status 400`, e.status === 400, { status: e.status, message: e.message });
    check(`${name} param ${param}`, e.param === param, { param: e.param, error: e.error });
    if (pattern) check(`${name} message ${pattern}`, pattern.test(e.error?.message ?? ''), e.error);
  }
}

export function finish() {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}
