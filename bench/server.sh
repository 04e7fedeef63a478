#!/usr/bin/env bash
# brr through brrd: the same operations on a local repository and on a server repository (brrd on
# loopback over TLS), interleaved, and four enrolled agents backing up at the same moment.
#
#   bash bench/server.sh
#   BENCH_SIZE_MIB=64 BENCH_AGENT_MIB=16 bash bench/server.sh    # a quick run
#
# Environment (all optional):
#   BENCH_SIZE_MIB     corpus size in MiB for the local/server comparison (default 1024)
#   BENCH_AGENT_MIB    corpus size in MiB of each concurrent agent (default 256)
#   BENCH_AGENTS       number of concurrent agents (default 4)
#   BENCH_RUNS         runs per measured stage, median reported (default 3)
#   BENCH_AGENT_RUNS   runs of each concurrent-agents stage (default BENCH_RUNS)
#   BENCH_SERVER_WORK  scratch directory (default bench/work/server)
#   BENCH_RESULTS      where the report goes (default bench/results)
#   BENCH_SKIP_BUILD   1: use the existing target/release binaries instead of building
#
# What it does:
#   1. builds release brr and brrd (nice) and copies them out of target/;
#   2. starts `brrd serve` on a fresh data folder, 127.0.0.1, its self-signed certificate (TLS),
#      open registration; registers a company (PIN from the outbox folder), creates an API key, logs
#      the company admin in with `brr login` and enrols agents with `brr agent enroll`, every machine
#      with its own XDG_CONFIG_HOME and XDG_CACHE_HOME;
#   3. builds its own corpus (shared/bench/make-corpus.py) under the work folder and, interleaved
#      local/server inside each run (the side that goes first alternates between runs): `brr init`,
#      first backup, second backup after --mutate, unchanged re-backup (N repositories per side),
#      full restore of repository 1 (N times, each compared with the source by
#      `diff -r --no-dereference`, not timed);
#   4. four corpora (--seed 1..4) backed up at once by four agents into one company repository,
#      then into four repositories; `brr check --read-data` of every repository afterwards.
# Every timed command runs under /usr/bin/time (wall seconds, peak RSS, CPU seconds of brr) after a
# `sync` outside the timing. brrd runs for the whole benchmark: its peak RSS per stage is its VmHWM,
# reset before each timed command (`echo 5 > /proc/PID/clear_refs`) and read after it; its CPU time is
# the difference of utime+stime in /proc/PID/stat. The machine's CPU use during each command comes
# from /proc/stat; what brr and brrd did not use of it is recorded as noise (other processes).
#
# Output: a Markdown report on stdout and in bench/results/<date>-<host>-server.md, the same data as
# JSON in bench/results/<date>-<host>-server.json. Logs and raw TSV stay in bench/work/server/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${BENCH_SHARED:-$(cd "$ROOT/../shared" 2>/dev/null && pwd || echo "$ROOT/../shared")}
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
AGENT_MIB=${BENCH_AGENT_MIB:-256}
AGENTS=${BENCH_AGENTS:-4}
RUNS=${BENCH_RUNS:-3}
AGENT_RUNS=${BENCH_AGENT_RUNS:-$RUNS}
WORK=${BENCH_SERVER_WORK:-$ROOT/bench/work/server}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results}

log() { printf '[bench-server %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
command -v curl >/dev/null 2>&1 || die "curl is missing"
command -v python3 >/dev/null 2>&1 || die "python3 is missing"
[ -f "$SHARED/bench/make-corpus.py" ] || die "corpus generator not found at $SHARED/bench/make-corpus.py (set BENCH_SHARED)"
case $AGENTS in '' | *[!0-9]* | 0) die "BENCH_AGENTS must be a positive integer, not '$AGENTS'" ;; esac
for v in SIZE_MIB AGENT_MIB RUNS AGENT_RUNS; do
    case ${!v} in '' | *[!0-9]* | 0) die "BENCH_$v must be a positive integer, not '${!v}'" ;; esac
done

mkdir -p "$WORK" "$RESULTS"
WORK=$(cd "$WORK" && pwd)
RESULTS=$(cd "$RESULTS" && pwd)
BIN=$WORK/bin
LOGS=$WORK/logs
mkdir -p "$BIN"

