#!/usr/bin/env bash
# brr benchmark: brr against restic and borg on one machine, in one run.
#
#   bash bench/run.sh
#
# Environment (all optional):
#   BENCH_SIZE_MIB    corpus size in MiB (default 1024)
#   BENCH_RUNS        runs per measured stage, median reported (default 3)
#   BENCH_CHECK_RUNS  runs of the full-read check stage (default BENCH_RUNS)
#   BENCH_TOOLS       tools to measure (default "brr restic borg")
#   BENCH_WORK        scratch directory for corpus, repositories, restores (default bench/work)
#   BENCH_RESULTS     where the report goes (default bench/results)
#   BENCH_LIMITS_MIB  buffer size for brr-machine-limits (default 256; 0 skips it)
#   BENCH_ZSTD_LEVEL  zstd level of the single-core data-path floor (default 2, brr's default)
#   BENCH_FLOOR_RUNS  runs of the data-path floor over the corpus, median kept (default 3)
#   BENCH_SKIP_BUILD  1: use the existing target/release binaries instead of building
#   BORG_ENCRYPTION   borg init --encryption (default repokey-blake2)
#   BORG_COMPRESSION  borg create --compression (default lz4, borg 1.2's default)
#
# What it does, for each tool in turn inside each run (tool order rotates between runs):
#   1. builds a fresh corpus with shared/bench/make-corpus.py at bench/work/corpus/data;
#   2. first backup: init a fresh repository per run, back up the corpus   (N repositories);
#   3. mutates the corpus in place (make-corpus.py --mutate);
#   4. second backup into each of the N repositories (same starting state for every run);
#   5. unchanged re-backup into each of the N repositories;
#   6. full restore of the latest snapshot of repository 1 into an empty directory, N times;
#      each restore is compared with the source by `diff -r --no-dereference` (not timed);
#   7. check with full data read of repository 1, N times.
# Every stage is timed with /usr/bin/time -f '%e %M' (wall seconds, peak RSS). Caches cannot be
# dropped here (no root over the host's page cache), so the corpus is read once before the first
# stage and after the mutation and every stage runs on a warm page cache. Before every timed
# command the harness runs `sync`, outside the timing, so that no command starts with the dirty
# pages of an earlier one (a restore's gigabyte, a backup's packs) still waiting for write-back:
# without it the second and third restore of every tool were slowed by the first one's write-back.
# Each restored tree is deleted after its check, and the next restore starts only when those inodes
# are older than dirty_expire_centisecs (30 s here; the wait is not timed): on ext4 without a
# journal (this machine) the inode allocator skips inodes freed within that interval and reads
# their inode table blocks to find that out, so a restore that followed the deletion of a
# 23,000-file tree spent seconds of system time in mkdir/open -- a cost of the previous tool's
# cleanup, not of the restorer.
#
# Output: a Markdown report on stdout and in bench/results/<date>-<host>.md, and the same data as
# JSON in bench/results/<date>-<host>.json. Raw measurements stay in bench/work/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${BENCH_SHARED:-$(cd "$ROOT/../shared" 2>/dev/null && pwd || echo "$ROOT/../shared")}
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
RUNS=${BENCH_RUNS:-3}
CHECK_RUNS=${BENCH_CHECK_RUNS:-$RUNS}
TOOLS=${BENCH_TOOLS:-"brr restic borg"}
WORK=${BENCH_WORK:-$ROOT/bench/work}
LIMITS_MIB=${BENCH_LIMITS_MIB:-256}
BORG_ENCRYPTION=${BORG_ENCRYPTION:-repokey-blake2}
BORG_COMPRESSION=${BORG_COMPRESSION:-lz4}
ZSTD_LEVEL=${BENCH_ZSTD_LEVEL:-2}
FLOOR_RUNS=${BENCH_FLOOR_RUNS:-3}
RESULTS=${BENCH_RESULTS:-$ROOT/bench/results}

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- prerequisites
need_pkgs=()
command -v restic >/dev/null 2>&1 || need_pkgs+=(restic)
command -v borg >/dev/null 2>&1 || need_pkgs+=(borgbackup)
[ -x /usr/bin/time ] || need_pkgs+=(time)
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${need_pkgs[@]}"
fi
[ -f "$SHARED/bench/make-corpus.py" ] || die "corpus generator not found at $SHARED/bench/make-corpus.py (set BENCH_SHARED)"

