#!/usr/bin/env bash
# A local autoscaling loop on loopback: llmserve replicas behind nginx, Prometheus with the chart's
# recording rules, seed-style clients stepping the load, and a controller applying the HPA's
# formula to triton:queue_compute:ratio. A demo and a test of the signal; Kubernetes does the
# scaling in production. See deploy/local/README.md; `autoscale.sh --help` lists the flags.
exec python3 "$(dirname "$0")/autoscale.py" "$@"
