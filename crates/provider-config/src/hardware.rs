//! Hardware pricing: the `hardware_info` of the `replicate` configuration, else the
//! documented defaults, cached 300 s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::caches::ConfigCaches;
use crate::values::json_type;
use crate::{ConfigStore, StoreError};

/// The provider whose configuration holds the hardware pricing.
pub const HARDWARE_PROVIDER: &str = "replicate";
/// The configuration key of the hardware pricing.
pub const HARDWARE_INFO_KEY: &str = "hardware_info";
/// The GPU used when a job names none.
pub const DEFAULT_GPU: &str = "gpu-l40s";

/// One hardware option: a display name, the price per second, and any other fields as
/// stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HardwareOption {
    /// Display name, such as `L40S (48GB)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Price in USD per second; never negative.
    pub cost_per_second: f64,
    /// Other fields, kept as stored.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl HardwareOption {
    /// An option with a name and a price.
    pub fn new(name: impl Into<String>, cost_per_second: f64) -> Self {
        Self {
            name: Some(name.into()),
            cost_per_second,
            extra: Map::new(),
        }
    }

    /// Price per hour.
    pub fn cost_per_hour(&self) -> f64 {
        self.cost_per_second * 3600.0
    }
}

/// Hardware id -> option.
pub type HardwareInfo = BTreeMap<String, HardwareOption>;

/// The defaults of the product documentation: `gpu-l40s` "L40S (48GB)" at 0.000975 per
/// second and `gpu-a100-large` "A100 (80GB)" at 0.001400 per second.
pub fn default_hardware_info() -> HardwareInfo {
    BTreeMap::from([
        (
            "gpu-l40s".to_owned(),
            HardwareOption::new("L40S (48GB)", 0.000_975),
        ),
        (
            "gpu-a100-large".to_owned(),
            HardwareOption::new("A100 (80GB)", 0.001_400),
        ),
    ])
}

/// The price per hour of [`DEFAULT_GPU`] in `info`, or of the default option when `info`
/// has none.
pub fn default_gpu_cost_per_hour(info: &HardwareInfo) -> f64 {
    info.get(DEFAULT_GPU)
        .cloned()
        .or_else(|| default_hardware_info().remove(DEFAULT_GPU))
        .map_or(0.0, |option| option.cost_per_hour())
}

/// Checks hardware pricing: every price finite and non-negative.
pub fn validate_hardware_info(info: &HardwareInfo) -> Result<(), StoreError> {
    for (id, option) in info {
        if !option.cost_per_second.is_finite() || option.cost_per_second < 0.0 {
            return Err(StoreError::invalid_value(
                HARDWARE_PROVIDER,
                HARDWARE_INFO_KEY,
                format!("entry `{id}`: cost_per_second must be a non-negative number"),
            ));
        }
    }
    Ok(())
}

/// Parses and checks a stored `hardware_info` value (an object of objects, each with a
/// non-negative `cost_per_second`).
pub(crate) fn parse(provider: &str, value: &Value) -> Result<HardwareInfo, StoreError> {
    let invalid = |problem: String| StoreError::invalid_value(provider, HARDWARE_INFO_KEY, problem);
    let Value::Object(entries) = value else {
        return Err(invalid(format!(
            "must be an object of hardware options, not a {}",
            json_type(value)
        )));
    };
    let mut info = HardwareInfo::new();
    for (id, entry) in entries {
        let Value::Object(fields) = entry else {
            return Err(invalid(format!("entry `{id}` must be an object")));
        };
        match fields.get("cost_per_second") {
            Some(cost) if cost.as_f64().is_some_and(|c| c.is_finite() && c >= 0.0) => {}
            Some(_) => {
                return Err(invalid(format!(
                    "entry `{id}`: cost_per_second must be a non-negative number"
                )));
            }
            None => {
                return Err(invalid(format!(
                    "entry `{id}` must include cost_per_second"
                )));
            }
        }
        let option: HardwareOption = serde_json::from_value(entry.clone())
            .map_err(|e| invalid(format!("entry `{id}`: {e}")))?;
        info.insert(id.clone(), option);
    }
    Ok(info)
}

/// The stored form of hardware pricing.
pub(crate) fn to_value(info: &HardwareInfo) -> Value {
    serde_json::to_value(info).unwrap_or_else(|_| Value::Object(Map::new()))
}

impl ConfigCaches {
    /// The cached hardware pricing, else the defaults (nothing is loaded).
    pub fn hardware_info_or_defaults(&self) -> HardwareInfo {
        self.hardware_info()
            .get(&())
            .unwrap_or_else(default_hardware_info)
    }

    /// Replaces the cached hardware pricing (for 300 s; the database is not written).
    pub fn set_hardware_info(&self, info: HardwareInfo) -> Result<(), StoreError> {
        validate_hardware_info(&info)?;
        self.hardware_info().insert((), info);
        Ok(())
    }

    /// Forgets the cached hardware pricing; the next load reads the configuration again.
    pub fn clear_hardware_info(&self) {
        self.hardware_info().remove(&());
    }
}

/// The hardware pricing cached in this process, else the defaults. Never reads the
/// database; see [`get_hardware_info_async`].
pub fn get_hardware_info() -> HardwareInfo {
    ConfigCaches::global().hardware_info_or_defaults()
}

/// The hardware pricing: the `hardware_info` of the `replicate` configuration in `store`
/// when it is a non-empty object, else the defaults. Cached 300 s in the store's caches;
/// concurrent callers load once. A broken stored value is an error naming the provider and
/// key, never silently replaced by the defaults.
pub async fn get_hardware_info_async(store: &ConfigStore) -> Result<HardwareInfo, StoreError> {
    store.hardware_pricing_async().await
}

/// Forgets the global hardware pricing cache.
pub fn clear_hardware_info_cache() {
    ConfigCaches::global().clear_hardware_info();
}

/// Replaces the global hardware pricing cache (the database is not written; use
/// [`ConfigStore::set_hardware_info`] for that).
pub fn set_hardware_info(info: HardwareInfo) -> Result<(), StoreError> {
    ConfigCaches::global().set_hardware_info(info)
}

/// The price per hour of the default GPU, from [`get_hardware_info_async`].
pub async fn default_hardware_cost_per_hour(store: &ConfigStore) -> Result<f64, StoreError> {
    Ok(default_gpu_cost_per_hour(
        &get_hardware_info_async(store).await?,
    ))
}

/// The pricing a configuration implies (shared by the sync and async loaders).
pub(crate) fn pricing_of(config: &Map<String, Value>) -> Result<HardwareInfo, StoreError> {
    match config.get(HARDWARE_INFO_KEY) {
        Some(Value::Object(entries)) if !entries.is_empty() => parse(
            HARDWARE_PROVIDER,
            config.get(HARDWARE_INFO_KEY).unwrap_or(&Value::Null),
        ),
        _ => Ok(default_hardware_info()),
    }
}