mkdir -p "$WORK" "$RESULTS"
WORK=$(cd "$WORK" && pwd)
BIN=$WORK/bin
mkdir -p "$BIN"

# ---------------------------------------------------------------- build
# The binaries are copied out of target/ so that a rebuild by someone else during the run cannot
# swap them under the benchmark.
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "building release binaries (nice)"
    packages=(-p brr-bench)
    case " $TOOLS " in *" brr "*) packages+=(-p brr) ;; esac
    if ! (cd "$ROOT" && nice -n 10 cargo build --release "${packages[@]}") >"$WORK/build.log" 2>&1; then
        tail -n 20 "$WORK/build.log" >&2
        die "cargo build --release ${packages[*]} failed (log: $WORK/build.log); BENCH_TOOLS='restic borg' measures the others"
    fi
    tail -n 1 "$WORK/build.log" >&2
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case " $TOOLS " in
    *" brr "*)
        [ -x "$TARGET_DIR/release/brr" ] || die "target/release/brr missing (cargo build --release -p brr failed?)"
        cp -p "$TARGET_DIR/release/brr" "$BIN/brr" ;;
esac
if [ "$LIMITS_MIB" != 0 ]; then
    [ -x "$TARGET_DIR/release/brr-machine-limits" ] || die "target/release/brr-machine-limits missing"
    cp "$TARGET_DIR/release/brr-machine-limits" "$BIN/brr-machine-limits"
fi

# ---------------------------------------------------------------- environment of the tools
export BRR_PASSWORD=bench-password-not-secret
export RESTIC_PASSWORD=$BRR_PASSWORD
export BORG_PASSPHRASE=$BRR_PASSWORD
export RESTIC_CACHE_DIR=$WORK/cache/restic
export BORG_BASE_DIR=$WORK/cache/borg-base
export XDG_CACHE_HOME=$WORK/cache/xdg
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export RESTIC_PROGRESS_FPS=0.016

CORPUS=$WORK/corpus/data          # the one absolute source path every tool backs up
REPOS=$WORK/repos
RESTORES=$WORK/restore
LOGS=$WORK/logs
RAW=$WORK/raw.tsv
SIZES=$WORK/sizes.tsv
VERIFY=$WORK/verify.tsv
META=$WORK/meta.tsv

rm -rf "$REPOS" "$RESTORES" "$LOGS" "$WORK/cache" "$WORK/corpus"
mkdir -p "$REPOS" "$RESTORES" "$LOGS" "$RESTIC_CACHE_DIR" "$BORG_BASE_DIR" "$XDG_CACHE_HOME"
printf 'tool\tstage\trun\tseconds\tmax_rss_kib\texit\tload1\tother_builds\n' >"$RAW"
printf 'tool\twhat\tbytes\n' >"$SIZES"
printf 'tool\trun\tresult\tdetail\n' >"$VERIFY"

meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }
: >"$META"
meta date_utc "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta host "$(hostname)"
meta cpu "$(lscpu | sed -n 's/^Model name: *//p' | head -n1)"
meta cpus "$(nproc)"
meta mem "$(free -h | awk '/^Mem:/ {print $2}')"
meta kernel "$(uname -sr)"
meta size_mib "$SIZE_MIB"
meta runs "$RUNS"
meta check_runs "$CHECK_RUNS"
meta tools "$TOOLS"
meta borg_encryption "$BORG_ENCRYPTION"
meta borg_compression "$BORG_COMPRESSION"
meta restic_version "$(restic version 2>/dev/null | head -n1)"
meta borg_version "$(borg --version 2>/dev/null)"
meta brr_version "$( [ -x "$BIN/brr" ] && "$BIN/brr" --version 2>/dev/null | head -n1 || echo n/a)"
meta brr_commit "$(cd "$ROOT" && git log -1 --format='%h %cs' 2>/dev/null || echo unknown)"
meta brr_built "$( [ -x "$BIN/brr" ] && date -u -r "$BIN/brr" +%Y-%m-%dT%H:%M:%SZ || echo n/a)"
meta rustc "$(rustc --version 2>/dev/null || echo unknown)"
meta corpus "$CORPUS"

