//! `secrets get KEY [--default V] [--json]`.

use secrets::{Secret, SecretsManager};
use zeroize::Zeroizing;

use crate::failure::{Failure, exit};
use crate::output::write_stdout;

pub(crate) async fn run(
    manager: &SecretsManager,
    key: &str,
    default: Option<String>,
    json: bool,
) -> Result<u8, Failure> {
    let resolved = manager.get_with_source(key).await?;
    let found = resolved.is_some();
    let (value, provider) = match resolved {
        Some(r) => (Some(r.value), Some(r.provider)),
        None => (default.map(Secret::new), None),
    };
    let text = if json {
        let mut document = serde_json::json!({
            "key": key,
            "found": found,
            "value": value.as_ref().map(Secret::expose),
            "provider": provider,
        })
        .to_string();
        document.push('\n');
        Zeroizing::new(document)
    } else {
        Zeroizing::new(
            value
                .as_ref()
                .map(|v| format!("{}\n", v.expose()))
                .unwrap_or_default(),
        )
    };
    write_stdout(&text)?;
    if value.is_some() {
        Ok(0)
    } else {
        if !json {
            let names = manager.provider_names().join(", ");
            eprintln!("secrets: key `{key}` not found (providers: {names})");
        }
        Ok(exit::NOT_FOUND)
    }
}
