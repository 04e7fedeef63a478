//! Corruption: a flipped byte in any kind of repository file, a truncated or a deleted pack, is found and
//! located by `check --read-data`; a restore over a damaged pack reports the damaged files, restores the
//! others exactly and never writes corrupted bytes.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{
    Repo, Rng, Run, copy_dir, flip_byte, list_files, restored, same_content, scratch, write,
};

const MIB: usize = 1 << 20;

/// A small repository with two snapshots, several data and tree packs, two index files and two key slots
/// (the password and a recovery key).
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    src: PathBuf,
    repo: Repo,
    recovery_key_file: PathBuf,
    password_slot: String,
    recovery_slot: String,
}

fn fixture() -> Fixture {
    let tmp = scratch();
    let root = tmp.path().to_path_buf();
    let src = root.join("src");
    let mut rng = Rng::new(5);
    write(&src.join("big/random.bin"), &rng.bytes(3 * MIB + 4321));
    write(&src.join("big/text.txt"), &rng.text(MIB));
    for d in 0..4 {
        for f in 0..5 {
            write(
                &src.join(format!("dir{d}/file{f}.txt")),
                &rng.text(500 + 100 * f),
            );
        }
    }
    let repo = Repo::init(&root.join("repo"));
    repo.backup(&[&src]);
    write(&src.join("dir0/later.bin"), &rng.bytes(200_000));
    repo.backup(&[&src]);
    let rk = repo.json(["key", "recovery"]);
    let recovery_key_file = root.join("recovery-key");
    write(
        &recovery_key_file,
        rk["recovery_key"].as_str().unwrap().as_bytes(),
    );
    let keys = repo.json(["key", "list"]);
    let slot = |current: bool| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["current"].as_bool() == Some(current))
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (password_slot, recovery_slot) = (slot(true), slot(false));
    assert!(
        repo.files("data").len() >= 5,
        "want several packs: {:?}",
        repo.files("data")
    );
    assert!(repo.files("index").len() >= 2);
    assert_eq!(repo.files("snapshots").len(), 2);
    repo.ok(["check", "--read-data"]);
    Fixture {
        _tmp: tmp,
        root,
        src,
        repo,
        recovery_key_file,
        password_slot,
        recovery_slot,
    }
}

impl Fixture {
    /// A fresh copy of the repository for one case.
    fn copy(&self, case: &str) -> Repo {
        let dir = self.root.join(format!("case-{case}"));
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap();
        }
        copy_dir(&self.repo.dir, &dir);
        Repo::at(&dir)
    }

    /// The copy's path of a file of the original repository.
    fn in_copy(&self, copy: &Repo, file: &Path) -> PathBuf {
        copy.dir.join(file.strip_prefix(&self.repo.dir).unwrap())
    }

    /// Damages `file` with `damage` and asserts that `check --read-data` (opened with the recovery key when
    /// `with_recovery_key`) exits 14 and names the file; then puts the file back as it was. (Check only
    /// reads, so the damaged file is the only difference from the clean repository.)
    fn expect_found(
        &self,
        case: &str,
        file: &Path,
        with_recovery_key: bool,
        damage: impl FnOnce(&Path),
    ) -> Run {
        let original = fs::read(file).unwrap();
        damage(file);
        let mut cmd = self.repo.cmd(["check", "--read-data"]);
        if with_recovery_key {
            cmd.env_remove("BRR_PASSWORD")
                .arg("--recovery-key-file")
                .arg(&self.recovery_key_file);
        }
        let r = crate::common::run(&mut cmd).expect_error(14);
        let name = self.repo.rel(file);
        assert!(
            r.stdout.contains(&name) || r.stderr.contains(&name),
            "case {case}: {name} not named:\n{r}"
        );
        fs::write(file, original).unwrap();
        r
    }
}

fn truncate(p: &Path, by: u64) {
    let f = fs::OpenOptions::new().write(true).open(p).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(by)).unwrap();
}

fn middle(p: &Path) -> u64 {
    fs::metadata(p).unwrap().len() / 2
}

fn last(p: &Path) -> u64 {
    fs::metadata(p).unwrap().len() - 1
}

#[test]
fn flipped_byte_in_config_is_detected() {
    let f = fixture();
    let config = f.repo.dir.join("config");
    let text = fs::read_to_string(&config).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = v["body"]["id"].as_str().unwrap();
    let id_start = text.find(id).unwrap() as u64;
    let id_range = id_start..id_start + id.len() as u64;
    let len = text.len() as u64;
    let mut offsets: Vec<u64> = (0..24).map(|k| k * len / 24).collect();
    offsets.extend([
        id_start + 3,
        len - 1,
        text.find("\"mac\"").unwrap() as u64 + 12,
    ]);
    for off in offsets {
        let clean = fs::read(&config).unwrap();
        flip_byte(&config, off);
        let r = f.repo.run(["check", "--read-data"]);
        fs::write(&config, clean).unwrap();
        if id_range.contains(&off) {
            // The repository ID binds the key slots: none accepts the password any more.
            r.expect_error(11);
        } else {
            let r = r.expect_error(14);
            assert!(
                r.stderr.contains("config"),
                "offset {off}: config not named:\n{r}"
            );
        }
    }
}