# Number of compiler/cargo processes running besides us: a noise indicator.
other_builds() { pgrep -c -x 'rustc|cargo|cc1|cc1plus|ld|clang' 2>/dev/null || true; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# measure TOOL STAGE RUN DIR -- command...: runs the command in DIR under /usr/bin/time and
# appends a row to raw.tsv (wall seconds, peak RSS in KiB, exit code, load, concurrent builds).
measure() {
    local tool=$1 stage=$2 run=$3 dir=$4
    shift 5
    local tf=$LOGS/time.$tool.$stage.$run log=$LOGS/$tool.$stage.$run.log
    local l1 ob
    # No command starts with an earlier command's dirty pages still to write back (not timed).
    sync
    l1=$(load1)
    ob=$(other_builds)
    set +e
    (cd "$dir" && /usr/bin/time -f '%e %M %x' -o "$tf" "$@") >"$log" 2>&1
    set -e
    local secs=NA rss=0 code=127
    [ -s "$tf" ] && read -r secs rss code < <(tail -n1 "$tf")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$stage" "$run" "$secs" "$rss" "$code" "$l1" "${ob:-0}" >>"$RAW"
    if [ "$code" != 0 ]; then
        log "$tool $stage run $run FAILED (exit $code); last lines of $log:"
        tail -n 5 "$log" >&2
    else
        log "$tool $stage run $run: ${secs}s, peak RSS $((rss / 1024)) MiB"
    fi
}

# ---------------------------------------------------------------- tool adapters
# Each sets the array CMD to the command line of one operation.
repo_of() { echo "$REPOS/$1-$2"; }

cmd_init() {
    local tool=$1 repo=$2
    case $tool in
        brr) CMD=("$BIN/brr" init --repo "$repo") ;;
        restic) CMD=(restic init --repository-version 2 -r "$repo") ;;
        borg) CMD=(borg init --encryption "$BORG_ENCRYPTION" "$repo") ;;
    esac
}

cmd_backup() {
    local tool=$1 repo=$2 name=$3
    case $tool in
        brr) CMD=("$BIN/brr" backup --repo "$repo" "$CORPUS") ;;
        restic) CMD=(restic -r "$repo" backup --compression auto "$CORPUS") ;;
        borg) CMD=(borg create --compression "$BORG_COMPRESSION" "$repo::$name" "$CORPUS") ;;
    esac
}

# Restores run with the (empty) target as working directory: borg extract writes there.
cmd_restore() {
    local tool=$1 repo=$2 target=$3 name=$4
    case $tool in
        brr) CMD=("$BIN/brr" restore --repo "$repo" latest --target "$target") ;;
        restic) CMD=(restic -r "$repo" restore latest --target "$target") ;;
        borg) CMD=(borg extract "$repo::$name") ;;
    esac
}

cmd_check() {
    local tool=$1 repo=$2
    case $tool in
        brr) CMD=("$BIN/brr" check --repo "$repo" --read-data) ;;
        restic) CMD=(restic -r "$repo" check --read-data) ;;
        borg) CMD=(borg check --verify-data "$repo") ;;
    esac
}

# Waits (not timed) until the inodes freed by the last deletion of a restored tree are older than
# the kernel's dirty_expire interval: ext4 without a journal skips "recently deleted" inodes when
# allocating and reads their inode table blocks to find them (see the header).
LAST_DELETE=0
settle_deleted_inodes() {
    local expire left
    expire=$(( $(cat /proc/sys/vm/dirty_expire_centisecs 2>/dev/null || echo 3000) / 100 + 1 ))
    left=$(( LAST_DELETE + expire - $(date +%s) ))
    if [ "$left" -gt 0 ]; then
        log "waiting ${left}s for the inodes of the last deleted restore to age (not timed)"
        sleep "$left"
    fi
}

