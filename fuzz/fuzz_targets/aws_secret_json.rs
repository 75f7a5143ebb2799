//! The value of an AWS Secrets Manager secret (`SecretString`, or `SecretBinary` holding the
//! same JSON) read for lookups and for edits, with the leak oracle: every `@@` becomes a
//! sentinel, and no message or `Debug` output may show it (keys are names and may be shown).
//! The two parsers must agree and an edit must read back (asserted in
//! `secrets_aws::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

const SENTINEL: &str = "qZ7SENTINELxK";

fuzz_target!(|data: &[u8]| {
    let mut bytes = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some((&first, tail)) = rest.split_first() {
        if rest.starts_with(b"@@") {
            bytes.extend_from_slice(SENTINEL.as_bytes());
            rest = &rest[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    let (shown, keys) = secrets_aws::fuzzing::outputs(&bytes);
    for message in shown {
        assert!(
            !secrets_file::fuzzing::leaks(&message, &keys, "SENTINEL"),
            "leaked: {message}"
        );
    }
});
