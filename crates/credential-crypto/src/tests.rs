//! Compatibility (the original's stored values, the Fernet specification's vectors), error
//! handling and key management.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use serde_json::Value;

use crate::*;

/// A test vector file from the repository's `tests/data/` (copies of the Fernet specification's
/// vectors and of tokens made by the original Python code; see `tests/data/README.md`).
fn testdata(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Seconds since the epoch of an RFC 3339 time such as `1985-10-26T01:20:01-07:00`.
fn unix_time(rfc3339: &str) -> u64 {
    let n = |range: std::ops::Range<usize>| rfc3339[range].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (hh, mm, ss) = (n(11..13), n(14..16), n(17..19));
    let sign = if &rfc3339[19..20] == "-" { -1 } else { 1 };
    let offset = sign * (n(20..22) * 3600 + n(23..25) * 60);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss - offset).unwrap()
}

#[test]
fn rfc3339_helper_is_right() {
    assert_eq!(unix_time("1970-01-01T00:00:00+00:00"), 0);
    assert_eq!(unix_time("1985-10-26T01:20:00-07:00"), 499_162_800);
}

#[test]
fn decrypts_every_value_the_original_stored() {
    let data = testdata("simpletuner-compat.json");
    assert_eq!(data["salt"].as_str().unwrap().as_bytes(), DEFAULT_SALT);
    assert_eq!(
        data["iterations"].as_u64().unwrap(),
        u64::from(PBKDF2_ITERATIONS)
    );
    let vectors = data["vectors"].as_array().unwrap();
    assert!(!vectors.is_empty());
    for v in vectors {
        let passphrase = v["passphrase"].as_str().unwrap();
        let key = FernetKey::derive_cached(passphrase, DEFAULT_SALT).unwrap();
        assert_eq!(key.to_base64().as_str(), v["fernet_key"].as_str().unwrap());
        let cipher = CredentialCipher::from_passphrase(passphrase).unwrap();
        let plain = cipher.decrypt(v["stored"].as_str().unwrap()).unwrap();
        assert_eq!(plain.expose(), v["plaintext"].as_str().unwrap());
    }
}

#[test]
fn encrypt_round_trips_in_the_stored_format() {
    let cipher = CredentialCipher::from_passphrase("round-trip").unwrap();
    for plain in ["", "r8_abc", "ünïcödé ✓", &"x".repeat(5000)] {
        let stored = cipher.encrypt(plain);
        assert!(stored.starts_with("Z0FBQUFB"), "{stored}");
        let token = URL_SAFE.decode(&stored).unwrap();
        assert!(token.starts_with(b"gAAAAA"));
        assert_eq!(cipher.decrypt(&stored).unwrap().expose(), plain);
        // Surrounding whitespace (a trailing newline from a pipe) is ignored.
        assert_eq!(
            cipher.decrypt(&format!(" {stored}\n")).unwrap().expose(),
            plain
        );
    }
    assert_ne!(
        cipher.encrypt("same"),
        cipher.encrypt("same"),
        "fresh IV per call"
    );
}

