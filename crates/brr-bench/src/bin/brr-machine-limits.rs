//! `brr-machine-limits`: what one core of this machine can do for each stage of brr's data path.
//!
//! ```text
//! brr-machine-limits [--mib N] [--runs N] [--json] [--json-out FILE]
//!                    [--corpus DIR [--zstd-level N] [--skip-stages] [--write-to DIR]]
//! ```
//!
//! Each stage runs single-threaded over an in-memory buffer (default 256 MiB), once to warm up
//! and then `--runs` times (default 3); the table shows the median in MB/s (10^6 bytes of input
//! per second). These are ceilings: a backup of B bytes that passes every byte through stages
//! with rates r1, r2, … needs at least B/r1 + B/r2 + … seconds of CPU, divided by the cores.
//!
//! With `--corpus DIR` it also runs brr's whole data path single-threaded over that directory
//! tree (walk, read, chunk, hash, deduplicate, compress, encrypt, and back), timing each stage: the
//! CPU floor of a first backup, a restore and a full check of exactly that data.

use std::io::Write;
use std::process::ExitCode;

use brr_bench::{
    PipelineResult, StageResult, bench_aes_gcm_open, bench_aes_gcm_seal, bench_blake3_keyed,
    bench_fastcdc, bench_memcpy, bench_zstd_compress, bench_zstd_decompress, corpus_pipeline,
    random_bytes, text_like,
};

struct Args {
    mib: usize,
    runs: usize,
    json: bool,
    json_out: Option<String>,
    corpus: Option<String>,
    zstd_level: i32,
    skip_stages: bool,
    write_to: Option<String>,
}

fn usage() -> &'static str {
    "usage: brr-machine-limits [--mib N] [--runs N] [--json] [--json-out FILE]\n\
     \x20                         [--corpus DIR [--zstd-level N] [--skip-stages] [--write-to DIR]]\n\
     \n\
     Measures single-core throughput of brr's data-path stages (AES-256-GCM via aws-lc-rs,\n\
     keyed BLAKE3, FastCDC 2020 256K/512K/4M, zstd 1 and 3, zstd decompress, memcpy).\n\
     --mib N        buffer size per stage in MiB (default 256)\n\
     --runs N       measured runs per stage, median reported (default 3)\n\
     --json         print JSON instead of the Markdown table\n\
     --json-out F   also write the JSON to file F\n\
     --corpus DIR   also run the whole data path single-threaded over DIR (CPU floor per stage)\n\
     --zstd-level N zstd level for --corpus (default 2, brr's default compression)\n\
     --skip-stages  with --corpus: skip the per-stage buffer measurements\n\
     --write-to DIR with --corpus: also write the tree back under DIR (must not exist; removed\n\
     \x20              after each run) to measure what the file system costs a restore\n"
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        mib: 256,
        runs: 3,
        json: false,
        json_out: None,
        corpus: None,
        zstd_level: 2,
        skip_stages: false,
        write_to: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--mib" => {
                a.mib = value("--mib")?.parse().map_err(|e| format!("--mib: {e}"))?;
            }
            "--runs" => {
                a.runs = value("--runs")?
                    .parse()
                    .map_err(|e| format!("--runs: {e}"))?;
            }
            "--json" => a.json = true,
            "--json-out" => a.json_out = Some(value("--json-out")?),
            "--corpus" => a.corpus = Some(value("--corpus")?),
            "--zstd-level" => {
                a.zstd_level = value("--zstd-level")?
                    .parse()
                    .map_err(|e| format!("--zstd-level: {e}"))?;
            }
            "--skip-stages" => a.skip_stages = true,
            "--write-to" => a.write_to = Some(value("--write-to")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if a.mib == 0 || a.runs == 0 {
        return Err("--mib and --runs must be at least 1".into());
    }
    Ok(a)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("brr-machine-limits: {e}");
            }
            eprint!("{}", usage());
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let runs = args.runs;
    let mut results: Vec<StageResult> = Vec::new();
    if !args.skip_stages {
        let len = args.mib << 20;
        eprintln!(
            "brr-machine-limits: generating {} MiB of text-like and random data",
            args.mib
        );
        let text = text_like(len, 20_261_123);
        let rand = random_bytes(len, 20_261_124);
        let mut step = |r: StageResult| {
            eprintln!("  {:<42} {:>9.0} MB/s", r.name, r.median_mb_s());
            results.push(r);
        };
        step(bench_memcpy(&rand, runs));
        step(bench_blake3_keyed(&rand, runs));
        step(bench_fastcdc(&rand, runs));
        step(bench_aes_gcm_seal(&rand, runs));
        step(bench_aes_gcm_open(&rand, runs));
        step(bench_zstd_compress(&text, 1, "text-like", runs));
        step(bench_zstd_compress(&text, 3, "text-like", runs));
        step(bench_zstd_compress(&rand, 1, "random", runs));
        step(bench_zstd_compress(&rand, 3, "random", runs));
        step(bench_zstd_decompress(&text, 1, "text-like", runs));
        step(bench_zstd_decompress(&text, 3, "text-like", runs));
    }

    let pipeline = match &args.corpus {
        None => None,
        Some(dir) => match run_pipeline(dir, args.zstd_level, runs, args.write_to.as_deref()) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("brr-machine-limits: --corpus {dir}: {e}");
                return ExitCode::FAILURE;
            }
        },
    };

    let json = serde_json::json!({
        "cpu": cpu_model(),
        "threads": 1,
        "buffer_mib": args.mib,
        "runs": runs,
        "unit": "MB/s of input (10^6 bytes per second), median of runs",
        "stages": results.iter().map(StageResult::to_json).collect::<Vec<_>>(),
        "pipeline": pipeline.as_ref().map(|p| {
            let mut v = p.to_json();
            v["corpus"] = serde_json::json!(args.corpus);
            v
        }),
    });
    let json_text = match serde_json::to_string_pretty(&json) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("brr-machine-limits: JSON: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.json_out
        && let Err(e) = std::fs::write(path, format!("{json_text}\n"))
    {
        eprintln!("brr-machine-limits: writing {path}: {e}");
        return ExitCode::FAILURE;
    }
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        writeln!(out, "{json_text}")
    } else {
        write_table(&mut out, &results, runs, args.mib).and_then(|()| match &pipeline {
            Some(p) => write_pipeline(&mut out, p),
            None => Ok(()),
        })
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("brr-machine-limits: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_table(
    out: &mut impl Write,
    results: &[StageResult],
    runs: usize,
    mib: usize,
) -> std::io::Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "Single core, {mib} MiB per stage, median of {runs} runs (MB/s = 10^6 bytes of input per second).\n"
    )?;
    writeln!(
        out,
        "| stage | crate | MB/s per core | runs (MB/s) | output/input |"
    )?;
    writeln!(out, "|---|---|---:|---|---:|")?;
    for r in results {
        let runs_txt = r
            .runs_mb_s
            .iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(" / ");
        let ratio = r
            .ratio
            .map(|x| format!("{x:.3}"))
            .unwrap_or_else(|| "–".into());
        writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} |",
            r.name,
            r.krate,
            r.median_mb_s(),
            runs_txt,
            ratio
        )?;
    }
    Ok(())
}

