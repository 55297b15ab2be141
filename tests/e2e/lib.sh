# Shared helpers of the e2e shell tests; a test sources it after `set -uo pipefail`:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# check NAME COMMAND... runs a condition and counts it; finish [LABEL] prints the tally and fails
# the test when any check failed.
passed=0 failed=0
check() {  # check NAME CONDITION-COMMAND...
  local name=$1; shift
  if "$@"; then echo "ok   $name ($SECONDS s)"; passed=$((passed + 1)); else echo "FAIL $name ($SECONDS s)"; failed=$((failed + 1)); fi
}
finish() {  # finish [LABEL]: the test's last command
  echo "${1:+$1: }$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }  # json EXPR < doc: EXPR over d
# wait_ready HOST:PORT [PID]: until /v2/health/ready answers 200 (0), or PID exits or 60 s pass (1).
wait_ready() {
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$1/v2/health/ready")" == 200 ] && return 0
    [ -n "${2:-}" ] && ! kill -0 "$2" 2> /dev/null && return 1
    sleep 0.2
  done
  return 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
