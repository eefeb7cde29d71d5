//! The eval view: the JSON object every rule is evaluated against, built once per event.

use serde_json::{Map, Value};

use crate::derive::Derived;
use crate::event::Event;

/// The event's fields plus `derived`, with column and decoration numbers turned into their
/// decimal text.
///
/// osquery logs every column as a string unless `--log_numerics_as_numbers` is set, so the
/// same row arrives as `"port": "22"` from one host and `"port": 22` from another. rsigma
/// already matches across the two for plain values (`22` compiles to a numeric comparison
/// that parses strings, `'22'` to a string comparison that formats integers), but not
/// everywhere: keyword searches only see strings, and integers beyond `i64` (`u64` inode
/// or size columns) reach rsigma as lossy floats. Text is the form osquery itself uses by
/// default, so normalizing to it makes every matcher, dedup key and alert id independent of
/// the host's logging flag.
pub fn eval_view(event: &Event, derived: &Derived) -> Value {
    let mut view = match serde_json::to_value(event) {
        Ok(Value::Object(m)) => m,
        // `Event` always serializes to an object (string keys only); stay total anyway.
        _ => Map::new(),
    };
    for key in ["columns", "decorations"] {
        if let Some(Value::Object(m)) = view.get_mut(key) {
            numbers_to_text(m);
        }
    }
    view.insert("derived".into(), derived.to_json());
    Value::Object(view)
}

fn numbers_to_text(m: &mut Map<String, Value>) {
    for v in m.values_mut() {
        if let Value::Number(n) = v {
            *v = Value::String(n.to_string());
        }
    }
}
