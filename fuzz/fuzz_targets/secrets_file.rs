//! The secrets-file parser and editor on arbitrary input, with the leak oracle of the
//! property test: every `@@` in the input becomes a sentinel value, and no message the
//! parser or the editor produces may contain it (a top-level key is a name and may be
//! shown). The first byte picks the format (odd: YAML).
#![no_main]

use libfuzzer_sys::fuzz_target;

const SENTINEL: &str = "qZ7SENTINELxK";

fuzz_target!(|data: &[u8]| {
    let Some((&format, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let text = text.replace("@@", SENTINEL);
    let (shown, keys) = secrets_file::fuzzing::outputs(format & 1 == 1, &text);
    for message in shown {
        assert!(
            !secrets_file::fuzzing::leaks(&message, &keys, "SENTINEL"),
            "leaked: {message}"
        );
    }
});
