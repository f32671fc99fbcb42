#!/usr/bin/env bash
# Runs the ircam-auth bench and prints the figures table (see bench/README.md).
#
#   bench/run.sh
#
# Installs Debian's wrk and slapd first when they are missing and this user
# may install packages (root, or password-less sudo); without wrk the HTTP
# load comes from a Go load generator, without slapd its row is skipped.
# Everything runs on 127.0.0.1 with free ports; each load run is bounded in
# time. Settings (environment):
#   BENCH_DURATION=5        seconds of each load run (after 1 s of warm-up)
#   BENCH_ROUNDS=2          rounds of the HTTP runs, ircam-auth and bare interleaved;
#                           the report keeps each one's best round
#   BENCH_CONNECTIONS=16    connections kept busy by the load generator
#   BENCH_THREADS=1         wrk threads (one core for wrk, the rest for the server)
#   BENCH_STARTS=20         starts measured for the start-up time
#   BENCH_TOKENS=100000     tokens issued before the second memory reading
#   BENCH_GO_BENCHTIME=3s   -benchtime of the Go benchmarks
#   BENCH_BCRYPT_COST=10    --bcrypt-cost of the server (its default)
#   BENCH_PROFILE=1         0 skips the profiling pass
#   BENCH_OUT=DIR           where results, logs and profiles go (default: a new /tmp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

duration=${BENCH_DURATION:-5}
rounds=${BENCH_ROUNDS:-2}
connections=${BENCH_CONNECTIONS:-16}
threads=${BENCH_THREADS:-1}
starts=${BENCH_STARTS:-20}
tokens=${BENCH_TOKENS:-100000}
gobenchtime=${BENCH_GO_BENCHTIME:-3s}
cost=${BENCH_BCRYPT_COST:-10}
profile=${BENCH_PROFILE:-1}

# --- what the bench needs -------------------------------------------------
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || need+=(slapd)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; fi
  if [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; then
    echo "bench: installing ${need[*]}" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # Debian starts a system slapd on install; the bench runs its own.
    $sudo service slapd stop >/dev/null 2>&1 || true
  else
    echo "bench: missing ${need[*]} (apt-get install ${need[*]}); using fallbacks" >&2
  fi
fi
have_wrk=0
command -v wrk >/dev/null 2>&1 && have_wrk=1

out=${BENCH_OUT:-$(mktemp -d /tmp/ircam-auth-bench.XXXXXX)}
mkdir -p "$out/bin" "$out/profiles"
results=$out/results.txt
: >"$results"
bin=$out/bin

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

log() { printf 'bench: %s\n' "$*" >&2; }

# --- build ----------------------------------------------------------------
log "building into $bin"
go build -o "$bin/ircam-auth" ./cmd/ircam-auth
go build -o "$bin/bare" ./bench/bare
go build -o "$bin/tool" ./bench/tool
# The profiling build: the same server plus bench/pprof_overlay.go.in,
# added with -overlay so that the tree is untouched.
printf '{"Replace":{"%s/cmd/ircam-auth/zz_bench_pprof.go":"%s/bench/pprof_overlay.go.in"}}\n' "$root" "$root" >"$out/overlay.json"
go build -overlay "$out/overlay.json" -o "$bin/ircam-auth-pprof" ./cmd/ircam-auth

{
  echo "cpus $(nproc)"
  echo "bcrypt_cost $cost"
  echo "duration_s $duration"
  echo "rounds $rounds"
  echo "connections $connections"
  echo "wrk $have_wrk"
} >>"$results"

# start NAME BIN ARGS...: starts a server with free ports, waits for its
# "ready:" line, and sets $url and $pid.
start() {
  local name=$1 b=$2
  shift 2
  "$b" --listen 127.0.0.1:0 --ldap-listen 127.0.0.1:0 "$@" >"$out/$name.out" 2>"$out/$name.log" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 3000); do
    url=$(sed -n 's|^ready: \(http://[^ ]*\)/healthz$|\1|p' "$out/$name.out")
    [ -n "$url" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  log "$name did not start:"; cat "$out/$name.log" >&2; exit 1
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

robot_basic="Basic $(printf '%s' 'ci-robot:ci-robot-secret' | base64)"

# load PREFIX URL KIND TOKEN: one bounded load run of KIND (profile,
# introspect or token) after 1 s of warm-up, with wrk or the Go generator;
# prints PREFIX_* figures. TOKEN is an access token of that server.
load() {
  local prefix=$1 base=$2 kind=$3 token=$4
  if [ "$have_wrk" = 1 ]; then
    local path method body auth
    case $kind in
      profile) path=/profile/ method=GET body="" auth="Bearer $token" ;;
      introspect) path=/o/introspect/ method=POST body="token=$token" auth=$robot_basic ;;
      token) path=/o/token/ method=POST body="grant_type=client_credentials&scope=read" auth=$robot_basic ;;
    esac
    local w=(wrk -t"$threads" -c"$connections" --timeout 5s -s bench/wrk/request.lua)
    BENCH_METHOD=$method BENCH_BODY=$body BENCH_AUTH=$auth BENCH_PREFIX=warmup "${w[@]}" -d1s "$base$path" >/dev/null
    BENCH_METHOD=$method BENCH_BODY=$body BENCH_AUTH=$auth BENCH_PREFIX=$prefix "${w[@]}" -d"${duration}s" "$base$path" |
      grep "^${prefix}_"
  else
    local g=("$bin/tool" load -url "$base" -kind "$kind" -token "$token" -c "$connections")
    "${g[@]}" -d 1s -prefix warmup >/dev/null
    "${g[@]}" -d "${duration}s" -prefix "$prefix"
  fi
}