# ---------------------------------------------------------------- build
# Copied out of target/ so that a rebuild by someone else during the run cannot swap them.
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "building release brr and brrd (nice)"
    if ! (cd "$ROOT" && nice -n 10 cargo build --release -p brr -p brrd) >"$WORK/build.log" 2>&1; then
        tail -n 20 "$WORK/build.log" >&2
        die "cargo build --release -p brr -p brrd failed (log: $WORK/build.log)"
    fi
    tail -n 1 "$WORK/build.log" >&2
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
for b in brr brrd; do
    [ -x "$TARGET_DIR/release/$b" ] || die "$TARGET_DIR/release/$b missing (cargo build --release -p $b failed?)"
    cp -p "$TARGET_DIR/release/$b" "$BIN/$b"
done

# ---------------------------------------------------------------- layout
export BRR_PASSWORD=bench-password-not-secret
CORPUS=$WORK/corpus/data
DATA=$WORK/brrd-data
MACHINES=$WORK/machines
LOCAL_REPOS=$WORK/local-repos
RESTORES=$WORK/restore
AGENT_CORPORA=$WORK/agent-corpora
RAW=$WORK/raw.tsv
AGENT_RAW=$WORK/agents.tsv
AGENT_SETS=$WORK/agent-sets.tsv
SIZES=$WORK/sizes.tsv
VERIFY=$WORK/verify.tsv
META=$WORK/meta.tsv
BRRD_LOG=$LOGS/brrd.log

rm -rf "$DATA" "$MACHINES" "$LOCAL_REPOS" "$RESTORES" "$LOGS" "$WORK/corpus" "$AGENT_CORPORA"
mkdir -p "$DATA" "$MACHINES" "$LOCAL_REPOS" "$RESTORES" "$LOGS"
printf 'side\tstage\trun\tseconds\tmax_rss_kib\texit\tcpu_s\tbrrd_hwm_kib\tbrrd_cpu_s\tmachine_busy_pct\tother_cpu_s\tload1\tother_builds\n' >"$RAW"
printf 'mode\trun\tagent\tseconds\tmax_rss_kib\texit\tcpu_s\n' >"$AGENT_RAW"
printf 'mode\trun\tagents\tseconds\tsource_bytes\tmachine_busy_pct\tbrr_cpu_s\tbrrd_cpu_s\tother_cpu_s\tbrrd_hwm_kib\tfailed\tcheck\tload1\tother_builds\n' >"$AGENT_SETS"
printf 'side\twhat\tbytes\n' >"$SIZES"
printf 'side\trun\tresult\tdetail\n' >"$VERIFY"

meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }
: >"$META"
meta date_utc "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta host "$(hostname)"
meta cpu "$(lscpu | sed -n 's/^Model name: *//p' | head -n1)"
meta cpus "$(nproc)"
meta mem "$(free -h | awk '/^Mem:/ {print $2}')"
meta kernel "$(uname -sr)"
meta size_mib "$SIZE_MIB"
meta agent_mib "$AGENT_MIB"
meta agents "$AGENTS"
meta runs "$RUNS"
meta agent_runs "$AGENT_RUNS"
meta brr_version "$("$BIN/brr" --version 2>/dev/null | head -n1)"
meta brrd_version "$("$BIN/brrd" --version 2>/dev/null | head -n1)"
meta brr_commit "$(cd "$ROOT" && git log -1 --format='%h %cs' 2>/dev/null || echo unknown)"
meta brr_built "$(date -u -r "$BIN/brr" +%Y-%m-%dT%H:%M:%SZ)"
meta brrd_built "$(date -u -r "$BIN/brrd" +%Y-%m-%dT%H:%M:%SZ)"
meta rustc "$(rustc --version 2>/dev/null || echo unknown)"

# ---------------------------------------------------------------- noise and process probes
other_builds() { pgrep -c -x 'rustc|cargo|cc1|cc1plus|ld|clang' 2>/dev/null || true; }
load1() { cut -d' ' -f1 /proc/loadavg; }
# "busy total" jiffies of the whole machine (busy = everything but idle and iowait).
cpu_jiffies() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)

