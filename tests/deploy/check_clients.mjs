// Checks the load-client Deployments (deploy/clients, rendered by `kubectl kustomize`):
//   node check_clients.mjs RENDERED.yaml OUT.json
// Every object passes its API schema and is the seed's client: Deployment client-<model>, labels app +
// component client, one replica, `llmserve bench serve --seed-client`, env TRTLLM_MODEL_NAME /
// TRTLLM_TRITON_URL / TRTLLM_MAX_TOKENS. Writes {name: {command, env}} for the shell to run one for real.
import fs from 'node:fs';
import { loadObjects, schemaErrors, Checks } from './k8s_objects.mjs';

const [rendered, out] = process.argv.slice(2);
const c = new Checks();
const found = {};
for (const obj of loadObjects(rendered)) {
  const name = obj.metadata?.name;
  const errs = schemaErrors(obj);
  c.ok(errs.length === 0, `${obj.kind}/${name} passes its API schema`, errs.join('; '));
  if (obj.kind !== 'Deployment') continue;
  const model = name.replace(/^client-/, '');
  c.ok(name.startsWith('client-'), `${name}: named client-<model>`);
  c.eq(obj.metadata.labels, { app: name, 'app.kubernetes.io/component': 'client' }, `${name}: labels app + component client`);
  c.eq(obj.spec.replicas, 1, `${name}: one replica (scaled with kubectl scale)`);
  const [ct] = obj.spec.template.spec.containers;
  c.eq(ct.command, ['llmserve', 'bench', 'serve', '--seed-client'], `${name}: runs llmserve bench serve --seed-client`);
  c.ok(/^([a-z0-9.-]+(:\d+)?\/)*llmserve-client(:[\w.-]+)?$/.test(ct.image), `${name}: client image ${ct.image}`);
  const env = Object.fromEntries(ct.env.map((e) => [e.name, e.value]));
  c.eq(env.TRTLLM_MODEL_NAME, model, `${name}: TRTLLM_MODEL_NAME=${model}`);
  c.eq(env.TRTLLM_TRITON_URL, model, `${name}: TRTLLM_TRITON_URL is the Service DNS name ${model}`);
  c.ok(/^\d+$/.test(env.TRTLLM_MAX_TOKENS ?? ''), `${name}: TRTLLM_MAX_TOKENS=${env.TRTLLM_MAX_TOKENS}`);
  c.ok(ct.resources?.limits?.cpu && ct.resources?.limits?.memory, `${name}: cpu and memory limits`);
  found[name] = { command: ct.command, env };
}
c.ok(['client-gpt2', 'client-llama-3-8b'].every((n) => n in found), 'clients for gpt2 and llama-3-8b');
fs.writeFileSync(out, JSON.stringify(found, null, 1));
c.finish();