# --- HTTP throughput and latency: ircam-auth next to bare net/http --------
log "HTTP load: ircam-auth (default flags, and --log-level warn) and bare net/http, ${duration}s per run, $rounds rounds"
start real "$bin/ircam-auth" --bcrypt-cost "$cost"
real_url=$url real_pid=$pid
"$bin/tool" prepare -url "$real_url" -dir "$out"
real_token=$(cat "$out/access_token")
# The same server with one log line less per request: what logging costs.
start quiet "$bin/ircam-auth" --bcrypt-cost "$cost" --log-level warn
quiet_url=$url quiet_pid=$pid
mkdir -p "$out/quiet"
"$bin/tool" prepare -url "$quiet_url" -dir "$out/quiet"
quiet_token=$(cat "$out/quiet/access_token")
start bare "$bin/bare" --profile "$out/profile.json" --introspect "$out/introspect.json" --token "$out/token.json"
bare_url=$url bare_pid=$pid
# Interleaved, so that a drift of the machine (or another tenant's load)
# hits all alike; the report keeps each one's best round.
for round in $(seq 1 "$rounds"); do
  for kind in profile introspect token; do
    load "real_$kind" "$real_url" "$kind" "$real_token" >>"$results"
    load "quiet_$kind" "$quiet_url" "$kind" "$quiet_token" >>"$results"
    load "bare_$kind" "$bare_url" "$kind" "$real_token" >>"$results"
  done
done
stop "$real_pid"
stop "$quiet_pid"
stop "$bare_pid"

# --- Go benchmarks: grants, authorization code flow, bcrypt, LDAP ---------
log "Go benchmarks (-benchtime $gobenchtime)"
IRCAM_AUTH_BIN="$bin/ircam-auth" BENCH_BCRYPT_COST=$cost \
  go test ./bench -run '^$' -bench . -benchtime "$gobenchtime" -count 1 -timeout 10m >"$out/gobench.txt" 2>&1 ||
  log "some Go benchmarks failed; their rows are missing (see $out/gobench.txt)"
cat "$out/gobench.txt" >&2

# --- start-up time and memory ---------------------------------------------
log "start-up: $starts starts of each"
"$bin/tool" startup -bin "$bin/ircam-auth" -n "$starts" -args "--bcrypt-cost $cost" >>"$results"
"$bin/tool" startup -bin "$bin/bare" -n "$starts" -prefix bare_startup >>"$results"
log "memory: idle, then after $tokens tokens"
"$bin/tool" memory -bin "$bin/ircam-auth" -args "--bcrypt-cost $cost" -tokens "$tokens" >>"$results"

