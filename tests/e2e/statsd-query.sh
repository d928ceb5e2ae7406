#!/usr/bin/env bash
# Print statsd's answer to one management command (gauges, counters, timers,
# stats, health, ...), without the trailing END line.
# Usage: tests/e2e/statsd-query.sh <command> [--json]
# Env:   STATSD_MGMT_PORT (default 18126)
# Exit:  0 ok; 1 statsd not answering; 2 usage. See statsd-query.js.
set -euo pipefail
exec node "$(cd "$(dirname "$0")" && pwd)/statsd-query.js" "$@"
