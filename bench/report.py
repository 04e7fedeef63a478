#!/usr/bin/env python3
"""Turns the raw measurements of bench/run.sh into a Markdown report and a JSON file.

    report.py WORK_DIR OUT.md OUT.json

Reads WORK_DIR/{raw,sizes,verify,meta}.tsv, limits.{json,md} and pipeline.{json,md} (from
brr-machine-limits) and brr-stats.json when present. Prints the Markdown to stdout as well.
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
    ("check", "check, full data read"),
    ("init", "init (empty repository)"),
]
TOOL_ORDER = ["brr", "restic", "borg"]


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def fmt_s(v):
    if v is None:
        return "–"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def fmt_mib(b):
    return "–" if b is None else f"{b / 1048576:,.0f}"


def main():
    work, out_md, out_json = sys.argv[1:4]
    meta = {r["key"]: r["value"] for r in
            (dict(zip(("key", "value"), line.rstrip("\n").split("\t", 1)))
             for line in open(os.path.join(work, "meta.tsv")) if "\t" in line)}
    raw = read_tsv(os.path.join(work, "raw.tsv"))
    sizes = read_tsv(os.path.join(work, "sizes.tsv"))
    verify = read_tsv(os.path.join(work, "verify.tsv"))
    limits = read_json(os.path.join(work, "limits.json"))
    pipeline = read_json(os.path.join(work, "pipeline.json"))
    pipeline = (pipeline or {}).get("pipeline")
    brr_stats = read_json(os.path.join(work, "brr-stats.json"))

    tools = [t for t in TOOL_ORDER if t in meta.get("tools", "").split()]
    tools += [t for t in meta.get("tools", "").split() if t not in tools]

    # ------------------------------------------------------------ aggregate
    res = {}
    for t in tools:
        res[t] = {}
        for st, _ in STAGES:
            rows = [r for r in raw if r["tool"] == t and r["stage"] == st]
            ok = [r for r in rows if r["exit"] == "0" and r["seconds"] not in ("", "NA")]
            secs = [float(r["seconds"]) for r in ok]
            rss = [int(r["max_rss_kib"]) for r in ok]
            res[t][st] = {
                "runs": len(rows),
                "ok": len(ok),
                "seconds": secs,
                "median_s": statistics.median(secs) if secs else None,
                "max_rss_kib": rss,
                "median_rss_mib": statistics.median(rss) / 1024 if rss else None,
            }
    size = {}
    for r in sizes:
        size.setdefault(r["tool"], {})[r["what"]] = int(r["bytes"])
    corpus_bytes = size.get("corpus", {}).get("source_initial")
    mutated_bytes = size.get("corpus", {}).get("source_mutated")
    vres = {}
    for r in verify:
        vres.setdefault(r["tool"], []).append(r)

    loads = [float(r["load1"]) for r in raw if r.get("load1")]
    busy = [int(r["other_builds"] or 0) for r in raw if r.get("other_builds") not in (None, "")]
    n_busy = sum(1 for b in busy if b > 0)

    def med(t, st):
        return res.get(t, {}).get(st, {}).get("median_s")

    def rss(t, st):
        return res.get(t, {}).get(st, {}).get("median_rss_mib")

    def cell_time(t, st):
        d = res[t][st]
        if d["runs"] == 0:
            return "–"
        if d["ok"] < d["runs"]:
            return f"FAIL ({d['runs'] - d['ok']}/{d['runs']} runs)" + (
                f", {fmt_s(d['median_s'])}" if d["median_s"] is not None else "")
        return fmt_s(d["median_s"])

    def cell_rss(t, st):
        v = rss(t, st)
        return "–" if v is None else f"{v:,.0f}"

    L = []
    w = L.append
    date = meta.get("date_utc", "")
    w(f"# brr benchmark: {date[:10]} on {meta.get('host', '?')}")
    w("")
    w(f"- Machine: {meta.get('cpu', '?')}, {meta.get('cpus', '?')} cores, {meta.get('mem', '?')} RAM, "
      f"{meta.get('kernel', '?')}")
    w(f"- Tools: {meta.get('brr_version', 'brr n/a')} (binary built {meta.get('brr_built', '?')}, HEAD {meta.get('brr_commit', '?')}, "
      f"{meta.get('rustc', '')}); {meta.get('restic_version', 'n/a')}; {meta.get('borg_version', 'n/a')}")
    w(f"- Settings: brr defaults (zstd 2, AES-256-GCM); restic repository v2, `--compression auto`; "
      f"borg `--encryption {meta.get('borg_encryption')}`, `--compression {meta.get('borg_compression')}`")
    corpus_files = meta.get("corpus_files", "?")
    w(f"- Corpus: `make-corpus.py --size-mib {meta.get('size_mib')}` → {fmt_mib(corpus_bytes)} MiB "
      f"({corpus_bytes or 0:,} bytes, {corpus_files} files) at `{meta.get('corpus')}`; after `--mutate` "
      f"{fmt_mib(mutated_bytes)} MiB")
    w(f"- Runs: median of {meta.get('runs')} runs per stage ({meta.get('check_runs')} for check); tool order "
      f"rotates between runs; warm page cache (caches cannot be dropped here: the corpus is read once "
      f"before the first and the second backup)")
    w(f"- Window: {meta.get('date_utc')} – {meta.get('date_end_utc', '?')}; 1-min load average at the "
      f"start of a measurement: {min(loads, default=0):.2f} – {max(loads, default=0):.2f}")
    if n_busy:
        w(f"- **Noisy:** other compiler/linker processes were running at the start of {n_busy} of "
          f"{len(busy)} measurements (2 shared cores): those figures are slower than on a quiet machine.")
    else:
        w("- No other compiler/linker process was running at the start of any measurement.")
    w("")

    # ------------------------------------------------------------ main table
    w(f"## Wall time, seconds (median of {meta.get('runs')})")
    w("")
    w("| stage | " + " | ".join(tools) + (" | restic ÷ brr |" if "brr" in tools and "restic" in tools else " |"))
    w("|---|" + "---:|" * len(tools) + ("---:|" if "brr" in tools and "restic" in tools else ""))
    for st, label in STAGES:
        row = f"| {label} | " + " | ".join(cell_time(t, st) for t in tools) + " |"
        if "brr" in tools and "restic" in tools:
            b, r = med("brr", st), med("restic", st)
            row += f" {r / b:.2f}× |" if b and r else " – |"
        w(row)
    w("")
    if corpus_bytes:
        w("Throughput over the corpus (MB/s = 10^6 bytes per second):")
        w("")
        w("| stage | " + " | ".join(tools) + " |")
        w("|---|" + "---:|" * len(tools))
        for st, label in [("backup1", "first backup"), ("restore", "full restore"),
                          ("check", "check, full data read")]:
            w(f"| {label} | " + " | ".join(
                f"{corpus_bytes / med(t, st) / 1e6:,.0f}" if med(t, st) else "–" for t in tools) + " |")
        w("")

    w(f"## Peak memory (max RSS, MiB, median of {meta.get('runs')})")
    w("")
    w("| stage | " + " | ".join(tools) + " |")
    w("|---|" + "---:|" * len(tools))
    for st, label in STAGES:
        if st == "init":
            continue
        w(f"| {label} | " + " | ".join(cell_rss(t, st) for t in tools) + " |")
    w("")

    w("## Repository size (`du -sb`, MiB)")
    w("")
    w("| repository | " + " | ".join(tools) + " |")
    w("|---|" + "---:|" * len(tools))
    for what, label in [("repo_after_backup1", "after first backup (1 snapshot)"),
                        ("repo_after_backup2", "after second backup (2 snapshots)"),
                        ("repo_final", "after unchanged re-backup (3 snapshots)"),
                        ("cache_final", "local cache outside the repository")]:
        w(f"| {label} | " + " | ".join(fmt_mib(size.get(t, {}).get(what)) for t in tools) + " |")
    if corpus_bytes:
        w(f"| *source corpus* | {fmt_mib(corpus_bytes)} (initial), {fmt_mib(mutated_bytes)} (mutated) |"
          + " |" * (len(tools) - 1))
    w("")
    w("Restore verification (`diff -r --no-dereference` against the source, outside the timing): " + "; ".join(
        f"{t}: " + (f"{sum(1 for r in vres[t] if r['result'] == 'ok')}/{len(vres[t])} identical"
                    + ("" if all(r["result"] == "ok" for r in vres[t]) else
                       " — FAILED: " + next(r["detail"] for r in vres[t] if r["result"] != "ok"))
                    if t in vres else "not run") for t in tools) + ".")
    w("")

    # ------------------------------------------------------------ targets
    targets = []
    if "brr" in tools and "restic" in tools:
        w("## Targets (against restic)")
        w("")
        w("| target | brr | restic | ratio | met? |")
        w("|---|---:|---:|---:|---|")

        def speed_target(st, label):
            b, r = med("brr", st), med("restic", st)
            if not b or not r:
                targets.append({"target": label, "met": None})
                w(f"| {label} | {cell_time('brr', st)} | {cell_time('restic', st)} | – | not measured |")
                return
            ratio = r / b
            met = ratio >= 2.0
            targets.append({"target": label, "brr_s": b, "restic_s": r, "speedup": round(ratio, 3), "met": met})
            w(f"| {label} | {fmt_s(b)} s | {fmt_s(r)} s | {ratio:.2f}× faster | {'**yes**' if met else '**no**'} |")

        speed_target("backup1", "first backup ≥ 2× faster")
        speed_target("restore", "full restore ≥ 2× faster")
        speed_target("rebackup", "unchanged re-backup ≥ 2× faster")
        for what, label in [("repo_after_backup1", "repository ≤ restic's, 1 snapshot"),
                            ("repo_final", "repository ≤ restic's, 3 snapshots")]:
            b, r = size.get("brr", {}).get(what), size.get("restic", {}).get(what)
            if b is None or r is None:
                targets.append({"target": label, "met": None})
                w(f"| {label} | – | – | – | not measured |")
                continue
            met = b <= r
            targets.append({"target": label, "brr_bytes": b, "restic_bytes": r, "met": met})
            w(f"| {label} | {fmt_mib(b)} MiB | {fmt_mib(r)} MiB | {b / r:.3f} | {'**yes**' if met else '**no**'} |")
        for st, label in STAGES:
            if st == "init":
                continue
            b, r = rss("brr", st), rss("restic", st)
            if b is None or r is None:
                continue
            met = b <= r
            targets.append({"target": f"peak memory ≤ restic's, {label}", "brr_mib": round(b, 1),
                            "restic_mib": round(r, 1), "met": met})
            w(f"| peak memory ≤ restic's, {label} | {b:,.0f} MiB | {r:,.0f} MiB | {b / r:.2f} | "
              f"{'**yes**' if met else '**no**'} |")
        w("")

    # ------------------------------------------------------------ limits
    if limits and limits.get("stages"):
        w("## Single-core ceilings of this machine (`brr-machine-limits`)")
        w("")
        w(read_text(os.path.join(work, "limits.md")).split("\n\nWhole data path")[0])
        w("")
    if pipeline:
        s1 = pipeline["seconds_one_core"]
        w("## How close each tool is to the machine's limit")
        w("")
        w(read_text(os.path.join(work, "pipeline.md")))
        w("")
        w("The floor is what brr's data path needs for exactly this corpus on one core: each stage timed "
          f"alone over data held in memory (zstd {pipeline.get('zstd_level', 2)}, AES-256-GCM, keyed BLAKE3, "
          "FastCDC 256K/512K/4M), plus "
          "reading the files and, for restore, writing them back through the file system without fsync; "
          "divided by 2 cores as if the work split perfectly. The unchanged re-backup floor is one walk "
          "with lstat of the tree on one core. A measured time is that many times the floor.")
        w("")
        rows = [("backup1", "first backup", s1["backup_total"] / 2),
                ("restore", "full restore", s1["restore_total"] / 2),
                ("check", "check, full data read", s1["check_total"] / 2),
                ("rebackup", "unchanged re-backup (floor: walk + lstat, 1 core)", s1["rebackup_total"])]
        w("| stage | floor, 2 cores (s) | " + " | ".join(f"{t} (s, × floor)" for t in tools) + " |")
        w("|---|---:|" + "---:|" * len(tools))
        for st, label, floor in rows:
            cells = []
            for t in tools:
                m = med(t, st)
                cells.append("–" if not m else f"{fmt_s(m)} ({m / floor:.1f}×)" if floor > 0 else fmt_s(m))
            w(f"| {label} | {floor:.2f} | " + " | ".join(cells) + " |")
        w("")
    if brr_stats is not None:
        w("`brr stats --json` of repository 1 after the three backups:")
        w("")
        w("```json")
        w(json.dumps(brr_stats, indent=1)[:3000])
        w("```")
        w("")

    md = "\n".join(L) + "\n"
    with open(out_md, "w") as f:
        f.write(md)
    sys.stdout.write(md)
    doc = {
        "meta": meta,
        "corpus_bytes": corpus_bytes,
        "mutated_corpus_bytes": mutated_bytes,
        "results": res,
        "sizes": size,
        "verify": vres,
        "targets": targets,
        "noise": {"load1_min": min(loads, default=None), "load1_max": max(loads, default=None),
                  "measurements_with_other_builds": n_busy, "measurements": len(busy)},
        "machine_limits": limits,
        "pipeline_floor": pipeline,
        "brr_stats": brr_stats,
    }
    with open(out_json, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
