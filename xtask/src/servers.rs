//! The real test servers: a Python virtualenv under `target/` holding them, free loopback
//! ports, start-up with a readiness check, the addresses exported to the tests, and a stop by
//! PID when the handle is dropped (also when the tests fail or xtask panics).
//!
//! A server is one [`ServerSpec`] in [`SERVERS`]; Python packages the tests need beyond the
//! servers go in [`EXTRA_PACKAGES`].

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::run;

/// How to install, start and reach one test server.
pub(crate) struct ServerSpec {
    /// Short name, used in messages and the log file name.
    pub(crate) name: &'static str,
    /// pip requirements that provide the server.
    pub(crate) packages: &'static [&'static str],
    /// The command line, given the virtualenv and a free port.
    pub(crate) command: fn(venv: &Venv, port: u16) -> Command,
    /// Environment variables for the tests, given the port.
    pub(crate) exports: fn(port: u16) -> Vec<(String, String)>,
    /// Extra set-up once the port answers (mounts, fixtures), given the port.
    pub(crate) after_start: fn(port: u16) -> Result<()>,
}

/// The servers the tests run against.
pub(crate) const SERVERS: &[ServerSpec] =
    &[MOTO, crate::openbao::OPENBAO, crate::postgres::POSTGRES];

/// moto's Secrets Manager (its whole AWS mock, in memory) with dummy credentials. The tests
/// read `SECRETS_TEST_AWS_ENDPOINT`; the SDK's own variables point any default-configured
/// client at it too. Instance metadata is disabled so that nothing asks 169.254.169.254.
pub(crate) const MOTO: ServerSpec = ServerSpec {
    name: "moto",
    packages: &["moto[server]"],
    command: |venv, port| {
        let mut command = Command::new(venv.bin("moto_server"));
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        command
    },
    exports: |port| {
        let endpoint = format!("http://127.0.0.1:{port}");
        [
            ("SECRETS_TEST_AWS_ENDPOINT", endpoint.as_str()),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    },
    after_start: moto_ready,
};

/// moto answers its own API once its Flask app is up (the port opens a little earlier).
fn moto_ready(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match http_status(port, "/moto-api/data.json") {
            Ok(200) => return Ok(()),
            result if Instant::now() >= deadline => {
                bail!("moto on port {port} is not ready: GET /moto-api/data.json gave {result:?}")
            }
            _ => thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The status code of `GET path` on 127.0.0.1:`port`.
fn http_status(port: u16, path: &str) -> Result<u16> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP answer: {:?}", text.lines().next()))
}

/// Python packages the tests use directly (for example to cross-check formats).
/// `cryptography`: the Python Fernet that the credential-crypto tests cross-check against.
/// `PyYAML`: the YAML 1.1 reader of the original server, for the secrets-file round trips.
pub(crate) const EXTRA_PACKAGES: &[&str] = &["cryptography", "PyYAML"];

/// A running server; stopped (killed by PID and reaped) on drop.
pub(crate) struct RunningServer {
    name: &'static str,
    child: Child,
    /// Environment variables that point the tests at this server.
    pub(crate) exports: Vec<(String, String)>,
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = self.child.kill();
        let _ = self.child.wait();
        println!("stopped {} (pid {pid})", self.name);
    }
}

/// The Python virtualenv under `target/test-venv`.
pub(crate) struct Venv {
    dir: PathBuf,
}

impl Venv {
    /// Creates the virtualenv if missing and installs `packages` unless the same list was
    /// installed before (recorded in a marker file).
    pub(crate) fn ensure(root: &Path, packages: &[&str]) -> Result<Self> {
        let venv = Self {
            dir: root.join("target").join("test-venv"),
        };
        if !venv.python().exists() {
            let python = ["python3", "python"]
                .into_iter()
                .find(|p| Command::new(p).arg("--version").output().is_ok())
                .context("Python 3 is needed for the test servers and was not found")?;
            run(Command::new(python).args(["-m", "venv"]).arg(&venv.dir))?;
        }
        let marker = venv.dir.join("xtask-requirements.txt");
        let wanted = packages.join("\n");
        if fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
            run(Command::new(venv.python())
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(packages))?;
            fs::write(&marker, &wanted)?;
        }
        Ok(venv)
    }

    /// A program installed in the virtualenv.
    pub(crate) fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }

    /// The virtualenv's Python.
    pub(crate) fn python(&self) -> PathBuf {
        self.bin("python")
    }
}

