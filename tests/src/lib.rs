//! Helpers shared by the end-to-end tests: capturing every log line at TRACE level, so a test
//! can assert that no secret value reaches the logs, finding the test tooling's Python, and
//! reaching the moto server `cargo xtask test` starts ([`moto`]), and the OpenBao server,
//! administrator and proxy of the Vault tests ([`vault`]), and a TCP proxy that injects
//! faults in front of any of them ([`fault_proxy`]).

pub mod fault_proxy;
pub mod moto;
pub mod reliability;

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::fmt::MakeWriter;

pub mod vault;

/// A log sink that keeps everything written to it.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// A subscriber at TRACE level writing here; use with `tracing::subscriber::with_default`
    /// or `set_default`.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(self.clone())
            .finish()
    }
}

/// One write handle of [`CapturedLogs`].
pub struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        CapturedWriter(Arc::clone(&self.0))
    }
}

/// The Python of the test virtualenv: `SECRETS_TEST_PYTHON` as exported by `cargo xtask test`,
/// else `target/test-venv/bin/python` if an earlier xtask run created it.
///
/// # Panics
/// When neither exists: these tests need the real Python tooling; run them with
/// `cargo xtask test`.
pub fn test_python() -> PathBuf {
    if let Some(python) = std::env::var_os("SECRETS_TEST_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(python);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/python");
    assert!(
        venv.exists(),
        "no test Python: run the tests with `cargo xtask test`, which installs it"
    );
    venv
}
