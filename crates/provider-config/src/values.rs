//! [`CloudProviderConfig`] and the typed views of its well-known keys, with the original's
//! defaults and checks.

use std::fmt;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;

use credential_crypto::Secret;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::StoreError;
use crate::hardware::{self, HARDWARE_INFO_KEY};

/// Keys whose values are credentials: stored encrypted, never shown by `Debug`.
pub const CREDENTIAL_KEYS: &[&str] = &[WEBHOOK_SECRET];

/// The webhook URL.
pub const WEBHOOK_URL: &str = "webhook_url";
/// The webhook signing secret (a credential).
pub const WEBHOOK_SECRET: &str = "webhook_secret";
/// Whether webhooks must be signed (default `true`).
pub const WEBHOOK_REQUIRE_SIGNATURE: &str = "webhook_require_signature";
/// Addresses or networks allowed to call the webhook (default `[]`).
pub const WEBHOOK_ALLOWED_IPS: &str = "webhook_allowed_ips";
/// Whether the cost limit is on (default `false`).
pub const COST_LIMIT_ENABLED: &str = "cost_limit_enabled";
/// The cost limit (default `0.0`, never negative).
pub const COST_LIMIT_AMOUNT: &str = "cost_limit_amount";
/// The cost limit's period: `daily` (default), `weekly` or `monthly`.
pub const COST_LIMIT_PERIOD: &str = "cost_limit_period";
/// What happens at the limit: `warn` (default) or `block`.
pub const COST_LIMIT_ACTION: &str = "cost_limit_action";

/// Longest accepted cloud provider name.
const MAX_PROVIDER_NAME_LEN: usize = 128;

