#!/usr/bin/env bash
# deploy/containers with podman, end to end: the server image's `runtime-prebuilt` target built
# around $LLMSERVE (staged by deploy/containers/stage.sh with the libraries it links, so an ASan
# build runs too) on a Debian base bootstrapped here (no image registry is reachable: debootstrap
# → podman import; the tarball is cached in ~/.cache/llmserve), then run with its defaults as a
# non-root user on a read-only root filesystem: the image's metadata (user, ports, entrypoint,
# healthcheck), readiness and one generate request through published ports equal to `llmserve
# generate` on the host, metrics, the healthcheck, the client image's seed client against it,
# and SIGTERM (podman stop) draining to exit 0. The full compile (the `runtime` target) is too
# slow for CI; see deploy/containers/README.md. Needs root (debootstrap), podman, runc,
# debootstrap, curl, python3: scripts/install_deps.sh --test installs them.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=${LLMSERVE:?path of the llmserve binary}
SRC=${LLMSERVE_SOURCE_DIR:?repository root}
export LLMSERVE_DEFAULT_MODEL=${LLMSERVE_DEFAULT_MODEL:-$SRC/models/default}
t_start=$(date +%s)
WORK=$(mktemp -d)
TAG=llmserve-e2e-$$
BASE_IMAGE=localhost/$TAG-base:latest
SERVER_IMAGE=localhost/$TAG:server
CLIENT_IMAGE=localhost/$TAG:client
SERVER=$TAG-server
cleanup() {
  podman rm -f -t 0 "$SERVER" "$TAG-client" > /dev/null 2>&1
  podman rmi -f "$CLIENT_IMAGE" "$SERVER_IMAGE" "$BASE_IMAGE" > /dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
fails() { ! "$@" > /dev/null 2>&1; }
phase() { echo "-- $1 ($(($(date +%s) - t_start)) s)"; }
die() { echo "FAIL $*"; exit 1; }

# Not a skip: CI has all of this; elsewhere say what is missing.
[ "$(id -u)" == 0 ] || die "needs root (debootstrap and rootful podman); CI runs as root"
for tool in podman runc debootstrap curl python3 ldd dpkg-query; do
  command -v "$tool" > /dev/null || die "needs $tool: scripts/install_deps.sh --test installs it"
done

# The two podman workarounds this machine kind needs: crun cannot
# set rlimits or use the hybrid cgroup layout, and runc fails on the default ulimits.
cat > "$WORK/containers.conf" << 'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$WORK/containers.conf

# ---------- base image: debootstrap (cached) → podman import ----------
# The same Debian release as this machine, which built the binary (glibc, libstdc++).
. /etc/os-release
suite=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2> /dev/null)
[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2> /dev/null)
mirror=${mirror:-http://deb.debian.org/debian}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/llmserve
base_tar=$cache/$ID-$suite-minbase-$(dpkg --print-architecture).tar
mkdir -p "$cache"
phase "base image $base_tar"
(
  flock 9
  if [ ! -s "$base_tar" ]; then
    echo "debootstrap --variant=minbase $suite $mirror (cached afterwards)"
    debootstrap --variant=minbase "$suite" "$WORK/rootfs" "$mirror" > "$WORK/debootstrap.log" 2>&1 ||
      { tail -20 "$WORK/debootstrap.log"; exit 1; }
    # Like the registry's slim images: no package lists or downloaded .debs.
    rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
    tar -C "$WORK/rootfs" -cf "$base_tar.tmp.$$" . && mv "$base_tar.tmp.$$" "$base_tar"
    rm -rf "$WORK/rootfs"
  fi
) 9> "$cache/.lock" || die "could not bootstrap the $suite base"
podman import -q "$base_tar" "$BASE_IMAGE" > /dev/null || die "podman import"

# ---------- server and client images ----------
phase "stage $BIN"
"$SRC/deploy/containers/stage.sh" "$BIN" "$WORK/stage" || die "stage.sh"
phase "podman build --target runtime-prebuilt"
podman build -q --layers=false --format docker -f "$SRC/deploy/containers/Containerfile" --target runtime-prebuilt \
  --build-arg RUNTIME_IMAGE="$BASE_IMAGE" -t "$SERVER_IMAGE" "$WORK/stage" > "$WORK/build.log" 2>&1 ||
  { cat "$WORK/build.log"; die "server image build"; }
mkdir "$WORK/empty"
podman build -q --layers=false --format docker -f "$SRC/deploy/containers/Containerfile.client" \
  --build-arg SERVER_IMAGE="$SERVER_IMAGE" -t "$CLIENT_IMAGE" "$WORK/empty" > "$WORK/build-client.log" 2>&1 ||
  { cat "$WORK/build-client.log"; die "client image build"; }
echo "server image: $(podman image inspect -f '{{.Size}}' "$SERVER_IMAGE" | awk '{printf "%.0f MB", $1/1e6}')" \
  "(base $(podman image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"

cfg() { podman image inspect -f "$2" "$1"; }
check "server image user is numeric non-root 10001:10001" [ "$(cfg "$SERVER_IMAGE" '{{.Config.User}}')" == 10001:10001 ]
check "server image exposes 8000 8001 8002" [ "$(cfg "$SERVER_IMAGE" '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}')" == "8000/tcp 8001/tcp 8002/tcp " ]
check "entrypoint [llmserve], cmd [serve]" [ "$(cfg "$SERVER_IMAGE" '{{.Config.Entrypoint}} {{.Config.Cmd}}')" == "[llmserve] [serve]" ]
check "healthcheck probes /v2/health/ready" grep -q "/v2/health/ready" <(cfg "$SERVER_IMAGE" '{{.Config.Healthcheck.Test}}')
check "client entrypoint is the seed client" [ "$(cfg "$CLIENT_IMAGE" '{{.Config.Entrypoint}}')" == "[llmserve bench serve --seed-client]" ]

# ---------- run the server: image defaults (CMD serve), config by environment ----------
phase "podman run"
HTTP_PORT=$(free_port) METRICS_PORT=$(free_port)
san_env=()
for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do [ -n "${!v:-}" ] && san_env+=(-e "$v"); done
# podman logs errors about the healthcheck's systemd timer (there is no systemd here) into
# run.err; the healthcheck itself is run by hand below.
podman run -d --name "$SERVER" --read-only -p "127.0.0.1:$HTTP_PORT:8000" -p "127.0.0.1:$METRICS_PORT:8002" \
  -e OMP_NUM_THREADS=1 -e LLMSERVE_NUM_KV_BLOCKS=64 "${san_env[@]}" "$SERVER_IMAGE" > /dev/null 2> "$WORK/run.err" ||
  { cat "$WORK/run.err"; die "podman run"; }
H=127.0.0.1:$HTTP_PORT
ready=no
for _ in $(seq 600); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$H/v2/health/ready")" == 200 ] && { ready=yes; break; }
  [ "$(podman inspect -f '{{.State.Running}}' "$SERVER")" == true ] || break
  sleep 0.2