BRRD_PID=""
# utime+stime of brrd in jiffies.
brrd_jiffies() { awk '{print $14 + $15}' "/proc/$BRRD_PID/stat"; }
# Resets brrd's peak RSS to its current RSS.
brrd_reset_hwm() { echo 5 >"/proc/$BRRD_PID/clear_refs"; }
brrd_hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$BRRD_PID/status"; }

# The probe pair around one timed command (or a set of concurrent ones): sets P_* variables.
probe_start() {
    sync
    P_LOAD=$(load1)
    P_BUILDS=$(other_builds)
    P_BRRD0=$(brrd_jiffies)
    brrd_reset_hwm
    read -r P_BUSY0 P_TOT0 < <(cpu_jiffies)
}
# probe_end BRR_CPU_SECONDS: sets P_BUSY_PCT, P_BRRD_CPU, P_BRRD_HWM, P_OTHER.
probe_end() {
    local busy1 tot1 brrd1
    read -r busy1 tot1 < <(cpu_jiffies)
    brrd1=$(brrd_jiffies)
    P_BRRD_HWM=$(brrd_hwm)
    read -r P_BUSY_PCT P_BRRD_CPU P_OTHER < <(awk -v b0="$P_BUSY0" -v t0="$P_TOT0" -v b1="$busy1" -v t1="$tot1" \
        -v d0="$P_BRRD0" -v d1="$brrd1" -v hz="$CLK_TCK" -v own="$1" 'BEGIN {
            dt = t1 - t0; pct = dt > 0 ? 100 * (b1 - b0) / dt : 0
            bd = (d1 - d0) / hz; other = (b1 - b0) / hz - bd - own; if (other < 0) other = 0
            printf "%.1f %.2f %.2f\n", pct, bd, other }')
}

# ---------------------------------------------------------------- brrd
stop_brrd() {
    if [ -n "$BRRD_PID" ] && kill -0 "$BRRD_PID" 2>/dev/null; then
        kill "$BRRD_PID" 2>/dev/null || true
        wait "$BRRD_PID" 2>/dev/null || true
    fi
    BRRD_PID=""
}
trap stop_brrd EXIT

log "starting brrd on 127.0.0.1 (TLS, self-signed) with data in $DATA"
: >"$BRRD_LOG" # exists before the background job opens it, so the polling below can read it
env -u BRRD_CONFIG BRRD_OPEN_REGISTRATION=true RUST_LOG=warn \
    "$BIN/brrd" --data "$DATA" serve --listen 127.0.0.1:0 --ops-listen 127.0.0.1:0 \
    </dev/null >"$LOGS/brrd.stdout" 2>>"$BRRD_LOG" &
BRRD_PID=$!
addr=""
for _ in $(seq 1 600); do
    addr=$(sed -n 's/^brrd: https:\/\/\([^ ]*\).*/\1/p' "$BRRD_LOG" | head -n1)
    [ -n "$addr" ] && break
    kill -0 "$BRRD_PID" 2>/dev/null || { cat "$BRRD_LOG" >&2; die "brrd exited at start"; }
    sleep 0.1
