"""A local, time-bounded autoscaling loop on loopback: the seed's Kubernetes story in one process.

Starts and owns every process it uses, and stops them all on exit (also on SIGINT/SIGTERM; a
SIGKILL of this process kills its children through PR_SET_PDEATHSIG):
  - llmserve replicas (`llmserve serve`, HTTP + metrics port each) — the Deployment's pods;
  - nginx in front of the ready replicas (upstream file rewritten and reloaded on every change) —
    the Service / L7 balancer (deploy/lb);
  - Prometheus scraping the replicas (file_sd targets file rewritten on every change) with the
    recording rules of deploy/prometheus/rules.yaml — kube-prometheus-stack + PrometheusRule;
  - seed-style clients (`llmserve bench serve --seed-client`, one request in flight each) whose
    number follows a step schedule — `kubectl scale deployment/client`;
  - a controller that reads triton:queue_compute:ratio from Prometheus' HTTP API every sync period
    and applies the HPA's algorithm (hpa.py) — prometheus-adapter + HorizontalPodAutoscaler.
Prints a timeline, writes timeline.csv and timeline.svg (timeline_svg.py) and summary.json.
It is a demo and a test of the signal, not an orchestrator: Kubernetes does the scaling in
production.
"""
import argparse, csv, ctypes, json, math, os, re, shutil, signal, socket, subprocess, sys, tempfile, time
import urllib.parse, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hpa  # noqa: E402
import timeline_svg  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CSV_FIELDS = ["t_s", "clients", "replicas", "ready", "ratio", "ratios", "desired", "action", "requests_per_s"]


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="autoscale.sh", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Local autoscaling loop: llmserve replicas behind nginx, Prometheus with the chart's "
                    "rules, step load from seed-style clients, and the HPA's formula on "
                    "triton:queue_compute:ratio. Loopback only; bounded by --duration.")
    p.add_argument("--llmserve", default=os.environ.get("LLMSERVE") or shutil.which("llmserve")
                   or os.path.join(REPO, "build/release/llmserve"), help="llmserve binary")
    p.add_argument("--duration", type=float, default=250, help="seconds the loop runs")
    p.add_argument("--load", default="0:1,20:4,150:1",
                   help="client steps 'T:N,...': from second T on, N clients (one request in flight each)")
    p.add_argument("--target", type=float, default=1.0, help="target average ratio (the chart's 1000m)")
    p.add_argument("--tolerance", type=float, default=0.1, help="HPA tolerance")
    p.add_argument("--min-replicas", type=int, default=1)
    p.add_argument("--max-replicas", type=int, default=3)
    p.add_argument("--sync-period", type=float, default=5, help="controller period, s (HPA: 15)")
    p.add_argument("--scale-down-window", type=float, default=60,
                   help="scale-down stabilization window, s (HPA default: 300)")
    p.add_argument("--max-tokens", type=int, default=200, help="TRTLLM_MAX_TOKENS of the clients")
    p.add_argument("--model", default="default", help="TRTLLM_MODEL_NAME of the clients")
    p.add_argument("--serve-args", default="--max-batch-size 1 --num-kv-blocks 64 --drain-timeout 20s",
                   help="extra `llmserve serve` flags for every replica (max batch 1 makes requests queue)")
    p.add_argument("--rules", default=os.path.join(REPO, "deploy/prometheus/rules.yaml"),
                   help="Prometheus rules file with triton:queue_compute:ratio")
    p.add_argument("--rule-interval", default="1s",
                   help="evaluation interval forced on the rule groups ('keep': the file's, the chart's 6s)")
    p.add_argument("--scrape-interval", default="1s", help="Prometheus scrape interval")
    p.add_argument("--stop-when-settled", type=float, default=0,
                   help="end this many seconds after the ratio fell below target following a scale-up (0: run "
                        "for --duration)")
    p.add_argument("--workdir", help="where configs, logs, CSV and SVG go (default: a new temporary directory)")
    p.add_argument("--prometheus", default="prometheus")
    p.add_argument("--nginx", default="nginx")
    args = p.parse_args(argv)
    args.load_steps = sorted((float(t), int(n)) for t, n in (s.split(":") for s in args.load.split(",")))
    if not 1 <= args.min_replicas <= args.max_replicas:
        p.error("need 1 <= --min-replicas <= --max-replicas")
    return args


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def is_ready(url):
    try:
        return http_get(url, 1.0)[0] == 200
    except OSError:
        return False


