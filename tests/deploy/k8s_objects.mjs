// Loads multi-document Kubernetes YAML and validates every object against the API schemas shipped in
// kubernetes-models (core kinds), @kubernetes-models/prometheus-operator (PodMonitor, PrometheusRule)
// and @kubernetes-models/keda (ScaledObject). Shared by check_chart.mjs and check_clients.mjs.
import fs from 'node:fs';
import YAML from 'yaml';
import * as k8s from 'kubernetes-models';
import * as po from '@kubernetes-models/prometheus-operator';
import * as keda from '@kubernetes-models/keda';

const registry = new Map();
function walk(ns) {
  for (const v of Object.values(ns)) {
    if (typeof v === 'function' && v.apiVersion && v.kind) registry.set(`${v.apiVersion}/${v.kind}`, v);
    else if (v && typeof v === 'object') walk(v);
  }
}
walk(k8s);
walk(po);
walk(keda);

// Returns the objects of a file; throws on YAML errors.
export function loadObjects(file) {
  const objects = [];
  for (const doc of YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'))) {
    if (doc.errors.length) throw new Error(`${file}: YAML error: ${doc.errors[0].message}`);
    const obj = doc.toJS();
    if (obj) objects.push(obj);
  }
  return objects;
}

// Validates one object; returns a list of error strings (empty when valid).
export function schemaErrors(obj) {
  const Model = registry.get(`${obj.apiVersion}/${obj.kind}`);
  if (!Model) return [`${obj.apiVersion}/${obj.kind}: no schema (unknown kind)`];
  try {
    new Model(obj).validate();
    return [];
  } catch (e) {
    return (e.errors ?? [e]).map((x) => `${x.instancePath ?? ''} ${x.message ?? String(x)}`);
  }
}

// A tiny assertion collector: every check prints one line; failures are counted.
export class Checks {
  constructor() { this.passed = 0; this.failed = 0; }
  ok(cond, what, detail = '') {
    if (cond) { this.passed++; console.log(`ok   ${what}`); }
    else { this.failed++; console.log(`FAIL ${what}${detail ? `: ${detail}` : ''}`); }
    return cond;
  }
  eq(actual, expected, what) {
    const a = JSON.stringify(actual), e = JSON.stringify(expected);
    return this.ok(a === e, what, `got ${a}, want ${e}`);
  }
  finish() {
    console.log(`${this.passed} passed, ${this.failed} failed`);
    process.exit(this.failed ? 1 : 0);
  }
}
