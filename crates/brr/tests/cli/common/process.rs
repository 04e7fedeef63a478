//! Running the `brr` binary: a clean environment, the finished process, its exit code and its one-line
//! error.

use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The password of every test repository.
pub const PASSWORD: &str = "correct horse battery staple";

/// A `brr` command with a clean environment: none of the caller's `BRR_*` settings, no user config file,
/// no backtraces requested, standard input closed (no prompts), and the test password in `BRR_PASSWORD`.
pub fn brr() -> Command {
    brr_at(Path::new(env!("CARGO_BIN_EXE_brr")))
}

/// [`brr`], running the binary at `program` (a copy of the one under test).
pub fn brr_at(program: &Path) -> Command {
    let mut c = Command::new(program);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("BRR_") {
            c.env_remove(k);
        }
    }
    c.env("XDG_CONFIG_HOME", "/nonexistent/brr-cli-tests")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env("BRR_PASSWORD", PASSWORD)
        .stdin(Stdio::null());
    c
}

/// What a finished `brr` process left behind.
pub struct Run {
    /// The command line, for messages.
    pub what: String,
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// Standard output parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }

    /// Asserts the exit code, and that nothing panicked.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "unexpected exit code:\n{self}");
        assert_no_panic(&self);
        self
    }

    /// Asserts a failure with `code` and a single-line `brr: error:` message on standard error.
    pub fn expect_error(self, code: i32) -> Self {
        let run = self.expect_code(code);
        assert_one_line_error(&run);
        run
    }
}

/// Runs a command to completion.
pub fn run(cmd: &mut Command) -> Run {
    let what = format!(
        "brr {}",
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = cmd.output().expect("spawn brr");
    Run {
        what,
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts that the process neither panicked nor offered a backtrace.
pub fn assert_no_panic(run: &Run) {
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(
            !run.stderr.contains(bad) && !run.stdout.contains(bad),
            "output mentions {bad:?}:\n{run}"
        );
    }
}

/// Asserts that standard error holds exactly one error, on one line starting with `brr: error:`, as its last
/// line. Lines before it may only be log records (`<timestamp>  WARN …`) or `brr: warning:` lines.
pub fn assert_one_line_error(run: &Run) {
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let errors = lines
        .iter()
        .filter(|l| l.starts_with("brr: error:"))
        .count();
    assert_eq!(
        errors, 1,
        "expected exactly one `brr: error:` line on stderr:\n{run}"
    );
    assert!(
        lines.last().is_some_and(|l| l.starts_with("brr: error:")),
        "the error is not the last line:\n{run}"
    );
    for l in &lines[..lines.len() - 1] {
        assert!(
            l.starts_with("brr: warning:") || is_log_record(l),
            "unexpected line on stderr {l:?}:\n{run}"
        );
    }
}

/// `2026-11-23T11:51:26.407044Z  WARN message…` (tracing's default format).
fn is_log_record(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let stamp = words.next().unwrap_or("");
    let level = words.next().unwrap_or("");
    stamp.len() > 20
        && stamp.as_bytes()[4] == b'-'
        && stamp.contains('T')
        && ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level)
}
