// Differential test of llmserve's grammar engine (through grammar_driver, see its header):
//  1. every document the engine generates by random walks over its token masks (GPT-2 vocabulary)
//     must validate with ajv against its schema, and every generated string must match the regex
//     with JavaScript's RegExp;
//  2. documents valid per ajv — hand-written ones and ones json-schema-faker generates — must be
//     accepted by the engine; for regexes, the hand-written strings.
// Faker documents are re-serialized compactly in schema property order first (the engine
// emits properties in schema order, compact JSON, no extra members: docs/grammar.md); faker
// output that ajv itself rejects is skipped.
// Usage: node grammar_diff.mjs --driver PATH --model DIR [--seed N] [--count N]
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import jsf from "json-schema-faker";
import { schemas, regexes } from "./corpus.mjs";

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith("--")) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const seed = Number(args.seed ?? process.env.GRAMMAR_DIFF_SEED ?? Date.now() % 100000);
const count = Number(args.count ?? 40);
console.log(`grammar_diff: seed ${seed}, ${count} documents per schema`);

const driver = spawn(args.driver, [args.model], { stdio: ["pipe", "pipe", "inherit"] });
const lines = createInterface({ input: driver.stdout })[Symbol.asyncIterator]();
async function call(req) {
  driver.stdin.write(JSON.stringify(req) + "\n");
  const { value } = await lines.next();
  const reply = JSON.parse(value);
  if (reply.error) throw new Error(`${req.kind} ${req.op}: ${reply.error}`);
  return reply;
}

// Re-serializes a value the way the engine writes it: properties in schema order.
function canonical(value, schema, root) {
  if (schema && schema.$ref) schema = schema.$ref.split("/").slice(1).reduce((s, k) => s[k], root);
  if (Array.isArray(value)) {
    const items = (i) => (schema?.prefixItems && i < schema.prefixItems.length ? schema.prefixItems[i] : schema?.items);
    return "[" + value.map((v, i) => canonical(v, items(i), root)).join(",") + "]";
  }
  if (value && typeof value === "object") {
    const props = schema?.properties ?? {};
    const keys = [...Object.keys(props).filter((k) => k in value), ...Object.keys(value).filter((k) => !(k in props))];
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(value[k], props[k] ?? schema?.additionalProperties, root)).join(",") + "}";
  }
  return JSON.stringify(value);
}

let failures = 0, validated = 0, accepted = 0;
const fail = (msg) => { failures++; if (failures <= 30) console.error("FAIL " + msg); };

jsf.option({ alwaysFakeOptionals: false, fillProperties: false, random: (() => { let s = seed; return () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648); })() });

for (const [i, entry] of schemas.entries()) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const validate = ajv.compile(entry.schema);
  const spec = JSON.stringify(entry.schema);
  const gen = await call({ op: "generate", kind: "schema", spec, count, seed: seed + i, budget: 48 });
  for (const doc of gen.docs) {
    let value;
    try { value = JSON.parse(doc); } catch (e) { fail(`${entry.name}: not JSON: ${doc}`); continue; }
    if (!validate(value)) fail(`${entry.name}: ajv rejects ${doc}: ${ajv.errorsText(validate.errors)}`);
    else validated++;
  }
  if (gen.docs.length < count / 2) fail(`${entry.name}: only ${gen.docs.length} of ${count} walks finished`);
  const valid = [...entry.valid];
  for (let k = 0; k < (entry.fakerSkip ? 0 : 10); k++) {
    try {
      const v = jsf.generate(entry.schema);
      if (validate(v)) valid.push(canonical(v, entry.schema, entry.schema));
    } catch (e) { break; }
  }
  for (const d of entry.valid) if (!validate(JSON.parse(d))) fail(`${entry.name}: hand-written doc invalid per ajv: ${d}`);
  const acc = await call({ op: "accept", kind: "schema", spec, docs: valid });
  acc.accepted.forEach((ok, k) => { if (!ok) fail(`${entry.name}: engine rejects ajv-valid ${valid[k]}`); else accepted++; });
  console.log(`${entry.name}: ${gen.docs.length} generated (${gen.unfinished} unfinished), ${valid.length} valid docs checked`);
}

for (const [i, entry] of regexes.entries()) {
  const re = new RegExp(`^(?:${entry.pattern})$`, "u");
  const gen = await call({ op: "generate", kind: "regex", spec: entry.pattern, count, seed: seed + 1000 + i, budget: 12 });
  for (const s of gen.docs) {
    if (!re.test(s)) fail(`regex ${entry.pattern}: RegExp rejects ${JSON.stringify(s)}`);
    else validated++;
  }
  for (const s of entry.valid) if (!re.test(s)) fail(`regex ${entry.pattern}: bad hand-written ${s}`);
  const acc = await call({ op: "accept", kind: "regex", spec: entry.pattern, docs: entry.valid });
  acc.accepted.forEach((ok, k) => { if (!ok) fail(`regex ${entry.pattern}: engine rejects ${entry.valid[k]}`); else accepted++; });
}

driver.stdin.end();
console.log(`grammar_diff: ${validated} generated documents validated (${schemas.length} schemas, ${regexes.length} regexes), ${accepted} valid documents accepted, ${failures} failures (seed ${seed})`);
process.exit(failures ? 1 : 0);