#[test]
fn fernet_spec_generate_vectors() {
    for v in testdata("fernet-spec/generate.json").as_array().unwrap() {
        let secret = v["secret"].as_str().unwrap();
        let src = v["src"].as_str().unwrap().as_bytes();
        let time = unix_time(v["now"].as_str().unwrap());
        let iv: [u8; 16] = v["iv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        let expected = v["token"].as_str().unwrap();
        let cipher = CredentialCipher::from_fernet_key(secret).unwrap();
        assert_eq!(cipher.encrypt_token_with_iv(src, time, &iv), expected);
        assert_eq!(
            cipher
                .decrypt_token(expected, Some(60), time)
                .unwrap()
                .as_slice(),
            src
        );
    }
}

/// Token generation is ours and verification is the `fernet` crate's: every plaintext length
/// around the padding boundaries must go through both, with the header laid out as specified.
#[test]
fn generated_tokens_verify_with_the_fernet_crate() {
    let key = FernetKey::derive_cached("cross-check", DEFAULT_SALT).unwrap();
    let cipher = CredentialCipher::new(&key);
    let independent = fernet::Fernet::new(&key.to_base64()).unwrap();
    let time = 1_700_000_000;
    for len in 0..=100 {
        let data: Vec<u8> = (0..len).map(|i| b'!' + (i * 7 % 90) as u8).collect();
        let token = cipher.encrypt_token_at(&data, time);
        let raw = URL_SAFE.decode(&token).unwrap();
        assert_eq!(
            raw.len(),
            1 + 8 + 16 + (len / 16 + 1) * 16 + 32,
            "length {len}"
        );
        assert_eq!(raw[0], 0x80);
        assert_eq!(u64::from_be_bytes(raw[1..9].try_into().unwrap()), time);
        assert_eq!(
            independent.decrypt_at_time(&token, None, time).unwrap(),
            data,
            "length {len}"
        );
        // The stored form is the token's text, base64 once more.
        let stored = cipher.encrypt(std::str::from_utf8(&data).unwrap());
        let inner = String::from_utf8(URL_SAFE.decode(&stored).unwrap()).unwrap();
        assert_eq!(independent.decrypt(&inner).unwrap(), data);
    }
}

#[test]
fn fernet_spec_verify_vectors() {
    for v in testdata("fernet-spec/verify.json").as_array().unwrap() {
        let cipher = CredentialCipher::from_fernet_key(v["secret"].as_str().unwrap()).unwrap();
        let now = unix_time(v["now"].as_str().unwrap());
        let plain = cipher
            .decrypt_token(v["token"].as_str().unwrap(), v["ttl_sec"].as_u64(), now)
            .unwrap();
        assert_eq!(plain.as_slice(), v["src"].as_str().unwrap().as_bytes());
    }
}

#[test]
fn fernet_spec_invalid_vectors_are_all_rejected() {
    let vectors = testdata("fernet-spec/invalid.json");
    let vectors = vectors.as_array().unwrap();
    assert_eq!(vectors.len(), 8);
    for v in vectors {
        let cipher = CredentialCipher::from_fernet_key(v["secret"].as_str().unwrap()).unwrap();
        let now = unix_time(v["now"].as_str().unwrap());
        let result = cipher.decrypt_token(v["token"].as_str().unwrap(), v["ttl_sec"].as_u64(), now);
        assert!(result.is_err(), "accepted: {}", v["desc"]);
    }
}

#[test]
fn bad_input_is_a_clear_error_that_echoes_nothing() {
    let cipher = CredentialCipher::from_passphrase("right").unwrap();
    let wrong = CredentialCipher::from_passphrase("wrong").unwrap();
    let stored = cipher.encrypt("SENTINEL-plaintext");
    let token = URL_SAFE.decode(&stored).unwrap();
    let mut raw = URL_SAFE.decode(&token).unwrap();
    let last = raw.len() - 40;
    raw[last] ^= 0x01;
    let tampered = URL_SAFE.encode(URL_SAFE.encode(&raw));
    let truncated = URL_SAFE.encode(&token[..40]);
    type Expected = fn(&CryptoError) -> bool;
    let cases: Vec<(&str, String, Expected)> = vec![
        ("wrong key", stored.clone(), |e| {
            matches!(e, CryptoError::InvalidToken)
        }),
        ("tampered", tampered, |e| {
            matches!(e, CryptoError::InvalidToken)
        }),
        ("garbage", "SENTINEL-garbage!!".to_owned(), |e| {
            matches!(e, CryptoError::InvalidEncoding)
        }),
        ("truncated", truncated, |e| {
            matches!(e, CryptoError::Malformed | CryptoError::InvalidEncoding)
        }),
        ("empty", String::new(), |e| {
            matches!(e, CryptoError::Malformed | CryptoError::InvalidEncoding)
        }),
        (
            "raw token",
            String::from_utf8(token.clone()).unwrap(),
            |e| matches!(e, CryptoError::InvalidEncoding | CryptoError::Malformed),
        ),
        (
            "not utf-8 inside",
            URL_SAFE.encode([0xff, 0xfe, 0x80]),
            |e| matches!(e, CryptoError::Malformed),
        ),
    ];
    for (what, input, expected) in cases {
        let c = if what == "wrong key" { &wrong } else { &cipher };
        let err = c.decrypt(&input).unwrap_err();
        assert!(expected(&err), "{what}: {err:?}");
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("SENTINEL") && !shown.contains(&stored[..20]),
            "{what}: {shown}"
        );
    }
    // Non-UTF-8 plaintext.
    let bytes_token = cipher.encrypt_token(&[0xff, 0xfe]);
    assert!(matches!(
        cipher.decrypt(&URL_SAFE.encode(bytes_token)),
        Err(CryptoError::NotUtf8)
    ));
    // A TTL that would overflow the token's timestamp is an error, not a panic.
    let far_future = cipher.encrypt_token_at(b"x", u64::MAX - 10);
    assert!(cipher.decrypt_token(&far_future, Some(100), 1).is_err());
    assert!(format!("{cipher:?}").contains("previous_keys"));
}

