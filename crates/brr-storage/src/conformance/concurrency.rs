//! Checks of concurrent use: parallel writers and readers see only complete files.

use super::*;

/// Eight threads write distinct packs at once and overwrite one shared file while others read it: every
/// file arrives intact, and readers only ever see a complete version of the shared file.
pub fn check_concurrent_writes(b: &dyn Backend) {
    const THREADS: usize = 8;
    const PACKS_PER_THREAD: usize = 6;
    const SHARED_LEN: usize = 256 << 10;
    ensure_created(b);
    let versions: Vec<Vec<u8>> = (0..THREADS)
        .map(|t| test_data(1000 + t as u64, SHARED_LEN))
        .collect();
    ok(
        b,
        "write shared",
        b.write(FileKind::Index, "shared", &versions[0]),
    );
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let versions = &versions;
            s.spawn(move || {
                for i in 0..PACKS_PER_THREAD {
                    let name = format!("{:02x}{t}conc{i}", (t * 31 + i * 7) % 256);
                    let data = test_data((t * 100 + i) as u64, (64 << 10) + t * 13 + i);
                    ok(b, "concurrent write", b.write(FileKind::Pack, &name, &data));
                    ok(
                        b,
                        "concurrent overwrite",
                        b.write(FileKind::Index, "shared", &versions[t]),
                    );
                    let seen = ok(b, "concurrent read", b.read(FileKind::Index, "shared"));
                    assert!(
                        versions.contains(&seen),
                        "{}: a reader saw a partial or mixed version of a file being overwritten",
                        b.location()
                    );
                }
            });
        }
    });
    let packs = listed(b, FileKind::Pack);
    assert_eq!(
        packs.len(),
        THREADS * PACKS_PER_THREAD,
        "{}: packs written concurrently",
        b.location()
    );
    for t in 0..THREADS {
        for i in 0..PACKS_PER_THREAD {
            let name = format!("{:02x}{t}conc{i}", (t * 31 + i * 7) % 256);
            let data = test_data((t * 100 + i) as u64, (64 << 10) + t * 13 + i);
            assert!(
                ok(b, "read", b.read(FileKind::Pack, &name)) == data,
                "{}: pack {name} damaged",
                b.location()
            );
            ok(b, "remove", b.remove(FileKind::Pack, &name));
        }
    }
    let shared = ok(b, "read shared", b.read(FileKind::Index, "shared"));
    assert!(
        versions.contains(&shared),
        "{}: final shared file is not a complete version",
        b.location()
    );
    ok(b, "remove shared", b.remove(FileKind::Index, "shared"));
}
