//! Names in messages: a key can hold any character, and a control character must not forge
//! or corrupt a line of the terminal or of a log.

/// `key` with control characters escaped (`\n`, `\u{1b}`).
pub(crate) fn key(key: &str) -> String {
    key.chars()
        .flat_map(|c| {
            let shown: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            shown
        })
        .collect()
}