done
[ -n "$addr" ] || die "brrd did not print its address within 60 s (log: $BRRD_LOG)"
PORT=${addr##*:}
URL=https://localhost:$PORT
CERT=$DATA/tls/cert.pem
[ -f "$CERT" ] || die "no certificate at $CERT"
BRRD_LOG_START=$(wc -l <"$BRRD_LOG")
meta server_url "$URL"
log "brrd is up at $URL (pid $BRRD_PID)"

# ---------------------------------------------------------------- company, API key, machines
EMAIL=admin@bench.example
ACCOUNT_PASSWORD=Bench-Account-Pa55word
# api METHOD PATH [JSON] (token in $TOKEN if set): prints the response body, fails on HTTP >= 400.
api() {
    local method=$1 path=$2 body=${3:-} out code
    local args=(-sS --cacert "$CERT" -X "$method" -o "$LOGS/api.out" -w '%{http_code}')
    [ -n "${TOKEN:-}" ] && args+=(-H "Authorization: Bearer $TOKEN")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
    code=$(curl "${args[@]}" "$URL$path") || die "curl $method $path failed"
    out=$(cat "$LOGS/api.out")
    rm -f "$LOGS/api.out"
    [ "$code" -lt 400 ] || die "$method $path answered $code: $out"
    printf '%s' "$out"
}
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

log "registering a company (PIN from $DATA/outbox)"
TOKEN=""
api POST /api/v1/auth/register "{\"email\":\"$EMAIL\",\"password\":\"$ACCOUNT_PASSWORD\",\"display_name\":\"Bench admin\",\"company_name\":\"Bench Co\",\"site\":\"SG-DRT\"}" >/dev/null
pin=""
for _ in $(seq 1 100); do
    pin=$(grep -l "To: $EMAIL" "$DATA"/outbox/* 2>/dev/null | sort | tail -n1 | xargs -r sed -n 's/.*PIN: \([0-9]\{6\}\).*/\1/p' | head -n1)
    [ -n "$pin" ] && break
    sleep 0.1
done
[ -n "$pin" ] || die "no PIN mailed to $EMAIL in $DATA/outbox"
api POST /api/v1/auth/register/verify "{\"email\":\"$EMAIL\",\"pin\":\"$pin\"}" >/dev/null
TOKEN=$(api POST /api/v1/auth/login "{\"email\":\"$EMAIL\",\"password\":\"$ACCOUNT_PASSWORD\"}" | json_field access_token)
COMPANY=$(api GET /api/v1/me | json_field company_id)
API_KEY=$(api POST "/api/v1/companies/$COMPANY/api-keys" '{"name":"bench enrolment"}' | json_field secret)
TOKEN=""
meta company_id "$COMPANY"

# brr_as MACHINE ARGS...: the brr command line of one machine (its own config and cache folders).
machine_env() {
    local m=$MACHINES/$1
    mkdir -p "$m/config" "$m/cache"
    ENV_OF=(env "XDG_CONFIG_HOME=$m/config" "XDG_CACHE_HOME=$m/cache" "BRR_CA_CERT=$CERT")
}
pwfile=$MACHINES/account-password
mkdir -p "$MACHINES"
printf '%s\n' "$ACCOUNT_PASSWORD" >"$pwfile"
chmod 600 "$pwfile"
machine_env admin
"${ENV_OF[@]}" "$BIN/brr" login --server "$URL" --email "$EMAIL" --password-file "$pwfile" >"$LOGS/login.log" 2>&1 \
    || { cat "$LOGS/login.log" >&2; die "brr login failed"; }
for ((a = 1; a <= AGENTS; a++)); do
    machine_env "agent$a"
    "${ENV_OF[@]}" BRR_API_KEY="$API_KEY" "$BIN/brr" agent enroll --server "$URL" --name "bench-agent-$a" \
        >"$LOGS/enroll.$a.log" 2>&1 || { cat "$LOGS/enroll.$a.log" >&2; die "brr agent enroll (agent $a) failed"; }
done
unset API_KEY
log "company $COMPANY: admin logged in, $AGENTS agents enrolled"

# ---------------------------------------------------------------- commands of each side
# The local side is one more machine, with its own cache folder.
local_repo() { echo "$LOCAL_REPOS/r$1"; }
server_repo() { echo "bench-r$1"; }
# cmd_of SIDE OP RUN [TARGET]: sets CMD.
cmd_of() {
    local side=$1 op=$2 run=$3 target=${4:-}
    local repo_args
    if [ "$side" = local ]; then
        machine_env local
        repo_args=(--repo "$(local_repo "$run")")
    else
        # The admin creates the repository (agents cannot); agent 1 backs up and restores.
        if [ "$op" = init ]; then machine_env admin; else machine_env agent1; fi
        repo_args=(--server "$URL" --repo "$(server_repo "$run")")
    fi
    case $op in
        init) CMD=("${ENV_OF[@]}" "$BIN/brr" init "${repo_args[@]}") ;;
        backup) CMD=("${ENV_OF[@]}" "$BIN/brr" backup "${repo_args[@]}" "$CORPUS") ;;
        restore) CMD=("${ENV_OF[@]}" "$BIN/brr" restore "${repo_args[@]}" latest --target "$target") ;;
    esac
}

