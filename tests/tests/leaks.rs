//! Leak check (`cargo xtask reliability leaks`): planted sentinels (a secret value, a key
//! passphrase, a Vault token, AWS credentials, an audit key, a database password) go through
//! every command of the `secrets` binary, on success and failure paths (wrong key, damaged
//! file, damaged database, a server that is not there, a reader that closed the pipe, usage
//! errors), at its most verbose logging (`-vvv`: TRACE; the full run repeats every command at
//! every verbosity), and through the library (the manager with each provider, AWS against
//! moto and Vault against OpenBao, the provider-configuration store, credential encryption)
//! with TRACE logs captured. No sentinel may appear on stderr, in a log line, an error
//! message, a panic message or the `Debug` output of a public type; on stdout only where the
//! command's job is to print it (`get`, `crypto decrypt`, `config get`).
//!
//! The binary is the one `cargo xtask test` / `cargo xtask reliability` build (all features).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

mod support;

use integration_tests::{CapturedLogs, moto, reliability, vault};
use secrets::aws::{AwsSecretsManagerProvider, AwsSettings};
use secrets::config::{AuditKey, AuditTrail, ConfigStore};
use secrets::crypto::{CredentialCipher, FernetKey, KeyLoader};
use secrets::vault::{VaultProvider, VaultSettings};
use secrets::{
    Config, EnvProvider, FileProvider, MemoryProvider, Resolved, Secret, SecretProvider,
    SecretsManager, Snapshot, SnapshotPolicy,
};
use serde_json::json;

/// Every sentinel contains this; nothing outside an allowed stdout may.
const MARK: &str = "SENTINEL";
const VALUE: &str = "VALSENTINELq7Zx";
const PASSPHRASE: &str = "PASSSENTINELk3Wm";
const OTHER_PASSPHRASE: &str = "PASS2SENTINELb5Nv";
const AUDIT_KEY: &str = "AUDITSENTINELp2Lc";
const AWS_SECRET_KEY: &str = "AWSKEYSENTINELw9Hs";
const DB_PASSWORD: &str = "DBPASSSENTINELt4Gy";

/// What one run of the binary left behind.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// One case: the arguments (before verbosity), the environment, stdin, whether stdout may
/// carry the value, and what the exit code must be.
struct Case {
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
    value_on_stdout: bool,
    code: Option<i32>,
    close_stdout: bool,
    /// A file that a failed run must leave as it was (a refused write loses nothing).
    guarded: Option<PathBuf>,
}

impl Case {
    fn new(name: &str, args: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: Vec::new(),
            stdin: None,
            value_on_stdout: false,
            code: None,
            close_stdout: false,
            guarded: None,
        }
    }
    fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
    fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.to_owned());
        self
    }
    fn prints_value(mut self) -> Self {
        self.value_on_stdout = true;
        self
    }
    fn code(mut self, code: i32) -> Self {
        self.code = Some(code);
        self
    }
    fn guard(mut self, path: &Path) -> Self {
        self.guarded = Some(path.to_owned());
        self
    }
    fn closed_pipe(mut self) -> Self {
        self.close_stdout = true;
        self
    }
}

/// A temporary HOME and state directory, and the record of what ran.
struct Sandbox {
    home: tempfile::TempDir,
    ran: Vec<String>,
    runs: usize,
    /// Runs whose stderr has log lines (a check of the check: the logging was on).
    traced: usize,
}