# Tool order for run R: rotated so that no tool always goes first (or last) on the warm cache.
order_for_run() {
    local r=$1 arr
    read -r -a arr <<<"$TOOLS"
    local n=${#arr[@]} i out=()
    for ((i = 0; i < n; i++)); do out+=("${arr[$(((i + r - 1) % n))]}"); done
    echo "${out[*]}"
}

warm() { log "warming page cache: $1"; tar -cf - -C "$(dirname "$1")" "$(basename "$1")" | cat >/dev/null; }

# The restored copy of the corpus inside TARGET: restic and borg restore the absolute path under
# the target; a tool may also restore the source's basename or its contents directly.
restored_root() {
    local t=$1
    for c in "$t$CORPUS" "$t/$(basename "$CORPUS")" "$t"; do
        if [ -f "$c/vm/disk.img" ]; then echo "$c"; return 0; fi
    done
    return 1
}

verify_restore() {
    local tool=$1 run=$2 target=$3 root
    if ! root=$(restored_root "$target"); then
        printf '%s\t%s\tFAIL\tno restored corpus found under %s\n' "$tool" "$run" "$target" >>"$VERIFY"
        log "$tool restore run $run: VERIFY FAILED (nothing restored?)"
        return 0
    fi
    if diff -r --no-dereference "$CORPUS" "$root" >"$LOGS/$tool.verify.$run.diff" 2>&1; then
        printf '%s\t%s\tok\tdiff -r --no-dereference identical\n' "$tool" "$run" >>"$VERIFY"
        log "$tool restore run $run: identical to the source"
    else
        printf '%s\t%s\tFAIL\t%s\n' "$tool" "$run" "$(head -n1 "$LOGS/$tool.verify.$run.diff" | tr '\t' ' ')" >>"$VERIFY"
        log "$tool restore run $run: VERIFY FAILED, see $LOGS/$tool.verify.$run.diff"
    fi
}

record_size() {
    local tool=$1 what=$2 path=$3
    [ -e "$path" ] || return 0
    printf '%s\t%s\t%s\n' "$tool" "$what" "$(du -sb "$path" | cut -f1)" >>"$SIZES"
}

# Corpus size: the sum of regular files' sizes (what the tools read), not du's directory blocks.
record_file_bytes() {
    printf 'corpus\t%s\t%s\n' "$1" "$(find "$CORPUS" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')" >>"$SIZES"
}

record_cache_size() {
    local tool=$1 what=$2 path
    case $tool in
        brr) path=$XDG_CACHE_HOME/brr ;;
        restic) path=$RESTIC_CACHE_DIR ;;
        borg) path=$BORG_BASE_DIR/.cache/borg ;;
    esac
    record_size "$tool" "$what" "$path"
}

# ---------------------------------------------------------------- machine limits
if [ "$LIMITS_MIB" != 0 ]; then
    log "measuring single-core ceilings (brr-machine-limits --mib $LIMITS_MIB)"
    nice -n 0 "$BIN/brr-machine-limits" --mib "$LIMITS_MIB" --runs 3 --json-out "$WORK/limits.json" \
        >"$WORK/limits.md" 2>"$LOGS/limits.log" || die "brr-machine-limits failed (see $LOGS/limits.log)"
fi

# ---------------------------------------------------------------- corpus
log "building a ${SIZE_MIB} MiB corpus at $CORPUS"
mkdir -p "$(dirname "$CORPUS")"
python3 "$SHARED/bench/make-corpus.py" "$CORPUS" --size-mib "$SIZE_MIB" 2>&1 | tail -n1 >&2
record_file_bytes source_initial
meta corpus_files "$(find "$CORPUS" -type f | wc -l)"
sync
warm "$CORPUS"
if [ "$LIMITS_MIB" != 0 ]; then
    log "measuring the single-core data-path floor over the corpus (zstd $ZSTD_LEVEL)"
    rm -rf "$WORK/floor-write"
    "$BIN/brr-machine-limits" --corpus "$CORPUS" --skip-stages --zstd-level "$ZSTD_LEVEL" --runs "$FLOOR_RUNS" \
        --write-to "$WORK/floor-write" \
        --json-out "$WORK/pipeline.json" >"$WORK/pipeline.md" 2>>"$LOGS/limits.log" \
        || die "brr-machine-limits --corpus failed (see $LOGS/limits.log)"