# measure SIDE STAGE RUN DIR -- command...: one timed command and its row in raw.tsv.
measure() {
    local side=$1 stage=$2 run=$3 dir=$4
    shift 5
    local tf=$LOGS/time.$side.$stage.$run lg=$LOGS/$side.$stage.$run.log
    probe_start
    set +e
    (cd "$dir" && /usr/bin/time -f '%e %M %x %U %S' -o "$tf" "$@") >"$lg" 2>&1
    set -e
    local secs=NA rss=0 code=127 us=0 ss=0
    [ -s "$tf" ] && read -r secs rss code us ss < <(tail -n1 "$tf")
    local cpu
    cpu=$(awk -v u="$us" -v s="$ss" 'BEGIN {printf "%.2f", u + s}')
    probe_end "$cpu"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$side" "$stage" "$run" "$secs" "$rss" "$code" \
        "$cpu" "$P_BRRD_HWM" "$P_BRRD_CPU" "$P_BUSY_PCT" "$P_OTHER" "$P_LOAD" "${P_BUILDS:-0}" >>"$RAW"
    if [ "$code" != 0 ]; then
        log "$side $stage run $run FAILED (exit $code); last lines of $lg:"
        tail -n 5 "$lg" >&2
    else
        log "$side $stage run $run: ${secs}s, brr peak RSS $((rss / 1024)) MiB, brrd peak $((P_BRRD_HWM / 1024)) MiB, machine busy ${P_BUSY_PCT}%, other processes ${P_OTHER} CPU-s"
    fi
}

sides_for_run() { if (($1 % 2)); then echo "local server"; else echo "server local"; fi; }

warm() { log "warming page cache: $1"; tar -cf - -C "$(dirname "$1")" "$(basename "$1")" | cat >/dev/null; }

restored_root() {
    local t=$1 src=$2
    for c in "$t$src" "$t/$(basename "$src")" "$t"; do
        if [ -d "$c" ] && [ -e "$c/vm" ]; then echo "$c"; return 0; fi
    done
    return 1
}

verify_restore() {
    local side=$1 run=$2 target=$3 root
    if ! root=$(restored_root "$target" "$CORPUS"); then
        printf '%s\t%s\tFAIL\tno restored corpus found under %s\n' "$side" "$run" "$target" >>"$VERIFY"
        log "$side restore run $run: VERIFY FAILED (nothing restored?)"
        return 0
    fi
    if diff -r --no-dereference "$CORPUS" "$root" >"$LOGS/$side.verify.$run.diff" 2>&1; then
        printf '%s\t%s\tok\tdiff -r --no-dereference identical\n' "$side" "$run" >>"$VERIFY"
        log "$side restore run $run: identical to the source"
    else
        printf '%s\t%s\tFAIL\t%s\n' "$side" "$run" "$(head -n1 "$LOGS/$side.verify.$run.diff" | tr '\t' ' ')" >>"$VERIFY"
        log "$side restore run $run: VERIFY FAILED, see $LOGS/$side.verify.$run.diff"
    fi
}

# The folder of a server repository in brrd's store (<data>/repos/<company>/<repository id>).
server_repo_dir() {
    machine_env admin
    local id
    id=$("${ENV_OF[@]}" "$BIN/brr" --json repos --server "$URL" |
        python3 -c 'import json,sys; print(next(r["id"] for r in json.load(sys.stdin) if r["name"] == sys.argv[1]))' "$1")
    echo "$DATA/repos/$COMPANY/$id"
}
server_stored_bytes() {
    machine_env admin
    "${ENV_OF[@]}" "$BIN/brr" --json repos --server "$URL" |
        python3 -c 'import json,sys; print(next(r["usage"]["stored_bytes"] for r in json.load(sys.stdin) if r["name"] == sys.argv[1]))' "$1"
}
record_sizes() {
    local what=$1 d
    printf 'local\t%s\t%s\n' "$what" "$(du -sb "$(local_repo 1)" | cut -f1)" >>"$SIZES"
    d=$(server_repo_dir "$(server_repo 1)")
    printf 'server\t%s\t%s\n' "$what" "$(du -sb "$d" | cut -f1)" >>"$SIZES"
    printf 'server_usage\t%s\t%s\n' "$what" "$(server_stored_bytes "$(server_repo 1)")" >>"$SIZES"
}
file_bytes() { find "$1" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }

