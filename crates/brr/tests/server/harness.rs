//! The `brrd` process, companies, users, API keys, and `brr` runs as a given machine.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brr_client::Method;
use brr_client::{Client, ClientOptions, Credential, CredentialStore, Request, ServerUrl};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::common::{CHEAP_KDF, Run, brr, run};

/// The password of every account.
pub const ACCOUNT_PASSWORD: &str = "Corr3ct-Horse-Battery";

/// Extra settings of a [`Brrd`]: its database, its store and their environment (empty: SQLite and a
/// folder store in the data folder).
#[derive(Debug, Clone, Default)]
pub struct BrrdOptions {
    /// Global arguments of every `brrd` command, e.g. `["--database", "postgres://…"]`.
    pub args: Vec<String>,
    /// Extra environment, e.g. `BRRD_STORE__URL` and the `AWS_*` credentials of an S3 store.
    pub env: Vec<(String, String)>,
}

/// A running `brrd` on its own data folder.
pub struct Brrd {
    /// Database, store and environment beyond the defaults.
    pub options: BrrdOptions,
    /// Data folder (database, keys, certificate, outbox, repositories).
    pub data: PathBuf,
    /// `https://localhost:PORT`.
    pub url: String,
    /// The generated certificate.
    pub cert: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Everything it wrote on standard error.
    pub log: Arc<Mutex<String>>,
}

fn brrd_binary() -> PathBuf {
    let brr = Path::new(env!("CARGO_BIN_EXE_brr"));
    let brrd = brr.with_file_name("brrd");
    assert!(
        brrd.exists(),
        "{} is missing: build it first (`cargo build -p brrd`, or run the workspace tests)",
        brrd.display()
    );
    brrd
}

impl Brrd {
    /// Starts `brrd serve` on a free port with open registration.
    pub fn start(data: &Path) -> Brrd {
        Brrd::start_with(data, BrrdOptions::default())
    }

    /// Starts `brrd serve` like [`Brrd::start`], with `options`.
    pub fn start_with(data: &Path, options: BrrdOptions) -> Brrd {
        let mut b = Brrd {
            options,
            data: data.to_path_buf(),
            url: String::new(),
            cert: data.join("tls/cert.pem"),
            port: 0,
            child: None,
            log: Arc::new(Mutex::new(String::new())),
        };
        b.spawn();
        b
    }