def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Processes:
    """Every child process, so that all of them are stopped whatever happens."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.children = []
        self.pid_file = open(os.path.join(workdir, "pids"), "w")

    def start(self, name, argv, env=None):
        log = open(os.path.join(self.workdir, f"{name}.log"), "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, preexec_fn=_die_with_parent)
        log.close()
        self.children.append(proc)
        self.pid_file.write(f"{proc.pid} {name}\n")
        self.pid_file.flush()
        return proc

    def stop_all(self, grace_s=5.0):
        for p in self.children:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + grace_s
        for p in self.children:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Replica:
    def __init__(self, name, procs, args):
        self.name = name
        self.http_port, self.metrics_port = free_port(), free_port()
        self.state = "starting"  # starting -> ready -> draining
        self.started = time.monotonic()
        self.proc = procs.start(f"replica-{name}", [
            args.llmserve, "serve", "--host", "127.0.0.1", "--http-port", str(self.http_port),
            "--grpc-port", "-1", "--metrics-port", str(self.metrics_port)] + args.serve_args.split())

    @property
    def address(self):
        return f"127.0.0.1:{self.http_port}"

    @property
    def instance(self):
        return f"127.0.0.1:{self.metrics_port}"


class Cluster:
    """Replicas, nginx and Prometheus targets kept in step."""

    def __init__(self, args, procs, workdir, log):
        self.args, self.procs, self.workdir, self.log = args, procs, workdir, log
        self.replicas = []  # starting and ready ones: what the HPA calls the current replicas
        self.draining = []
        self.num_started = 0
        self.lb_port, self.prom_port = free_port(), free_port()
        self.targets_file = os.path.join(workdir, "targets.json")
        self.nginx = None
        self.prometheus = None

    # ---- nginx ----
    def _write_nginx(self):
        ready = [r for r in self.replicas if r.state == "ready"]
        # An upstream needs a server; until a replica is ready nginx points at a closed port (502).
        servers = "".join(f"    server {r.address} max_fails=3 fail_timeout=5s;\n" for r in ready) \
            or "    server 127.0.0.1:1 down;\n"
        w = self.workdir
        conf = f"""# Written by autoscale.py; the settings of deploy/lb/nginx/llmserve.conf (HTTP only).
worker_processes 1;
daemon off;
pid {w}/nginx.pid;
error_log {w}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {w}/nginx-tmp; proxy_temp_path {w}/nginx-tmp; fastcgi_temp_path {w}/nginx-tmp;
  uwsgi_temp_path {w}/nginx-tmp; scgi_temp_path {w}/nginx-tmp;
  upstream llmserve_http {{
    least_conn;
{servers}    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{self.lb_port};
    client_max_body_size 64m;
    gzip off;
    location / {{
      proxy_pass http://llmserve_http;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
      proxy_next_upstream error http_502 http_503 non_idempotent;
      proxy_next_upstream_tries 2;
    }}
  }}
}}
"""
        os.makedirs(f"{w}/nginx-tmp", exist_ok=True)
        with open(f"{w}/nginx.conf", "w") as f:
            f.write(conf)

    def _reload_nginx(self):
        self._write_nginx()
        if self.nginx is None:
            self.nginx = self.procs.start("nginx", [self.args.nginx, "-e", f"{self.workdir}/nginx-error.log",
                                                    "-c", f"{self.workdir}/nginx.conf"])
        else:
            self.nginx.send_signal(signal.SIGHUP)  # graceful: old workers finish their requests

    # ---- Prometheus ----
    def _write_targets(self):
        targets = [{"targets": [r.instance], "labels": {"replica": r.name}}
                   for r in self.replicas if r.state == "ready"]
        tmp = self.targets_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(targets, f)
        os.replace(tmp, self.targets_file)  # atomic: Prometheus never reads half a file

    def start_prometheus(self):
        a, w = self.args, self.workdir
        with open(a.rules) as f:
            rules = f.read()
        if a.rule_interval != "keep":
            rules = re.sub(r"^(\s*)interval:\s*\S+", rf"\g<1>interval: {a.rule_interval}", rules, flags=re.M)
        with open(f"{w}/rules.yaml", "w") as f:
            f.write(rules)
        with open(f"{w}/prometheus.yml", "w") as f:
            f.write(f"""# Written by autoscale.py. The chart scrapes and evaluates every 6 s (the seed's interval);
# here both run every {a.scrape_interval} / {a.rule_interval} so that the 1m rate() windows fill in seconds.
global:
  scrape_interval: {a.scrape_interval}
  evaluation_interval: {a.rule_interval if a.rule_interval != 'keep' else '6s'}
rule_files: [{w}/rules.yaml]
scrape_configs:
  - job_name: llmserve
    file_sd_configs:
      - files: [{self.targets_file}]
        refresh_interval: 5s
