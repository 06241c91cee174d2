#!/usr/bin/env bash
# bench/run.sh — build nerutalk and nerutalk-bench, start a fresh server on loopback for each
# scenario (temporary data folder with SQLite, or a fresh PostgreSQL database with -pg), run the
# load scenarios and write bench/results/<date>.json (+ .log with the human summaries).
#
#   bench/run.sh                       quick run of every scenario on SQLite (about 6 minutes)
#   bench/run.sh -full                 the sizes of docs/BENCHMARKS.md (5 s warm-up, 30 s windows, 3 runs)
#   bench/run.sh -pg -scenarios chat   PostgreSQL (+ Redis URL) instead of SQLite
#   bench/run.sh -pg -nodes 2 -scenarios chat   two nodes of one deployment, WebSockets spread over both
#   bench/run.sh -server-cpus 0 -bench-cpus 1 -- -chat-rates 2k,4k
#
# Options:
#   -pg                   PostgreSQL: a database created with psql on postgres://postgres@127.0.0.1:5432
#                         (dropped afterwards), and NERUTALK_REDIS_URL=redis://127.0.0.1:6379/0 (a fresh
#                         NERUTALK_REDIS_PREFIX each time)
#   -no-redis             with -pg and one node: no NERUTALK_REDIS_URL (the in-process bus and limiters), to
#                         tell what Redis adds to a PostgreSQL run
#   -nodes N              with -pg: N server processes on ports -port, -port+1, ... sharing the database
#                         and Redis; the tool spreads its WebSockets over them (-ws-addrs). The server's
#                         CPU is all the nodes' (-node-pids); -pid, memory and config are the first's
#   -scenarios LIST       comma-separated: idle,fanout,chat,auth,loopback,calls,chatcpu,bystander (default: the first five;
#                         loopback needs no server: it measures the machine's cost of moving frames; chatcpu is
#                         loopback then chat in one invocation, so the chat result gives each step's server CPU
#                         per acked message next to the loopback floor of the same run; bystander runs
#                         the server with its default limits ON: it measures abuse and counts refusals)
#   -full                 full sizes instead of the quick defaults
#   -server-cpus LIST     pin the server to these CPUs (taskset -c), e.g. 0
#   -bench-cpus LIST      pin the generator to these CPUs, e.g. 1
#   -pg-cpus LIST         with -pg: pin the local PostgreSQL (its postmaster and every process of it, so
#                         new backends too) to these CPUs for the run, e.g. the server's; restored to all
#                         CPUs at the end. Otherwise its backends run wherever the kernel puts them,
#                         often beside the generator
#   -server-gomaxprocs N  GOMAXPROCS of the server; -bench-gomaxprocs N the same for the generator
#   -port N               server port on 127.0.0.1 (default 18080)
#   -out FILE             result file (default bench/results/<date>.json)
#   -bin DIR              use DIR/nerutalk and DIR/nerutalk-bench instead of building them (A/B runs
#                         of two builds, e.g. go build -o /tmp/before/nerutalk ./cmd/nerutalk at the old commit)
#   -perf                 record the server's CPU profile with perf during each scenario
#                         (bench/results/<date>-<scenario>-perf.txt)
#   -pprof                run the server with NERUTALK_PPROF=on and an admin account, and have the tool
#                         save Go profiles (CPU per step or bystander phase, heap per idle level) in
#                         bench/results/<date>-pprof/; the admin's password is random unless
#                         BENCH_ADMIN_PASSWORD is set (to fetch other profiles, e.g. a trace, by hand)
#   -- ARGS               passed to nerutalk-bench as they are (they override the defaults above)
#
# Scenarios idle, fanout and chat run the server with cheap argon2 parameters
# (NERUTALK_ARGON2_MEMORY_KIB=8 NERUTALK_ARGON2_TIME=1) so that registering thousands of users is
# quick; auth runs it with the defaults, which is what it measures. Rate limits are off throughout,
# except for bystander, which needs the server's default limits (start_server's second argument).
set -euo pipefail
cd "$(dirname "$0")/.."

