//! Throughput of credential encryption, for `cargo xtask bench crypto` (which runs it in
//! release mode beside Python's `cryptography`). Prints one JSON object.
//!
//! Usage: `crypto_throughput [SECONDS_PER_WORKLOAD]` (default 0.5).

use std::hint::black_box;
use std::time::{Duration, Instant};

use credential_crypto::{CredentialCipher, DEFAULT_SALT, FernetKey};

/// Runs `op` repeatedly for about `budget`; returns operations per second.
fn ops_per_sec(budget: Duration, mut op: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut count: u64 = 0;
    while started.elapsed() < budget {
        for _ in 0..256 {
            op();
        }
        count += 256;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.5);
    let budget = Duration::from_secs_f64(seconds);
    let cipher = CredentialCipher::from_passphrase("benchmark passphrase").unwrap();
    let credential = [b'c'; 64];
    let token = cipher.encrypt_token(&credential);
    let stored = cipher.encrypt(std::str::from_utf8(&credential).unwrap());

    let encrypt = ops_per_sec(budget, || {
        black_box(cipher.encrypt_token(black_box(&credential)));
    });
    let decrypt = ops_per_sec(budget, || {
        black_box(cipher.decrypt_token(black_box(&token), None, 0).unwrap());
    });
    let encrypt_stored = ops_per_sec(budget, || {
        black_box(cipher.encrypt(black_box(
            "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
        )));
    });
    let decrypt_stored = ops_per_sec(budget, || {
        black_box(cipher.decrypt(black_box(&stored)).unwrap());
    });
    let mut derive_ms = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        black_box(FernetKey::derive(black_box("benchmark passphrase"), DEFAULT_SALT).unwrap());
        derive_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    derive_ms.sort_by(f64::total_cmp);
    println!(
        "{{\"encrypt_64B\": {encrypt:.0}, \"decrypt_64B\": {decrypt:.0}, \
         \"encrypt_stored_64B\": {encrypt_stored:.0}, \"decrypt_stored_64B\": {decrypt_stored:.0}, \
         \"derive_ms\": {:.3}}}",
        derive_ms[derive_ms.len() / 2]
    );
}
