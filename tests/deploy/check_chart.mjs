// Checks the chart's rendered objects (tests/e2e/deploy_chart_test.sh renders them with helm template):
//   node check_chart.mjs RENDER_DIR PLAIN_RULES_FILE
// RENDER_DIR holds <case>.yaml files and cases.json: {case: {tp, pp, gpus, metricValue, repo, pullSecret,
// gpuProducts, cache, modelDir}}. Every object must pass its API schema; then the seed's names, ports, labels,
// rules and HPA target are asserted. Writes RENDER_DIR/<case>.rules.yaml (the PrometheusRule's spec, for
// promtool) and RENDER_DIR/<case>.server.json (the server container: args, probes, grace period, init script).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { loadObjects, schemaErrors, Checks } from './k8s_objects.mjs';

const [renderDir, plainRulesFile] = process.argv.slice(2);
const cases = JSON.parse(fs.readFileSync(path.join(renderDir, 'cases.json'), 'utf8'));
const plainRules = YAML.parse(fs.readFileSync(plainRulesFile, 'utf8'));
const c = new Checks();

const SEED_RULES = {
  'triton:compute_duration:average':
    'rate(nv_inference_compute_infer_duration_us[1m]) / clamp_min(rate(nv_inference_request_success[1m]),1)',
  'triton:queue_duration:average':
    'rate(nv_inference_queue_duration_us[1m]) / clamp_min(rate(nv_inference_request_success[1m]),1)',
  'triton:request_duration:average':
    'rate(nv_inference_request_duration_us[1m]) / clamp_min(rate(nv_inference_request_success[1m]),1)',
  'triton:queue_compute:ratio':
    'rate(nv_inference_queue_duration_us[1m]) / clamp_min(rate(nv_inference_compute_infer_duration_us[1m]),1)',
};
const SEED_PORTS = [['http', 8000], ['grpc', 8001], ['metrics', 8002]];

function seconds(duration) {
  const m = /^(\d+)s$/.exec(duration ?? '');
  return m ? Number(m[1]) : NaN;
}
function argValue(args, flag) {
  const a = args.find((x) => x.startsWith(`${flag}=`));
  return a === undefined ? undefined : a.slice(flag.length + 1);
}