PG=0 NOREDIS=0 NODES=1 FULL=0 PERF=0 PPROF=0 PORT=18080 OUT="" SCENARIOS="idle,fanout,chat,auth,loopback"
SERVER_CPUS="" BENCH_CPUS="" PG_CPUS="" SERVER_GMP="" BENCH_GMP="" PREBUILT=""
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    -pg) PG=1 ;;
    -no-redis) NOREDIS=1 ;;
    -nodes) NODES="$2"; shift ;;
    -full) FULL=1 ;;
    -perf) PERF=1 ;;
    -pprof) PPROF=1 ;;
    -scenarios) SCENARIOS="$2"; shift ;;
    -server-cpus) SERVER_CPUS="$2"; shift ;;
    -pg-cpus) PG_CPUS="$2"; shift ;;
    -bench-cpus) BENCH_CPUS="$2"; shift ;;
    -server-gomaxprocs) SERVER_GMP="$2"; shift ;;
    -bench-gomaxprocs) BENCH_GMP="$2"; shift ;;
    -port) PORT="$2"; shift ;;
    -out) OUT="$2"; shift ;;
    -bin) PREBUILT="$2"; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|-help|--help) sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see -help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$NODES" != 1 ] && [ $PG = 0 ]; then echo "run.sh: -nodes needs -pg (nodes share PostgreSQL and Redis)" >&2; exit 2; fi
if [ $NOREDIS = 1 ] && { [ $PG = 0 ] || [ "$NODES" != 1 ]; }; then echo "run.sh: -no-redis goes with -pg and one node" >&2; exit 2; fi

STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p bench/results
OUT=${OUT:-bench/results/$STAMP.json}
LOG=${OUT%.json}.log
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nerutalk-bench.XXXXXX")
BIN=$WORK/bin
ADDR=127.0.0.1:$PORT
SERVER_PID="" SERVER_PIDS=() WS_ADDRS="" DB_NAME="" PERF_PID=""

log() { printf '==> %s\n' "$*" | tee -a "$LOG" >&2; }