/// Checks a cloud provider name before it is stored: 1 to 128 characters, none of them a
/// control character or an invisible or bidirectional formatting character. (Reads accept any name, so rows the original wrote stay readable.)
pub fn validate_provider_name(name: &str) -> Result<(), StoreError> {
    let invalid = |reason| StoreError::InvalidProviderName {
        name: name.chars().take(MAX_PROVIDER_NAME_LEN).collect(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > MAX_PROVIDER_NAME_LEN {
        return Err(invalid("it is longer than 128 bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("it contains a control character"));
    }
    // Shown as another name on a terminal: bidirectional overrides, zero-width characters.
    if name.chars().any(|c| {
        matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    }) {
        return Err(invalid("it contains an invisible or bidirectional formatting character"));
    }
    if name.trim() != name {
        return Err(invalid("it starts or ends with whitespace"));
    }
    Ok(())
}

/// A cloud training provider's configuration: a JSON object, shared (cloning is cheap) and
/// immutable; [`into_map`](Self::into_map) gives an owned, editable copy.
///
/// `Debug` hides credential values ([`CREDENTIAL_KEYS`]); serialising writes the object as
/// stored, where credentials are ciphertext.
#[derive(Clone, Default, PartialEq)]
pub struct CloudProviderConfig(Arc<Map<String, Value>>);

impl CloudProviderConfig {
    /// The configuration as an owned map.
    pub fn into_map(self) -> Map<String, Value> {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone())
    }

    /// Parses a stored row; anything but a JSON object is an error naming the provider.
    pub(crate) fn from_stored(provider: &str, text: &str) -> Result<Self, StoreError> {
        // What Python's json.dumps writes beyond JSON (NaN, lone surrogates) reads too.
        let parsed = serde_json::from_str::<Value>(text).or_else(|e| {
            serde_json::from_str::<Value>(&crate::raw_json::lenient(text)).map_err(|_| e)
        });
        match parsed {
            Ok(Value::Object(map)) => Ok(Self(Arc::new(map))),
            Ok(other) => Err(StoreError::InvalidStoredConfig {
                provider: provider.to_owned(),
                problem: format!("it is a JSON {}, not an object", json_type(&other)),
            }),
            // serde_json's message gives the position, never the text.
            Err(e) => Err(StoreError::InvalidStoredConfig {
                provider: provider.to_owned(),
                problem: e.to_string(),
            }),
        }
    }
}

impl From<Map<String, Value>> for CloudProviderConfig {
    fn from(map: Map<String, Value>) -> Self {
        Self(Arc::new(map))
    }
}

impl Deref for CloudProviderConfig {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Map<String, Value> {
        &self.0
    }
}

impl fmt::Debug for CloudProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in self.0.iter() {
            if CREDENTIAL_KEYS.contains(&key.as_str()) && !value.is_null() {
                map.entry(key, &format_args!("[REDACTED]"));
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

impl Serialize for CloudProviderConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks the well-known keys of a configuration about to be stored (the original's API
/// checks, applied to every write). `null` means "unset" for every key.
pub(crate) fn validate(provider: &str, config: &Map<String, Value>) -> Result<(), StoreError> {
    let bad = |key: &str, problem: String| Err(StoreError::invalid_value(provider, key, problem));
    for (key, value) in config {
        if value.is_null() {
            continue;
        }
        let key = key.as_str();
        match key {
            WEBHOOK_URL | WEBHOOK_SECRET if !value.is_string() => {
                return bad(key, format!("must be a string, not a {}", json_type(value)));
            }
            WEBHOOK_REQUIRE_SIGNATURE | COST_LIMIT_ENABLED if !value.is_boolean() => {
                return bad(
                    key,
                    format!("must be true or false, not a {}", json_type(value)),
                );
            }
            WEBHOOK_ALLOWED_IPS => {
                parse_allowed_ips(provider, value)?;
            }
            COST_LIMIT_AMOUNT => {
                parse_amount(provider, value)?;
            }
            COST_LIMIT_PERIOD => {
                CostPeriod::parse(provider, value)?;
            }
            COST_LIMIT_ACTION => {
                CostAction::parse(provider, value)?;
            }
            HARDWARE_INFO_KEY => {
                hardware::parse(provider, value)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_allowed_ips(provider: &str, value: &Value) -> Result<Vec<String>, StoreError> {
    let invalid =
        |problem: String| StoreError::invalid_value(provider, WEBHOOK_ALLOWED_IPS, problem);
    let Value::Array(items) = value else {
        return Err(invalid(format!(
            "must be a list of addresses, not a {}",
            json_type(value)
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Some(text) = item.as_str() else {
                return Err(invalid(format!("entry {i} is not a string")));
            };
            if is_ip_or_network(text) {
                Ok(text.to_owned())
            } else {
                Err(invalid(format!(
                    "entry {i} is not an IP address or network (such as 10.0.0.0/8)"
                )))
            }
        })
        .collect()
}

fn is_ip_or_network(text: &str) -> bool {
    match text.split_once('/') {
        None => text.parse::<IpAddr>().is_ok(),
        Some((address, prefix)) => match (address.parse::<IpAddr>(), prefix.parse::<u8>()) {
            (Ok(IpAddr::V4(_)), Ok(bits)) => bits <= 32,
            (Ok(IpAddr::V6(_)), Ok(bits)) => bits <= 128,
            _ => false,
        },
    }
}

fn parse_amount(provider: &str, value: &Value) -> Result<f64, StoreError> {
    match value.as_f64() {
        Some(amount) if amount.is_finite() && amount >= 0.0 => Ok(amount),
        Some(_) => Err(StoreError::invalid_value(
            provider,
            COST_LIMIT_AMOUNT,
            "must be a non-negative number",
        )),
        None => Err(StoreError::invalid_value(
            provider,
            COST_LIMIT_AMOUNT,
            format!("must be a number, not a {}", json_type(value)),
        )),
    }
}

/// The webhook settings of a provider, with the original's defaults.
#[derive(Clone, PartialEq)]
pub struct WebhookConfig {
    /// `webhook_url` (default none).
    pub url: Option<String>,
    /// `webhook_secret`, decrypted (default none).
    pub secret: Option<Secret>,
    /// `webhook_require_signature` (default `true`).
    pub require_signature: bool,
    /// `webhook_allowed_ips` (default empty).
    pub allowed_ips: Vec<String>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &self.secret)
            .field("require_signature", &self.require_signature)
            .field("allowed_ips", &self.allowed_ips)
            .finish()
    }
}

impl WebhookConfig {
    /// The settings in `config`; `secret` is filled in by the store (it needs the key).
    pub(crate) fn from_config(
        provider: &str,
        config: &Map<String, Value>,
    ) -> Result<Self, StoreError> {
        let url = match config.get(WEBHOOK_URL) {
            None | Some(Value::Null) => None,
            Some(Value::String(url)) => Some(url.clone()),
            Some(other) => {
                return Err(StoreError::invalid_value(
                    provider,
                    WEBHOOK_URL,
                    format!("must be a string, not a {}", json_type(other)),
                ));
            }
        };
        Ok(Self {
            url,
            secret: None,
            require_signature: get_bool(provider, config, WEBHOOK_REQUIRE_SIGNATURE, true)?,
            allowed_ips: match config.get(WEBHOOK_ALLOWED_IPS) {
                None | Some(Value::Null) => Vec::new(),
                Some(value) => parse_allowed_ips(provider, value)?,
            },
        })
    }
}

fn get_bool(
    provider: &str,
    config: &Map<String, Value>,
    key: &str,
    default: bool,
) -> Result<bool, StoreError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(StoreError::invalid_value(
            provider,
            key,
            format!("must be true or false, not a {}", json_type(other)),
        )),
    }
}

/// The period a cost limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CostPeriod {
    /// Per day (the default).
    #[default]
    Daily,
    /// Per week.
    Weekly,
    /// Per month.
    Monthly,
}

impl CostPeriod {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
        }
    }

    fn parse(provider: &str, value: &Value) -> Result<Self, StoreError> {
        match value.as_str() {
            Some("daily") => Ok(Self::Daily),
            Some("weekly") => Ok(Self::Weekly),
            Some("monthly") => Ok(Self::Monthly),
            _ => Err(StoreError::invalid_value(
                provider,
                COST_LIMIT_PERIOD,
                "must be 'daily', 'weekly' or 'monthly'",
            )),
        }
    }
}

/// What happens when the cost limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CostAction {
    /// Warn (the default).
    #[default]
    Warn,
    /// Refuse new jobs.
    Block,
}

impl CostAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warn => "warn",
            Self::Block => "block",
        }
    }

    fn parse(provider: &str, value: &Value) -> Result<Self, StoreError> {
        match value.as_str() {
            Some("warn") => Ok(Self::Warn),
            Some("block") => Ok(Self::Block),
            _ => Err(StoreError::invalid_value(
                provider,
                COST_LIMIT_ACTION,
                "must be 'warn' or 'block'",
            )),
        }
    }
}

/// A provider's cost limit, with the original's defaults (off, 0.0, daily, warn).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct CostLimit {
    /// `cost_limit_enabled`.
    pub enabled: bool,
    /// `cost_limit_amount`, never negative.
    pub amount: f64,
    /// `cost_limit_period`.
    pub period: CostPeriod,
    /// `cost_limit_action`.
    pub action: CostAction,
}

