//! Fernet token generation with the key material prepared once per key.
//!
//! The `fernet` crate re-derives the AES key schedule and the HMAC key pads on every token
//! and allocates several intermediate buffers; together that is about a quarter of an
//! encryption. [`Sealer`] keeps the keyed AES and HMAC states and writes the token into one
//! buffer. It uses the same RustCrypto primitives as the crate, still takes a fresh IV from
//! the operating system for every token (as the crate and Python's `cryptography` do), and
//! its output is checked against the specification's vectors and against the `fernet` crate,
//! which remains the only code that verifies and decrypts tokens.

use aes::Aes128Enc as Aes128;
use aes::cipher::{BlockEncryptMut, InnerIvInit, KeyInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::FernetKey;

/// The first byte of every Fernet token.
pub(crate) const VERSION: u8 = 0x80;
/// Version byte, timestamp and IV.
pub(crate) const HEADER_LEN: usize = 1 + 8 + 16;
/// HMAC-SHA256 tag at the end.
pub(crate) const MAC_LEN: usize = 32;

/// Makes Fernet tokens for one key.
#[derive(Clone)]
pub(crate) struct Sealer {
    /// HMAC-SHA256 already keyed with the signing half, cloned for every token.
    signer: Hmac<Sha256>,
    /// AES-128 with the encryption half's key schedule expanded (zeroized on drop); encryption
    /// only, which halves what each token copies.
    encryptor: Aes128,
}

impl Sealer {
    pub(crate) fn new(key: &FernetKey) -> Self {
        let (signing, encryption) = key.bytes().split_at(16);
        Self {
            signer: <Hmac<Sha256> as KeyInit>::new_from_slice(signing)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
            encryptor: Aes128::new_from_slice(encryption)
                .unwrap_or_else(|_| unreachable!("a Fernet key has a 16-byte encryption half")),
        }
    }

    /// The raw token bytes for `data` stamped with `unix_time`, with a fresh OS-random IV.
    ///
    /// # Panics
    /// If the operating system's random source fails, as the `fernet` crate does: there is
    /// no safe IV to fall back on.
    pub(crate) fn seal(&self, data: &[u8], unix_time: u64) -> Vec<u8> {
        let mut iv = [0u8; 16];
        getrandom::getrandom(&mut iv).expect("the OS random source failed");
        self.seal_with_iv(data, unix_time, &iv)
    }

    /// The raw token bytes with a caller-chosen IV: the specification's "generate" operation.
    pub(crate) fn seal_with_iv(&self, data: &[u8], unix_time: u64, iv: &[u8; 16]) -> Vec<u8> {
        let padded_len = (data.len() / 16 + 1) * 16;
        let body_end = HEADER_LEN + padded_len;
        let mut token = Vec::with_capacity(body_end + MAC_LEN);
        token.push(VERSION);
        token.extend_from_slice(&unix_time.to_be_bytes());
        token.extend_from_slice(iv);
        // The plaintext is encrypted in place, so no copy of it outlives this call.
        token.extend_from_slice(data);
        token.resize(body_end, 0);
        cbc::Encryptor::<&Aes128>::inner_iv_init(&self.encryptor, iv.into())
            .encrypt_padded_mut::<Pkcs7>(&mut token[HEADER_LEN..], data.len())
            .unwrap_or_else(|_| unreachable!("the buffer has room for the padding"));
        let mut mac = self.signer.clone();
        mac.update(&token);
        token.extend_from_slice(&mac.finalize().into_bytes());
        token
    }

    /// A token in the specification's text form (URL-safe base64).
    pub(crate) fn seal_text(&self, data: &[u8], unix_time: u64) -> String {
        URL_SAFE.encode(self.seal(data, unix_time))
    }

    /// A token in the original's stored form: URL-safe base64 of the token's text form.
    pub(crate) fn seal_stored(&self, data: &[u8], unix_time: u64) -> String {
        let text = self.seal_text(data, unix_time);
        let mut stored = String::with_capacity(text.len().div_ceil(3) * 4);
        URL_SAFE.encode_string(text.as_bytes(), &mut stored);
        stored
    }
}