stop_server() {
  if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" 2>/dev/null || true; PERF_PID=""; fi
  for pid in "${SERVER_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  SERVER_PIDS=() SERVER_PID="" WS_ADDRS=""
  if [ -n "$DB_NAME" ]; then
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
    # the run's Redis keys (bus stream, presence) are under NERUTALK_REDIS_PREFIX=$DB_NAME
    redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "$DB_NAME:*" 2>/dev/null | xargs -r -n 500 redis-cli -h 127.0.0.1 -p 6379 del >/dev/null 2>&1 || true
    DB_NAME=""
  fi
}
# pin_postgres LIST: set the CPU affinity of every PostgreSQL process (backends fork from the
# postmaster and inherit it).
pin_postgres() {
  local p
  for p in $(pgrep -x postgres); do taskset -a -p -c "$1" "$p" >/dev/null || true; done
}
cleanup() {
  stop_server
  if [ -n "$PG_CPUS" ]; then pin_postgres "0-$(($(nproc --all) - 1))"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Both ends hold one descriptor per connection: lift the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$BIN"
if [ -n "$PREBUILT" ]; then
  log "using the binaries of $PREBUILT"
  cp "$PREBUILT/nerutalk" "$PREBUILT/nerutalk-bench" "$BIN/"
else
  log "building into $BIN"
  go build -o "$BIN/nerutalk" ./cmd/nerutalk
  go build -o "$BIN/nerutalk-bench" ./cmd/nerutalk-bench
fi

# start_server cheap|default [limits] — a fresh server (with "limits": the default rate limits on) (-nodes of them) on a fresh database; sets SERVER_PID
# (the first node), SERVER_PIDS and WS_ADDRS (the other nodes, for -ws-addrs).
start_server() {
  local argon=$1 limits=${2:-off} data=$WORK/data-$RANDOM
  SERVER_ENV=(NERUTALK_DATA_DIR="$data" NERUTALK_LOG_LEVEL=warn NERUTALK_ACCESS_TOKEN_TTL=4h NERUTALK_MAX_GROUP_MEMBERS=10000)
  if [ "$argon" = cheap ]; then SERVER_ENV+=(NERUTALK_ARGON2_MEMORY_KIB=8 NERUTALK_ARGON2_TIME=1); fi
  if [ "$limits" != limits ]; then SERVER_ENV+=(NERUTALK_RATE_LIMITS=off); fi
  if [ $PG = 1 ]; then
    DB_NAME="nerutalk_bench_$(date +%s)_$RANDOM"
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $DB_NAME" >/dev/null
    SERVER_ENV+=(NERUTALK_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB_NAME?sslmode=disable")
    if [ $NOREDIS = 0 ]; then SERVER_ENV+=(NERUTALK_REDIS_URL="redis://127.0.0.1:6379/0" NERUTALK_REDIS_PREFIX="$DB_NAME"); fi
  fi
  if [ -n "$SERVER_GMP" ]; then SERVER_ENV+=(GOMAXPROCS="$SERVER_GMP"); fi
  if [ $PPROF = 1 ]; then SERVER_ENV+=(NERUTALK_PPROF=on); fi
  local -a pin=()
  if [ -n "$SERVER_CPUS" ]; then pin=(taskset -c "$SERVER_CPUS"); fi
  local n addr
  for n in $(seq 0 $((NODES - 1))); do
    addr=127.0.0.1:$((PORT + n))
    if curl -fsS -o /dev/null "http://$addr/healthz" 2>/dev/null; then
      echo "run.sh: something already answers on $addr (another run?); stop it or pass -port" >&2
      exit 1
    fi
    env "${SERVER_ENV[@]}" NERUTALK_ADDR="$addr" "${pin[@]}" "$BIN/nerutalk" serve >"$WORK/server-$n.log" 2>&1 &
    SERVER_PIDS+=($!)
    if [ "$n" -gt 0 ]; then WS_ADDRS="${WS_ADDRS:+$WS_ADDRS,}http://$addr"; fi
    local up=0
    for _ in $(seq 1 150); do
      if curl -fsS "http://$addr/healthz" >/dev/null 2>&1; then up=1; break; fi
      if ! kill -0 "${SERVER_PIDS[$n]}" 2>/dev/null; then break; fi
      sleep 0.2
    done
    if [ $up = 0 ]; then
      echo "run.sh: server $n did not come up; its log:" >&2
      tail -n 30 "$WORK/server-$n.log" >&2
      exit 1
    fi
    log "server pid ${SERVER_PIDS[$n]} on $addr ($([ $PG = 1 ] && echo "PostgreSQL $DB_NAME + Redis" || echo SQLite), argon2 $argon, rate limits $([ "$limits" = limits ] && echo on || echo off))"
  done
  SERVER_PID=${SERVER_PIDS[0]}
  if [ $PPROF = 1 ]; then make_admin; fi
}

# make_admin registers benchadmin and grants it the admin role, for /debug/pprof/.
ADMIN_PASSWORD="${BENCH_ADMIN_PASSWORD:-bench-admin-$RANDOM$RANDOM}"
make_admin() {
  curl -fsS -o /dev/null -H 'Content-Type: application/json' "http://$ADDR/api/v1/auth/register" \
    -d "{\"username\":\"benchadmin\",\"email\":\"benchadmin@bench.nerutalk.test\",\"password\":\"$ADMIN_PASSWORD\"}"
  env "${SERVER_ENV[@]}" "$BIN/nerutalk" admin grant benchadmin >/dev/null
}

# Quick defaults keep a run to a few minutes on a shared 2-core machine; -full uses the tool's
# own defaults (the method of docs/BENCHMARKS.md).
if [ $FULL = 1 ]; then
  COMMON=()
  declare -A SIZES=([idle]="" [fanout]="" [chat]="" [auth]="" [loopback]="" [calls]="" [chatcpu]="" [bystander]="")
else
  COMMON=(-warmup 2s -window 10s -runs 1 -drain 10s)
  declare -A SIZES=(
    [idle]="-idle-conns 1k,5k -settle 5s"
    [fanout]="-fanout-sizes 100,1k -fanout-rates 15k,30k,60k"
    [chat]="-chat-rates 1k,2.5k,5k"
    [auth]="-auth-workers 2"
    [loopback]="-loopback-rates 25k,50k"
    [calls]=""
    [chatcpu]="-chat-rates 2.5k,3.5k,4.5k,5.5k -loopback-rates 25k,50k"
    [bystander]=""
  )
fi
BENCH_PIN=()
if [ $PPROF = 1 ]; then
  PROF_DIR=${OUT%.json}-pprof
  COMMON+=(-profile-dir "$PROF_DIR" -admin "benchadmin:$ADMIN_PASSWORD")
fi
if [ -n "$BENCH_CPUS" ]; then BENCH_PIN=(taskset -c "$BENCH_CPUS"); fi
if [ -n "$PG_CPUS" ]; then
  if [ $PG = 0 ]; then echo "run.sh: -pg-cpus needs -pg" >&2; exit 2; fi
  pgrep -x postgres >/dev/null || { echo "run.sh: -pg-cpus: no local postgres process to pin" >&2; exit 2; }
  pin_postgres "$PG_CPUS"
  log "PostgreSQL pinned to CPUs $PG_CPUS for this run"
fi
if [ -n "$BENCH_GMP" ]; then COMMON+=(-gomaxprocs "$BENCH_GMP"); fi
GIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null | head -1)" ]; then GIT="$GIT+dirty"; fi
NOTE="bench/run.sh $([ $FULL = 1 ] && echo full || echo quick), $([ $PG = 1 ] && echo postgres+redis || echo sqlite)$([ "$NODES" = 1 ] || echo ", $NODES nodes")$([ -z "$PG_CPUS" ] || echo ", postgres on CPUs $PG_CPUS")"

LINES=$WORK/results.jsonl
: >"$LINES"
status=0
IFS=, read -r -a LIST <<<"$SCENARIOS"
for sc in "${LIST[@]}"; do
  tool_sc=$sc
  if [ "$sc" = chatcpu ]; then tool_sc=loopback,chat; fi
  limits=off
  case "$sc" in idle|fanout|chat|calls|chatcpu) argon=cheap ;; auth) argon=default ;; loopback) argon=none ;;
    bystander) argon=cheap limits=limits ;;
    *) echo "run.sh: unknown scenario $sc" >&2; exit 2 ;; esac
  if [ "$argon" = none ]; then # no server: both ends are the tool's
    log "scenario $sc (no server)"
    # shellcheck disable=SC2086
    if ! "${BENCH_PIN[@]}" "$BIN/nerutalk-bench" -scenario "$sc" -label "$GIT" -note "$NOTE" "${COMMON[@]}" ${SIZES[$sc]} "${EXTRA[@]}" \
        >>"$LINES" 2> >(tee -a "$LOG" >&2); then
      status=1
      log "scenario $sc FAILED"
    fi
    continue
  fi
  log "scenario $sc (server argon2: $([ $argon = cheap ] && echo 'cheap, 8 KiB x 1, to register users fast' || echo 'the defaults'))"
  start_server $argon $limits
  if [ $PERF = 1 ]; then
    perf record -q -F 199 -g -p "$SERVER_PID" -o "$WORK/perf-$sc.data" >/dev/null 2>&1 &
    PERF_PID=$!
  fi
  # shellcheck disable=SC2086 # SIZES entries are word lists on purpose
  NODES_ARGS=()
  if [ -n "$WS_ADDRS" ]; then
    others=$(IFS=,; echo "${SERVER_PIDS[*]:1}")
    NODES_ARGS=(-ws-addrs "$WS_ADDRS" -node-pids "$others")
  fi
  # PostgreSQL's backends of this run's database: their CPU is reported as the database's
  if [ -n "$DB_NAME" ]; then NODES_ARGS+=(-db-cpu-match "$DB_NAME"); fi
  if ! "${BENCH_PIN[@]}" "$BIN/nerutalk-bench" -scenario "$tool_sc" -addr "http://$ADDR" -pid "$SERVER_PID" "${NODES_ARGS[@]}" \
      -label "$GIT" -note "$NOTE" "${COMMON[@]}" ${SIZES[$sc]} "${EXTRA[@]}" \
      >>"$LINES" 2> >(tee -a "$LOG" >&2); then
    status=1
    log "scenario $sc FAILED (server log tail below)"
    tail -n 20 "$WORK"/server-*.log | tee -a "$LOG" >&2
  fi
  stop_server
  if [ $PERF = 1 ] && [ -f "$WORK/perf-$sc.data" ]; then
    perf report -i "$WORK/perf-$sc.data" --stdio --no-children --percent-limit 1 --sort symbol 2>/dev/null \
      | grep -v '^$' | head -n 150 >"${OUT%.json}-$sc-perf.txt" || true
    log "server CPU profile: ${OUT%.json}-$sc-perf.txt"
  fi
done

jq -s --arg date "$STAMP" --arg git "$GIT" --arg note "$NOTE" \
  '{date: $date, git: $git, run: $note, results: .}' "$LINES" >"$OUT"
log "results: $OUT (human summaries: $LOG)"
exit $status