""")
        self._write_targets()
        self.prometheus = self.procs.start("prometheus", [
            a.prometheus, f"--config.file={w}/prometheus.yml", f"--storage.tsdb.path={w}/prometheus-data",
            f"--web.listen-address=127.0.0.1:{self.prom_port}", "--storage.tsdb.retention.time=1h",
            "--log.level=warn"])
        deadline = time.monotonic() + 30
        while not is_ready(f"http://127.0.0.1:{self.prom_port}/-/ready"):
            if self.prometheus.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start; see {w}/prometheus.log")
            time.sleep(0.2)
        groups = self.query_api("rules")["groups"]
        names = [r["name"] for g in groups for r in g["rules"]]
        if "triton:queue_compute:ratio" not in names:
            raise RuntimeError(f"rules from {a.rules} did not load: {names}")
        return names

    def query_api(self, endpoint, **params):
        url = f"http://127.0.0.1:{self.prom_port}/api/v1/{endpoint}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        status, body = http_get(url, 5.0)
        reply = json.loads(body)
        if reply.get("status") != "success":
            raise RuntimeError(f"prometheus {endpoint}: {reply}")
        return reply["data"]

    def query(self, promql):
        return self.query_api("query", query=promql)["result"]

    # ---- replicas ----
    def add_replica(self):
        self.num_started += 1
        r = Replica(f"r{self.num_started}", self.procs, self.args)
        self.replicas.append(r)
        self.log(f"replica {r.name} starting (http {r.http_port}, metrics {r.metrics_port})")
        return r

    def remove_replica(self):
        r = self.replicas.pop()  # the newest, as a ReplicaSet prefers
        was_ready = r.state == "ready"
        r.state = "draining"
        self.draining.append(r)
        if was_ready:
            self._reload_nginx()
            self._write_targets()
        r.proc.send_signal(signal.SIGTERM)  # llmserve drains: ready 503, in-flight requests finish
        self.log(f"replica {r.name} removed from nginx and Prometheus; SIGTERM (draining)")

    def poll(self):
        changed = False
        for r in self.replicas:
            if r.state == "starting":
                if r.proc.poll() is not None:
                    raise RuntimeError(f"replica {r.name} exited; see {self.workdir}/replica-{r.name}.log")
                if is_ready(f"http://{r.address}/v2/health/ready"):
                    r.state = "ready"
                    changed = True
                    self.log(f"replica {r.name} ready after {time.monotonic() - r.started:.1f} s; "
                             "added to nginx and Prometheus")
        if changed:
            self._reload_nginx()
            self._write_targets()
        for r in list(self.draining):
            if r.proc.poll() is not None:
                self.draining.remove(r)
                self.log(f"replica {r.name} exited (code {r.proc.returncode})")


class Clients:
    def __init__(self, args, procs, lb_port, log):
        self.args, self.procs, self.lb_port, self.log = args, procs, lb_port, log
        self.running = []
        self.num_started = 0

    def scale(self, n):
        if n == len(self.running):
            return
        while len(self.running) < n:
            self.num_started += 1
            env = dict(os.environ, TRTLLM_MODEL_NAME=self.args.model,
                       TRTLLM_TRITON_URL=f"http://127.0.0.1:{self.lb_port}",
                       TRTLLM_MAX_TOKENS=str(self.args.max_tokens))
            self.running.append(self.procs.start(f"client-{self.num_started}",
                                                 [self.args.llmserve, "bench", "serve", "--seed-client"], env))
        while len(self.running) > n:
            self.running.pop().terminate()
        self.log(f"load: {n} client(s)")


def clients_at(steps, t):
    n = 0
    for start, count in steps:
        if t >= start:
            n = count
    return n


def run(args, workdir):
    t0 = time.monotonic()
    now = lambda: time.monotonic() - t0

    def log(msg):
        print(f"[{now():6.1f}s] {msg}", flush=True)

    procs = Processes(workdir)
    rows, summary = [], {"workdir": workdir, "scale_events": [], "target": args.target}
    try:
        cluster = Cluster(args, procs, workdir, log)
        names = cluster.start_prometheus()
        summary["rules"] = names
        log(f"prometheus on 127.0.0.1:{cluster.prom_port}: {len(names)} recording rules from {args.rules}, "
            f"evaluated every {args.rule_interval}")
        for _ in range(args.min_replicas):
            cluster.add_replica()
        cluster._reload_nginx()
        log(f"nginx on 127.0.0.1:{cluster.lb_port}")
        clients = Clients(args, procs, cluster.lb_port, log)
        behavior = hpa.Behavior(args.min_replicas, args.max_replicas, args.scale_down_window,
                                start=(0.0, args.min_replicas))
        next_sync, settled_at, scaled_up = args.sync_period, None, False
        while now() < args.duration:
            cluster.poll()
            clients.scale(clients_at(args.load_steps, now()))
            if now() >= next_sync:
                next_sync += args.sync_period
                row = sync(cluster, behavior, clients, now(), args, log, summary)
                rows.append(row)
                if row["action"].startswith("scale up"):
                    scaled_up, settled_at = True, None
                ready = [r for r in cluster.replicas if r.state == "ready"]
                if scaled_up and len(ready) > 1 and row["ratio"] != "" and float(row["ratio"]) < args.target:
                    settled_at = settled_at if settled_at is not None else now()
                    if args.stop_when_settled and now() - settled_at >= args.stop_when_settled:
                        log("ratio below target since the scale-up settled; stopping (--stop-when-settled)")
                        break
            time.sleep(0.25)
        log("stopping clients, replicas, nginx and prometheus")
    finally:
        procs.stop_all()
        write_outputs(args, workdir, rows, summary)


def sync(cluster, behavior, clients, t, args, log, summary):
    """One controller period: read the metric, run the HPA's arithmetic, act."""
    values = {r.name: None for r in cluster.replicas}  # not ready / not scraped yet: no value
    try:
        for s in cluster.query('triton:queue_compute:ratio{job="llmserve"}'):
            name = s["metric"].get("replica")
            if name in values:  # the adapter sums a pod's series; removed replicas are ignored
                values[name] = (values[name] or 0.0) + float(s["value"][1])
        rps = sum(float(s["value"][1]) for s in cluster.query('rate(nv_inference_request_success{job="llmserve"}[15s])'))
    except (OSError, RuntimeError) as e:
        log(f"prometheus query failed: {e}")
        rps = None
    for r in cluster.replicas:
        if r.state != "ready":
            values[r.name] = None  # the HPA sets not-ready pods aside
    current = len(cluster.replicas)
    raw, average = hpa.recommend(values, args.target, args.tolerance)
    desired = behavior.apply(t, current, raw) if average is not None else current
    action = ""
    if desired > current:
        action = f"scale up {current}->{desired}"
    elif desired < current:
        action = f"scale down {current}->{desired}"
    ready = sum(1 for r in cluster.replicas if r.state == "ready")
    ratios = " ".join(f"{k}={v:.3f}" if v is not None else f"{k}=-" for k, v in values.items())
    avg_text = f"{average:.3f}" if average is not None else "  -  "
    log(f"clients={len(clients.running)} replicas={current} (ready {ready}) ratio={avg_text} "
        f"[{ratios}] target={args.target:g} raw={raw} desired={desired}" + (f"  => {action}" if action else ""))
    if action:
        summary["scale_events"].append({"t_s": round(t, 1), "from": current, "to": desired,
                                        "ratio": average, "ready": ready})
    while len(cluster.replicas) < desired:
        cluster.add_replica()
    while len(cluster.replicas) > desired:
        cluster.remove_replica()
    return {"t_s": f"{t:.1f}", "clients": len(clients.running), "replicas": current, "ready": ready,
            "ratio": f"{average:.4f}" if average is not None else "", "ratios": ratios,
            "desired": desired, "action": action, "requests_per_s": f"{rps:.3f}" if rps is not None else ""}