# ---------------------------------------------------------------- corpus
log "building a ${SIZE_MIB} MiB corpus at $CORPUS"
mkdir -p "$(dirname "$CORPUS")"
python3 "$SHARED/bench/make-corpus.py" "$CORPUS" --size-mib "$SIZE_MIB" 2>&1 | tail -n1 >&2
printf 'corpus\tsource_initial\t%s\n' "$(file_bytes "$CORPUS")" >>"$SIZES"
meta corpus_files "$(find "$CORPUS" -type f | wc -l)"
meta corpus "$CORPUS"
sync
warm "$CORPUS"

# ---------------------------------------------------------------- init and first backup
for ((r = 1; r <= RUNS; r++)); do
    for side in $(sides_for_run "$r"); do
        cmd_of "$side" init "$r"
        measure "$side" init "$r" "$WORK" -- "${CMD[@]}"
        cmd_of "$side" backup "$r"
        measure "$side" backup1 "$r" "$WORK" -- "${CMD[@]}"
    done
done
record_sizes repo_after_backup1

# ---------------------------------------------------------------- mutate, second backup
log "mutating the corpus in place"
python3 "$SHARED/bench/make-corpus.py" "$CORPUS" --mutate 2>&1 | tail -n1 >&2
printf 'corpus\tsource_mutated\t%s\n' "$(file_bytes "$CORPUS")" >>"$SIZES"
sync
warm "$CORPUS"
for ((r = 1; r <= RUNS; r++)); do
    for side in $(sides_for_run "$r"); do
        cmd_of "$side" backup "$r"
        measure "$side" backup2 "$r" "$WORK" -- "${CMD[@]}"
    done
done
record_sizes repo_after_backup2

# ---------------------------------------------------------------- unchanged re-backup
for ((r = 1; r <= RUNS; r++)); do
    for side in $(sides_for_run "$r"); do
        cmd_of "$side" backup "$r"
        measure "$side" rebackup "$r" "$WORK" -- "${CMD[@]}"
    done
done
record_sizes repo_final

# ---------------------------------------------------------------- full restore of repository 1
for ((r = 1; r <= RUNS; r++)); do
    for side in $(sides_for_run "$r"); do
        target=$RESTORES/$side
        rm -rf "$target"
        mkdir -p "$target"
        cmd_of "$side" restore 1 "$target"
        measure "$side" restore "$r" "$target" -- "${CMD[@]}"
        verify_restore "$side" "$r" "$target"
        rm -rf "$target"
    done
done

# The comparison's repositories are not needed any more: free the disk for the agents' stage.
rm -rf "$RESTORES" "$LOCAL_REPOS"
for ((r = 2; r <= RUNS; r++)); do
    rm -rf "$(server_repo_dir "$(server_repo "$r")")"
done

# ---------------------------------------------------------------- concurrent agents
log "building $AGENTS corpora of ${AGENT_MIB} MiB (--seed 1..$AGENTS)"
for ((a = 1; a <= AGENTS; a++)); do
    mkdir -p "$AGENT_CORPORA/a$a"
    python3 "$SHARED/bench/make-corpus.py" "$AGENT_CORPORA/a$a/data" --size-mib "$AGENT_MIB" --seed "$a" 2>&1 | tail -n1 >&2
done
AGENT_BYTES=$(file_bytes "$AGENT_CORPORA")
printf 'corpus\tagents_total\t%s\n' "$AGENT_BYTES" >>"$SIZES"
sync
warm "$AGENT_CORPORA"

