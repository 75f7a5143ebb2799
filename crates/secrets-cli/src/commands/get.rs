//! `secrets get KEY [--default V] [--json]`.

use secrets::{Location, Secret, SecretsManager};
use zeroize::Zeroizing;

use crate::escape;
use crate::failure::{Failure, exit};
use crate::output::write_stdout;

pub(crate) async fn run(
    manager: &SecretsManager,
    key: &str,
    default: Option<String>,
    json: bool,
) -> Result<u8, Failure> {
    let resolved = match manager.get_with_source(key).await {
        Ok(resolved) => resolved,
        Err(error) if json => {
            // Scripts get a document on stdout whatever happens; the exit code says it failed.
            let document = serde_json::json!({
                "key": key,
                "found": false,
                "value": null,
                "provider": null,
                "error": error.to_string(),
            });
            write_stdout(&format!("{document}\n"))?;
            return Err(Failure::new(exit::PROVIDER, error.to_string()));
        }
        Err(error) => return Err(error.into()),
    };
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
            eprintln!("{}", not_found(manager, key));
        }
        Ok(exit::NOT_FOUND)
    }
}

/// "not found", with where each provider looked and how to set the key.
fn not_found(manager: &SecretsManager, key: &str) -> String {
    let looked: Vec<String> = manager
        .lookup_locations(key)
        .into_iter()
        .map(|(provider, location)| match location {
            Some(Location::Variable(name)) => format!("{provider} (variable ${name})"),
            Some(Location::File { path, .. }) => {
                let state = if path.exists() {
                    ""
                } else {
                    ", does not exist"
                };
                format!("{provider} ({}{state})", path.display())
            }
            Some(other) => format!("{provider} ({other})"),
            None => provider.to_owned(),
        })
        .collect();
    let shown = escape::key(key);
    let looked = if looked.is_empty() {
        "no provider is configured".to_owned()
    } else {
        format!("looked in {}", looked.join(", "))
    };
    format!(
        "secrets: key `{shown}` not found; {looked}.\n\
         Set it with `secrets set {shown}` (the value is read from stdin or typed hidden)."
    )
}