# --- profiles of the server under each load, and of its start -------------
if [ "$profile" = 1 ]; then
  log "profiles (pprof build) in $out/profiles"
  pprof_addr=$("$bin/tool" freeaddr)
  IRCAM_AUTH_BENCH_PPROF=$pprof_addr start prof "$bin/ircam-auth-pprof" --bcrypt-cost "$cost"
  prof_url=$url prof_pid=$pid
  mkdir -p "$out/prof"
  "$bin/tool" prepare -url "$prof_url" -dir "$out/prof"
  prof_token=$(cat "$out/prof/access_token")
  # wrk's runs (or the Go generator's) under a CPU profile of the server.
  for kind in profile introspect token; do
    "$bin/tool" fetch "http://$pprof_addr/debug/pprof/profile?seconds=$duration" "$out/profiles/$kind.pprof" &
    fetch_pid=$!
    sleep 0.2
    load "prof_$kind" "$prof_url" "$kind" "$prof_token" >>"$out/profiles/load.txt"
    wait "$fetch_pid"
  done
  # The Go generator takes the profile itself, after its set-up requests.
  for k in refresh:16 flow:4; do
    "$bin/tool" load -url "$prof_url" -kind "${k%%:*}" -c "${k##*:}" -d "${duration}s" \
      -pprof "http://$pprof_addr/debug/pprof/profile" -cpuprofile "$out/profiles/${k%%:*}.pprof" >/dev/null
  done
  stop "$prof_pid"
  # Each start writes a profile of its first 900 ms (start and first
  # /healthz included), and is kept running 1 s so that it can.
  "$bin/tool" startup -bin "$bin/ircam-auth-pprof" -n 10 -args "--bcrypt-cost $cost" -prefix prof_startup -hold 1s \
    -env "IRCAM_AUTH_BENCH_STARTPROFILE=$out/profiles/start-{i}.pprof IRCAM_AUTH_BENCH_STARTPROFILE_MS=900" >/dev/null
  {
    for p in profile introspect token refresh flow; do
      echo "== $p: top functions of the server (flat CPU)"
      go tool pprof -top -nodecount=12 "$bin/ircam-auth-pprof" "$out/profiles/$p.pprof" 2>/dev/null | sed -n '5,20p'
      echo "-- where it goes (cumulative CPU): serving, socket I/O, logging, ircam-auth's handlers"
      go tool pprof -top -cum -nodecount=400 "$bin/ircam-auth-pprof" "$out/profiles/$p.pprof" 2>/dev/null |
        grep -E ' (net/http\.\(\*conn\)\.(serve|readRequest)|net/http\.\(\*response\)\.finishRequest|net\.\(\*conn\)\.(Read|Write)|os\.\(\*File\)\.Write|log/slog\.\(\*Logger\)\.(log|logAttrs)|runtime\.gcBgMarkWorker|runtime\.mallocgc|encoding/json\.\(\*Encoder\)\.Encode|github\.com/ircam/ircam-auth/internal/[a-z]+\.\(\*(Service|handler|Server|Store|Guard|store)\)\.[A-Za-z]+|github\.com/ircam/ircam-auth/internal/(token|httplog)\.[A-Za-z]+|bcrypt\.CompareHashAndPassword)$' |
        head -25
      echo
    done
    echo "== start-up, 10 starts merged: top functions (cumulative CPU)"
    go tool pprof -top -cum -nodecount=25 "$bin/ircam-auth-pprof" "$out"/profiles/start-*.pprof 2>/dev/null | sed -n '1,32p'
  } >"$out/profiles/summary.txt"
fi

# --- report ---------------------------------------------------------------
"$bin/tool" report "$results" "$out/gobench.txt" | tee "$out/report.md"
echo
echo "results, logs and profiles: $out (profiles/summary.txt: top functions)"
