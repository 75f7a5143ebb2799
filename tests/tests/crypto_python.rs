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

/// The original's key-file path, verbatim: `_derive_key(key_path.read_text().strip())`.
const PYTHON_KEY_FILE: &str = r#"
import base64, hashlib, json, sys
from pathlib import Path
from cryptography.fernet import Fernet
request = json.load(sys.stdin)
def _derive_key(secret):
    app_salt = b"simpletuner-credential-encryption-v1"
    key = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), app_salt, iterations=100_000, dklen=32)
    return base64.urlsafe_b64encode(key)
f = Fernet(_derive_key(Path(request["key_file"]).read_text().strip()))
print(base64.urlsafe_b64encode(f.encrypt(request["plaintext"].encode("utf-8"))).decode("ascii"))
"#;

fn python_encrypt_with_key_file(key_file: &std::path::Path, plaintext: &str) -> String {
    let mut child = Command::new(test_python())
        .args(["-c", PYTHON_KEY_FILE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the test Python");
    let request = json!({"key_file": key_file, "plaintext": plaintext});
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
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn key_files_the_original_read_decrypt_what_it_stored() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("credential.key");
    for (content, case) in [
        // `openssl rand -base64 64`: two lines, one passphrase.
        (
            "VGhpcyBpcyBub3QgYSByZWFsIGtleSBidXQgaXQgaXMgbG9uZyBlbm91Z2ggdG8g\nd3JhcCBvbnRvIGEgc2Vjb25kIGxpbmUu\n",
            "two lines",
        ),
        ("  padded passphrase \t\n", "surrounding whitespace"),
        ("", "empty"),
        ("\n \n", "whitespace only"),
    ] {
        std::fs::write(&key_file, content).unwrap();
        let stored = python_encrypt_with_key_file(&key_file, "r8_from_the_original");
        let cipher = secrets::crypto::KeyLoader::new(&secrets::AppName::default())
            .key_file(&key_file)
            .env_lookup(|_| None)
            .load()
            .unwrap()
            .cipher()
            .unwrap();
        assert_eq!(
            cipher.decrypt(&stored).unwrap().expose(),
            "r8_from_the_original",
            "{case}"
        );
    }
}