impl Sandbox {
    fn new() -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
            ran: Vec::new(),
            runs: 0,
            traced: 0,
        }
    }

    fn app_dir(&self) -> PathBuf {
        self.home.path().join(".simpletuner")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.app_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    fn exec(&self, case: &Case, verbosity: usize) -> Outcome {
        let mut args: Vec<String> = Vec::new();
        if verbosity > 0 {
            args.push(format!("-{}", "v".repeat(verbosity)));
        }
        args.extend(case.args.iter().cloned());
        let mut command = Command::new(support::secrets_cli());
        command
            .args(&args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "trace")
            .env("RUST_BACKTRACE", "1")
            .env("SIMPLETUNER_STATE_DIR", self.app_dir())
            .env("SIMPLETUNER_AUDIT_KEY", AUDIT_KEY)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(case.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Some(text) = &case.stdin {
            // The command may exit before reading (a usage error): ignore a closed pipe.
            let _ = stdin.write_all(text.as_bytes());
        }
        drop(stdin);
        if case.close_stdout {
            // The reader goes away before the first write (`secrets get K | head -0`).
            drop(child.stdout.take());
        }
        // Both pipes are drained at once: TRACE output fills a pipe long before stdout ends.
        let out = child.wait_with_output().unwrap();
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs a case at each verbosity and checks every sentinel; returns the last outcome.
    fn check(&mut self, case: Case, verbosities: &[usize]) -> Outcome {
        let mut last = None;
        for (i, &v) in verbosities.iter().enumerate() {
            let before = case.guarded.as_ref().map(|p| std::fs::read(p).unwrap());
            let started = std::time::Instant::now();
            let out = self.exec(&case, v);
            if let (Some(path), Some(before), false) = (&case.guarded, before, out.code == 0) {
                assert!(
                    std::fs::read(path).unwrap() == before,
                    "{}: a failed run changed {}",
                    case.name,
                    path.display()
                );
            }
            if started.elapsed() > std::time::Duration::from_millis(500) {
                eprintln!(
                    "leaks-cli: slow case {} ({:?})",
                    case.name,
                    started.elapsed()
                );
            }
            let shown = format!(
                "{} (-v x{v}, exit {}):\n--- stdout\n{}\n--- stderr\n{}",
                case.name, out.code, out.stdout, out.stderr
            );
            assert!(!out.stderr.contains(MARK), "sentinel on stderr: {shown}");
            assert!(
                !out.stderr.contains("panicked"),
                "the command panicked: {shown}"
            );
            let stdout_rest = if case.value_on_stdout {
                out.stdout.replace(VALUE, "")
            } else {
                out.stdout.clone()
            };
            assert!(!stdout_rest.contains(MARK), "sentinel on stdout: {shown}");
            // The exit code on the first run (a repeated write finds the state it left).
            if let (Some(code), 0) = (case.code, i) {
                assert_eq!(out.code, code, "unexpected exit code: {shown}");
            }
            if out.stderr.lines().any(|line| {
                ["TRACE ", "DEBUG ", "INFO ", "WARN ", "ERROR "]
                    .iter()
                    .any(|level| line.trim_start().starts_with(level))
            }) {
                self.traced += 1;
            }
            self.runs += 1;
            last = Some(out);
        }
        self.ran.push(case.name);
        last.expect("at least one verbosity")
    }
}

fn verbosities() -> Vec<usize> {
    reliability::scale(vec![3], vec![0, 1, 2, 3])
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A Vault token whose ID is itself a sentinel, allowed to read and write `path`.
fn vault_token(admin: &vault::Admin, path: &str) -> String {
    let policy = admin.policy_for(
        &format!("secret/data/{path}"),
        &["read", "create", "update", "delete"],
    );
    let id = vault::unique("TOKENSENTINEL");
    let issued = admin.token(&[&policy], json!({ "id": id, "ttl": "1h" }));
    assert_eq!(issued, id);
    issued
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn every_cli_command_keeps_sentinels_off_stderr_at_every_verbosity() {
    let verbosities = verbosities();
    let v = verbosities.as_slice();
    let mut sb = Sandbox::new();
    let endpoint = moto::endpoint();
    let admin = vault::shared();
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let key = ("SIMPLETUNER_CREDENTIAL_KEY", PASSPHRASE);

    // --- get / set / delete on the file and environment providers.
    sb.check(
        Case::new("set (stdin)", &["set", "HF_TOKEN"])
            .stdin(VALUE)
            .code(0),
        v,
    );
    let out = sb.check(
        Case::new("get", &["get", "HF_TOKEN"])
            .prints_value()
            .code(0),
        v,
    );
    assert_eq!(out.stdout.trim_end(), VALUE, "the check sees the value");
    sb.check(
        Case::new("get --json", &["get", "HF_TOKEN", "--json"])
            .prints_value()
            .code(0),
        v,
    );
    sb.check(
        Case::new("get, reader gone", &["get", "HF_TOKEN"])
            .closed_pipe()
            .code(0),
        v,
    );
    sb.check(Case::new("get, not found", &["get", "MISSING"]).code(1), v);
    sb.check(
        Case::new("get --default", &["get", "MISSING", "--default", VALUE])
            .prints_value()
            .code(0),
        v,
    );
    sb.check(
        Case::new("get (env)", &["--providers", "env", "get", "hf-token"])
            .env("HF_TOKEN", VALUE)
            .prints_value()
            .code(0),
        v,
    );
    sb.check(
        Case::new("set (argument)", &["set", "OTHER", VALUE]).code(0),
        v,
    );
    sb.check(
        Case::new(
            "set --provider file",
            &["set", "THIRD", "--provider", "file"],
        )
        .stdin(VALUE)
        .code(0),
        v,
    );
    sb.check(
        Case::new(
            "set --provider env (read-only)",
            &["set", "X", "--provider", "env"],
        )
        .stdin(VALUE)
        .code(3),
        v,
    );
    sb.check(
        Case::new("set --provider nope", &["set", "X", "--provider", "nope"]).stdin(VALUE),
        v,
    );
    sb.check(Case::new("delete", &["delete", "OTHER"]).code(0), v);
    sb.check(Case::new("delete, absent", &["delete", "OTHER"]).code(1), v);
    sb.check(Case::new("doctor", &["doctor"]).code(0), v);
    sb.check(Case::new("doctor --json", &["doctor", "--json"]).code(0), v);
    sb.check(
        Case::new("doctor, reader gone", &["doctor", "--json"])
            .closed_pipe()
            .code(0),
        v,
    );

    // --- damaged secrets files holding the value.
    let damaged = [
        (
            "secrets.json",
            format!("{{\"HF_TOKEN\": \"{VALUE}\", \"B\": [{VALUE}"),
        ),
        (
            "secrets.json",
            format!("{{\"HF_TOKEN\": {{\"nested\": \"{VALUE}\"}}}}"),
        ),
        ("secrets.json", format!("[\"{VALUE}\"]")),
        (
            "secrets.yaml",
            format!("HF_TOKEN: \"{VALUE}\n  B: [{VALUE}"),
        ),
        ("secrets.yaml", format!("HF_TOKEN: !!binary {VALUE}\n")),
    ];
    for (i, (name, text)) in damaged.iter().enumerate() {
        let path = sb.write(&format!("damaged-{i}-{name}"), text);
        let file = path.to_str().unwrap();
        for (label, args) in [
            ("get", vec!["get", "HF_TOKEN"]),
            ("set", vec!["set", "NEW"]),
            ("delete", vec!["delete", "HF_TOKEN"]),
            ("doctor", vec!["doctor", "--json"]),
        ] {
            let mut args: Vec<&str> = args;
            args.extend(["--secrets-file", file]);
            sb.check(
                Case::new(&format!("damaged file {i} ({name}): {label}"), &args)
                    .stdin(VALUE)
                    .guard(&path),
                v,
            );
        }
    }
    sb.check(
        Case::new(
            "unreadable path",
            &["get", "K", "--secrets-file", "/proc/self/mem"],
        ),
        v,
    );

    // --- AWS Secrets Manager against moto, with a sentinel secret access key.
    let name = moto::unique("leaks-cli");
    runtime().block_on(moto::create_secret(
        &name,
        &json!({ "HF_TOKEN": VALUE }).to_string(),
    ));
    let aws = |case: Case, endpoint: &str, secret: &str| {
        case.env("SIMPLETUNER_AWS_SECRET_NAME", secret)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_REGION", moto::REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY)
    };
    sb.check(
        aws(
            Case::new("aws get", &["--providers", "aws", "get", "HF_TOKEN"])
                .prints_value()
                .code(0),
            &endpoint,
            &name,
        ),
        v,
    );
    sb.check(
        aws(
            Case::new(
                "aws set",
                &["--providers", "aws", "set", "WRITTEN", "--provider", "aws"],
            )
            .stdin(VALUE)
            .code(0),
            &endpoint,
            &name,
        ),
        v,
    );
    sb.check(
        aws(
            Case::new(
                "aws delete",
                &[
                    "--providers",
                    "aws",
                    "delete",
                    "WRITTEN",
                    "--provider",
                    "aws",
                ],
            )
            .code(0),
            &endpoint,
            &name,
        ),
        v,
    );
    sb.check(
        aws(
            Case::new("aws doctor", &["--providers", "aws", "doctor", "--json"]).code(0),
            &endpoint,
            &name,
        ),
        v,
    );
    let not_json = moto::unique("leaks-cli-notjson");
    runtime().block_on(moto::create_secret(&not_json, &format!("{VALUE} not json")));
    sb.check(
        aws(
            Case::new(
                "aws get, secret not JSON",
                &["--providers", "aws", "get", "K"],
            )
            .code(3),
            &endpoint,
            &not_json,
        ),
        v,
    );
    sb.check(
        aws(
            Case::new(
                "aws get, no such secret",
                &["--providers", "aws", "get", "K"],
            ),
            &endpoint,
            &moto::unique("leaks-cli-absent"),
        ),
        v,
    );
    sb.check(
        aws(
            Case::new("aws get, server gone", &["--providers", "aws", "get", "K"]).code(3),
            &dead,
            &name,
        ),
        v,
    );
    sb.check(
        aws(
            Case::new("aws doctor, server gone", &["--providers", "aws", "doctor"]).code(3),
            &dead,
            &name,
        ),
        v,
    );

    // --- Vault against OpenBao, with a token whose ID is a sentinel.
    let path = vault::unique("leaks-cli");
    admin.put_v2("secret", &path, json!({ "HF_TOKEN": VALUE, "PORT": 8080 }));
    let token = vault_token(&admin, &path);
    let bao = |case: Case, addr: &str, token: &str| {
        case.env("VAULT_ADDR", addr)
            .env("VAULT_TOKEN", token)
            .env("SIMPLETUNER_VAULT_PATH", &path)
    };
    sb.check(
        bao(
            Case::new("vault get", &["--providers", "vault", "get", "HF_TOKEN"])
                .prints_value()
                .code(0),
            &admin.addr,
            &token,
        ),
        v,
    );
    sb.check(
        bao(
            Case::new(
                "vault get, not a string",
                &["--providers", "vault", "get", "PORT"],
            ),
            &admin.addr,
            &token,
        ),
        v,
    );
    sb.check(
        bao(
            Case::new(
                "vault set",
                &["--providers", "vault", "set", "W", "--provider", "vault"],
            )
            .stdin(VALUE)
            .code(0),
            &admin.addr,
            &token,
        ),
        v,
    );
    sb.check(
        bao(
            Case::new(
                "vault delete",
                &["--providers", "vault", "delete", "W", "--provider", "vault"],
            )
            .code(0),
            &admin.addr,
            &token,
        ),
        v,
    );
    sb.check(
        bao(
            Case::new(
                "vault doctor",
                &["--providers", "vault", "doctor", "--json"],
            )
            .code(0),
            &admin.addr,
            &token,
        ),
        v,
    );
    let wrong = vault::unique("WRONGTOKENSENTINEL");
    sb.check(
        bao(
            Case::new(
                "vault get, unknown token",
                &["--providers", "vault", "get", "K"],
            )
            .code(3),
            &admin.addr,
            &wrong,
        ),
        v,
    );
    sb.check(
        bao(
            Case::new(
                "vault get, server gone",
                &["--providers", "vault", "get", "K"],
            )
            .code(3),
            &dead,
            &token,
        ),
        v,
    );
    sb.check(
        bao(
            Case::new(
                "vault doctor, server gone",
                &["--providers", "vault", "doctor"],
            )
            .code(3),
            &dead,
            &token,
        ),
        v,
    );

    // --- crypto: encrypt, decrypt, rotate; wrong key, damaged input, key from a file.
    let out = sb.check(
        Case::new("crypto encrypt", &["crypto", "encrypt"])
            .env(key.0, key.1)
            .stdin(VALUE)
            .code(0),
        v,
    );
    let stored = out.stdout.trim().to_owned();
    assert!(stored.starts_with("Z0FBQUFB"), "{stored}");
    sb.check(
        Case::new("crypto decrypt", &["crypto", "decrypt"])
            .env(key.0, key.1)
            .stdin(&stored)
            .prints_value()
            .code(0),
        v,
    );
    sb.check(
        Case::new("crypto decrypt, reader gone", &["crypto", "decrypt"])
            .env(key.0, key.1)
            .stdin(&stored)
            .closed_pipe(),
        v,
    );
    sb.check(
        Case::new("crypto decrypt, wrong key", &["crypto", "decrypt"])
            .env(key.0, OTHER_PASSPHRASE)
            .stdin(&stored)
            .code(4),
        v,
    );
    sb.check(
        Case::new("crypto decrypt, not a token", &["crypto", "decrypt"])
            .env(key.0, key.1)
            .stdin(&format!("Z0FBQUFB{VALUE}"))
            .code(4),
        v,
    );
    let mut damaged_token = stored.clone().into_bytes();
    let middle = damaged_token.len() / 2;
    damaged_token[middle] = if damaged_token[middle] == b'A' {
        b'B'
    } else {
        b'A'
    };
    sb.check(
        Case::new("crypto decrypt, damaged token", &["crypto", "decrypt"])
            .env(key.0, key.1)
            .stdin(&String::from_utf8(damaged_token).unwrap())
            .code(4),
        v,
    );
    sb.check(
        Case::new("crypto rotate", &["crypto", "rotate"])
            .env(key.0, OTHER_PASSPHRASE)
            .env("SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS", PASSPHRASE)
            .stdin(&stored)
            .code(0),
        v,
    );
    sb.check(
        Case::new("crypto rotate, no matching key", &["crypto", "rotate"])
            .env(key.0, OTHER_PASSPHRASE)
            .stdin(&stored)
            .code(4),
        v,
    );
    sb.write("credential.key", &format!("{PASSPHRASE}\n"));
    sb.check(
        Case::new("crypto decrypt, key file", &["crypto", "decrypt"])
            .stdin(&stored)
            .prints_value()
            .code(0),
        v,
    );

    // --- config, audit, crypto migrate-db / rotate-db on the SQLite store.
    let config = format!("{{\"webhook_secret\": \"{VALUE}\", \"cost_limit_amount\": 5}}");
    sb.check(
        Case::new("config set (stdin)", &["config", "set", "replicate"])
            .env(key.0, key.1)
            .stdin(&config)
            .code(0),
        v,
    );
    sb.check(
        Case::new(
            "config set (argument)",
            &["config", "set", "modal", &config],
        )
        .env(key.0, key.1)
        .code(0),
        v,
    );
    sb.check(
        Case::new("config get", &["config", "get", "replicate"])
            .env(key.0, key.1)
            .prints_value()
            .code(0),
        v,
    );
    sb.check(
        Case::new("config update", &["config", "update", "replicate"])
            .env(key.0, key.1)
            .stdin(&format!(
                "{{\"webhook_url\": \"https://x.invalid\", \"api\": \"{VALUE}\"}}"
            ))
            .prints_value()
            .code(0),
        v,
    );
    sb.check(
        Case::new("config set, not JSON", &["config", "set", "replicate"])
            .env(key.0, key.1)
            .stdin(&format!("{{\"webhook_secret\": {VALUE}")),
        v,
    );
    sb.check(
        Case::new("config set, not an object", &["config", "set", "replicate"])
            .env(key.0, key.1)
            .stdin(&format!("[\"{VALUE}\"]")),
        v,
    );
    sb.check(Case::new("config list", &["config", "list"]).code(0), v);
    sb.check(
        Case::new("config list --json", &["config", "list", "--json"]).code(0),
        v,
    );
    sb.check(
        Case::new("config delete", &["config", "delete", "modal"]).code(0),
        v,
    );
    sb.check(Case::new("audit list", &["audit", "list"]).code(0), v);
    sb.check(
        Case::new(
            "audit list --json",
            &["audit", "list", "--json", "--limit", "5"],
        )
        .code(0),
        v,
    );
    sb.check(Case::new("audit verify", &["audit", "verify"]).code(0), v);
    sb.check(
        Case::new("audit verify --json", &["audit", "verify", "--json"]).code(0),
        v,
    );
    sb.check(
        Case::new("audit verify, wrong key", &["audit", "verify"])
            .env("SIMPLETUNER_AUDIT_KEY", "AUDIT2SENTINELz8Qe"),
        v,
    );
    // A credential the original server stored in plaintext.
    let jobs = sb.app_dir().join("cloud/jobs.db");
    {
        let db = rusqlite::Connection::open(&jobs).unwrap();
        db.execute(
            "INSERT INTO provider_credentials (user_id, provider, credential_name, \
             credential_value, created_at) VALUES (1, 'replicate', 'api_token', ?1, \
             '2026-01-01T00:00:00')",
            [VALUE],
        )
        .unwrap();
    }
    sb.check(
        Case::new("crypto migrate-db", &["crypto", "migrate-db"])
            .env(key.0, key.1)
            .code(0),
        v,
    );
    sb.check(
        Case::new("crypto rotate-db", &["crypto", "rotate-db"])
            .env(key.0, OTHER_PASSPHRASE)
            .env("SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS", PASSPHRASE)
            .code(0),
        v,
    );
    sb.check(
        Case::new("crypto rotate-db, wrong key", &["crypto", "rotate-db"]).env(key.0, PASSPHRASE),
        v,
    );
    sb.check(
        Case::new(
            "config migrate, database gone",
            &["config", "migrate", "--json"],
        )
        .env(
            "SIMPLETUNER_DATABASE_URL",
            &format!("postgres://user:{DB_PASSWORD}@127.0.0.1:{}/db", dead_port()),
        )
        .env(key.0, key.1),
        v,
    );
    sb.check(
        Case::new("config get, database gone", &["config", "get", "replicate"])
            .env(
                "SIMPLETUNER_DATABASE_URL",
                &format!("postgres://user:{DB_PASSWORD}@127.0.0.1:{}/db", dead_port()),
            )
            .env(key.0, key.1),
        v,
    );
    sb.check(
        Case::new(
            "config migrate --to, bad URL",
            &[
                "config",
                "migrate",
                "--to",
                &format!("postgres://user:{DB_PASSWORD}@[::1/db"),
            ],
        ),
        v,
    );
    // A damaged database file.
    std::fs::write(&jobs, format!("not a database {VALUE}").repeat(200)).unwrap();
    let _ = std::fs::remove_file(sb.app_dir().join("cloud/jobs.db-wal"));
    let _ = std::fs::remove_file(sb.app_dir().join("cloud/jobs.db-shm"));
    sb.check(
        Case::new(
            "config get, damaged database",
            &["config", "get", "replicate"],
        )
        .env(key.0, key.1),
        v,
    );
    sb.check(
        Case::new(
            "crypto migrate-db, damaged database",
            &["crypto", "migrate-db"],
        )
        .env(key.0, key.1),
        v,
    );
    std::fs::write(sb.app_dir().join("audit.db"), VALUE.repeat(500)).unwrap();
    sb.check(
        Case::new("audit verify, damaged database", &["audit", "verify"]),
        v,
    );

    // --- usage errors and completions.
    sb.check(Case::new("usage: get without a key", &["get"]).code(2), v);
    sb.check(
        // (clap names a rejected argument: arguments are not secrets, values come on stdin.)
        Case::new(
            "usage: unknown provider list",
            &["--providers", "nope", "get", "K"],
        )
        .code(2),
        v,
    );
    sb.check(
        Case::new("usage: bad app name", &["--app", "bad name", "get", "K"]).code(2),
        v,
    );
    sb.check(
        Case::new("completions", &["completions", "bash"]).code(0),
        v,
    );

    let commands: BTreeSet<&str> = sb
        .ran
        .iter()
        .map(|name| name.split([' ', ',', ':', '(']).next().unwrap_or(name))
        .collect();
    eprintln!(
        "leaks-cli: {} cases, {} runs ({} with log lines), verbosities {v:?}; commands: \
         {commands:?}",
        sb.ran.len(),
        sb.runs,
        sb.traced
    );
    assert!(
        sb.traced * 4 > sb.ran.len(),
        "most cases log something with -vvv: {} of {}",
        sb.traced,
        sb.ran.len()
    );
    reliability::report(
        "leaks-cli",
        "Every `secrets` command (get, set, delete, doctor, crypto encrypt/decrypt/rotate/\
         migrate-db/rotate-db, config get/set/update/delete/list/migrate, audit list/verify, \
         completions), success and failure paths (wrong key, damaged file and database, \
         server gone, reader gone, usage errors), with the file, env, AWS (moto) and Vault \
         (OpenBao) providers: no planted value, passphrase, token, AWS key, audit key or \
         database password on stderr, nor on stdout outside get/decrypt/config get",
        &format!(
            "{} cases, {} runs (each case at verbosity {v:?}; {} runs with log lines), 0 \
             sentinels found, 0 panics",
            sb.ran.len(),
            sb.runs,
            sb.traced
        ),
    );
}

/// Everything the library scenarios produced as text: errors, `Debug` output.
#[derive(Default)]
struct Texts(Vec<String>);

impl Texts {
    fn push(&mut self, what: &str, text: String) {
        self.0.push(format!("{what}: {text}"));
    }
    fn debug(&mut self, what: &str, value: &dyn std::fmt::Debug) {
        self.push(what, format!("{value:?} {value:#?}"));
    }
}

#[test]
fn library_scenarios_keep_sentinels_out_of_logs_errors_debug_and_panics() {
    let rounds = reliability::scale(1, 20);
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let mut texts = Texts::default();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let admin = vault::shared();

    // Fixtures: a good and a damaged secrets file, an AWS secret, a Vault path.
    let good = dir.path().join("secrets.json");
    std::fs::write(&good, json!({ "HF_TOKEN": VALUE }).to_string()).unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, format!("HF_TOKEN: [\"{VALUE}\"\nX: !!int {VALUE}")).unwrap();
    let aws_name = moto::unique("leaks-lib");
    rt.block_on(moto::create_secret(
        &aws_name,
        &json!({ "AWS_KEY": VALUE }).to_string(),
    ));
    let aws_broken = moto::unique("leaks-lib-broken");
    rt.block_on(moto::create_secret(
        &aws_broken,
        &format!("{{\"{VALUE}\": "),
    ));
    let path = vault::unique("leaks-lib");
    admin.put_v2("secret", &path, json!({ "VAULT_KEY": VALUE }));
    let token = vault_token(&admin, &path);
    let dead = format!("http://127.0.0.1:{}", dead_port());

    let mut lookups = 0usize;
    for round in 0..rounds {
        let env_provider = Arc::new(EnvProvider::new(Default::default()));
        let file = Arc::new(FileProvider::new(&good));
        let aws = Arc::new(
            AwsSecretsManagerProvider::new(moto::settings(&aws_name)).expect("aws settings"),
        );
        let vault_provider = Arc::new(
            VaultProvider::new(
                VaultSettings::new(admin.addr.clone())
                    .token(token.as_str())
                    .path(&path),
            )
            .unwrap(),
        );
        let manager = SecretsManager::builder()
            .provider(env_provider.clone())
            .provider(file.clone())
            .provider(aws.clone())
            .provider(vault_provider.clone())
            .build();
        for (key, provider) in [
            ("HF_TOKEN", "file"),
            ("AWS_KEY", "aws"),
            ("VAULT_KEY", "vault"),
        ] {
            let found = rt.block_on(manager.get_with_source(key)).unwrap().unwrap();
            assert_eq!(
                (found.value.expose(), found.provider.as_str()),
                (VALUE, provider)
            );
            texts.debug("Resolved", &found);
            texts.debug("Option<Resolved>", &Some(found.clone()));
            lookups += 1;
        }
        assert!(rt.block_on(manager.get("ABSENT_KEY")).unwrap().is_none());
        rt.block_on(manager.set_in("vault", "W", Secret::new(VALUE)))
            .unwrap();
        rt.block_on(manager.set_in("aws", "W", Secret::new(VALUE)))
            .unwrap();
        assert!(rt.block_on(manager.delete_in("aws", "W")).unwrap());
        texts.debug("SecretsManager", &manager);
        texts.debug("EnvProvider", &env_provider);
        texts.debug("FileProvider", &file);
        texts.debug("AwsSecretsManagerProvider", &aws);
        texts.debug("VaultProvider", &vault_provider);
        texts.debug("health", &rt.block_on(manager.health_report()));
        texts.debug("CacheStats", &manager.cache_stats());
        if round > 0 {
            continue;
        }

        // Failures: a damaged file, a secret that is not JSON, a wrong token, servers gone.
        let failing: Vec<Arc<dyn SecretProvider>> = vec![
            Arc::new(FileProvider::new(&bad)),
            Arc::new(AwsSecretsManagerProvider::new(moto::settings(&aws_broken)).unwrap()),
            Arc::new(
                AwsSecretsManagerProvider::new(
                    AwsSettings::new(&aws_name)
                        .with_region(moto::REGION)
                        .with_endpoint_url(dead.clone()),
                )
                .unwrap(),
            ),
            Arc::new(
                VaultProvider::new(
                    VaultSettings::new(admin.addr.clone())
                        .token(vault::unique("WRONGTOKENSENTINEL"))
                        .path(&path),
                )
                .unwrap(),
            ),
            Arc::new(
                VaultProvider::new(
                    VaultSettings::new(dead.clone())
                        .token(token.as_str())
                        .path(&path),
                )
                .unwrap(),
            ),
        ];
        for provider in failing {
            texts.debug("failing provider", &provider);
            let error = rt.block_on(provider.get("HF_TOKEN")).unwrap_err();
            texts.push("provider error", format!("{error} {error:?} {error:#?}"));
            let manager = SecretsManager::builder().provider(provider.clone()).build();
            let error = rt.block_on(manager.get("HF_TOKEN")).unwrap_err();
            texts.push("manager error", format!("{error} {error:?}"));
            let error = rt
                .block_on(manager.set_in(provider.name(), "K", Secret::new(VALUE)))
                .unwrap_err();
            texts.push("write error", format!("{error} {error:?}"));
            texts.debug("failing health", &rt.block_on(manager.health_report()));
        }

        // Settings and configuration: Debug of everything that holds a token or key.
        texts.debug(
            "VaultSettings",
            &VaultSettings::new(admin.addr.clone()).token(token.as_str()),
        );
        texts.debug(
            "AppRole",
            &secrets::vault::AppRole::new(
                vault::unique("ROLESENTINEL"),
                vault::unique("SECRETIDSENTINEL"),
            ),
        );
        let (addr, token_, aws_name_, good_) = (
            admin.addr.clone(),
            token.clone(),
            aws_name.clone(),
            good.clone(),
        );
        let lookup = move |name: &str| -> Option<std::ffi::OsString> {
            match name {
                "VAULT_ADDR" => Some(addr.clone().into()),
                "VAULT_TOKEN" => Some(token_.clone().into()),
                "SIMPLETUNER_AWS_SECRET_NAME" => Some(aws_name_.clone().into()),
                "SIMPLETUNER_SECRETS_FILE" => Some(good_.clone().into()),
                "HF_TOKEN" | "SIMPLETUNER_CREDENTIAL_KEY" => Some(PASSPHRASE.into()),
                _ => None,
            }
        };
        let config = Config::from_lookup(&secrets::AppName::default(), &lookup).unwrap();
        texts.debug("Config", &config);
        texts.debug("provider_status", &config.provider_status());
        texts.debug(
            "MemoryProvider",
            &MemoryProvider::new("memory").with("K", VALUE),
        );
        let snapshot: Snapshot<Secret> = Snapshot::new("snap", SnapshotPolicy::default());
        rt.block_on(snapshot.get(|| async { Ok(Secret::new(VALUE)) }))
            .unwrap();
        texts.debug("Snapshot", &snapshot);
        texts.debug("Secret", &Secret::new(VALUE));

        // Credential encryption: ciphers, keys, loaders, errors.
        let cipher = CredentialCipher::from_passphrase(PASSPHRASE)
            .unwrap()
            .with_previous_passphrase(OTHER_PASSPHRASE)
            .unwrap();
        texts.debug("CredentialCipher", &cipher);
        texts.debug(
            "FernetKey",
            &FernetKey::derive(PASSPHRASE, secrets::crypto::DEFAULT_SALT).unwrap(),
        );
        let stored = cipher.encrypt(VALUE);
        assert_eq!(cipher.decrypt(&stored).unwrap().expose(), VALUE);
        let wrong = CredentialCipher::from_passphrase(OTHER_PASSPHRASE).unwrap();
        let error = wrong.decrypt(&stored).unwrap_err();
        texts.push("CryptoError", format!("{error} {error:?}"));
        let error = cipher.decrypt(&format!("Z0FBQUFB{VALUE}")).unwrap_err();
        texts.push("CryptoError (garbage)", format!("{error} {error:?}"));
        let loader = KeyLoader::new(&secrets::AppName::default()).env_lookup(lookup.clone());
        texts.debug("KeyLoader", &loader);
        texts.debug("Keyring", &loader.load().unwrap());

        // The provider-configuration store: a webhook secret, an audit trail with its key.
        let audit_key = AuditKey::from_bytes(AUDIT_KEY.as_bytes().to_vec()).unwrap();
        texts.debug("AuditKey", &audit_key);
        let trail = AuditTrail::open_path(&dir.path().join("audit.db"), audit_key).unwrap();
        let store = ConfigStore::builder(dir.path().join("cloud/jobs.db"))
            .audit(trail.clone())
            .cipher(cipher.clone())
            .open()
            .unwrap();
        let mut object = serde_json::Map::new();
        object.insert("webhook_secret".into(), json!(VALUE));
        object.insert("cost_limit_amount".into(), json!(5));
        store.save("replicate", object).unwrap();
        let loaded = store.get("replicate").unwrap();
        texts.debug("CloudProviderConfig", &loaded);
        texts.debug("WebhookConfig", &store.webhook_config("replicate").unwrap());
        texts.debug("ConfigStore", &store);
        texts.debug("audit entries", &trail.list(&Default::default()).unwrap());
        texts.debug("AuditTrail", &trail);
        let error = store
            .update(
                "replicate",
                serde_json::from_value(json!({ "cost_limit_amount": VALUE })).unwrap(),
            )
            .map(|_| ())
            .err();
        texts.debug("config update error", &error);

        // Panics: a Secret or a Resolved in an `unwrap` message shows as [REDACTED].
        let panics = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = Arc::clone(&panics);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(info.to_string());
        }));
        let resolved = Resolved {
            value: Secret::new(VALUE),
            provider: "file".into(),
        };
        let results = [
            std::panic::catch_unwind(|| {
                std::hint::black_box(Ok::<Secret, ()>(Secret::new(VALUE))).unwrap_err();
            }),
            std::panic::catch_unwind(move || {
                std::hint::black_box(Ok::<Resolved, ()>(resolved)).unwrap_err();
            }),
            std::panic::catch_unwind(|| {
                assert_eq!(Secret::new(VALUE), Secret::new("other"));
            }),
        ];
        std::panic::set_hook(previous);
        assert!(results.iter().all(Result::is_err));
        let panics = panics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert_eq!(panics.len(), 3);
        for message in panics {
            assert!(message.contains("REDACTED"), "{message}");
            texts.push("panic", message);
        }
    }

    // The checks see the value: it went through (the manager returned it above), and the
    // logs are real TRACE output.
    let log = logs.text();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "no logs captured"
    );
    for text in &texts.0 {
        assert!(!text.contains(MARK), "sentinel in {text}");
    }
    for line in log.lines() {
        assert!(!line.contains(MARK), "sentinel in a log line: {line}");
    }
    eprintln!(
        "leaks-library: {rounds} rounds, {lookups} lookups, {} texts, {} log lines",
        texts.0.len(),
        log.lines().count()
    );
    reliability::report(
        "leaks-library",
        "Library at TRACE: the manager over env, file, AWS (moto) and Vault (OpenBao) with \
         reads, writes, health, and failing providers (damaged file, secret not JSON, wrong \
         token, servers gone); settings, config, credential encryption (wrong key, garbage), \
         the provider-configuration store and audit trail; panics through unwrap: no planted \
         value, passphrase, token or audit key in a log line, error, Debug output or panic \
         message",
        &format!(
            "{rounds} rounds, {lookups} lookups through 4 providers, {} error/Debug/panic \
             texts and {} log lines checked, 0 sentinels found",
            texts.0.len(),
            log.lines().count()
        ),
    );
}