    /// `brrd --data DATA ARGS…` (an administration command), not started.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(brrd_binary());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("BRRD_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--data")
            .arg(&self.data)
            .args(&self.options.args)
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn")
            .args(args);
        cmd
    }

    fn spawn(&mut self) {
        let mut cmd = self.command(["serve", "--listen"]);
        cmd.arg(format!("127.0.0.1:{}", self.port))
            .args(["--ops-listen", "127.0.0.1:0"])
            .env("BRRD_OPEN_REGISTRATION", "true")
            // No scheduled maintenance: its first garbage collection of a new repository would
            // condemn the packs of an interrupted backup that no snapshot references yet, and the
            // tests watch what the client reuses.
            .env("BRRD_MAINTENANCE__ENABLED", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn brrd");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut addr = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        while addr.is_none() && Instant::now() < deadline {
            let mut line = String::new();
            if err.read_line(&mut line).unwrap() == 0 {
                break;
            }
            self.log.lock().unwrap().push_str(&line);
            if let Some(rest) = line.strip_prefix("brrd: https://") {
                addr = rest.split_whitespace().next().map(str::to_owned);
            }
        }
        let Some(addr) = addr else {
            panic!("brrd did not start:\n{}", self.log.lock().unwrap().as_str());
        };
        self.port = addr.rsplit(':').next().unwrap().parse().unwrap();
        self.url = format!("https://localhost:{}", self.port);
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in err.lines() {
                let Ok(line) = line else { break };
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        self.child = Some(child);
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Starts again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // The port is free again once the old listener is gone.
            if std::net::TcpListener::bind(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "port {} stays busy", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spawn();
    }

    /// A client of this server with `token` (or none).
    pub fn client(&self, token: Option<&str>) -> Client {
        let credential = match token {
            Some(t) => Credential::Token(Zeroizing::new(t.to_owned())),
            None => Credential::None,
        };
        let options = ClientOptions {
            ca_cert: Some(self.cert.clone()),
            ..ClientOptions::default()
        };
        Client::new(&ServerUrl::parse(&self.url).unwrap(), credential, &options).unwrap()
    }

    /// A JSON call; panics on failure.
    pub fn call(&self, token: Option<&str>, method: Method, path: &str, body: Value) -> Value {
        let bytes = body.to_string().into_bytes();
        let mut req = Request::new(method, path, false);
        if !body.is_null() {
            req = req.json(&bytes);
        }
        self.client(token)
            .json(&req)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The PIN of the newest mail to `email` in the outbox.
    fn pin_for(&self, email: &str) -> String {
        let mut files: Vec<_> = std::fs::read_dir(self.data.join("outbox"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().rev() {
            let text = std::fs::read_to_string(f).unwrap();
            if text.contains(&format!("To: {email}\r\n"))
                && let Some(rest) = text.split("PIN: ").nth(1)
            {
                return rest[..6].to_string();
            }
        }
        panic!("no PIN mailed to {email}");
    }

    /// Creates the first provider administrator (`brrd admin bootstrap`, then the setup code) and
    /// returns an access token of theirs.
    pub fn provider_admin(&self, email: &str) -> String {
        let out = self
            .command(["admin", "bootstrap", "--email", email])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let code = text
            .split(": ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no setup code in {text:?}"))
            .to_owned();
        self.call(
            None,
            Method::POST,
            "/api/v1/auth/setup",
            json!({"email": email, "code": code, "password": ACCOUNT_PASSWORD}),
        );
        let tokens = self.call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            json!({"email": email, "password": ACCOUNT_PASSWORD}),
        );
        tokens["access_token"].as_str().unwrap().to_owned()
    }

    /// Registers a company with `email` as its admin (open registration, PIN from the outbox) and
    /// returns it with an API key for enrolling agents.
    pub fn company(&self, email: &str, name: &str) -> Company {
        self.call(
            None,
            Method::POST,
            "/api/v1/auth/register",
            json!({"email": email, "password": ACCOUNT_PASSWORD, "display_name": email, "company_name": name, "site": "SG-DRT"}),
        );
        let pin = self.pin_for(email);
        self.call(
            None,
            Method::POST,
            "/api/v1/auth/register/verify",
            json!({"email": email, "pin": pin}),
        );
        let tokens = self.call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            json!({"email": email, "password": ACCOUNT_PASSWORD}),
        );
        let token = tokens["access_token"].as_str().unwrap().to_owned();
        let me = self.call(Some(&token), Method::GET, "/api/v1/me", Value::Null);
        let id = me["company_id"].as_str().unwrap().to_owned();
        let key = self.call(
            Some(&token),
            Method::POST,
            &format!("/api/v1/companies/{id}/api-keys"),
            json!({"name": "enrolment"}),
        );
        Company {
            id,
            admin_email: email.to_owned(),
            api_key: key["secret"].as_str().unwrap().to_owned(),
        }
    }
}

impl Drop for Brrd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A registered company.
pub struct Company {
    /// Its ID.
    pub id: String,
    /// Its admin's e-mail.
    pub admin_email: String,
    /// An API key that enrols agents.
    pub api_key: String,
}

/// One machine running `brr`: its own config folder (credentials file) and the server settings.
pub struct Machine {
    /// `XDG_CONFIG_HOME` of this machine.
    pub config: PathBuf,
    /// Server URL.
    pub server: String,
    /// Trusted certificate.
    pub cert: PathBuf,
    /// Repository name.
    pub repo: String,
}

impl Machine {
    /// A machine using `brrd` with a fresh config folder under `dir`.
    pub fn new(brrd: &Brrd, dir: &Path, repo: &str) -> Machine {
        std::fs::create_dir_all(dir).unwrap();
        Machine {
            config: dir.to_path_buf(),
            server: brrd.url.clone(),
            cert: brrd.cert.clone(),
            repo: repo.to_owned(),
        }
    }

    /// `brr ARGS…` as this machine (server, CA and repository set through the environment).
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = brr();
        c.env("XDG_CONFIG_HOME", &self.config)
            .env("BRR_SERVER", &self.server)
            .env("BRR_CA_CERT", &self.cert)
            .env("BRR_REPO", &self.repo)
            .args(args);
        c
    }

    /// Runs `brr ARGS…`.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(&mut self.cmd(args))
    }

    /// Runs with `--json`, asserts success, parses standard output.
    pub fn json<I, S>(&self, args: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.cmd(["--json"]);
        c.args(args);
        run(&mut c).expect_code(0).json()
    }

    /// Logs in as `email` (password from a file given on the command line).
    pub fn login(&self, email: &str) {
        let pw = self.config.join("account-password");
        std::fs::write(&pw, format!("{ACCOUNT_PASSWORD}\n")).unwrap();
        let mut c = self.cmd(["login", "--email", email, "--password-file"]);
        c.arg(&pw);
        run(&mut c).expect_code(0);
    }

    /// Enrolls as an agent named `name` with `api_key`.
    pub fn enroll(&self, api_key: &str, name: &str) {
        self.run(["agent", "enroll", "--api-key", api_key, "--name", name])
            .expect_code(0);
    }

    /// `brr init` with cheap key derivation, 64 KiB chunks and 1 MiB packs.
    pub fn init(&self) -> Run {
        let mut args: Vec<&str> = vec!["init"];
        args.extend(CHEAP_KDF);
        args.extend(["--chunk-size-kib", "64", "--pack-size-mib", "1"]);
        self.run(args)
    }

    /// The stored credentials file.
    pub fn credentials(&self) -> CredentialStore {
        CredentialStore::new(self.config.join("brr/credentials.toml"))
    }
}