#[test]
fn damaged_key_slots_are_detected() {
    let f = fixture();
    let pw_slot = f.repo.dir.join("keys").join(&f.password_slot);
    let rk_slot = f.repo.dir.join("keys").join(&f.recovery_slot);
    let text = fs::read_to_string(&pw_slot).unwrap();
    let at = |field: &str, plus: usize| {
        (text.find(&format!("\"{field}\": \"")).unwrap() + field.len() + 5 + plus) as u64
    };
    // Bytes that make the slot unusable: the JSON structure, the salt, the wrapped master key.
    for (case, off) in [
        ("first", 0),
        ("last", last(&pw_slot)),
        ("salt", at("salt", 3)),
        ("wrapped", at("wrapped_master_key", 30)),
    ] {
        // The only slot the password opens is damaged: wrong password or key (11).
        let clean = fs::read(&pw_slot).unwrap();
        flip_byte(&pw_slot, off);
        f.repo.run(["snapshots"]).expect_error(11);
        fs::write(&pw_slot, clean).unwrap();
        // Opened with the other slot, check names the damaged one.
        f.expect_found(&format!("pw-slot-{case}"), &pw_slot, true, |p| {
            flip_byte(p, off)
        });
    }
    // A descriptive field (label) still opens, but check finds the slot changed.
    f.expect_found("pw-slot-label", &pw_slot, false, |p| {
        flip_byte(p, at("label", 2))
    });
    f.expect_found("rk-slot", &rk_slot, false, |p| flip_byte(p, middle(p)));
    f.expect_found("rk-slot-truncated", &rk_slot, false, |p| truncate(p, 10));
}

#[test]
fn flipped_bytes_in_index_and_snapshot_files_are_detected() {
    let f = fixture();
    for (n, file) in f.repo.files("index").iter().enumerate() {
        f.expect_found(&format!("index{n}-middle"), file, false, |p| {
            flip_byte(p, middle(p))
        });
        f.expect_found(&format!("index{n}-first"), file, false, |p| flip_byte(p, 0));
        f.expect_found(&format!("index{n}-last"), file, false, |p| {
            flip_byte(p, last(p))
        });
        f.expect_found(&format!("index{n}-truncated"), file, false, |p| {
            truncate(p, 1)
        });
    }
    for (n, file) in f.repo.files("snapshots").iter().enumerate() {
        f.expect_found(&format!("snap{n}-middle"), file, false, |p| {
            flip_byte(p, middle(p))
        });
        f.expect_found(&format!("snap{n}-first"), file, false, |p| flip_byte(p, 0));
        f.expect_found(&format!("snap{n}-last"), file, false, |p| {
            flip_byte(p, last(p))
        });
        f.expect_found(&format!("snap{n}-truncated"), file, false, |p| {
            truncate(p, 1)
        });
    }
}

#[test]
fn flipped_truncated_and_deleted_packs_are_detected() {
    let f = fixture();
    // Every pack, data and tree packs alike, one at a time.
    for (n, file) in f.repo.files("data").iter().enumerate() {
        f.expect_found(&format!("pack{n}-middle"), file, false, |p| {
            flip_byte(p, middle(p))
        });
        f.expect_found(&format!("pack{n}-last"), file, false, |p| {
            flip_byte(p, last(p))
        });
        f.expect_found(&format!("pack{n}-truncated"), file, false, |p| {
            truncate(p, 1000)
        });
        f.expect_found(&format!("pack{n}-deleted"), file, false, |p| {
            fs::remove_file(p).unwrap()
        });
    }
}

