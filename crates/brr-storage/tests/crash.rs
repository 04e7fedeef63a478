//! A writer killed at a random moment leaves either the old or the complete new file, and `list` never
//! shows its temporary files.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use brr_storage::{Backend, FileKind, LocalBackend};

const CHILD_ENV: &str = "BRR_STORAGE_CRASH_CHILD_DIR";
const PACK_LEN: usize = 8 << 20;

fn version(v: u64) -> Vec<u8> {
    let mut data = vec![(v % 251) as u8; PACK_LEN];
    data[..8].copy_from_slice(&v.to_le_bytes());
    data
}

/// Not a test on its own: when started by `killed_writer_leaves_old_or_new_file` with `CHILD_ENV` set, it
/// writes new versions of one pack until it is killed.
#[test]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let b = LocalBackend::new(dir);
    for v in 1.. {
        b.write(FileKind::Pack, "ab00", &version(v)).unwrap();
        b.write(FileKind::Index, &format!("i{v}"), b"index")
            .unwrap();
    }
}

#[test]
fn killed_writer_leaves_old_or_new_file() {
    let mut rounds_with_pack = 0;
    for round in 0..4u64 {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_writer_child", "--exact", "--nocapture"])
            .env(CHILD_ENV, dir.path())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300 + round * 170));
        child.kill().unwrap();
        child.wait().unwrap();

        let packs = b.list(FileKind::Pack).unwrap();
        assert!(packs.iter().all(|p| p.name == "ab00"), "{packs:?}");
        if packs.is_empty() {
            continue;
        }
        rounds_with_pack += 1;
        let data = b.read(FileKind::Pack, "ab00").unwrap();
        let v = u64::from_le_bytes(data[..8].try_into().unwrap());
        assert!(
            data == version(v),
            "round {round}: pack is not a complete version"
        );
        assert_eq!(packs[0].size, PACK_LEN as u64);
        for index in b.list(FileKind::Index).unwrap() {
            assert_eq!(b.read(FileKind::Index, &index.name).unwrap(), b"index");
        }
        b.remove_temp_files().unwrap();
        assert_eq!(b.list(FileKind::Pack).unwrap().len(), 1);
    }
    assert!(
        rounds_with_pack > 0,
        "the child never wrote a pack before it was killed"
    );
}
