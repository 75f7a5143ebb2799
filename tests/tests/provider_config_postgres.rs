//! Several processes as server replicas on one PostgreSQL store (the server `cargo xtask
//! test` starts, `SECRETS_TEST_DATABASE_URL`): a write in one process drops the others'
//! cached copy within a second; four processes appending at once keep one audit chain.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use secrets::config::{AuditKey, AuditTrail, DatabaseUrl, StoreLocation};
use support::Database;

const AUDIT_KEY: &str = "multi-process test audit key";

/// A replica process (`config_replica`), killed when dropped.
struct Replica {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Replica {
    fn start(url: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_config_replica"))
            .env("REPLICA_DATABASE_URL", url)
            .env("REPLICA_AUDIT_KEY", AUDIT_KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut replica = Self {
            child,
            stdin,
            stdout,
        };
        assert_eq!(replica.read(), "ready");
        replica
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn read(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    fn ask(&mut self, command: &str) -> String {
        self.send(command);
        self.read()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_write_in_one_process_drops_the_other_processes_cached_copy_within_a_second() {
    let db = Database::create("replicas");
    let (mut a, mut b) = (Replica::start(&db.url()), Replica::start(&db.url()));
    assert_eq!(a.ask(r#"update replicate {"v": 0}"#), "ok");
    // The update's own notification may reach B after B first caches, and (rightly) drop
    // that copy: let it arrive before the loop expects a cached copy.
    assert_eq!(b.ask("get replicate"), r#"{"v":0}"#);
    let settled = b.ask("wait-uncached replicate 300");
    assert!(
        settled == "still" || settled.starts_with("gone "),
        "{settled}"
    );
    let mut latencies = Vec::new();
    for v in 1..=10 {
        assert_eq!(b.ask("get replicate"), format!(r#"{{"v":{}}}"#, v - 1));
        assert_eq!(b.ask("cached replicate"), "yes");
        // B starts watching before A commits, so the time measured is B's wait.
        b.send("wait-uncached replicate 1000");
        assert_eq!(a.ask(&format!(r#"update replicate {{"v": {v}}}"#)), "ok");
        let answer = b.read();
        let micros: u64 = answer
            .strip_prefix("gone ")
            .unwrap_or_else(|| panic!("B still caches the old value 1 s later: {answer}"))
            .parse()
            .unwrap();
        latencies.push(micros);
        assert_eq!(b.ask("get replicate"), format!(r#"{{"v":{v}}}"#));
    }
    latencies.sort_unstable();
    eprintln!("watch-to-drop times (µs): {latencies:?}");
}

#[test]
fn four_processes_appending_at_once_keep_one_audit_chain() {
    let db = Database::create("replicas");
    let mut replicas: Vec<Replica> = (0..4).map(|_| Replica::start(&db.url())).collect();
    for (n, replica) in replicas.iter_mut().enumerate() {
        replica.send(&format!("append 50 replica-{n}"));
    }
    for replica in &mut replicas {
        assert_eq!(replica.read(), "ok");
    }
    let location = StoreLocation::Postgres(DatabaseUrl::parse(&db.url()).unwrap());
    let trail = AuditTrail::open_at(
        &location,
        AuditKey::from_bytes(AUDIT_KEY.as_bytes().to_vec()).unwrap(),
    )
    .unwrap();
    let report = trail.verify().unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(
        (report.entries_checked, report.row_macs_checked),
        (200, 200)
    );
}