# agents_at_once MODE RUN: every agent backs up its corpus at the same moment, into one repository
# (MODE shared) or each into its own (MODE separate); then `brr check --read-data` of each.
agents_at_once() {
    local mode=$1 run=$2 a repo pids=() t0 t1 failed=0 check=ok repos=()
    if [ "$mode" = shared ]; then repos=("fleet-r$run"); else
        for ((a = 1; a <= AGENTS; a++)); do repos+=("fleet-r$run-a$a"); done
    fi
    machine_env admin
    for repo in "${repos[@]}"; do
        "${ENV_OF[@]}" "$BIN/brr" init --server "$URL" --repo "$repo" >"$LOGS/init.$repo.log" 2>&1 ||
            { cat "$LOGS/init.$repo.log" >&2; die "brr init --repo $repo failed"; }
    done
    probe_start
    t0=$(date +%s.%N)
    for ((a = 1; a <= AGENTS; a++)); do
        if [ "$mode" = shared ]; then repo=${repos[0]}; else repo=${repos[$((a - 1))]}; fi
        machine_env "agent$a"
        (cd "$WORK" && exec /usr/bin/time -f '%e %M %x %U %S' -o "$LOGS/time.$mode.$run.a$a" \
            "${ENV_OF[@]}" "$BIN/brr" backup --server "$URL" --repo "$repo" "$AGENT_CORPORA/a$a/data") \
            >"$LOGS/$mode.$run.a$a.log" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    t1=$(date +%s.%N)
    local brr_cpu=0 secs rss code us ss cpu
    for ((a = 1; a <= AGENTS; a++)); do
        secs=NA rss=0 code=127 us=0 ss=0
        [ -s "$LOGS/time.$mode.$run.a$a" ] && read -r secs rss code us ss < <(tail -n1 "$LOGS/time.$mode.$run.a$a")
        cpu=$(awk -v u="$us" -v s="$ss" 'BEGIN {printf "%.2f", u + s}')
        brr_cpu=$(awk -v a="$brr_cpu" -v c="$cpu" 'BEGIN {printf "%.2f", a + c}')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$run" "$a" "$secs" "$rss" "$code" "$cpu" >>"$AGENT_RAW"
        if [ "$code" != 0 ]; then
            failed=$((failed + 1))
            log "$mode run $run agent $a FAILED (exit $code); last lines of $LOGS/$mode.$run.a$a.log:"
            tail -n 5 "$LOGS/$mode.$run.a$a.log" >&2
        fi
    done
    probe_end "$brr_cpu"
    local wall
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
    # A check of every repository afterwards, by agent 1 (not timed).
    machine_env agent1
    for repo in "${repos[@]}"; do
        if ! "${ENV_OF[@]}" "$BIN/brr" check --server "$URL" --repo "$repo" --read-data >"$LOGS/check.$repo.log" 2>&1; then
            check="FAIL ($repo)"
            log "brr check --read-data of $repo FAILED; last lines of $LOGS/check.$repo.log:"
            tail -n 5 "$LOGS/check.$repo.log" >&2
        fi
    done
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$run" "$AGENTS" "$wall" "$AGENT_BYTES" \
        "$P_BUSY_PCT" "$brr_cpu" "$P_BRRD_CPU" "$P_OTHER" "$P_BRRD_HWM" "$failed" "$check" "$P_LOAD" "${P_BUILDS:-0}" >>"$AGENT_SETS"
    log "$AGENTS agents ($mode repository) run $run: ${wall}s, machine busy ${P_BUSY_PCT}%, $failed failed, check $check, brrd peak $((P_BRRD_HWM / 1024)) MiB"
    if [ "$mode" = shared ]; then
        printf 'server\tfleet_shared_r%s\t%s\n' "$run" "$(du -sb "$(server_repo_dir "${repos[0]}")" | cut -f1)" >>"$SIZES"
    fi
}

for ((r = 1; r <= AGENT_RUNS; r++)); do
    agents_at_once shared "$r"
done
for ((r = 1; r <= AGENT_RUNS; r++)); do
    agents_at_once separate "$r"
done

# ---------------------------------------------------------------- brrd's log
tail -n +"$((BRRD_LOG_START + 1))" "$BRRD_LOG" >"$LOGS/brrd.after-start.log"
meta brrd_log_lines "$(wc -l <"$LOGS/brrd.after-start.log")"
meta brrd_log_errors "$(grep -c ' ERROR ' "$LOGS/brrd.after-start.log" || true)"
meta brrd_log_warnings "$(grep -c ' WARN ' "$LOGS/brrd.after-start.log" || true)"
meta brrd_log_first "$(grep -m1 -E ' (ERROR|WARN) ' "$LOGS/brrd.after-start.log" | cut -c1-300 | tr '\t' ' ' || true)"
meta brrd_data_bytes "$(du -sb "$DATA" | cut -f1)"
meta date_end_utc "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
stop_brrd

# ---------------------------------------------------------------- report
stamp="$(date -u +%Y-%m-%d)-$(hostname -s 2>/dev/null || hostname)-server"
python3 "$ROOT/bench/server-report.py" "$WORK" "$RESULTS/$stamp.md" "$RESULTS/$stamp.json"
log "report: $RESULTS/$stamp.md and $RESULTS/$stamp.json"
