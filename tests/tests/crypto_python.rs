//! credential-crypto against Python's `cryptography` Fernet with the original key derivation,
//! in both directions, in a real Python process.

use std::io::Write;
use std::process::{Command, Stdio};

use integration_tests::test_python;
use secrets::crypto::CredentialCipher;
use serde_json::{Value, json};

/// The original implementation's derivation and storage, in Python.
const PYTHON: &str = r#"
import base64, hashlib, json, sys
from cryptography.fernet import Fernet
request = json.load(sys.stdin)
salt = b"simpletuner-credential-encryption-v1"
raw = hashlib.pbkdf2_hmac("sha256", request["passphrase"].encode(), salt, 100000, 32)
f = Fernet(base64.urlsafe_b64encode(raw))
decrypted = [f.decrypt(base64.urlsafe_b64decode(s.encode())).decode() for s in request["stored"]]
encrypted = [base64.urlsafe_b64encode(f.encrypt(p.encode())).decode() for p in request["plaintexts"]]
json.dump({"decrypted": decrypted, "encrypted": encrypted}, sys.stdout)
"#;

fn python(request: &Value) -> Value {
    let mut child = Command::new(test_python())
        .args(["-c", PYTHON])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the test Python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn rust_and_python_read_each_others_stored_credentials() {
    let passphrase = "cross-check passphrase ✓";
    let plaintexts = [
        "r8_abcdef",
        "",
        "ünïcode ✓ and \"quotes\"",
        &"x".repeat(1000),
    ];
    let cipher = CredentialCipher::from_passphrase(passphrase).unwrap();
    let ours: Vec<String> = plaintexts.iter().map(|p| cipher.encrypt(p)).collect();
    let answer = python(&json!({
        "passphrase": passphrase,
        "stored": ours,
        "plaintexts": plaintexts,
    }));
    // Python decrypts what Rust stored.
    let decrypted: Vec<&str> = answer["decrypted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(decrypted, plaintexts);
    // Rust decrypts what Python stored.
    for (stored, plain) in answer["encrypted"]
        .as_array()
        .unwrap()
        .iter()
        .zip(plaintexts)
    {
        let stored = stored.as_str().unwrap();
        assert!(stored.starts_with("Z0FBQUFB"));
        assert_eq!(cipher.decrypt(stored).unwrap().expose(), plain);
    }
}