done
[ $ready == yes ] || { podman logs "$SERVER"; die "the server in the container did not become ready"; }
phase "server ready"
check "ready 200 through the published port" [ "$(curl -s -o /dev/null -w '%{http_code}' "$H/v2/health/ready")" == 200 ]
check "serves the embedded default model from the image" grep -q "model 'default'.* is ready" <(podman logs "$SERVER" 2>&1)

PROMPT="ROMEO:"
want=$("$BIN" generate --prompt "$PROMPT" --max-tokens 12 --temperature 0 --num-kv-blocks 64 --json 2> /dev/null | json "d['text']")
out=$(curl -X POST -s --max-time 60 "$H/v2/models/default/generate" -d "{\"text_input\": \"$PROMPT\", \"max_tokens\": 12, \"temperature\": 0}")
got=$(echo "$out" | json "d['text_output']")
check "generate through the published port: non-empty" [ -n "$got" ]
check "  ... equals llmserve generate on the host" [ "$got" == "$want" ]
check "metrics through the published port count it" grep -q '^nv_inference_request_success{model="default",version="1"} 1$' \
  <(curl -s "127.0.0.1:$METRICS_PORT/metrics")

pid=$(podman inspect -f '{{.State.Pid}}' "$SERVER")
check "server runs as uid 10001 (seen from the host)" [ "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")" == 10001 ]
check "  ... and inside (id -u)" [ "$(podman exec "$SERVER" id -u)" == 10001 ]
check "llmserve is PID 1 (gets the runtime's SIGTERM)" [ "$(podman exec "$SERVER" cat /proc/1/comm)" == llmserve ]
check "image healthcheck passes (podman healthcheck run)" podman healthcheck run "$SERVER"
mapfile -d '' hc < <(cfg "$SERVER_IMAGE" '{{json .Config.Healthcheck.Test}}' |
  python3 -c 'import json,sys; t=json.load(sys.stdin); assert t[0]=="CMD"; sys.stdout.write("\0".join(t[1:]) + "\0")')
check "  ... and fails against a port that is not ready (the metrics port)" \
  fails podman exec -e LLMSERVE_HTTP_PORT=8002 "$SERVER" "${hc[@]}"

# ---------- the client image against it ----------
phase "client"
before=$(curl -s "$H/v2/models/default/stats" | json "d['model_stats'][0]['inference_stats']['success']['count']")
podman run --name "$TAG-client" --rm --network host -e TRTLLM_MODEL_NAME=default -e TRTLLM_TRITON_URL="$H" \
  -e TRTLLM_MAX_TOKENS=4 "${san_env[@]}" "$CLIENT_IMAGE" --num-requests 2 > "$WORK/client.out" 2> "$WORK/client.err"
rc=$?
check "client container: 2 requests then exit 0" [ $rc == 0 ]
check "  ... two 'completed in' lines" [ "$(grep -c '^  completed in .* seconds\.$' "$WORK/client.out")" == 2 ]
check "  ... the server saw them" [ "$(curl -s "$H/v2/models/default/stats" | json "d['model_stats'][0]['inference_stats']['success']['count']")" == $((before + 2)) ]
[ $rc == 0 ] || { cat "$WORK/client.out" "$WORK/client.err"; }

# ---------- SIGTERM: podman stop drains and exits 0 ----------
phase "stop"
podman stop -t 60 "$SERVER" > /dev/null 2>> "$WORK/run.err"
check "podman stop: exit code 0" [ "$(podman inspect -f '{{.State.ExitCode}}' "$SERVER")" == 0 ]
check "  ... after draining" grep -q "draining" <(podman logs "$SERVER" 2>&1)

phase "done"
finish