fi

# ---------------------------------------------------------------- stage 1: first backup
for ((r = 1; r <= RUNS; r++)); do
    for tool in $(order_for_run "$r"); do
        repo=$(repo_of "$tool" "$r")
        cmd_init "$tool" "$repo"
        measure "$tool" init "$r" "$WORK" -- "${CMD[@]}"
        cmd_backup "$tool" "$repo" b1
        measure "$tool" backup1 "$r" "$WORK" -- "${CMD[@]}"
    done
done
for tool in $TOOLS; do
    record_size "$tool" repo_after_backup1 "$(repo_of "$tool" 1)"
    record_cache_size "$tool" cache_after_backup1
done

# ---------------------------------------------------------------- stage 2: mutate, second backup
log "mutating the corpus in place"
python3 "$SHARED/bench/make-corpus.py" "$CORPUS" --mutate 2>&1 | tail -n1 >&2
record_file_bytes source_mutated
sync
warm "$CORPUS"
for ((r = 1; r <= RUNS; r++)); do
    for tool in $(order_for_run "$r"); do
        cmd_backup "$tool" "$(repo_of "$tool" "$r")" b2
        measure "$tool" backup2 "$r" "$WORK" -- "${CMD[@]}"
    done
done
for tool in $TOOLS; do
    record_size "$tool" repo_after_backup2 "$(repo_of "$tool" 1)"
done

# ---------------------------------------------------------------- stage 3: unchanged re-backup
for ((r = 1; r <= RUNS; r++)); do
    for tool in $(order_for_run "$r"); do
        cmd_backup "$tool" "$(repo_of "$tool" "$r")" b3
        measure "$tool" rebackup "$r" "$WORK" -- "${CMD[@]}"
    done
done
for tool in $TOOLS; do
    record_size "$tool" repo_final "$(repo_of "$tool" 1)"
    record_cache_size "$tool" cache_final
done

# ---------------------------------------------------------------- stage 4: full restore
for ((r = 1; r <= RUNS; r++)); do
    for tool in $(order_for_run "$r"); do
        target=$RESTORES/$tool
        rm -rf "$target"
        mkdir -p "$target"
        settle_deleted_inodes
        cmd_restore "$tool" "$(repo_of "$tool" 1)" "$target" b3
        measure "$tool" restore "$r" "$target" -- "${CMD[@]}"
        verify_restore "$tool" "$r" "$target"
        rm -rf "$target"
        LAST_DELETE=$(date +%s)
    done
done

# ---------------------------------------------------------------- stage 5: check, full data read
for ((r = 1; r <= CHECK_RUNS; r++)); do
    for tool in $(order_for_run "$r"); do
        cmd_check "$tool" "$(repo_of "$tool" 1)"
        measure "$tool" check "$r" "$WORK" -- "${CMD[@]}"
    done
done

# ---------------------------------------------------------------- brr's own view of the repository
case " $TOOLS " in
    *" brr "*)
        "$BIN/brr" stats --repo "$(repo_of brr 1)" --json >"$WORK/brr-stats.json" 2>"$LOGS/brr-stats.err" || true
        "$BIN/brr" snapshots --repo "$(repo_of brr 1)" --json >"$WORK/brr-snapshots.json" 2>"$LOGS/brr-snapshots.err" || true
        ;;
esac
meta date_end_utc "$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# ---------------------------------------------------------------- report
stamp="$(date -u +%Y-%m-%d)-$(hostname -s 2>/dev/null || hostname)"
python3 "$ROOT/bench/report.py" "$WORK" "$RESULTS/$stamp.md" "$RESULTS/$stamp.json"
log "report: $RESULTS/$stamp.md and $RESULTS/$stamp.json"
