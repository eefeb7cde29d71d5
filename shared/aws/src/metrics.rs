//! CloudWatch metrics through the Embedded Metric Format (EMF).
//!
//! A Lambda function that prints one EMF JSON line to stdout gets CloudWatch metrics extracted
//! from its log, with no PutMetricData call (no latency, no IAM permission, no failure mode).
//! [`emit`] only builds the line; the caller prints it, so this stays pure and testable.
//!
//! Format (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>):
//! a root object with `_aws.Timestamp` (ms since the epoch) and `_aws.CloudWatchMetrics`, a list
//! of directives `{Namespace, Dimensions: [[dimension names]], Metrics: [{Name, Unit}]}` (at
//! most 100 metrics each); each dimension and metric value is a root member named after it.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// The dimension every metric carries: the function that emitted it (Lambda's own metrics use
/// the same name, so dashboards can line them up).
pub const FUNCTION_DIMENSION: &str = "FunctionName";

/// EMF allows at most 100 metrics per directive, and 100 values per metric.
const MAX_PER_DIRECTIVE: usize = 100;

/// CloudWatch units (the subset that makes sense for us, plus `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A count of things.
    Count,
    /// Bytes.
    Bytes,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
    /// Percent.
    Percent,
    /// Count per second.
    CountPerSecond,
    /// Bytes per second.
    BytesPerSecond,
    /// No unit.
    None,
}

impl Unit {
    /// The unit's name as CloudWatch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Percent => "Percent",
            Unit::CountPerSecond => "Count/Second",
            Unit::BytesPerSecond => "Bytes/Second",
            Unit::None => "None",
        }
    }
}

/// One EMF line for `metrics` (`(name, value, unit)`) in `namespace`, dimensioned by
/// [`FUNCTION_DIMENSION`] = `function`, stamped now. Print it to stdout as is.
pub fn emit(namespace: &str, function: &str, metrics: &[(&str, f64, Unit)]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    emit_at(namespace, function, metrics, now)
}

/// [`emit`] with an explicit timestamp (ms since the epoch).
///
/// Values that aren't finite (NaN, infinities) can't be written as JSON and are left out; a
/// metric named like the dimension is left out (it would overwrite the dimension's value); a
/// name given more than once becomes one metric with an array of values (as EMF allows, up to
/// 100), keeping the first unit.
pub fn emit_at(
    namespace: &str,
    function: &str,
    metrics: &[(&str, f64, Unit)],
    timestamp_ms: u64,
) -> String {
    let mut root = Map::new();
    root.insert(FUNCTION_DIMENSION.into(), Value::String(function.into()));
    let mut definitions: Vec<Value> = Vec::new();
    let mut values: Map<String, Value> = Map::new();
    for &(name, value, unit) in metrics {
        if !value.is_finite() || name == FUNCTION_DIMENSION || name == "_aws" || name.is_empty() {
            continue;
        }
        match values.get_mut(name) {
            None => {
                values.insert(name.into(), json!(value));
                definitions.push(json!({"Name": name, "Unit": unit.as_str()}));
            }
            Some(existing) => {
                if let Value::Number(_) = existing {
                    *existing = Value::Array(vec![existing.take()]);
                }
                let list = existing.as_array_mut().expect("made an array");
                if list.len() < MAX_PER_DIRECTIVE {
                    list.push(json!(value));
                }
            }
        }
    }
    let directives: Vec<Value> = definitions
        .chunks(MAX_PER_DIRECTIVE)
        .map(|chunk| {
            json!({
                "Namespace": namespace,
                "Dimensions": [[FUNCTION_DIMENSION]],
                "Metrics": chunk,
            })
        })
        .collect();
    root.extend(values);
    root.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
    );
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_matches_the_spec() {
        let line = emit_at(
            "tripline",
            "tripline-parse",
            &[
                ("Records", 120.0, Unit::Count),
                ("Quarantined", 2.0, Unit::Count),
                ("InputBytes", 48213.0, Unit::Bytes),
                ("DurationMs", 35.5, Unit::Milliseconds),
            ],
            1_795_356_312_500,
        );
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            json!({
                "_aws": {
                    "Timestamp": 1_795_356_312_500u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "tripline",
                        "Dimensions": [["FunctionName"]],
                        "Metrics": [
                            {"Name": "Records", "Unit": "Count"},
                            {"Name": "Quarantined", "Unit": "Count"},
                            {"Name": "InputBytes", "Unit": "Bytes"},
                            {"Name": "DurationMs", "Unit": "Milliseconds"},
                        ],
                    }],
                },
                "FunctionName": "tripline-parse",
                "Records": 120.0,
                "Quarantined": 2.0,
                "InputBytes": 48213.0,
                "DurationMs": 35.5,
            })
        );
        // Every dimension and metric named in a directive is a root member of the right type.
        for d in v["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            for set in d["Dimensions"].as_array().unwrap() {
                for dim in set.as_array().unwrap() {
                    assert!(v[dim.as_str().unwrap()].is_string());
                }
            }
            for m in d["Metrics"].as_array().unwrap() {
                assert!(v[m["Name"].as_str().unwrap()].is_number());
            }
        }
    }

    #[test]
    fn odd_inputs() {
        let line = emit_at(
            "ns",
            "f",
            &[
                ("NaN", f64::NAN, Unit::None),
                ("Inf", f64::INFINITY, Unit::None),
                ("FunctionName", 1.0, Unit::Count),
                ("Sent", 1.0, Unit::Count),
                ("Sent", 2.0, Unit::Count),
                ("Rate", 3.0, Unit::CountPerSecond),
            ],
            0,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["FunctionName"], "f");
        assert_eq!(v["Sent"], json!([1.0, 2.0]));
        assert!(v.get("NaN").is_none() && v.get("Inf").is_none());
        let metrics = &v["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert_eq!(
            metrics,
            &json!([{"Name": "Sent", "Unit": "Count"}, {"Name": "Rate", "Unit": "Count/Second"}])
        );
    }

    #[test]
    fn more_than_100_metrics_split_into_directives() {
        let names: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
        let metrics: Vec<(&str, f64, Unit)> = names
            .iter()
            .map(|n| (n.as_str(), 1.0, Unit::Count))
            .collect();
        let v: Value = serde_json::from_str(&emit_at("ns", "f", &metrics, 0)).unwrap();
        let directives = v["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 2);
        assert_eq!(directives[0]["Metrics"].as_array().unwrap().len(), 100);
        assert_eq!(directives[1]["Metrics"].as_array().unwrap().len(), 50);
    }

    #[test]
    fn emit_stamps_now() {
        let v: Value = serde_json::from_str(&emit("ns", "f", &[("x", 1.0, Unit::Count)])).unwrap();
        assert!(v["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    }
}