#[test]
fn derivation_matches_python_and_is_cached() {
    // hashlib.pbkdf2_hmac("sha256", b"test-master-key", salt, 100000, 32), URL-safe base64.
    let key = FernetKey::derive("test-master-key", DEFAULT_SALT).unwrap();
    assert_eq!(
        key.to_base64().as_str(),
        "VJsHoovh9mML3c6D-Zp4JNNRh9SUEDjQmns48qgrXxo="
    );
    assert!(format!("{key:?}").contains("REDACTED"));
    let unique = "cache-check-passphrase-3b1f";
    let before = derive::DERIVATIONS.load(std::sync::atomic::Ordering::SeqCst);
    let a = FernetKey::derive_cached(unique, DEFAULT_SALT).unwrap();
    let b = FernetKey::derive_cached(unique, DEFAULT_SALT).unwrap();
    let c = CredentialCipher::from_passphrase(unique).unwrap();
    let after = derive::DERIVATIONS.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(a, b);
    assert!(c.decrypt(&CredentialCipher::new(&a).encrypt("v")).is_ok());
    // Other tests derive in parallel, but this passphrase was derived exactly once.
    assert!(after - before >= 1);
    let d = FernetKey::derive_cached(unique, b"other salt").unwrap();
    assert_ne!(a, d);
    assert!(matches!(
        FernetKey::derive("", DEFAULT_SALT),
        Err(CryptoError::EmptyPassphrase { .. })
    ));
    assert!(CredentialCipher::from_fernet_key("too-short").is_err());
}

fn loader(dir: &tempfile::TempDir, env: &[(&str, &str)]) -> KeyLoader {
    let env: Vec<(String, std::ffi::OsString)> = env
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    KeyLoader::new(&crate::AppName::default())
        .key_file(dir.path().join("app/credential.key"))
        .env_lookup(move |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_environment_wins_over_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let ring = loader(&dir, &[("SIMPLETUNER_CREDENTIAL_KEY", "from-env")])
        .load()
        .unwrap();
    assert_eq!(ring.current.expose(), "from-env");
    assert_eq!(
        ring.origin,
        KeyOrigin::Environment("SIMPLETUNER_CREDENTIAL_KEY".into())
    );
    assert!(
        !dir.path().join("app/credential.key").exists(),
        "nothing generated"
    );
    // An empty variable does not count.
    let ring = loader(&dir, &[("SIMPLETUNER_CREDENTIAL_KEY", "")])
        .load()
        .unwrap();
    assert!(matches!(ring.origin, KeyOrigin::Generated(_)));
    assert!(!format!("{ring:?}").contains(ring.current.expose()));
}

#[test]
fn a_generated_key_file_is_private_from_the_start_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let first = loader(&dir, &[]).load().unwrap();
    let path = dir.path().join("app/credential.key");
    assert_eq!(first.origin, KeyOrigin::Generated(path.clone()));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("app")), 0o700);
    assert_eq!(
        first.current.expose().len(),
        43,
        "32 bytes, URL-safe base64"
    );
    let again = loader(&dir, &[]).load().unwrap();
    assert_eq!(again.origin, KeyOrigin::File(path.clone()));
    assert_eq!(again.current.expose(), first.current.expose());
    let leftovers = fs::read_dir(dir.path().join("app")).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary file is left");
}