impl CostLimit {
    pub(crate) fn from_config(
        provider: &str,
        config: &Map<String, Value>,
    ) -> Result<Self, StoreError> {
        let present = |key| config.get(key).filter(|v| !v.is_null());
        Ok(Self {
            enabled: get_bool(provider, config, COST_LIMIT_ENABLED, false)?,
            amount: present(COST_LIMIT_AMOUNT)
                .map(|v| parse_amount(provider, v))
                .transpose()?
                .unwrap_or(0.0),
            period: present(COST_LIMIT_PERIOD)
                .map(|v| CostPeriod::parse(provider, v))
                .transpose()?
                .unwrap_or_default(),
            action: present(COST_LIMIT_ACTION)
                .map(|v| CostAction::parse(provider, v))
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// The configuration keys that store this limit.
    pub(crate) fn to_updates(self) -> Map<String, Value> {
        let mut updates = Map::new();
        updates.insert(COST_LIMIT_ENABLED.to_owned(), Value::Bool(self.enabled));
        updates.insert(COST_LIMIT_AMOUNT.to_owned(), Value::from(self.amount));
        updates.insert(
            COST_LIMIT_PERIOD.to_owned(),
            Value::from(self.period.as_str()),
        );
        updates.insert(
            COST_LIMIT_ACTION.to_owned(),
            Value::from(self.action.as_str()),
        );
        updates
    }
}

/// The keys whose values differ between two configurations (added, removed or changed),
/// sorted: what an audit row names, without the values.
pub(crate) fn changed_keys(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn well_known_keys_are_checked_and_unknown_ones_pass() {
        let ok = map(json!({
            "webhook_url": "https://example.invalid/hook",
            "webhook_allowed_ips": ["10.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"],
            "cost_limit_amount": 0,
            "cost_limit_period": "monthly",
            "cost_limit_action": "block",
            "hardware_info": {"gpu-x": {"name": "X", "cost_per_second": 0.5}},
            "anything": {"nested": [1, 2]},
            "webhook_secret": null,
        }));
        validate("replicate", &ok).unwrap();
        for (key, value, needle) in [
            ("cost_limit_amount", json!(-1), "non-negative"),
            ("cost_limit_amount", json!("5"), "not a string"),
            ("cost_limit_period", json!("yearly"), "'daily'"),
            ("cost_limit_action", json!("explode"), "'warn'"),
            ("cost_limit_enabled", json!("yes"), "true or false"),
            ("webhook_require_signature", json!(1), "true or false"),
            ("webhook_allowed_ips", json!(["10.0.0.0/33"]), "entry 0"),
            ("webhook_allowed_ips", json!(["nonsense"]), "entry 0"),
            ("webhook_allowed_ips", json!("10.0.0.1"), "list"),
            ("webhook_url", json!(5), "string"),
            (
                "hardware_info",
                json!({"g": {"cost_per_second": -0.1}}),
                "non-negative",
            ),
            (
                "hardware_info",
                json!({"g": {"name": "no cost"}}),
                "cost_per_second",
            ),
            ("hardware_info", json!({"g": 3}), "object"),
        ] {
            let mut config = Map::new();
            config.insert(key.to_owned(), value);
            let e = validate("modal", &config).unwrap_err().to_string();
            assert!(
                e.contains("modal") && e.contains(key) && e.contains(needle),
                "{e}"
            );
        }
    }

    #[test]
    fn defaults_are_the_originals() {
        let empty = Map::new();
        let webhook = WebhookConfig::from_config("p", &empty).unwrap();
        assert_eq!(webhook.url, None);
        assert!(webhook.require_signature);
        assert!(webhook.allowed_ips.is_empty());
        let limit = CostLimit::from_config("p", &empty).unwrap();
        assert_eq!(limit, CostLimit::default());
        assert!(!limit.enabled);
        assert_eq!(limit.amount, 0.0);
        assert_eq!(
            (limit.period, limit.action),
            (CostPeriod::Daily, CostAction::Warn)
        );
        let stored = map(
            json!({"cost_limit_enabled": true, "cost_limit_amount": 12.5,
            "cost_limit_period": "weekly", "cost_limit_action": "block"}),
        );
        let limit = CostLimit::from_config("p", &stored).unwrap();
        assert_eq!(limit.to_updates(), stored);
    }

    #[test]
    fn debug_hides_credentials_and_changed_keys_name_no_values() {
        let config = CloudProviderConfig::from(map(json!({
            "webhook_secret": "SENTINEL-debug", "webhook_url": "https://h.invalid"
        })));
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("SENTINEL") && shown.contains("[REDACTED]"),
            "{shown}"
        );
        let before = map(json!({"a": 1, "b": 2, "c": 3}));
        let after = map(json!({"a": 1, "b": 5, "d": 4}));
        assert_eq!(changed_keys(&before, &after), ["b", "c", "d"]);
    }

    #[test]
    fn stored_rows_that_are_not_objects_name_the_provider() {
        let e = CloudProviderConfig::from_stored("modal", "{not json").unwrap_err();
        assert!(e.to_string().contains("`modal`"), "{e}");
        let e = CloudProviderConfig::from_stored("modal", "[1]").unwrap_err();
        assert!(e.to_string().contains("array"), "{e}");
        assert!(validate_provider_name("").is_err());
        assert!(validate_provider_name("a\nb").is_err());
        assert!(validate_provider_name(" a").is_err());
        assert!(validate_provider_name(&"x".repeat(129)).is_err());
        validate_provider_name("replicate").unwrap();
    }
}
