//! Names in messages: a key can hold any character, and a control character must not forge
//! or corrupt a line of the terminal or of a log.

/// `key` with control characters escaped (`\n`, `\u{1b}`).
pub(crate) fn key(key: &str) -> String {
    key.chars()
        .flat_map(|c| {
            let shown: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else if is_bidi_or_invisible(c) {
                // Reorders or hides text on a terminal (a name shown as another).
                c.escape_unicode().collect()
            } else {
                vec![c]
            };
            shown
        })
        .collect()
}

/// Unicode formatting characters that reorder or hide text: bidirectional overrides and
/// isolates, zero-width characters, the byte-order mark.
pub(crate) fn is_bidi_or_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
    )
}
