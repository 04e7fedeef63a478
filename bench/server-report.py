#!/usr/bin/env python3
"""Turns the raw measurements of bench/server.sh into a Markdown report and a JSON file.

    server-report.py WORK_DIR OUT.md OUT.json

Reads WORK_DIR/{raw,agents,agent-sets,sizes,verify,meta}.tsv. Prints the Markdown to stdout as well.
"""
import csv
import json
import os
import statistics
import sys

STAGES = [
    ("backup1", "first backup"),
    ("backup2", "second backup (after --mutate)"),
    ("rebackup", "unchanged re-backup"),
    ("restore", "full restore"),
    ("init", "init (empty repository)"),
]
SIDES = ["local", "server"]
TARGET = 0.80  # server throughput / local throughput


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_s(v):
    if v is None:
        return "–"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def fmt_mib(b):
    return "–" if b is None else f"{b / 1048576:,.0f}"


def fmt_num(v, digits=0):
    return "–" if v is None else f"{v:,.{digits}f}"


def read_meta(work):
    meta = {}
    with open(os.path.join(work, "meta.tsv")) as f:
        for line in f:
            if "\t" in line:
                k, v = line.rstrip("\n").split("\t", 1)
                meta[k] = v
    return meta


def stage_results(raw):
    res = {}
    for side in SIDES:
        res[side] = {}
        for st, _ in STAGES:
            rows = [r for r in raw if r["side"] == side and r["stage"] == st]
            if not rows:
                continue
            ok = [r for r in rows if r["exit"] == "0"]
            res[side][st] = {
                "runs": len(rows),
                "failed": len(rows) - len(ok),
                "seconds": [num(r["seconds"]) for r in rows],
                "seconds_median": median(num(r["seconds"]) for r in ok),
                "brr_rss_kib_median": median(num(r["max_rss_kib"]) for r in ok),
                "brr_cpu_s_median": median(num(r["cpu_s"]) for r in ok),
                "brrd_hwm_kib_max": max((num(r["brrd_hwm_kib"]) or 0) for r in ok) if ok and side == "server" else None,
                "brrd_cpu_s_median": median(num(r["brrd_cpu_s"]) for r in ok) if side == "server" else None,
                "machine_busy_pct": [num(r["machine_busy_pct"]) for r in rows],
                "other_cpu_s": [num(r["other_cpu_s"]) for r in rows],
                "load1": [num(r["load1"]) for r in rows],
                "other_builds": [int(r["other_builds"] or 0) for r in rows],
            }
    return res