/// Runs the corpus pipeline `runs` times and keeps the run with the median backup time.
fn run_pipeline(
    dir: &str,
    level: i32,
    runs: usize,
    write_to: Option<&str>,
) -> Result<PipelineResult, String> {
    let mut all = Vec::with_capacity(runs);
    for i in 0..runs {
        eprintln!(
            "brr-machine-limits: data path over {dir}, run {}/{runs}",
            i + 1
        );
        let out = write_to.map(std::path::Path::new);
        if let Some(o) = out
            && o.exists()
        {
            return Err(format!("--write-to {}: already exists", o.display()));
        }
        let result = corpus_pipeline(std::path::Path::new(dir), level, out);
        if let Some(o) = out {
            let _ = std::fs::remove_dir_all(o);
        }
        all.push(result?);
    }
    all.sort_by(|a, b| a.backup_s().total_cmp(&b.backup_s()));
    let mid = all.len() / 2;
    Ok(all.swap_remove(mid))
}

fn write_pipeline(out: &mut impl Write, p: &PipelineResult) -> std::io::Result<()> {
    let mb = |b: u64| b as f64 / 1e6;
    writeln!(out)?;
    writeln!(
        out,
        "Whole data path, one core, over the corpus: {} files ({:.0} MB), {} chunks, {} distinct \
         ({:.0} MB), stored {:.0} MB after zstd {}.\n",
        p.files,
        mb(p.bytes),
        p.chunks,
        p.unique_chunks,
        mb(p.unique_bytes),
        mb(p.stored_bytes),
        p.zstd_level
    )?;
    writeln!(out, "| stage | seconds, one core | MB/s over its input |")?;
    writeln!(out, "|---|---:|---:|")?;
    let rows: [(&str, f64, u64); 11] = [
        ("walk + lstat", p.walk_s, 0),
        ("read (page cache)", p.read_s, p.bytes),
        ("FastCDC chunking", p.chunk_s, p.bytes),
        ("keyed BLAKE3 (chunk IDs)", p.hash_s, p.bytes),
        (
            "zstd compress (distinct chunks)",
            p.compress_s,
            p.unique_bytes,
        ),
        ("AES-256-GCM encrypt", p.encrypt_s, p.stored_bytes),
        ("AES-256-GCM decrypt", p.decrypt_s, p.stored_bytes),
        ("zstd decompress", p.decompress_s, 0),
        ("keyed BLAKE3 verify", p.verify_s, p.unique_bytes),
        ("copy out every restored byte", p.write_copy_s, p.bytes),
        (
            "write the files (create + write, no fsync)",
            p.write_files_s.unwrap_or(f64::NAN),
            p.bytes,
        ),
    ];
    for (name, secs, bytes) in rows {
        if secs.is_nan() {
            continue;
        }
        let rate = if bytes > 0 && secs > 0.0 {
            format!("{:.0}", bytes as f64 / secs / 1e6)
        } else {
            "–".into()
        };
        writeln!(out, "| {name} | {secs:.3} | {rate} |")?;
    }
    writeln!(
        out,
        "| **first backup floor** (walk … encrypt) | **{:.2}** (÷2 cores: {:.2}) | |",
        p.backup_s(),
        p.backup_s() / 2.0
    )?;
    writeln!(
        out,
        "| **restore floor** (decrypt, decompress, verify, write) | **{:.2}** (÷2 cores: {:.2}) | |",
        p.restore_s(),
        p.restore_s() / 2.0
    )?;
    writeln!(
        out,
        "| **check floor** (decrypt, decompress, verify) | **{:.2}** (÷2 cores: {:.2}) | |",
        p.check_s(),
        p.check_s() / 2.0
    )?;
    Ok(())
}