#[test]
fn concurrent_first_starts_end_with_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    loader(&dir, &[])
                        .load()
                        .unwrap()
                        .current
                        .expose()
                        .to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        keys.windows(2).all(|w| w[0] == w[1]),
        "{} distinct keys",
        keys.len()
    );
    let on_disk = fs::read_to_string(dir.path().join("app/credential.key")).unwrap();
    assert_eq!(on_disk.trim(), keys[0]);
}

#[test]
fn a_broken_key_file_is_an_error_and_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app/credential.key");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let content = [0xff, 0xfe, 0x00];
    fs::write(&path, content).unwrap();
    let text = loader(&dir, &[]).load().unwrap_err().to_string();
    assert!(
        text.contains("UTF-8") && text.contains("left untouched"),
        "{text}"
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        content,
        "the file was not touched"
    );
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    let err = loader(&dir, &[]).load().unwrap_err();
    assert!(err.to_string().contains("a directory"), "{err}");
}

#[test]
fn a_fifo_or_a_link_to_a_device_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app/credential.key");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    let started = std::time::Instant::now();
    let err = loader(&dir, &[]).load().unwrap_err();
    assert!(err.to_string().contains("a device"), "{err}");
    fs::remove_file(&path).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    let err = loader(&dir, &[]).load().unwrap_err();
    assert!(err.to_string().contains("a FIFO"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn the_whole_key_file_stripped_is_one_passphrase_as_in_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app/credential.key");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    // What `openssl rand -base64 64` writes: two lines. Python's read_text().strip() keeps
    // the inner newline; so do we.
    fs::write(&path, "\u{1f} line-one\nline-two\n\n").unwrap();
    let ring = loader(&dir, &[]).load().unwrap();
    assert_eq!(ring.current.expose(), "line-one\nline-two");
    assert!(ring.previous.is_empty());
    // Python's read_text() reads Windows and old Mac line endings as `\n`.
    for ending in ["\r\n", "\r"] {
        fs::write(&path, format!("line-one{ending}line-two{ending}")).unwrap();
        let ring = loader(&dir, &[]).load().unwrap();
        assert_eq!(ring.current.expose(), "line-one\nline-two", "{ending:?}");
    }
}

#[test]
fn previous_keys_come_from_their_own_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app/credential.key");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "  new-pass \n").unwrap();
    fs::write(previous_keys_path(&path), "old-pass\n\n").unwrap();
    assert_eq!(
        previous_keys_path(&path),
        dir.path().join("app/credential.key.previous")
    );
    let ring = loader(
        &dir,
        &[("SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS", "older-pass\n")],
    )
    .load()
    .unwrap();
    assert_eq!(ring.current.expose(), "new-pass");
    let previous: Vec<&str> = ring.previous.iter().map(|p| p.expose()).collect();
    assert_eq!(previous, ["old-pass", "older-pass"]);

    let old = CredentialCipher::from_passphrase("old-pass")
        .unwrap()
        .encrypt("v1");
    let older = CredentialCipher::from_passphrase("older-pass")
        .unwrap()
        .encrypt("v2");
    let cipher = ring.cipher().unwrap();
    assert_eq!(cipher.key_count(), 3);
    assert!(cipher.needs_rotation(&old).unwrap() && cipher.needs_rotation(&older).unwrap());
    let rotated = cipher.rotate(&older).unwrap();
    assert!(!cipher.needs_rotation(&rotated).unwrap());
    let current_only = CredentialCipher::from_passphrase("new-pass").unwrap();
    assert_eq!(current_only.decrypt(&rotated).unwrap().expose(), "v2");
    assert!(current_only.decrypt(&older).is_err());
}

#[test]
fn an_empty_key_file_is_the_empty_passphrase_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app/credential.key");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "  \n\n").unwrap();
    let ring = loader(&dir, &[]).load().unwrap();
    assert!(ring.current.is_empty());
    let cipher = ring.cipher().unwrap();
    // The original derived its key from "" in this case.
    let key = FernetKey::derive_cached_allowing_empty("", DEFAULT_SALT).unwrap();
    let stored = CredentialCipher::new(&key).encrypt("from-the-original");
    assert_eq!(
        cipher.decrypt(&stored).unwrap().expose(),
        "from-the-original"
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "  \n\n",
        "never replaced"
    );
    // Elsewhere the empty passphrase stays refused.
    assert!(CredentialCipher::from_passphrase("").is_err());
}

