#!/usr/bin/env bash
# bench/centrifugo.sh — run nerutalk-bench's fanout scenario (or its chat scenario: many small
# groups) against Centrifugo, the yardstick for NeruTalk's cost per delivery and per message.
# Installs Centrifugo if it is missing, starts it on loopback with a configuration like
# NeruTalk's (HS256 connection tokens; one namespace, "chat", whose channels keep a history and
# let subscribers publish), runs the tool with -target centrifugo and stops it again.
#
#   bench/centrifugo.sh -server-cpus 0 -bench-cpus 1 -- -fanout-sizes 1k -fanout-rates 30k -runs 3
#   bench/centrifugo.sh -scenarios loopback,chat -server-cpus 0 -bench-cpus 1 -- -chat-rates 2.5k,5k
#
# Options:
#   -scenarios LIST     the tool's scenarios: fanout (default), chat, and loopback before chat for the
#                       machine's floor (as bench/run.sh -scenarios chatcpu runs against NeruTalk)
#   -port N             Centrifugo's port on 127.0.0.1 (default 28000)
#   -server-cpus LIST   pin Centrifugo to these CPUs (taskset -c), e.g. 0
#   -bench-cpus LIST    pin the generator to these CPUs, e.g. 1
#   -out FILE           result file (default bench/results/<date>-centrifugo.json, + .log)
#   -- ARGS             passed to nerutalk-bench as they are
#
# Environment: CENTRIFUGO=path of the binary (default: centrifugo on PATH, then $(go env
# GOPATH)/bin/centrifugo, else `go install github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION`,
# v6.9.1 by default; the build takes several minutes).
#
# The NeruTalk runs to compare with, back to back, with the same tool arguments:
#   bench/run.sh -server-cpus 0 -bench-cpus 1 -scenarios fanout -- -fanout-sizes 1k -fanout-rates 30k -runs 3
#   bench/run.sh -server-cpus 0 -bench-cpus 1 -scenarios chatcpu -- -chat-rates 2.5k,5k
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=28000 OUT="" SERVER_CPUS="" BENCH_CPUS="" SCENARIOS=fanout
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    -scenarios) SCENARIOS="$2"; shift ;;
    -port) PORT="$2"; shift ;;
    -server-cpus) SERVER_CPUS="$2"; shift ;;
    -bench-cpus) BENCH_CPUS="$2"; shift ;;
    -out) OUT="$2"; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|-help|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "centrifugo.sh: unknown option $1 (see -help)" >&2; exit 2 ;;
  esac
  shift
done

VERSION=${CENTRIFUGO_VERSION:-v6.9.1}
BIN=${CENTRIFUGO:-}
if [ -z "$BIN" ]; then
  if command -v centrifugo >/dev/null 2>&1; then BIN=$(command -v centrifugo)
  else BIN="$(go env GOPATH)/bin/centrifugo"; fi
fi
if [ ! -x "$BIN" ]; then
  echo "==> installing Centrifugo $VERSION (go install; this compiles it and takes minutes)" >&2
  GOBIN=$(dirname "$BIN") go install "github.com/centrifugal/centrifugo/v6@$VERSION"
fi

STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p bench/results
OUT=${OUT:-bench/results/$STAMP-centrifugo.json}
LOG=${OUT%.json}.log
WORK=$(mktemp -d /tmp/centrifugo-bench.XXXXXX)
PID=""
cleanup() {
  if [ -n "$PID" ]; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

go build -o "$WORK/nerutalk-bench" ./cmd/nerutalk-bench

SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
API_KEY=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
# Like NeruTalk: HMAC (HS256) connection tokens; the "chat" namespace keeps each channel's last
# 1,000 messages for an hour (in memory: Centrifugo's memory engine) and lets subscribers
# publish, so a client's publish is a NeruTalk send_message: one client sends, every member
# receives. Presence and join/leave messages are off, as NeruTalk's group presence is not what
# the fanout measures.
cat >"$WORK/config.json" <<EOF
{
  "log": {"level": "warn"},
  "http_server": {"address": "127.0.0.1", "port": $PORT},
  "health": {"enabled": true},
  "client": {
    "token": {"hmac_secret_key": "$SECRET"}
  },
  "http_api": {"key": "$API_KEY"},
  "prometheus": {"enabled": true},
  "channel": {
    "namespaces": [{
      "name": "chat",
      "history_size": 1000,
      "history_ttl": "1h",
      "allow_subscribe_for_client": true,
      "allow_publish_for_subscriber": true,
      "allow_history_for_subscriber": true
    }]
  }
}
EOF
"$BIN" checkconfig --config "$WORK/config.json" >&2

PIN=()
if [ -n "$SERVER_CPUS" ]; then PIN=(taskset -c "$SERVER_CPUS"); fi
BENCH_PIN=()
if [ -n "$BENCH_CPUS" ]; then BENCH_PIN=(taskset -c "$BENCH_CPUS"); fi
"${PIN[@]}" "$BIN" --config "$WORK/config.json" >"$WORK/centrifugo.log" 2>&1 &
PID=$!
up=0
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then up=1; break; fi
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.2
done
if [ $up = 0 ]; then
  echo "centrifugo.sh: Centrifugo did not come up; its log:" >&2
  tail -n 30 "$WORK/centrifugo.log" >&2
  exit 1
fi
echo "==> Centrifugo $("$BIN" version 2>/dev/null | head -1) pid $PID on 127.0.0.1:$PORT" | tee -a "$LOG" >&2

GIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
status=0
"${BENCH_PIN[@]}" "$WORK/nerutalk-bench" -target centrifugo -scenario "$SCENARIOS" -addr "http://127.0.0.1:$PORT" -pid "$PID" \
  -centrifugo-secret "$SECRET" -label "$GIT" -note "bench/centrifugo.sh, Centrifugo $VERSION" "${EXTRA[@]}" \
  >"$WORK/results.jsonl" 2> >(tee -a "$LOG" >&2) || status=1
jq -s --arg date "$STAMP" --arg git "$GIT" '{date: $date, git: $git, run: "bench/centrifugo.sh", results: .}' "$WORK/results.jsonl" >"$OUT"
echo "==> results: $OUT (human summary: $LOG)" >&2
if [ $status != 0 ]; then tail -n 20 "$WORK/centrifugo.log" >&2; fi
exit $status
