//! A small in-process `metrics` recorder for `secrets doctor --json`: it keeps what the
//! library records during the run (counters, and count/sum/max of histograms) so the report
//! can include it. The libraries ship no exporter; this is the CLI's own, minimal one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

/// Count, sum and maximum of a histogram's samples.
#[derive(Default)]
struct Summary(Mutex<(u64, f64, f64)>);

impl HistogramFn for Summary {
    fn record(&self, value: f64) {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        s.0 += 1;
        s.1 += value;
        s.2 = s.2.max(value);
    }
}

/// Metric name and sorted labels.
type Id = (String, BTreeMap<String, String>);

#[derive(Default)]
pub(crate) struct MetricsReport {
    counters: Mutex<BTreeMap<Id, Arc<AtomicU64>>>,
    histograms: Mutex<BTreeMap<Id, Arc<Summary>>>,
}

fn id(key: &Key) -> Id {
    (
        key.name().to_owned(),
        key.labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect(),
    )
}

impl Recorder for MetricsReport {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        Counter::from_arc(Arc::clone(counters.entry(id(key)).or_default()))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut histograms = self
            .histograms
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Histogram::from_arc(Arc::clone(histograms.entry(id(key)).or_default()))
    }
}

static RECORDER: OnceLock<&'static MetricsReport> = OnceLock::new();

impl MetricsReport {
    /// Installs the process's recorder (once) and returns it.
    pub(crate) fn install() -> &'static MetricsReport {
        RECORDER.get_or_init(|| {
            let recorder: &'static MetricsReport = Box::leak(Box::default());
            // Fails only when another recorder is installed; then this one stays empty.
            let _ = metrics::set_global_recorder(recorder);
            secrets::metrics::describe();
            recorder
        })
    }

    /// What was recorded so far, as JSON: `{"counters": [{name, labels, value}], "histograms":
    /// [{name, labels, count, sum, max}]}`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let counters: Vec<_> = self
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((name, labels), value)| {
                serde_json::json!({
                    "name": name,
                    "labels": labels,
                    "value": value.load(Ordering::Relaxed),
                })
            })
            .collect();
        let histograms: Vec<_> = self
            .histograms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((name, labels), summary)| {
                let (count, sum, max) = *summary.0.lock().unwrap_or_else(PoisonError::into_inner);
                serde_json::json!({
                    "name": name,
                    "labels": labels,
                    "count": count,
                    "sum": sum,
                    "max": max,
                })
            })
            .collect();
        serde_json::json!({ "counters": counters, "histograms": histograms })
    }
}
