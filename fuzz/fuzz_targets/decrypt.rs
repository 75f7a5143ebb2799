//! Arbitrary input to credential decryption must give a value or a `CryptoError`, never a
//! panic; and the error text is one of the fixed messages, so it cannot echo the input.
#![no_main]

use credential_crypto::{CredentialCipher, CryptoError};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static CIPHER: LazyLock<CredentialCipher> = LazyLock::new(|| {
    CredentialCipher::from_fernet_key("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=").unwrap()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = CIPHER.decrypt(text) {
        let fixed = [
            CryptoError::InvalidEncoding,
            CryptoError::Malformed,
            CryptoError::InvalidToken,
            CryptoError::NotUtf8,
        ]
        .map(|e| e.to_string());
        assert!(fixed.contains(&e.to_string()), "unexpected error: {e:?}");
    }
    let _ = CIPHER.rotate(text);
    let _ = CIPHER.needs_rotation(text);
    let _ = CIPHER.decrypt_token(
        text,
        Some(u64::from(data.first().copied().unwrap_or(0))),
        499_162_800,
    );
    let _ = CIPHER.decrypt_token(text, None, u64::MAX);
});
