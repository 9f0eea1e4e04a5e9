#!/usr/bin/env bash
# Scale benchmark: burnwatch on the workload of the performance anchor (4 targets exposing one
# route counter per SLO, scraped every 15 s; HTTP probes of health endpoints every 10 s; 30 s
# evaluation; a webhook receiver), measured from outside the agent.
#
#   scripts/bench-scale.sh N_SLOS N_PROBES SECONDS
#
# Builds the release binary (once), starts `burnwatch synthetic` (the fleet: N_SLOS routes over 4
# metrics pages, N_PROBES health endpoints) and a loopback webhook receiver that counts
# deliveries, writes one ratio SLO per route (30d, 99.9 %, the default Sloth page and ticket tiers)
# and one HTTP probe per health endpoint, runs the agent, waits BENCH_WARMUP seconds (default 60)
# and then samples for SECONDS: the agent's CPU (utime + stime, /proc/PID/stat) and RSS (VmRSS,
# every 5 s: median and peak), its scrape durations (/api/v1/targets), probe checks
# (/api/v1/probes), dropped notifications (/api/v1/alerts/stats) and, at the end,
# burnwatch_evaluation_duration_seconds from /metrics. Prints one markdown table row on stdout
# (progress goes to stderr):
#
#   | SLOs / probes | cores | RSS median (peak) | max scrape duration | dropped (results, notifications) | evaluation ms | scrapes, checks done / due | machine load |
#
# "dropped results": probe results alerting could not count ("alerting is behind" warnings) plus
# checks and scrapes that were due in the measured interval and did not happen. "dropped
# notifications": notifications refused by a full queue or failed for good, since start.
# "machine load": the share of both cores busy (all processes, /proc/stat) during the measurement.
#
# BENCH_GROUPED=1 writes the SLOs as grouped rules instead, the way a company reaches many SLOs:
# one rule per target with `group_by: [route]`, whose instances (one per route) the agent creates
# from the scraped series; the row's first cell then says "grouped".
#
# Environment: BENCH_WARMUP (seconds, default 60), BENCH_KEEP=1 keeps the work directory (rules,
# config, logs) and prints its path, BENCH_READY_TIMEOUT (seconds the agent may take to become
# ready, default 600), BENCH_MEMORY_LIMIT_MIB (optional bound on the agent's address space),
# CARGO_TARGET_DIR as for cargo.
# Every process it starts is stopped on exit, error or interrupt.

set -euo pipefail

