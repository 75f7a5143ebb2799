//! A provider-config writer for the crash-safety, multi-process and permission tests: opens
//! the application's store as a server does (`ConfigStore::open` with the settings of the
//! environment: `SIMPLETUNER_STATE_DIR` for SQLite, `SIMPLETUNER_DATABASE_URL` for
//! PostgreSQL, the audit key of `SIMPLETUNER_AUDIT_KEY`), then calls `update` on one
//! provider with a distinct key each time and acknowledges each update that returned on
//! stdout, flushed, as `ok N`.
//!
//! Arguments: `PROVIDER PREFIX FIRST COUNT [hold]`: updates `{"<PREFIX>_<n>": n}` for n in
//! FIRST..FIRST+COUNT (COUNT 0 = until killed). With `hold`, it then prints `holding` and
//! keeps the store open until stdin closes (to inspect the files of a live store).

use std::io::{Read, Write};

use secrets::AppName;
use secrets::config::{ConfigStore, StoreSettings};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [provider, prefix, first, count, rest @ ..] = args.as_slice() else {
        eprintln!("usage: config_writer PROVIDER PREFIX FIRST COUNT [hold]");
        std::process::exit(2);
    };
    let first: u64 = first.parse().expect("FIRST is a number");
    let count: u64 = count.parse().expect("COUNT is a number");
    let hold = rest.first().is_some_and(|a| a == "hold");
    let settings = StoreSettings::from_lookup(&AppName::default(), &|name| std::env::var_os(name))
        .unwrap_or_else(|e| fail(&format!("settings: {e}")));
    let store = ConfigStore::open(&settings).unwrap_or_else(|e| fail(&format!("opening: {e}")));
    let mut out = std::io::stdout().lock();
    let last = if count == 0 { u64::MAX } else { first + count };
    for n in first..last {
        let mut update = serde_json::Map::new();
        update.insert(format!("{prefix}_{n}"), n.into());
        if let Err(e) = store.update(provider, update) {
            fail(&format!("update {n}: {e}"));
        }
        writeln!(out, "ok {n}").unwrap();
        out.flush().unwrap();
    }
    if hold {
        writeln!(out, "holding").unwrap();
        out.flush().unwrap();
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    }
}

fn fail(message: &str) -> ! {
    eprintln!("config_writer: {message}");
    std::process::exit(3);
}
