//! The batched blob look-up end to end: a machine whose loaded index misses what another machine of
//! its company stored meanwhile asks `brrd`, and uploads none of it again.
//!
//! Machine B's backup must load the repository's index before machine A stores the shared data, and
//! read its own copy of that data only after A's backup committed. The test orders the two without
//! timing: a helper process holds a write lease (`F_SETLEASE`) on B's file, so B's first `open` of it
//! — which comes after B loaded its index — waits until the lease is released; the holder sees the
//! waiting `open` as a lease break. The helper is a few lines of `perl` (part of every Debian-based
//! system), because the workspace forbids `unsafe` code and no safe binding offers leases. The kernel
//! ends a lease that is not released after `/proc/sys/fs/lease-break-time` (45 s by default): A's
//! backup of a few MiB finishes far sooner.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::Value;

use crate::common::{Compare, assert_same_tree, num, restored, scratch, write_random};
use crate::harness::{Brrd, Machine};

const MIB: usize = 1 << 20;

/// Holds a write lease on its file (F_SETSIG 10 → SIGURG 23, ignored by default; F_SETLEASE 1024 with
/// F_WRLCK 1; F_GETLEASE 1025), reports when another process's open breaks it, and releases it
/// (F_UNLCK 2) when told to.
const LEASE_HELPER: &str = r#"
open(my $fh, '<', $ARGV[0]) or die "open: $!\n";
fcntl($fh, 10, 23) or die "F_SETSIG: $!\n";
fcntl($fh, 1024, 1) or die "F_SETLEASE: $!\n";
$| = 1;
print "leased\n";
while (fcntl($fh, 1025, 0) == 1) { select(undef, undef, undef, 0.02); }
print "broken\n";
my $go = <STDIN>;
fcntl($fh, 1024, 2) or die "F_UNLCK: $!\n";
print "released\n";
"#;

/// A write lease on a file, held by a helper process: other processes' opens of it wait until it is
/// released.
struct Lease {
    helper: Child,
    lines: Receiver<String>,
}

impl Lease {
    fn take(path: &Path) -> Lease {
        let mut helper = Command::new("perl")
            .arg("-e")
            .arg(LEASE_HELPER)
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("perl holds the lease");
        let out = BufReader::new(helper.stdout.take().unwrap());
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let lease = Lease { helper, lines };
        lease.expect("leased");
        lease
    }

    fn expect(&self, line: &str) {
        let got = self
            .lines
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("lease helper: no {line:?} ({e})"));
        assert_eq!(got, line);
    }

    /// Returns once another process waits to open the file.
    fn wait_until_broken(&self) {
        self.expect("broken");
    }

    fn release(mut self) {
        let mut stdin = self.helper.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
        self.expect("released");
        assert!(self.helper.wait().unwrap().success());
    }
}

fn stored_bytes(m: &Machine) -> u64 {
    let stats = m.json(["stats"]);
    num(&stats["server"]["usage"], "stored_bytes")
}

#[test]
fn blobs_another_machine_stored_meanwhile_are_looked_up_not_uploaded() {
    let tmp = scratch();
    let brrd = Brrd::start(&tmp.path().join("brrd"));
    let alpha = brrd.company("admin@alpha.example", "Alpha");
    let admin = Machine::new(&brrd, &tmp.path().join("admin"), "laptops");
    admin.login(&alpha.admin_email);
    admin.init().expect_code(0);
    let a = Machine::new(&brrd, &tmp.path().join("agent-a"), "laptops");
    let b = Machine::new(&brrd, &tmp.path().join("agent-b"), "laptops");
    a.enroll(&alpha.api_key, "host-a");
    b.enroll(&alpha.api_key, "host-b");

    // B has backed up before: its own files are stored, and it knows the repository.
    let src_a = tmp.path().join("a");
    let src_b = tmp.path().join("b");
    write_random(&src_b.join("own.bin"), MIB, 7);
    let mut c = b.cmd(["--json", "backup"]);
    c.arg(&src_b);
    let first = crate::common::run(&mut c).expect_code(0).json();
    assert_eq!(num(&first["lookup"], "blobs_present"), 0, "{first:#}");

    // The same 6 MiB on both machines; B's copy is leased, so B's backup waits for it after loading
    // the index.
    write_random(&src_a.join("shared.bin"), 6 * MIB, 42);
    write_random(&src_b.join("shared.bin"), 6 * MIB, 42);
    let lease = Lease::take(&src_b.join("shared.bin"));
    let mut c = b.cmd(["--json", "backup"]);
    c.arg(&src_b)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let b_backup = c.spawn().unwrap();
    lease.wait_until_broken();

    // A stores the shared data and commits (its index file lists the new packs).
    let mut c = a.cmd(["--json", "backup"]);
    c.arg(&src_a);
    let by_a = crate::common::run(&mut c).expect_code(0).json();
    assert!(
        num(&by_a["summary"], "bytes_added") >= 6 * MIB as u64,
        "{by_a:#}"
    );
    let before = stored_bytes(&admin);

    // B goes on: every chunk of the shared file is new to B's index but present on the server.
    lease.release();
    let out = b_backup.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "B's backup failed: {stderr}");
    let by_b: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lookup = &by_b["lookup"];
    let present = num(lookup, "blobs_present");
    assert!(present >= 6 * MIB as u64 / (256 << 10), "{by_b:#}");
    assert_eq!(present, num(lookup, "blobs_asked"), "{by_b:#}");
    assert_eq!(num(lookup, "bytes_present"), 6 * MIB as u64, "{by_b:#}");
    assert!(num(lookup, "requests") >= 2, "{by_b:#}");
    let sum = &by_b["summary"];
    assert_eq!(num(sum, "bytes_read"), 6 * MIB as u64, "{by_b:#}");
    assert!(
        num(sum, "bytes_stored") < 64 << 10,
        "B stored the shared data again: {by_b:#}"
    );
    let grown = stored_bytes(&admin) - before;
    assert!(
        grown < 128 << 10,
        "the server grew by {grown} bytes for data it held"
    );

    // B's snapshot restores byte for byte: the blobs it did not upload are located by A's index.
    let snap = by_b["snapshot"].as_str().unwrap().to_owned();
    let target = tmp.path().join("restore");
    let mut c = b.cmd(["--json", "restore", &snap, "--verify", "--target"]);
    c.arg(&target);
    let r = crate::common::run(&mut c).expect_code(0).json();
    assert_eq!(
        r["report"]["damaged"].as_array().map(Vec::len),
        Some(0),
        "{r:#}"
    );
    let cmp = Compare {
        owner: false,
        xattrs: false,
        ..Compare::ALL
    };
    assert!(assert_same_tree(&src_b, &restored(&target, &src_b), cmp) >= 2);
    let check = admin.run(["check", "--read-data"]);
    check.expect_code(0);
}
