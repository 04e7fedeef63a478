//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Exit codes, also listed in `brr --help` and docs/cli.md.
pub const EXIT_CODES: &str = "\
EXIT CODES:
    0    success
    1    failure (I/O, storage or unexpected error)
    2    usage error or invalid argument
    3    backup completed, but some files could not be read (listed in the summary)
    10   no repository at the location (or one already exists, for init)
    11   wrong password or key
    12   snapshot or path not found, or ambiguous snapshot ID
    13   repository locked by another process
    14   damage found: check found errors, or restore could not recover some files
    20   server: not logged in, or the credentials were rejected
    21   server: forbidden for your role
    22   server: repository not found (or another company's)
    23   server: quota exceeded
    24   server: the repository is append-only
    25   server unreachable, TLS failure, or server error
    130  interrupted";

/// brr — fast, encrypted, deduplicating backups.
///
/// brr turns file trees into snapshots in a repository: content-defined chunks, deduplicated,
/// compressed with zstd and encrypted with AES-256-GCM before they leave this process. The
/// repository key is protected by your password (Argon2id); nothing in it is readable without it.
///
/// Quick start:
///
///     export BRR_REPO=/srv/backup BRR_PASSWORD_FILE=~/.config/brr/password
///     brr init
///     brr backup ~/documents ~/projects --exclude '*.tmp'
///     brr snapshots
///     brr restore latest --target /tmp/restored --verify
///     brr forget --keep-daily 7 --keep-weekly 4 --prune
///
/// Backing up to your provider's brrd service (same encryption: the server never sees the key):
///
///     brr login --server https://backup.example.net --email you@example.com
///     brr init --server https://backup.example.net --repo laptops      # company admin, once
///     brr agent enroll --server https://backup.example.net --api-key brr_… # on each machine
///     export BRR_SERVER=https://backup.example.net BRR_REPO=laptops
///     brr backup ~/documents
///
/// With --server (or BRR_SERVER, or `server` in the config file) --repo names the company's
/// repository on the server; every command works as on a local repository.
#[derive(Debug, Parser)]
#[command(name = "brr", version, about, long_about, verbatim_doc_comment, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Repository: a directory, `local:DIR`, or `s3:https://HOST/BUCKET/PREFIX` (credentials from AWS_* env);
    /// with --server, the name of the company's repository on the server.
    #[arg(short = 'r', long, env = "BRR_REPO", global = true)]
    pub repo: Option<String>,
    /// A brrd server (https://HOST[:PORT]): --repo then names a repository stored there. Log in first
    /// (`brr login`) or enroll the machine (`brr agent enroll`); BRR_SERVER_TOKEN overrides both.
    #[arg(long, env = "BRR_SERVER", global = true)]
    pub server: Option<String>,
    /// Extra trusted CA certificates (PEM) for the server, e.g. a provider's private CA.
    #[arg(long, env = "BRR_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Read the password from this file (first line). Otherwise BRR_PASSWORD, or a prompt on a terminal.
    #[arg(long, env = "BRR_PASSWORD_FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// Open the repository with a recovery key read from this file instead of a password.
    #[arg(long, global = true, conflicts_with = "password_file")]
    pub recovery_key_file: Option<PathBuf>,
    /// Open the repository with an RSA escrow private key (PEM file) instead of a password.
    #[arg(long, global = true, conflicts_with_all = ["password_file", "recovery_key_file"])]
    pub rsa_private_key: Option<PathBuf>,
    /// Configuration file (TOML). Default: $XDG_CONFIG_HOME/brr/config.toml if it exists.
    #[arg(long, env = "BRR_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON on standard output instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors; no progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More log output on standard error (-v info, -vv debug). BRR_LOG=filter overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Worker threads for reading, compressing and encrypting (default: number of CPUs).
    #[arg(long, env = "BRR_THREADS", global = true)]
    pub threads: Option<usize>,
    /// Whether --password-file was given on the command line (not from BRR_PASSWORD_FILE): only then
    /// does `brr login` read the account password from it.
    #[arg(skip)]
    pub password_file_on_command_line: bool,
}