usage() {
    echo "usage: $0 N_SLOS N_PROBES SECONDS" >&2
    exit 2
}
[[ $# -eq 3 ]] || usage
N_SLOS=$1 N_PROBES=$2 DURATION=$3
for n in "$N_SLOS" "$N_PROBES" "$DURATION"; do
    [[ $n =~ ^[0-9]+$ ]] || usage
done
((N_SLOS >= 4 && DURATION >= 15)) || {
    echo "$0: N_SLOS must be at least 4 and SECONDS at least 15" >&2
    exit 2
}
WARMUP=${BENCH_WARMUP:-60}
GROUPED=${BENCH_GROUPED:-0}
READY_TIMEOUT=${BENCH_READY_TIMEOUT:-600}
TARGETS=4
SAMPLE_EVERY=5

ROOT=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "bench-scale: $*" >&2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/burnwatch-bench.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # Bounded: a process that ignores SIGTERM for 10 s is killed.
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "building the release binary"
(cd "$ROOT" && cargo build --release --quiet --bin burnwatch)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/burnwatch

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
SYN_PORT=$(free_port)
HOOK_PORT=$(free_port)
AGENT_PORT=$(free_port)
SYN="http://127.0.0.1:$SYN_PORT"
AGENT="http://127.0.0.1:$AGENT_PORT"

# The fleet.
"$BIN" synthetic --listen "127.0.0.1:$SYN_PORT" --routes "$N_SLOS" --targets "$TARGETS" \
    --health "$N_PROBES" 2>"$WORK/synthetic.log" &
PIDS+=($!)

# The webhook receiver: counts POSTs, GET answers the count.
cat >"$WORK/hook.py" <<'EOF'
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

count = 0
lock = threading.Lock()

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            count += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        body = f"{count}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
EOF
python3 "$WORK/hook.py" "$HOOK_PORT" 2>"$WORK/hook.log" &
PIDS+=($!)

# Rules: per target, files (services) of at most CHUNK of its SLOs and CHUNK of every TARGETS-th
# probe (a rules file holds at most 200,000 YAML nodes); the first file of a target declares it.
CHUNK=4000
log "writing rules for $N_SLOS SLOs and $N_PROBES probes"
mkdir -p "$WORK/rules" "$WORK/data"
per_target=$(((N_SLOS > N_PROBES ? N_SLOS : N_PROBES) / TARGETS + 1))
for ((k = 0; k < TARGETS; k++)); do
    for ((c = 0; c * CHUNK < per_target; c++)); do
        first=$((k + c * CHUNK * TARGETS))
        ((c == 0 || first < N_PROBES || (GROUPED != 1 && first < N_SLOS))) || continue
        awk -v k="$k" -v t="$TARGETS" -v c="$c" -v chunk="$CHUNK" -v slos="$N_SLOS" \
            -v probes="$N_PROBES" -v base="$SYN" -v grouped="$GROUPED" 'BEGIN {
            first = k + c * chunk * t
            last = k + (c + 1) * chunk * t
            print "version: burnwatch/v1"
            print "service: bench-" k (c > 0 ? "-" c : "")
            print "owner: bench@example.com"
            if (probes > first) {
                print "probes:"
                for (i = first; i < probes && i < last; i += t) {
                    print "  - name: health-" i
                    print "    http:"
                    print "      url: " base "/health/" i
                    print "    interval: 10s"
                }
            }
            if (c == 0) {
                print "scrape:"
                print "  - name: bench-" k
                print "    url: " base "/targets/" k "/metrics"
                print "    interval: 15s"
                print "    sample_limit: 1000000"
                print "    body_limit: 256MiB"
            }
            if (grouped == 1 && c == 0) {
                # One rule for every route of this target: an instance per route.
                print "slos:"
                print "  - name: routes"
                print "    objective: 99.9"
                print "    window: 30d"
                print "    group_by: [route]"
                print "    max_instances: " int(slos / t + 1)
                print "    indicator:"
                print "      ratio:"
                print "        bad: '\''bench_requests_total{job=\"bench-" k "\",code=~\"5..\"}'\''"
                print "        total: '\''bench_requests_total{job=\"bench-" k "\"}'\''"
            }
            if (grouped != 1 && slos > first) {
                print "slos:"
                for (r = first; r < slos && r < last; r += t) {
                    print "  - name: r" r
                    print "    objective: 99.9"
                    print "    window: 30d"
                    print "    indicator:"
                    print "      ratio:"
                    print "        bad: '\''bench_requests_total{route=\"r" r "\",code=~\"5..\"}'\''"
                    print "        total: '\''bench_requests_total{route=\"r" r "\"}'\''"
                }
            }
        }' >"$WORK/rules/bench-$k-$c.yaml"
    done
done

cat >"$WORK/burnwatch.yaml" <<EOF
listen: 127.0.0.1:$AGENT_PORT
data_dir: $WORK/data
rules: [$WORK/rules/*.yaml]
evaluation_interval: 30s
reload_check_interval: 0s
log_level: warn
alerting:
  route:
    receiver: hook
    # route: grouped instances share their rule's slo label.
    group_by: [service, slo, route]
  receivers:
    - name: hook
      webhook:
        - url: http://127.0.0.1:$HOOK_PORT/
EOF

# The subshell execs the agent, so $! is the agent's PID; BENCH_MEMORY_LIMIT_MIB bounds its
# address space (an allocation beyond it aborts the agent instead of pushing the machine into swap).
(
    if [[ -n ${BENCH_MEMORY_LIMIT_MIB:-} ]]; then
        ulimit -v $((BENCH_MEMORY_LIMIT_MIB * 1024))
    fi
    exec "$BIN" run --config "$WORK/burnwatch.yaml"
) >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")

# A saturated agent may answer slowly: two tries of 20 s each. A figure the agent did not answer
# for is printed as n/a.
get() {
    curl -sf --max-time 20 "$AGENT$1" || curl -sf --max-time 20 "$AGENT$1"
}

log "waiting for the agent to be ready (at most ${READY_TIMEOUT}s)"
start=$SECONDS
until get /readyz >/dev/null 2>&1; do
    kill -0 "$AGENT_PID" 2>/dev/null || {
        log "the agent exited; its log:"
        tail -20 "$WORK/agent.log" >&2
        exit 1
    }
    ((SECONDS - start < READY_TIMEOUT)) || {
        log "not ready after ${READY_TIMEOUT}s"
        exit 1
    }
    sleep 1
done
log "ready after $((SECONDS - start))s; warming up for ${WARMUP}s"
sleep "$WARMUP"

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$AGENT_PID/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$AGENT_PID/status"; }
# Busy and total jiffies of the whole machine.
machine() { awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8; print busy, busy + $5 + $6 }' /proc/stat; }
# Sum (max) of a numeric field over the list under a key of the JSON document on stdin.
json_sum() {
    python3 -c '
import json, sys
print(sum(int(i.get(sys.argv[2]) or 0) for i in json.load(sys.stdin)[sys.argv[1]]))' "$1" "$2" 2>/dev/null
}
json_max() {
    python3 -c '
import json, sys
print(max([float(i.get(sys.argv[2]) or 0) for i in json.load(sys.stdin)[sys.argv[1]]] + [0.0]))' "$1" "$2" 2>/dev/null
}
dropped_notifications() {
    get /api/v1/alerts/stats | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(sum(int(i.get(k) or 0) for i in s.get("integrations", [])
          for k in ("rejected", "failedPermanent", "failedRetriesExhausted")))' 2>/dev/null
}

# The API reads the snapshot of the newest evaluation: counters are compared between two
# snapshots' instants (`at`, ms), not the wall clock.
snapshot_at() {
    get /api/v1/status | python3 -c 'import json, sys; print(json.load(sys.stdin)["at"])' 2>/dev/null ||
        echo nan
}
at0=$(snapshot_at)
checks0=$(get /api/v1/probes | json_sum probes checks_total || echo nan)
scrapes0=$(get /api/v1/targets | json_sum targets scrapes_total || echo nan)
behind0=$(grep -c "alerting is behind" "$WORK/agent.log" || true)
read -r busy0 all0 < <(machine)
ticks0=$(cpu_ticks)
t0=$(date +%s.%N)
log "measuring for ${DURATION}s"
rss=() max_scrape=nan
end=$((SECONDS + DURATION))
while ((SECONDS < end)); do
    sleep "$SAMPLE_EVERY"
    rss+=("$(rss_kib || echo 0)")
    d=$(get /api/v1/targets | json_max targets duration_secs || echo nan)
    max_scrape=$(python3 -c "
import math
a, b = float('$max_scrape'), float('$d')
print(b if math.isnan(a) else a if math.isnan(b) else max(a, b))")
done
ticks1=$(cpu_ticks)
t1=$(date +%s.%N)
read -r busy1 all1 < <(machine)
at1=$(snapshot_at)
checks1=$(get /api/v1/probes | json_sum probes checks_total || echo nan)
scrapes1=$(get /api/v1/targets | json_sum targets scrapes_total || echo nan)
behind1=$(grep -c "alerting is behind" "$WORK/agent.log" || true)
notif_dropped=$(dropped_notifications || echo nan)
delivered=$(curl -sf --max-time 10 "http://127.0.0.1:$HOOK_PORT/" || echo "?")
# /metrics is megabytes per thousand SLOs: a page that does not arrive leaves the figure "nan".
curl -sf --max-time 120 "$AGENT/metrics" >"$WORK/metrics.txt" || true
eval_secs=$(awk '/^burnwatch_evaluation_duration_seconds[ {]/ { print $NF; exit }' "$WORK/metrics.txt")
metrics_bytes=$(wc -c <"$WORK/metrics.txt")

python3 - "$N_SLOS" "$N_PROBES" "$TARGETS" "$ticks0" "$ticks1" "$t0" "$t1" "$(getconf CLK_TCK)" \
    "$max_scrape" "$checks0" "$checks1" "$scrapes0" "$scrapes1" "$behind0" "$behind1" \
    "$notif_dropped" "${eval_secs:-nan}" "$busy0" "$all0" "$busy1" "$all1" "$delivered" \
    "$metrics_bytes" "$at0" "$at1" "$GROUPED" "${rss[@]}" <<'EOF'
import statistics, sys
a = sys.argv[1:]
grouped = a.pop(25) == "1"
slos, probes, targets = int(a[0]), int(a[1]), int(a[2])
ticks0, ticks1, t0, t1, hz = int(a[3]), int(a[4]), float(a[5]), float(a[6]), int(a[7])
max_scrape = float(a[8])
checks0, checks1, scrapes0, scrapes1 = map(float, a[9:13])
behind0, behind1, notif_dropped = int(a[13]), int(a[14]), float(a[15])
eval_secs = float(a[16])
busy0, all0, busy1, all1 = map(int, a[17:21])
delivered, metrics_bytes = a[21], int(a[22])
at0, at1 = float(a[23]), float(a[24])
rss = [int(x) for x in a[25:]] or [0]
nan = float("nan")
n = lambda v, f="{:.0f}": "n/a" if v != v else f.format(v)
wall = t1 - t0
cores = (ticks1 - ticks0) / hz / wall
checks, scrapes = checks1 - checks0, scrapes1 - scrapes0
# Due between the two snapshots: every probe each 10 s, every target each 15 s (one of each may
# straddle an edge, hence the rounding down).
span = (at1 - at0) / 1000
missed_known = lambda *v: all(x == x for x in v)
checks_due, scrapes_due = (nan, nan) if span != span else (int(probes * span / 10), int(targets * span / 15))
missed = max(0, checks_due - checks) + max(0, scrapes_due - scrapes) if missed_known(checks_due, checks, scrapes_due, scrapes) else nan
mib = lambda kib: kib / 1024
machine = (busy1 - busy0) / max(1, all1 - all0)
kind = " grouped" if grouped else ""
print(f"| {slos:,}{kind} / {probes:,} | {cores:.3f} | {mib(statistics.median(rss)):,.0f} MiB "
      f"({mib(max(rss)):,.0f}) | {n(max_scrape, '{:.3f}')} s | {n(behind1 - behind0 + missed)}, "
      f"{n(notif_dropped)} | {n(eval_secs * 1000, '{:.1f}')} | {n(scrapes)}/{n(scrapes_due)}, "
      f"{n(checks)}/{n(checks_due)} | {machine * 100:.0f} % |")
print(f"bench-scale: {wall:.0f} s measured; webhook deliveries since start: {delivered}; "
      f"/metrics {metrics_bytes / 1e6:.1f} MB; RSS samples (MiB): "
      f"{' '.join(f'{mib(r):.0f}' for r in rss)}", file=sys.stderr)
EOF