for (const [name, want] of Object.entries(cases)) {
  console.log(`--- ${name}`);
  const objects = loadObjects(path.join(renderDir, `${name}.yaml`));
  for (const obj of objects) {
    const errs = schemaErrors(obj);
    c.ok(errs.length === 0, `${name}: ${obj.kind}/${obj.metadata?.name} passes its API schema`, errs.join('; '));
  }
  const byKind = (kind) => objects.filter((o) => o.kind === kind);
  const release = want.release;
  const [dep] = byKind('Deployment');
  if (!c.ok(dep, `${name}: renders a Deployment`)) continue;

  // Deployment: names, labels, ports, probes, GPUs, grace period.
  c.eq(dep.metadata.name, release, `${name}: Deployment named after the release`);
  c.eq(dep.spec.selector.matchLabels, { app: release, 'app.kubernetes.io/component': 'server' },
    `${name}: Deployment selector app + component server`);
  const pod = dep.spec.template.spec;
  const podLabels = dep.spec.template.metadata.labels;
  c.ok(podLabels.app === release && podLabels['app.kubernetes.io/component'] === 'server',
    `${name}: pod labels app=${release}, app.kubernetes.io/component=server`);
  const server = pod.containers[0];
  c.eq(server.ports.map((p) => [p.name, p.containerPort]), SEED_PORTS, `${name}: container ports http 8000 / grpc 8001 / metrics 8002`);
  c.eq(server.livenessProbe?.httpGet?.path, '/v2/health/live', `${name}: liveness probe /v2/health/live`);
  c.eq(server.startupProbe?.httpGet?.path, '/v2/health/live', `${name}: startup probe /v2/health/live`);
  c.eq(server.readinessProbe?.httpGet?.path, '/v2/health/ready', `${name}: readiness probe /v2/health/ready`);
  const gpus = server.resources.limits['nvidia.com/gpu'];
  c.eq(gpus ?? 0, want.gpus, `${name}: asks for ${want.gpus} GPU(s) (tp ${want.tp} × pp ${want.pp})`);
  c.eq(server.resources.requests, server.resources.limits, `${name}: requests = limits`);
  const args = server.args;
  c.ok(want.tp === 1 ? !argValue(args, '--tp') : argValue(args, '--tp') === String(want.tp), `${name}: --tp matches tensor parallelism`);
  c.ok(want.pp === 1 ? !argValue(args, '--pp') : argValue(args, '--pp') === String(want.pp), `${name}: --pp matches pipeline parallelism`);
  const drain = seconds(argValue(args, '--drain-timeout'));
  const preStop = Number(server.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
  c.ok(pod.terminationGracePeriodSeconds > drain + preStop,
    `${name}: terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} > preStop ${preStop} + drain timeout ${drain}`);
  c.ok(server.securityContext.readOnlyRootFilesystem === true && pod.securityContext.runAsNonRoot === true,
    `${name}: non-root with a read-only root filesystem`);
  const terms = pod.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms?.[0]?.matchExpressions ?? [];
  if (want.gpus > 0) {
    c.ok(terms.some((e) => e.key === 'nvidia.com/gpu' && e.operator === 'Exists'), `${name}: node affinity nvidia.com/gpu Exists`);
    const product = terms.find((e) => e.key === 'nvidia.com/gpu.product');
    if (want.gpuProducts.length) c.eq(product?.values, want.gpuProducts, `${name}: node affinity nvidia.com/gpu.product In the gpu list`);
    c.ok(pod.tolerations?.some((t) => t.key === 'nvidia.com/gpu' && t.operator === 'Exists' && t.effect === 'NoSchedule'),
      `${name}: tolerates the nvidia.com/gpu taint`);
    c.eq(argValue(args, '--device'), 'cuda', `${name}: --device=cuda`);
  } else {
    c.ok(terms.length === 0 && !pod.tolerations, `${name}: no GPU affinity or toleration on --device=cpu`);
  }
  if (want.gpus > 1) {
    c.ok(pod.volumes.some((v) => v.name === 'dshm' && v.emptyDir?.medium === 'Memory'), `${name}: memory-backed /dev/shm for NCCL`);
  }

  // Model pull: init container, secret, node cache.
  const init = (pod.initContainers ?? []).find((x) => x.name === 'init');
  if (want.repo) {
    c.ok(init, `${name}: init container pulls the model`);
    const env = Object.fromEntries((init?.env ?? []).map((e) => [e.name, e.value]));
    c.eq(env.MODEL_REPO, want.repo, `${name}: init pulls ${want.repo}`);
    const modelDir = want.modelDir ?? '/var/run/models/hf';  // the engine dir when the init container builds one
    c.eq(argValue(args, '--model'), modelDir, `${name}: server loads ${modelDir}`);
    const cacheVol = pod.volumes.find((v) => v.name === 'model-cache');
    if (want.cache === 'hostPath') {
      c.eq(cacheVol?.hostPath, { path: `/llmserve/models/${want.modelName}/${want.tp}x${want.pp}`, type: 'DirectoryOrCreate' },
        `${name}: node cache hostPath <root>/models/<name>/<tp>x<pp> DirectoryOrCreate`);
    } else if (want.cache === 'pvc') {
      c.ok(cacheVol?.persistentVolumeClaim?.claimName && init.volumeMounts.find((m) => m.name === 'model-cache')?.subPath === `models/${want.modelName}/${want.tp}x${want.pp}`,
        `${name}: PVC cache mounted at sub-path models/<name>/<tp>x<pp>`);
    }
    if (want.pullSecret) {
      c.eq(pod.volumes.find((v) => v.name === 'hf-secret')?.secret?.secretName, want.pullSecret, `${name}: HF token secret ${want.pullSecret} mounted`);
      c.ok(init.volumeMounts.some((m) => m.name === 'hf-secret' && m.mountPath === '/var/run/secrets/hugging_face' && m.readOnly),
        `${name}: token read-only at /var/run/secrets/hugging_face (key password)`);
    }
  } else {
    c.ok(!init && !argValue(args, '--model'), `${name}: no pull without model.repo (the image's embedded model)`);
  }

  // Service.
  const [svc] = byKind('Service');
  if (c.ok(svc, `${name}: renders a Service`)) {
    c.eq(svc.metadata.name, release, `${name}: Service named after the release`);
    c.eq(svc.spec.type, 'ClusterIP', `${name}: Service is ClusterIP`);
    c.eq(svc.spec.ports.map((p) => [p.name, p.port, p.targetPort]), SEED_PORTS.map(([n, p]) => [n, p, n]), `${name}: Service ports name/port/targetPort`);
    c.eq(svc.spec.selector, { app: release }, `${name}: Service selects app=${release}`);
    c.eq(svc.metadata.labels['app.kubernetes.io/component'], 'service', `${name}: Service component label`);
  }

  // PodMonitor.
  const [pm] = byKind('PodMonitor');
  if (c.ok(pm, `${name}: renders a PodMonitor`)) {
    c.ok(pm.metadata.labels.release === 'prometheus' && pm.metadata.labels['app.kubernetes.io/component'] === 'autoscaler',
      `${name}: PodMonitor labels release=prometheus, component=autoscaler`);
    c.eq(pm.spec.selector.matchLabels, { app: release, 'app.kubernetes.io/component': 'server' }, `${name}: PodMonitor selects the server pods`);
    c.eq(pm.spec.podMetricsEndpoints.map((e) => [e.port, e.path]), [['metrics', '/metrics']], `${name}: PodMonitor scrapes port metrics /metrics`);
  }

  // PrometheusRule: the seed's group, identical to deploy/prometheus/rules.yaml.
  const [pr] = byKind('PrometheusRule');
  if (c.ok(pr, `${name}: renders a PrometheusRule`)) {
    c.eq(pr.metadata.name, 'triton-metrics', `${name}: PrometheusRule named triton-metrics`);
    c.ok(pr.metadata.labels.release === 'prometheus' && pr.metadata.labels['app.kubernetes.io/component'] === 'autoscaler',
      `${name}: PrometheusRule labels release=prometheus, component=autoscaler`);
    const group = pr.spec.groups[0];
    c.ok(pr.spec.groups.length === 1 && group.name === 'autoscaling' && group.interval === '6s', `${name}: one group 'autoscaling', interval 6s`);
    c.eq(Object.fromEntries(group.rules.map((r) => [r.record, r.expr])), SEED_RULES, `${name}: the seed's four recording rules, verbatim`);
    c.eq(pr.spec, plainRules, `${name}: PrometheusRule spec = deploy/prometheus/rules.yaml`);
    fs.writeFileSync(path.join(renderDir, `${name}.rules.yaml`), YAML.stringify(pr.spec));
  }

  // HPA (or the KEDA ScaledObject in its place).
  const [hpa] = byKind('HorizontalPodAutoscaler');
  const [so] = byKind('ScaledObject');
  if (want.keda) {
    c.ok(!hpa && so, `${name}: KEDA ScaledObject instead of the HPA`);
    c.ok(!('replicas' in dep.spec), `${name}: no Deployment replicas under autoscaling`);
    const t = so?.spec.triggers[0];
    c.ok(t?.type === 'prometheus' && t.metricType === 'AverageValue' && t.metadata.query.includes('triton:queue_compute:ratio'),
      `${name}: ScaledObject averages triton:queue_compute:ratio from Prometheus`);
    c.eq(so?.spec.minReplicaCount, 0, `${name}: ScaledObject allows scale-to-zero when asked`);
  } else if (c.ok(hpa, `${name}: renders a HorizontalPodAutoscaler`)) {
    c.eq(hpa.apiVersion, 'autoscaling/v2', `${name}: HPA autoscaling/v2`);
    c.eq([hpa.spec.minReplicas, hpa.spec.maxReplicas], [1, 4], `${name}: HPA min 1 max 4`);
    c.eq(hpa.spec.metrics, [{ type: 'Pods', pods: { metric: { name: 'triton:queue_compute:ratio' },
      target: { type: 'AverageValue', averageValue: want.metricValue } } }],
    `${name}: HPA on Pods metric triton:queue_compute:ratio, AverageValue ${want.metricValue}`);
    c.eq(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: release }, `${name}: HPA scales the Deployment`);
    c.ok(hpa.metadata.labels.release === 'prometheus', `${name}: HPA label release=prometheus`);
    c.ok(!('replicas' in dep.spec), `${name}: no Deployment replicas (the HPA owns them)`);
  }
  if (want.ingress) {
    const [ing] = byKind('Ingress');
    c.eq(ing?.spec.rules[0].http.paths[0].backend.service, { name: release, port: { name: 'http' } }, `${name}: Ingress to the Service's http port`);
  }

  fs.writeFileSync(path.join(renderDir, `${name}.server.json`), JSON.stringify({
    args, grace: pod.terminationGracePeriodSeconds, drain, preStop,
    probes: [server.startupProbe, server.livenessProbe, server.readinessProbe].map((p) => p.httpGet),
    initScript: init ? init.command[2] : null, initEnv: init ? init.env : [],
  }, null, 1));
}
c.finish();