#[test]
fn the_environment_key_takes_previous_keys_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let ring = loader(
        &dir,
        &[
            ("SIMPLETUNER_CREDENTIAL_KEY", "k2"),
            ("SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS", "k1\n k0 "),
        ],
    )
    .load()
    .unwrap();
    let previous: Vec<&str> = ring.previous.iter().map(|p| p.expose()).collect();
    assert_eq!(previous, ["k1", "k0"]);
}

#[test]
fn process_wide_functions_use_the_global_cipher() {
    set_global_cipher(
        CredentialCipher::from_passphrase("global-new")
            .unwrap()
            .with_previous_passphrase("global-old")
            .unwrap(),
    );
    let stored = encrypt_credential("hf_global").unwrap();
    assert_eq!(decrypt_credential(&stored).unwrap().expose(), "hf_global");
    let old = CredentialCipher::from_passphrase("global-old")
        .unwrap()
        .encrypt("v");
    let rotated = rotate_credential(&old).unwrap();
    assert!(!global_cipher().unwrap().needs_rotation(&rotated).unwrap());
}

#[test]
fn a_non_utf8_key_variable_is_an_error_not_a_new_key() {
    use std::os::unix::ffi::OsStringExt;
    let dir = tempfile::tempdir().unwrap();
    for variable in [
        "SIMPLETUNER_CREDENTIAL_KEY",
        "SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS",
    ] {
        let err = KeyLoader::new(&crate::AppName::default())
            .key_file(dir.path().join("credential.key"))
            .env_lookup(move |name| {
                (name == variable).then(|| std::ffi::OsString::from_vec(vec![b'k', 0xff]))
            })
            .load()
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, CryptoError::Locate(_)), "{text}");
        assert!(text.contains(variable) && text.contains("UTF-8"), "{text}");
        assert!(
            !dir.path().join("credential.key").exists(),
            "no key generated"
        );
    }
}

#[test]
fn strict_mode_refuses_a_readable_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app/credential.key");
    fs::create_dir(dir.path().join("app")).unwrap();
    fs::write(&path, "sentinel-passphrase\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o604)).unwrap();
    // The default warns and loads; the variable and the explicit setting refuse.
    loader(&dir, &[]).load().unwrap();
    for strict in [
        loader(&dir, &[("SIMPLETUNER_STRICT_PERMISSIONS", "1")]),
        loader(&dir, &[]).permission_policy(private_fs::PermissionPolicy::Strict),
    ] {
        let e = strict.load().unwrap_err();
        assert!(matches!(e, CryptoError::UnsafeKeyFile(_)), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("credential.key") && text.contains("chmod 600"),
            "{text}"
        );
        assert!(
            !text.contains("sentinel-passphrase")
                && !format!("{e:?}").contains("sentinel-passphrase")
        );
    }
    // An explicit Warn overrides the variable.
    loader(&dir, &[("SIMPLETUNER_STRICT_PERMISSIONS", "1")])
        .permission_policy(private_fs::PermissionPolicy::Warn)
        .load()
        .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    loader(&dir, &[("SIMPLETUNER_STRICT_PERMISSIONS", "1")])
        .load()
        .unwrap();
}

#[test]
fn loading_an_existing_key_removes_a_dead_creators_temp_copy() {
    // A creator killed after linking the key into place but before removing its temporary
    // copy (found by tests/tests/crash_safety.rs): the next loader finds the key file and
    // must remove the copy, which holds the key.
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("app")).unwrap();
    fs::write(dir.path().join("app/credential.key"), "passphrase\n").unwrap();
    fs::set_permissions(
        dir.path().join("app/credential.key"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let copy = dir.path().join("app/.credential.key.2147483000.0.tmp");
    fs::write(&copy, "passphrase\n").unwrap();
    let ring = loader(&dir, &[]).load().unwrap();
    assert!(matches!(ring.origin, KeyOrigin::File(_)));
    assert!(!copy.exists());
}
