//! Restore throughput on a generated tree (ignored by default; run on demand).

use super::*;

/// Restore throughput on a generated tree. Run with
/// `BRR_BENCH_DATA=/tmp/brr-bench-data BRR_BENCH_MIB=1024 BRR_BENCH_WORK=/dev/shm cargo nextest run -p brr-engine restore::tests::bench --run-ignored only --no-capture`;
/// the data directory is generated once and kept, so other tools can be measured on the same tree.
#[test]
#[ignore = "benchmark"]
fn bench_restore() {
    let data = PathBuf::from(
        std::env::var("BRR_BENCH_DATA").unwrap_or_else(|_| "/tmp/brr-bench-data".into()),
    );
    let mib: usize = std::env::var("BRR_BENCH_MIB")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(512);
    if !data.exists() {
        // Three quarters in large incompressible files, a quarter in small compressible ones.
        fs::create_dir_all(data.join("large")).unwrap();
        for i in 0..mib * 3 / 4 / 64 {
            fs::write(data.join(format!("large/{i:03}.bin")), random(64 << 20)).unwrap();
        }
        let words = ["restore ", "backup ", "pack ", "chunk ", "index ", "tree "];
        for d in 0..32 {
            let dir = data.join(format!("small/{d:02}"));
            fs::create_dir_all(&dir).unwrap();
            for i in 0..(mib / 4) * 1024 / 32 / 32 {
                let mut s = Vec::with_capacity(32 << 10);
                let r = random(4096);
                while s.len() < 32 << 10 {
                    s.extend_from_slice(words[r[s.len() % 4096] as usize % words.len()].as_bytes());
                    s.extend_from_slice(&r[..(r[s.len() % 4096] % 16) as usize]);
                }
                fs::write(dir.join(format!("{i:04}.txt")), &s).unwrap();
            }
        }
    }
    // Repository and restore targets under BRR_BENCH_WORK (e.g. a tmpfs, to measure brr rather than the
    // disk). The repository is kept there, so repeated runs measure only the restore.
    let work = std::env::var("BRR_BENCH_WORK")
        .map(PathBuf::from)
        .unwrap_or_else(|_| data.parent().unwrap().to_path_buf());
    let repo_dir = work.join("brr-bench-repo");
    let backend = Arc::new(brr_storage::LocalBackend::new(&repo_dir));
    let repo = if repo_dir.join("config").exists() {
        Arc::new(Repository::open(backend, &brr_core::keyslot::Unlock::Password(b"pw")).unwrap())
    } else {
        let kdf = KdfParams {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
        };
        let repo = Arc::new(
            Repository::init(
                backend,
                b"pw",
                &InitOptions {
                    kdf,
                    ..Default::default()
                },
            )
            .unwrap(),
        );
        let options = BackupOptions {
            paths: vec![data.clone()],
            parent: ParentChoice::None,
            ..Default::default()
        };
        backup(&repo, &options, &NoProgress).unwrap();
        repo
    };
    let snap = repo.find_snapshot("latest").unwrap();
    let index = repo.load_index().unwrap();
    let rounds: usize = std::env::var("BRR_BENCH_ROUNDS")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(1);
    for verify in std::iter::repeat_n([false, true], rounds).flatten() {
        let out = work.join("brr-bench-out");
        let _ = fs::remove_dir_all(&out);
        let t = std::time::Instant::now();
        let (u0, s0) = cpu_secs();
        let report = restore(
            &repo,
            &index,
            &snap,
            Some(data.to_str().unwrap()),
            &RestoreOptions {
                target: out.clone(),
                verify,
                ..Default::default()
            },
            &NoProgress,
        )
        .unwrap();
        let secs = t.elapsed().as_secs_f64();
        let (u1, s1) = cpu_secs();
        assert!(report.damaged.is_empty() && report.errors.is_empty());
        let mib = report.bytes as f64 / 1048576.0;
        println!(
            "restore (verify: {verify}): {} files, {mib:.1} MiB in {secs:.2} s = {:.0} MiB/s; cpu: user {:.2} s, system {:.2} s",
            report.files,
            mib / secs,
            u1 - u0,
            s1 - s0
        );
        fs::remove_dir_all(&out).unwrap();
    }
}

/// User and system CPU seconds of this process (from /proc; clock ticks of 1/100 s).
fn cpu_secs() -> (f64, f64) {
    let stat = fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    (
        f[11].parse::<f64>().unwrap() / 100.0,
        f[12].parse::<f64>().unwrap() / 100.0,
    )
}