def main():
    work, out_md, out_json = sys.argv[1:4]
    meta = read_meta(work)
    raw = read_tsv(os.path.join(work, "raw.tsv"))
    agents = read_tsv(os.path.join(work, "agents.tsv"))
    sets = read_tsv(os.path.join(work, "agent-sets.tsv"))
    sizes = read_tsv(os.path.join(work, "sizes.tsv"))
    verify = read_tsv(os.path.join(work, "verify.tsv"))

    size = {(r["side"], r["what"]): int(r["bytes"]) for r in sizes}
    src = size.get(("corpus", "source_initial"))
    src2 = size.get(("corpus", "source_mutated"), src)
    res = stage_results(raw)

    # Throughput over the corpus and server ÷ local.
    ratio = {}
    for st, _ in STAGES:
        loc = res["local"].get(st, {}).get("seconds_median")
        srv = res["server"].get(st, {}).get("seconds_median")
        ratio[st] = loc / srv if loc and srv else None
        corpus = src if st == "backup1" else src2
        for side in SIDES:
            s = res[side].get(st)
            if s and s["seconds_median"] and corpus and st != "init":
                s["mb_per_s"] = corpus / 1e6 / s["seconds_median"]

    # Concurrent agents.
    agent_sets = {}
    for mode in ("shared", "separate"):
        rows = [r for r in sets if r["mode"] == mode]
        if not rows:
            continue
        walls = [num(r["seconds"]) for r in rows]
        total = int(rows[0]["source_bytes"])
        per_agent = [r for r in agents if r["mode"] == mode]
        agent_sets[mode] = {
            "runs": len(rows),
            "agents": int(rows[0]["agents"]),
            "source_bytes": total,
            "seconds": walls,
            "seconds_median": median(walls),
            "mb_per_s_median": total / 1e6 / median(walls) if median(walls) else None,
            "machine_busy_pct": [num(r["machine_busy_pct"]) for r in rows],
            "brr_cpu_s": [num(r["brr_cpu_s"]) for r in rows],
            "brrd_cpu_s": [num(r["brrd_cpu_s"]) for r in rows],
            "other_cpu_s": [num(r["other_cpu_s"]) for r in rows],
            "brrd_hwm_kib_max": max(num(r["brrd_hwm_kib"]) or 0 for r in rows),
            "failed": sum(int(r["failed"]) for r in rows),
            "exit_codes": sorted({r["exit"] for r in per_agent}),
            "agent_seconds": [num(r["seconds"]) for r in per_agent],
            "agent_rss_kib_max": max((num(r["max_rss_kib"]) or 0) for r in per_agent) if per_agent else None,
            "checks": [r["check"] for r in rows],
            "load1": [num(r["load1"]) for r in rows],
            "other_builds": [int(r["other_builds"] or 0) for r in rows],
        }

    log_errors = int(meta.get("brrd_log_errors", "0") or 0)
    log_warnings = int(meta.get("brrd_log_warnings", "0") or 0)

    # ------------------------------------------------------------ Markdown
    L = []
    L.append(f"# brr through brrd (loopback TLS) next to a local repository — {meta.get('date_utc', '?')}")
    L.append("")
    L.append(f"- Machine: {meta.get('cpu', '?')}, {meta.get('cpus', '?')} cores, {meta.get('mem', '?')} RAM, {meta.get('kernel', '?')}")
    L.append(f"- Binaries: {meta.get('brr_version', '?')} / {meta.get('brrd_version', '?')} (built {meta.get('brr_built', '?')}, HEAD {meta.get('brr_commit', '?')}, {meta.get('rustc', '?')})")
    L.append(f"- Server: `brrd serve` on 127.0.0.1, its self-signed certificate, URL {meta.get('server_url', '?')}; one company, the admin logged in with `brr login` (creates the repositories), {meta.get('agents', '?')} agents enrolled with `brr agent enroll` (agent 1 backs up and restores); every machine its own `XDG_CONFIG_HOME` and `XDG_CACHE_HOME`")
    files = meta.get("corpus_files", "?")
    L.append(f"- Corpus: `make-corpus.py --size-mib {meta.get('size_mib', '?')}` → {fmt_mib(src)} MiB ({fmt_num(src)} bytes, {files} files); after `--mutate` {fmt_mib(src2)} MiB")
    L.append(f"- Runs: median of {meta.get('runs', '?')} per stage, local and server interleaved inside each run (the side that goes first alternates); `sync` before every timed command; warm page cache")
    L.append(f"- Window: {meta.get('date_utc', '?')} – {meta.get('date_end_utc', '?')}")
    loads = [v for s in SIDES for st in res[s].values() for v in st["load1"] if v is not None]
    others = [v for s in SIDES for st in res[s].values() for v in st["other_cpu_s"] if v is not None]
    builds = [v for s in SIDES for st in res[s].values() for v in st["other_builds"]]
    if loads:
        L.append(f"- Noise: 1-min load average at the start of a measurement {min(loads):.2f} – {max(loads):.2f}; CPU seconds used by other processes during one measurement {min(others):.2f} – {max(others):.2f}; other compiler/linker processes at the start of a measurement: {max(builds) if builds else 0} at most")
    L.append("")
    L.append(f"## Local repository against brrd on loopback (target: server ≥ {TARGET:.0%} of local throughput)")
    L.append("")
    L.append(f"### Wall time, seconds (median of {meta.get('runs', '?')})")
    L.append("")
    L.append("| stage | local | server | server ÷ local throughput | target |")
    L.append("|---|---:|---:|---:|---|")
    for st, label in STAGES:
        loc = res["local"].get(st, {})
        srv = res["server"].get(st, {})
        r = ratio.get(st)
        verdict = "–" if r is None or st == "init" else ("met" if r >= TARGET else "**missed**")
        L.append(f"| {label} | {fmt_s(loc.get('seconds_median'))} | {fmt_s(srv.get('seconds_median'))} | {'–' if r is None else f'{r:.0%}'} | {verdict} |")
    L.append("")
    L.append("Every run (seconds):")
    L.append("")
    L.append("| stage | local | server |")
    L.append("|---|---|---|")
    for st, label in STAGES:
        cells = [" / ".join(fmt_s(v) for v in res[s].get(st, {}).get("seconds", [])) or "–" for s in SIDES]
        L.append(f"| {label} | {cells[0]} | {cells[1]} |")
    L.append("")
    L.append("Throughput over the corpus (MB/s = 10^6 bytes per second):")
    L.append("")
    L.append("| stage | local | server |")
    L.append("|---|---:|---:|")
    for st, label in STAGES:
        if st == "init":
            continue
        L.append(f"| {label} | {fmt_num(res['local'].get(st, {}).get('mb_per_s'))} | {fmt_num(res['server'].get(st, {}).get('mb_per_s'))} |")
    L.append("")
    L.append("### Memory and CPU")
    L.append("")
    L.append("| stage | brr peak RSS local (MiB) | brr peak RSS server (MiB) | brrd peak RSS (MiB) | brr CPU-s local | brr CPU-s server | brrd CPU-s |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for st, label in STAGES:
        loc = res["local"].get(st, {})
        srv = res["server"].get(st, {})
        L.append(
            f"| {label} | {fmt_mib((loc.get('brr_rss_kib_median') or 0) * 1024 or None)} | {fmt_mib((srv.get('brr_rss_kib_median') or 0) * 1024 or None)} "
            f"| {fmt_mib((srv.get('brrd_hwm_kib_max') or 0) * 1024 or None)} | {fmt_s(loc.get('brr_cpu_s_median'))} | {fmt_s(srv.get('brr_cpu_s_median'))} | {fmt_s(srv.get('brrd_cpu_s_median'))} |"
        )
    L.append("")
    L.append("brr: median of the runs; brrd: the highest VmHWM over the runs of a stage (reset before every command), CPU seconds the median of utime+stime.")
    L.append("")
    L.append("Machine busy during each run (% of all cores, from /proc/stat) and CPU seconds used by other processes:")
    L.append("")
    L.append("| stage | local: busy % | local: others CPU-s | server: busy % | server: others CPU-s |")
    L.append("|---|---|---|---|---|")
    for st, label in STAGES:
        cells = []
        for s in SIDES:
            d = res[s].get(st, {})
            cells.append(" / ".join(fmt_num(v) for v in d.get("machine_busy_pct", [])) or "–")
            cells.append(" / ".join(fmt_s(v) for v in d.get("other_cpu_s", [])) or "–")
        L.append(f"| {label} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("### Repository size (MiB)")
    L.append("")
    L.append("| repository 1 | local (`du -sb`) | server store (`du -sb`) | server's recorded usage (`stored_bytes`) |")
    L.append("|---|---:|---:|---:|")
    for what, label in [("repo_after_backup1", "after first backup"), ("repo_after_backup2", "after second backup"), ("repo_final", "after unchanged re-backup")]:
        L.append(f"| {label} | {fmt_mib(size.get(('local', what)))} | {fmt_mib(size.get(('server', what)))} | {fmt_mib(size.get(('server_usage', what)))} |")
    L.append("")
    ver = []
    for s in SIDES:
        rows = [r for r in verify if r["side"] == s]
        ver.append(f"{s}: {sum(r['result'] == 'ok' for r in rows)}/{len(rows)} identical")
    L.append("Restore verification (`diff -r --no-dereference` against the source, outside the timing): " + "; ".join(ver) + ".")
    fails = [f"{s} {st}" for s in SIDES for st, d in res[s].items() if d["failed"]]
    if fails:
        L.append("")
        L.append("**Failed commands:** " + ", ".join(fails) + " (see the logs in bench/work/server/logs).")
    L.append("")
    L.append(f"## {meta.get('agents', '?')} agents backing up at the same moment")
    L.append("")
    mib_each = meta.get("agent_mib", "?")
    L.append(f"Each agent backs up its own corpus (`make-corpus.py --size-mib {mib_each} --seed N`), all started together; wall time from the first start to the last exit.")
    L.append("")
    L.append("| repositories | runs | wall s (median) | aggregate MB/s | machine busy % | brr CPU-s | brrd CPU-s | others CPU-s | brrd peak RSS MiB | brr peak RSS MiB (max) | exit codes | `brr check --read-data` |")
    L.append("|---|---:|---:|---:|---|---|---|---|---:|---:|---|---|")
    for mode, label in [("shared", "one company repository"), ("separate", "one repository per agent")]:
        a = agent_sets.get(mode)
        if not a:
            continue
        L.append(
            f"| {label} | {a['runs']} | {fmt_s(a['seconds_median'])} | {fmt_num(a['mb_per_s_median'])} | {' / '.join(fmt_num(v) for v in a['machine_busy_pct'])} "
            f"| {' / '.join(fmt_s(v) for v in a['brr_cpu_s'])} | {' / '.join(fmt_s(v) for v in a['brrd_cpu_s'])} | {' / '.join(fmt_s(v) for v in a['other_cpu_s'])} "
            f"| {fmt_mib(a['brrd_hwm_kib_max'] * 1024)} | {fmt_mib((a['agent_rss_kib_max'] or 0) * 1024)} | {', '.join(a['exit_codes'])} | {'; '.join(a['checks'])} |"
        )
    L.append("")
    L.append(f"Corpora together: {fmt_mib(size.get(('corpus', 'agents_total')))} MiB ({fmt_num(size.get(('corpus', 'agents_total')))} bytes). brrd's log after start-up: {meta.get('brrd_log_lines', '?')} lines, {log_errors} errors, {log_warnings} warnings" + (f" (first: `{meta.get('brrd_log_first')}`)" if meta.get("brrd_log_first") else "") + ".")
    L.append("")
    md = "\n".join(L) + "\n"
    print(md)
    os.makedirs(os.path.dirname(out_md) or ".", exist_ok=True)
    with open(out_md, "w") as f:
        f.write(md)
    with open(out_json, "w") as f:
        json.dump({
            "meta": meta,
            "target_server_over_local": TARGET,
            "stages": res,
            "server_over_local_throughput": ratio,
            "sizes": {f"{k[0]}:{k[1]}": v for k, v in size.items()},
            "verify": verify,
            "agents": agent_sets,
            "brrd_log": {"errors": log_errors, "warnings": log_warnings},
        }, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