/// All commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new repository.
    Init(InitArgs),
    /// Back up files and directories into a new snapshot.
    Backup(BackupArgs),
    /// List snapshots.
    Snapshots(SnapshotsArgs),
    /// List the files of a snapshot.
    Ls(LsArgs),
    /// Show what changed between two snapshots.
    Diff(DiffArgs),
    /// Restore a snapshot (or part of it) into a directory.
    Restore(RestoreArgs),
    /// Verify the repository's structure, and with --read-data every byte of it.
    Check(CheckArgs),
    /// Remove snapshots by retention policy or by ID.
    Forget(ForgetArgs),
    /// Reclaim the space of data no snapshot references.
    Prune(PruneArgs),
    /// Manage the keys (passwords, recovery key, RSA escrow) that open the repository.
    Key(KeyArgs),
    /// Show repository size, deduplication and compression.
    Stats(StatsArgs),
    /// List or remove repository locks.
    Unlock(UnlockArgs),
    /// Show the whole job on a sample tree: init, backup, change, backup, restore, verify.
    Demo(DemoArgs),
    /// Log in to a brrd server; the session is kept in the credentials file and refreshed.
    Login(LoginArgs),
    /// End the session (or forget the agent token) stored for a server.
    Logout,
    /// Enroll this machine as an agent of a company on a brrd server.
    Agent(AgentArgs),
    /// List the company's repositories on the server, with usage.
    Repos,
}

/// `brr login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The account's e-mail address. The password comes from --password-file (given on the command
    /// line), BRR_SERVER_PASSWORD, or a prompt; a TOTP code, if the account has one, from
    /// BRR_SERVER_TOTP or a prompt.
    #[arg(long)]
    pub email: String,
}

/// `brr agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The agent operation.
    #[command(subcommand)]
    pub op: AgentOp,
}

/// Agent operations.
#[derive(Debug, Subcommand)]
pub enum AgentOp {
    /// Enroll with a company API key (from a company admin); the agent's own token is stored.
    Enroll {
        /// The company API key (`brr_…`); only used to enroll. Also BRR_API_KEY.
        #[arg(long, env = "BRR_API_KEY", hide_env_values = true)]
        api_key: String,
        /// Name of this machine (default: its host name).
        #[arg(long)]
        name: Option<String>,
    },
}

/// `brr init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Argon2id memory in MiB for the password slot (min 19).
    #[arg(long, default_value_t = 64)]
    pub kdf_memory_mib: u32,
    /// Argon2id iterations (min 2).
    #[arg(long, default_value_t = 3)]
    pub kdf_iterations: u32,
    /// Argon2id lanes.
    #[arg(long, default_value_t = 4)]
    pub kdf_parallelism: u32,
    /// Default compression: off, fastest, fast, default, max, or zstd:N.
    #[arg(long, default_value = "zstd:2")]
    pub compression: String,
    /// Target pack size in MiB.
    #[arg(long, default_value_t = 16)]
    pub pack_size_mib: u32,
    /// With --server: refuse deletions through the API (forget and prune then run on the server).
    #[arg(long)]
    pub append_only: bool,
    /// Average chunk size in KiB (a power of two; min is half, max eight times it).
    #[arg(long, default_value_t = 512)]
    pub chunk_size_kib: u32,
}

/// `brr backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Files and directories to back up.
    #[arg(required = true)]
    pub sources: Vec<PathBuf>,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Exclude paths matching a glob (repeatable): `*.tmp` matches names, `/home/*/.cache` whole paths.
    #[arg(long = "exclude", short = 'e')]
    pub excludes: Vec<String>,
    /// Read exclude patterns from a file, one per line (# comments).
    #[arg(long)]
    pub exclude_file: Vec<PathBuf>,
    /// Do not cross into other file systems.
    #[arg(short = 'x', long)]
    pub one_file_system: bool,
    /// Compare with this snapshot instead of the latest one of this host and paths.
    #[arg(long, conflicts_with = "force")]
    pub parent: Option<String>,
    /// Read every file, ignoring the parent snapshot.
    #[arg(long)]
    pub force: bool,
    /// Record this host name instead of the machine's.
    #[arg(long)]
    pub host: Option<String>,
    /// Compression for this backup: off, fastest, fast, default, max, or zstd:N.
    #[arg(long)]
    pub compression: Option<String>,
}

/// `brr snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Only snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots with this tag (repeatable: all must match).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
}