#[test]
fn restore_over_a_damaged_data_pack_restores_the_rest_and_names_the_damage() {
    let f = fixture();
    // The largest pack holds random file data (tree packs are small).
    let packs = f.repo.files("data");
    let pack = packs
        .iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let copy = f.copy("restore");
    flip_byte(&f.in_copy(&copy, pack), middle(pack));

    let mut named = Vec::new();
    for verify in [false, true] {
        let target = f.root.join(format!("restored-{verify}"));
        let mut args = vec![
            "--json",
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
        ];
        if verify {
            args.push("--verify");
        }
        let r = copy.run(&args).expect_error(14);
        let v = r.json();
        let damaged = v["report"]["damaged"].as_array().unwrap();
        assert!(!damaged.is_empty(), "{r}");
        let out = restored(&target, &f.src);
        let mut damaged_rel = Vec::new();
        for d in damaged {
            let path = PathBuf::from(d["path"].as_str().unwrap());
            let rel = path
                .strip_prefix(&f.src)
                .unwrap_or_else(|_| panic!("damaged path {path:?} outside the source"))
                .to_path_buf();
            let at = out.join(&rel);
            let saved = PathBuf::from(format!("{}.brr-damaged", at.display()));
            assert!(
                !at.exists(),
                "{} written under its own name despite damage",
                at.display()
            );
            assert!(saved.exists(), "{} missing:\n{r}", saved.display());
            // Outside the damaged ranges the bytes are the original ones, inside they are zeros.
            let (orig, got) = (
                fs::read(f.src.join(&rel)).unwrap(),
                fs::read(&saved).unwrap(),
            );
            assert_eq!(orig.len(), got.len());
            let mut in_damage = vec![false; orig.len()];
            for range in d["damaged_ranges"].as_array().unwrap() {
                let (o, l) = (
                    range[0].as_u64().unwrap() as usize,
                    range[1].as_u64().unwrap() as usize,
                );
                assert!(l > 0 && o + l <= orig.len(), "{d}");
                in_damage[o..o + l].iter_mut().for_each(|b| *b = true);
                assert!(
                    got[o..o + l].iter().all(|&b| b == 0),
                    "{}: damaged range not zero",
                    rel.display()
                );
            }
            let wrong = (0..orig.len())
                .filter(|&i| !in_damage[i] && orig[i] != got[i])
                .count();
            assert_eq!(
                wrong,
                0,
                "{}: {wrong} bytes differ outside the damaged ranges",
                rel.display()
            );
            assert!(
                r.stdout.contains(&rel.to_string_lossy().into_owned()),
                "{r}"
            );
            named.push(rel.clone());
            damaged_rel.push(rel);
        }
        // Every other file is exact.
        let mut others = 0;
        for rel in list_files(&f.src) {
            if damaged_rel.contains(&rel) {
                continue;
            }
            assert!(
                same_content(&f.src.join(&rel), &out.join(&rel)),
                "{} differs",
                rel.display()
            );
            others += 1;
        }
        assert!(others >= 20, "{others}");
    }
    // The text output says DAMAGED and names the file.
    let target = f.root.join("restored-text");
    let t = copy
        .run(["restore", "latest", "--target", target.to_str().unwrap()])
        .expect_error(14);
    assert!(t.stdout.contains("DAMAGED: "), "{t}");
    for rel in &named {
        assert!(
            t.stdout.contains(rel.to_str().unwrap()),
            "{} not named:\n{t}",
            rel.display()
        );
    }
}

#[test]
fn restore_over_any_damaged_pack_names_everything_it_could_not_restore() {
    let f = fixture();
    let all = list_files(&f.src);
    for (n, pack) in f.repo.files("data").iter().enumerate() {
        let clean = fs::read(pack).unwrap();
        flip_byte(pack, middle(pack));
        let target = f.root.join(format!("any-restored-{n}"));
        let r = f.repo.run([
            "--json",
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
        ]);
        // A pack only older snapshots use: exit 0 and everything exact. A damaged root tree stops the
        // restore (14 as well); otherwise the report lists the damage.
        let damaged: Vec<PathBuf> = if r.code == 0 {
            let r = r.expect_code(0);
            assert_eq!(
                r.json()["report"]["damaged"].as_array().map(Vec::len),
                Some(0),
                "{r}"
            );
            Vec::new()
        } else {
            let r = r.expect_error(14);
            let damaged: Vec<PathBuf> = if r.stdout.trim().is_empty() {
                vec![f.src.clone()]
            } else {
                r.json()["report"]["damaged"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| PathBuf::from(d["path"].as_str().unwrap()))
                    .collect()
            };
            assert!(
                !damaged.is_empty(),
                "pack {n}: exit 14 but nothing named:\n{r}"
            );
            damaged
        };
        // Every file is either restored exactly, or is (or lies below) something reported damaged.
        let out = restored(&target, &f.src);
        for rel in &all {
            let original = f.src.join(rel);
            if damaged
                .iter()
                .any(|d| original.starts_with(d) || f.src.starts_with(d))
            {
                continue;
            }
            assert!(
                same_content(&original, &out.join(rel)),
                "pack {n}: {} neither restored nor reported",
                rel.display()
            );
        }
        fs::write(pack, clean).unwrap();
        let _ = fs::remove_dir_all(&target);
    }
}