def write_outputs(args, workdir, rows, summary):
    csv_path, svg_path = os.path.join(workdir, "timeline.csv"), os.path.join(workdir, "timeline.svg")
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        w.writerows(rows)
    if rows:
        timeline_svg.write_svg(svg_path, rows, args.target,
                               f"llmserve local autoscaling: target {args.target:g}, replicas "
                               f"{args.min_replicas}..{args.max_replicas}, load {args.load}")
    ratios = [float(r["ratio"]) for r in rows if r["ratio"] != ""]
    summary.update({"num_syncs": len(rows), "max_ratio": max(ratios) if ratios else None,
                    "max_replicas_reached": max([int(r["replicas"]) for r in rows] + [0])})
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"wrote {csv_path}\nwrote {svg_path if rows else '(no plot: no sync happened)'}\n"
          f"wrote {os.path.join(workdir, 'summary.json')}", flush=True)


def main(argv):
    args = parse_args(argv)
    for tool in (args.llmserve, args.prometheus, args.nginx):
        if not shutil.which(tool):
            sys.exit(f"autoscale.sh: {tool} not found (Debian: apt-get install prometheus nginx-light)")
    workdir = args.workdir or tempfile.mkdtemp(prefix="llmserve-autoscale-")
    os.makedirs(workdir, exist_ok=True)
    workdir = os.path.abspath(workdir)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(130))
    print(f"autoscale: workdir {workdir}, duration {args.duration:g} s, load {args.load}, target "
          f"{args.target:g}, replicas {args.min_replicas}..{args.max_replicas}", flush=True)
    run(args, workdir)


if __name__ == "__main__":
    main(sys.argv[1:])