/// `brr ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Snapshot ID, unique prefix, or `latest`.
    pub snapshot: String,
    /// Only this path and what is below it.
    pub path: Option<String>,
    /// Long listing: mode, owner, size, mtime.
    #[arg(short, long)]
    pub long: bool,
}

/// `brr diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older snapshot.
    pub from: String,
    /// The newer snapshot.
    pub to: String,
    /// Include metadata-only changes (marked U).
    #[arg(long)]
    pub metadata: bool,
}

/// `brr restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Snapshot ID, unique prefix, or `latest`.
    pub snapshot: String,
    /// Directory to restore into (created; must be empty unless --overwrite).
    #[arg(short, long)]
    pub target: PathBuf,
    /// Only this path inside the snapshot.
    #[arg(long)]
    pub path: Option<String>,
    /// Only entries whose snapshot path matches a glob (repeatable).
    #[arg(long = "include", short = 'i')]
    pub include: Vec<String>,
    /// Re-read every restored file and check it against the snapshot.
    #[arg(long)]
    pub verify: bool,
    /// Allow a non-empty target; existing files are replaced.
    #[arg(long)]
    pub overwrite: bool,
}

/// `brr check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also read, decrypt and verify every blob of every pack.
    #[arg(long)]
    pub read_data: bool,
}

/// `brr forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Snapshots to remove explicitly (IDs or unique prefixes).
    pub snapshots: Vec<String>,
    /// Keep the N newest snapshots.
    #[arg(long)]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours that have one.
    #[arg(long)]
    pub keep_hourly: Option<u32>,
    /// … of each of the last N days.
    #[arg(long)]
    pub keep_daily: Option<u32>,
    /// … of each of the last N ISO weeks.
    #[arg(long)]
    pub keep_weekly: Option<u32>,
    /// … of each of the last N months.
    #[arg(long)]
    pub keep_monthly: Option<u32>,
    /// … of each of the last N years.
    #[arg(long)]
    pub keep_yearly: Option<u32>,
    /// Group snapshots by these fields before applying the policy: host, paths, tags (comma-separated).
    #[arg(long, default_value = "host,paths")]
    pub group_by: String,
    /// Only consider snapshots of this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only consider snapshots with this tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Run prune afterwards.
    #[arg(long)]
    pub prune: bool,
    /// Show what would be removed; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

/// `brr prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Show the plan; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Repack packs whose unused share exceeds this percentage.
    #[arg(long, default_value_t = 25.0)]
    pub max_unused_percent: f64,
}

/// `brr key`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The key operation.
    #[command(subcommand)]
    pub op: KeyOp,
}

/// Key operations.
#[derive(Debug, Subcommand)]
pub enum KeyOp {
    /// List key slots.
    List,
    /// Add a password (prompted, or from --new-password-file / BRR_NEW_PASSWORD).
    Add {
        /// Label for the slot.
        #[arg(long, default_value = "password")]
        label: String,
        /// File holding the new password.
        #[arg(long, env = "BRR_NEW_PASSWORD_FILE")]
        new_password_file: Option<PathBuf>,
    },
    /// Create a printable recovery key (shown once) and add a slot for it.
    Recovery {
        /// Label for the slot.
        #[arg(long, default_value = "recovery key")]
        label: String,
    },
    /// Add an escrow slot for an RSA public key (PEM, at least 2048 bits).
    Escrow {
        /// The public key file.
        public_key: PathBuf,
        /// Label for the slot.
        #[arg(long, default_value = "escrow")]
        label: String,
    },
    /// Remove a key slot by ID prefix (not the one in use, never the last).
    Remove {
        /// Slot ID or unique prefix.
        id: String,
    },
    /// Change the password of the slot in use.
    Passwd {
        /// File holding the new password.
        #[arg(long, env = "BRR_NEW_PASSWORD_FILE")]
        new_password_file: Option<PathBuf>,
    },
}

/// `brr stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {}

/// `brr unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Remove all locks, not only provably stale ones (make sure no brr process uses the repository).
    #[arg(long)]
    pub all: bool,
}

/// `brr demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Working directory for the sample tree, repository and restore (default: a new temporary one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Size of the sample tree in MiB.
    #[arg(long, default_value_t = 64)]
    pub size_mib: u64,
}