/// The started servers and the variables that point the tests at them.
pub(crate) struct TestEnvironment {
    /// Variables to set for the test processes.
    pub(crate) exports: Vec<(String, String)>,
    /// Stopped when this is dropped.
    _servers: Vec<RunningServer>,
}

/// Every Python package the tests need (one list, so the virtualenv's marker stays stable).
fn all_packages() -> Vec<&'static str> {
    let mut packages: Vec<&str> = EXTRA_PACKAGES.to_vec();
    packages.extend(SERVERS.iter().flat_map(|s| s.packages.iter().copied()));
    packages
}

/// Installs what is missing and starts one server (for a benchmark that needs only it).
pub(crate) fn start_one(root: &Path, spec: &ServerSpec) -> Result<TestEnvironment> {
    start_some(root, |s| s.name == spec.name)
}

/// Installs what is missing and starts every server in [`SERVERS`].
pub(crate) fn start_all(root: &Path) -> Result<TestEnvironment> {
    start_some(root, |_| true)
}

/// Installs what is missing (every server's packages, so the virtualenv stays the same) and
/// starts the servers of [`SERVERS`] that `wanted` picks (a benchmark needs one).
pub(crate) fn start_some(
    root: &Path,
    wanted: impl Fn(&ServerSpec) -> bool,
) -> Result<TestEnvironment> {
    let packages = all_packages();
    if packages.is_empty() {
        println!("no test servers or Python packages are needed");
        return Ok(TestEnvironment {
            exports: Vec::new(),
            _servers: Vec::new(),
        });
    }
    let venv = Venv::ensure(root, &packages)?;
    let mut exports = vec![(
        "SECRETS_TEST_PYTHON".to_owned(),
        venv.python().display().to_string(),
    )];
    let logs = root.join("target").join("test-servers");
    fs::create_dir_all(&logs)?;
    let mut servers = Vec::new();
    for spec in SERVERS.iter().filter(|s| wanted(s)) {
        let server = start(spec, &venv, &logs)?;
        exports.extend(server.exports.iter().cloned());
        servers.push(server);
    }
    Ok(TestEnvironment {
        exports,
        _servers: servers,
    })
}

fn start(spec: &ServerSpec, venv: &Venv, logs: &Path) -> Result<RunningServer> {
    let port = free_port()?;
    let log_path = logs.join(format!("{}.log", spec.name));
    let log = fs::File::create(&log_path)?;
    let child = (spec.command)(venv, port)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", spec.name))?;
    let server = RunningServer {
        name: spec.name,
        child,
        exports: (spec.exports)(port),
    };
    wait_for_port(port, Duration::from_secs(60))
        .with_context(|| format!("{} did not start; see {}", spec.name, log_path.display()))?;
    (spec.after_start)(port).with_context(|| format!("setting up {}", spec.name))?;
    println!(
        "started {} on 127.0.0.1:{port} (pid {}, log {})",
        spec.name,
        server.child.id(),
        log_path.display()
    );
    Ok(server)
}

/// A port that was free a moment ago on 127.0.0.1, and the one after it too (OpenBao's dev
/// server also listens on PORT+1, for clustering).
pub(crate) fn free_port() -> Result<u16> {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.1:0")?;
        let port = first.local_addr()?.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    bail!("found no two free consecutive ports on 127.0.0.1")
}

fn wait_for_port(port: u16, timeout: Duration) -> Result<()> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(100));
    }
    bail!("nothing listened on {address} within {timeout:?}")
}
