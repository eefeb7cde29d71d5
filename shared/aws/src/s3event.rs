//! S3 event notifications → the objects to process.
//!
//! The functions are triggered by S3 `ObjectCreated` notifications, delivered directly, through
//! SQS (`Records[].body` holds the S3 event as a JSON string), or through SNS (`Records[].Sns.Message`,
//! or an SNS envelope in an SQS body), or through EventBridge (an `aws.s3` event whose
//! `detail` names the bucket and object, alone or in an SQS body). All of these are accepted by
//! [`parse_event`] / [`parse_value`], and the `s3:TestEvent` that S3 sends when a notification
//! is configured is skipped.
//!
//! We parse with our own lenient reader instead of `aws_lambda_events`' `S3Event` because that
//! type requires `userIdentity` and `requestParameters`, which moto (and so every local test)
//! leaves out (the tests check that both read the real-AWS fixtures the same).
//!
//! Notification keys arrive URL-encoded with `+` for space (`url_decoded_key` is never filled
//! in by AWS), and moto also encodes `/` as `%2F`; [`decode_key`] undoes both. EventBridge
//! carries the key as it is (`:` and spaces unescaped), so it is taken literally. An
//! EventBridge `detail-type` becomes the notification's event name: `Object Created` with
//! reason `PutObject` is `ObjectCreated:PutObject`, so [`ObjectRef::is_created`] reads both.
//!
//! `eventTime` is RFC 3339 (`2026-11-22T14:05:12.481Z`) from AWS and current moto, and had
//! no offset in older moto versions (`2026-11-22T14:05:12.481000`, meaning UTC);
//! [`event_time`] reads both.

use serde_json::Value;

use crate::error::{Error, Result};

/// One object named by an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    /// Bucket name.
    pub bucket: String,
    /// Object key, decoded.
    pub key: String,
    /// Size in bytes, when the event says (it does for `ObjectCreated`).
    pub size: Option<u64>,
    /// `ObjectCreated:Put`, `ObjectCreated:CompleteMultipartUpload`, ... (without `s3:`), as sent.
    pub event_name: Option<String>,
    /// When the event happened (`eventTime`, for `ObjectCreated` when the object was
    /// written), in unix seconds; `None` when absent or unreadable.
    pub event_time: Option<i64>,
    /// The SQS message this object came in, for partial batch failure responses.
    pub sqs_message_id: Option<String>,
}

impl ObjectRef {
    /// Whether the event is an `ObjectCreated:*` (the functions ignore anything else).
    pub fn is_created(&self) -> bool {
        self.event_name
            .as_deref()
            .is_none_or(|n| n.trim_start_matches("s3:").starts_with("ObjectCreated"))
    }
}

/// Envelopes nest at most S3 in SNS in SQS; anything deeper is not an event we know.
const MAX_DEPTH: usize = 3;

/// Parses a Lambda payload (S3 event, SQS or SNS batch wrapping S3 events, or an `s3:TestEvent`)
/// into the objects it names, in order. Test events give no objects.
pub fn parse_event(json: &[u8]) -> Result<Vec<ObjectRef>> {
    let value: Value =
        serde_json::from_slice(json).map_err(|e| Error::Event(format!("not JSON: {e}")))?;
    parse_value(&value)
}

/// [`parse_event`] for an already parsed payload (e.g. `LambdaEvent<serde_json::Value>`).
pub fn parse_value(value: &Value) -> Result<Vec<ObjectRef>> {
    let mut out = Vec::new();
    walk(value, 0, None, "event", &mut out)?;
    Ok(out)
}

/// Reads an `eventTime`: RFC 3339, or without an offset as older moto versions wrote it
/// (then UTC).
pub fn event_time(text: &str) -> Option<i64> {
    use tripline_core::rfc3339::parse;
    parse(text).or_else(|| parse(&format!("{text}Z")))
}

/// Decodes an event key: `+` is a space, then `%XX` escapes; the result must be UTF-8.
pub fn decode_key(raw: &str) -> Result<String> {
    let plus_as_space = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| Error::Event(format!("key {raw:?} does not decode to UTF-8")))
}

fn walk(
    v: &Value,
    depth: usize,
    message_id: Option<&str>,
    at: &str,
    out: &mut Vec<ObjectRef>,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::Event(format!("{at}: envelopes nested too deep")));
    }
    let obj = v
        .as_object()
        .ok_or_else(|| Error::Event(format!("{at}: not a JSON object")))?;
    if let Some(records) = obj.get("Records") {
        let records = records
            .as_array()
            .ok_or_else(|| Error::Event(format!("{at}: Records is not an array")))?;
        for (i, record) in records.iter().enumerate() {
            let at = format!("{at}.Records[{i}]");
            walk_record(record, depth, message_id, &at, out)?;
        }
        return Ok(());
    }
    if obj.get("source").and_then(Value::as_str) == Some("aws.s3") && obj.contains_key("detail") {
        out.push(eventbridge(obj, message_id, at)?);
        return Ok(());
    }
    // Sent once when a notification configuration is saved.
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(());
    }
    // An SNS notification envelope (SNS → SQS without raw message delivery).
    if obj.get("Type").and_then(Value::as_str) == Some("Notification") {
        let message = obj
            .get("Message")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Event(format!("{at}: SNS notification without Message")))?;
        return walk_json(
            message,
            depth + 1,
            message_id,
            &format!("{at}.Message"),
            out,
        );
    }
    Err(Error::Event(format!(
        "{at}: neither an S3 event (Records), an EventBridge S3 event, an s3:TestEvent nor an \
         SNS notification"
    )))
}

fn walk_json(
    s: &str,
    depth: usize,
    message_id: Option<&str>,
    at: &str,
    out: &mut Vec<ObjectRef>,
) -> Result<()> {
    let v: Value =
        serde_json::from_str(s).map_err(|e| Error::Event(format!("{at}: not JSON: {e}")))?;
    walk(&v, depth, message_id, at, out)
}

fn walk_record(
    record: &Value,
    depth: usize,
    message_id: Option<&str>,
    at: &str,
    out: &mut Vec<ObjectRef>,
) -> Result<()> {
    let obj = record
        .as_object()
        .ok_or_else(|| Error::Event(format!("{at}: not a JSON object")))?;
    if let Some(s3) = obj.get("s3") {
        out.push(s3_record(obj, s3, message_id, at)?);
        Ok(())
    } else if let Some(body) = obj.get("body") {
        // SQS: the body is the S3 (or SNS) message as a string.
        let body = body
            .as_str()
            .ok_or_else(|| Error::Event(format!("{at}: SQS body is not a string")))?;
        let id = obj.get("messageId").and_then(Value::as_str);
        walk_json(body, depth + 1, id, &format!("{at}.body"), out)
    } else if let Some(sns) = obj.get("Sns") {
        let message = sns
            .get("Message")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Event(format!("{at}: Sns without Message")))?;
        walk_json(
            message,
            depth + 1,
            message_id,
            &format!("{at}.Sns.Message"),
            out,
        )
    } else {
        Err(Error::Event(format!(
            "{at}: neither an S3, an SQS nor an SNS record"
        )))
    }
}

fn s3_record(
    record: &serde_json::Map<String, Value>,
    s3: &Value,
    message_id: Option<&str>,
    at: &str,
) -> Result<ObjectRef> {
    let bucket = s3
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::Event(format!("{at}: no s3.bucket.name")))?;
    let raw_key = s3
        .pointer("/object/key")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Event(format!("{at}: no s3.object.key")))?;
    let size = match s3.pointer("/object/size") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            Error::Event(format!("{at}: s3.object.size {v} is not a byte count"))
        })?),
    };
    Ok(ObjectRef {
        bucket: bucket.to_owned(),
        key: decode_key(raw_key).map_err(|e| Error::Event(format!("{at}: {e}")))?,
        size,
        event_name: record
            .get("eventName")
            .and_then(Value::as_str)
            .map(str::to_owned),
        event_time: record
            .get("eventTime")
            .and_then(Value::as_str)
            .and_then(event_time),
        sqs_message_id: message_id.map(str::to_owned),
    })
}

/// An EventBridge event from S3 (`source: aws.s3`): bucket and object in `detail`.
fn eventbridge(
    event: &serde_json::Map<String, Value>,
    message_id: Option<&str>,
    at: &str,
) -> Result<ObjectRef> {
    let detail = &event["detail"];
    let bucket = detail
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::Event(format!("{at}: no detail.bucket.name")))?;
    let key = detail
        .pointer("/object/key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Error::Event(format!("{at}: no detail.object.key")))?;
    let size = match detail.pointer("/object/size") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            Error::Event(format!("{at}: detail.object.size {v} is not a byte count"))
        })?),
    };
    let kind = event
        .get("detail-type")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Event(format!("{at}: no detail-type")))?;
    let reason = detail.get("reason").and_then(Value::as_str).unwrap_or("");
    let event_name = match kind {
        "Object Created" => format!("ObjectCreated:{reason}"),
        "Object Deleted" => format!("ObjectRemoved:{reason}"),
        other => other.to_owned(),
    };
    Ok(ObjectRef {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        size,
        event_name: Some(event_name),
        event_time: event
            .get("time")
            .and_then(Value::as_str)
            .and_then(event_time),
        sqs_message_id: message_id.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::s3::S3Event;
    use std::path::PathBuf;

    fn fixture(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../events/s3")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn one(name: &str) -> ObjectRef {
        let mut objs = parse_event(&fixture(name)).unwrap();
        assert_eq!(objs.len(), 1, "{name}");
        objs.remove(0)
    }

    #[test]
    fn eventbridge_events_name_the_same_object() {
        let direct = one("parse-put.json");
        let bridged = one("eventbridge-put.json");
        assert_eq!(bridged.bucket, direct.bucket);
        assert_eq!(bridged.key, direct.key);
        assert_eq!(bridged.size, direct.size);
        assert!(bridged.is_created());
        assert_eq!(
            bridged.event_name.as_deref(),
            Some("ObjectCreated:PutObject")
        );
        // 2026-11-22T14:05:12Z
        assert_eq!(bridged.event_time, Some(1_795_356_312));

        // Through an SQS queue (an EventBridge rule targeting SQS): the body is the event.
        let body = String::from_utf8(fixture("eventbridge-put.json")).unwrap();
        let sqs = serde_json::json!({"Records": [{"messageId": "m-1", "body": body}]});
        let objs = parse_value(&sqs).unwrap();
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0].key, direct.key);
        assert_eq!(objs[0].sqs_message_id.as_deref(), Some("m-1"));

        // Keys are literal: a `+` or `%2F` stays what it is.
        let mut v: Value = serde_json::from_slice(&fixture("eventbridge-put.json")).unwrap();
        v["detail"]["object"]["key"] = "raw/a+b%2Fc d:e.gz".into();
        assert_eq!(parse_value(&v).unwrap()[0].key, "raw/a+b%2Fc d:e.gz");

        // Deletions are not creations; a detail without the object is malformed.
        v["detail-type"] = "Object Deleted".into();
        v["detail"]["reason"] = "DeleteObject".into();
        assert!(!parse_value(&v).unwrap()[0].is_created());
        v["detail"]["object"] = serde_json::json!({});
        let err = parse_value(&v).unwrap_err().to_string();
        assert!(err.contains("detail.object.key"), "{err}");
    }

    #[test]
    fn real_aws_fixtures() {
        let p = one("parse-put.json");
        assert_eq!(p.bucket, "tripline-data");
        assert_eq!(
            p.key,
            "raw/2026/11/22/14/tripline-osquery-1-2026-11-22-14-05-00-6d1f0c2e.gz"
        );
        assert_eq!(p.size, Some(48213));
        assert_eq!(p.event_name.as_deref(), Some("ObjectCreated:Put"));
        // 2026-11-22T14:05:12.481Z
        assert_eq!(p.event_time, Some(1_795_356_312));
        assert!(p.is_created());
        assert_eq!(p.sqs_message_id, None);

        let d = one("detect-put.json");
        assert_eq!(d.bucket, "tripline-data");
        assert_eq!(
            d.key,
            "normalized/2026/11/22/14/fleet export:host/a 1+1.ndjson.zst"
        );
        assert_eq!(
            d.event_name.as_deref(),
            Some("ObjectCreated:CompleteMultipartUpload")
        );

        let n = one("notify-put.json");
        assert_eq!(n.bucket, "tripline-data");
        assert_eq!(
            n.key,
            "alerts/2026/11/22/6b0c43d1b7e4a1f0f2d5c09e8a7b3c21.json"
        );
        assert_eq!(n.size, Some(2311));
    }

    /// Objects from an `aws_lambda_events` `S3Event` (real AWS shape).
    fn from_s3_event(event: &S3Event) -> Result<Vec<ObjectRef>> {
        event
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let at = format!("Records[{i}]");
                let bucket =
                    r.s3.bucket
                        .name
                        .clone()
                        .ok_or_else(|| Error::Event(format!("{at}: no s3.bucket.name")))?;
                let raw_key =
                    r.s3.object
                        .key
                        .as_deref()
                        .ok_or_else(|| Error::Event(format!("{at}: no s3.object.key")))?;
                Ok(ObjectRef {
                    bucket,
                    key: decode_key(raw_key).map_err(|e| Error::Event(format!("{at}: {e}")))?,
                    size: r.s3.object.size.and_then(|s| u64::try_from(s).ok()),
                    event_name: r.event_name.clone(),
                    event_time: Some(r.event_time.timestamp()),
                    sqs_message_id: None,
                })
            })
            .collect()
    }

    /// The real-AWS fixtures also parse as `aws_lambda_events` types, with the same result.
    #[test]
    fn real_aws_fixtures_match_aws_lambda_events() {
        for name in ["parse-put.json", "detect-put.json", "notify-put.json"] {
            let event: S3Event = serde_json::from_slice(&fixture(name)).unwrap();
            assert_eq!(
                from_s3_event(&event).unwrap(),
                parse_event(&fixture(name)).unwrap(),
                "{name}"
            );
        }
    }

    /// moto's events have no userIdentity/requestParameters and encode `/` as `%2F`.
    #[test]
    fn moto_shape() {
        let m = one("moto-put.json");
        assert_eq!(m.bucket, "tripline-data");
        assert_eq!(m.key, "raw/2026/11/22/14/tripline osquery 1.gz");
        assert_eq!(m.size, Some(1234));
        assert_eq!(m.event_time, Some(1_795_356_312));
        // ...which aws_lambda_events rejects: the reason for the lenient reader.
        assert!(serde_json::from_slice::<S3Event>(&fixture("moto-put.json")).is_err());
    }

    #[test]
    fn sqs_wrapped_and_test_event() {
        let objs = parse_event(&fixture("sqs-parse-put.json")).unwrap();
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0].key, "raw/2026/11/22/14/tripline osquery 1.gz");
        assert_eq!(
            objs[0].sqs_message_id.as_deref(),
            Some("5e5a5a4c-9a7f-4a4b-8d0e-0c5f1c8f2a11")
        );
        assert!(parse_event(&fixture("test-event.json")).unwrap().is_empty());
    }

    #[test]
    fn sns_shapes() {
        let s3 = String::from_utf8(fixture("parse-put.json")).unwrap();
        let envelope = serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": s3});
        let sqs =
            serde_json::json!({"Records": [{"messageId": "q1", "body": envelope.to_string()}]});
        let objs = parse_value(&sqs).unwrap();
        assert_eq!(objs[0].sqs_message_id.as_deref(), Some("q1"));
        assert!(objs[0].key.starts_with("raw/"));
        let sns =
            serde_json::json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": s3}}]});
        assert_eq!(parse_value(&sns).unwrap()[0].key, objs[0].key);
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        let cases: &[&str] = &[
            "",
            "[]",
            "{}",
            "null",
            r#"{"Records": {}}"#,
            r#"{"Records": [1]}"#,
            r#"{"Records": [{}]}"#,
            r#"{"Records": [{"s3": {}}]}"#,
            r#"{"Records": [{"s3": {"bucket": {"name": "b"}}}]}"#,
            r#"{"Records": [{"s3": {"bucket": {"name": ""}, "object": {"key": "k"}}}]}"#,
            r#"{"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "k", "size": -1}}}]}"#,
            r#"{"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "%ff"}}}]}"#,
            r#"{"Records": [{"body": 3}]}"#,
            r#"{"Records": [{"body": "not json"}]}"#,
            r#"{"Records": [{"Sns": {}}]}"#,
            r#"{"Type": "Notification"}"#,
        ];
        for case in cases {
            let err = parse_event(case.as_bytes()).unwrap_err();
            assert!(matches!(err, Error::Event(_)), "{case}: {err}");
        }
        // Envelopes nested without end.
        let mut v = serde_json::json!({"Records": []});
        for _ in 0..6 {
            v = serde_json::json!({"Records": [{"body": v.to_string()}]});
        }
        assert!(parse_value(&v).is_err());
    }

    #[test]
    fn event_times_with_and_without_an_offset() {
        // AWS.
        assert_eq!(event_time("2026-11-22T14:05:12.481Z"), Some(1_795_356_312));
        assert_eq!(event_time("2026-11-22T15:05:12+01:00"), Some(1_795_356_312));
        // Older moto: microseconds and no offset, meaning UTC.
        assert_eq!(
            event_time("2026-11-22T14:05:12.481000"),
            Some(1_795_356_312)
        );
        for bad in [
            "",
            "yesterday",
            "2026-11-22",
            "2026-11-22T14:05:12+01:00Z",
            "1795356312",
        ] {
            assert_eq!(event_time(bad), None, "{bad}");
        }
        // In an event; a missing or unreadable one is no time, not an error.
        let ev = |time: Value| {
            serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put", "eventTime": time,
                "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]})
        };
        let at = |v| parse_value(&ev(v)).unwrap()[0].event_time;
        assert_eq!(at("2026-11-22T14:05:12.481000".into()), Some(1_795_356_312));
        assert_eq!(at("soon".into()), None);
        assert_eq!(at(Value::Null), None);
        assert_eq!(at(5.into()), None);
    }

    #[test]
    fn decode_keys() {
        assert_eq!(decode_key("a+b%2Bc%2Fd").unwrap(), "a b+c/d");
        assert_eq!(decode_key("caf%C3%A9").unwrap(), "café");
        assert_eq!(decode_key("plain/key.gz").unwrap(), "plain/key.gz");
        assert!(decode_key("%C3").is_err());
    }

    #[test]
    fn non_created_events_are_flagged() {
        let ev = serde_json::json!({"Records": [{"eventName": "ObjectRemoved:Delete",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]});
        let objs = parse_value(&ev).unwrap();
        assert!(!objs[0].is_created());
        assert_eq!(objs[0].size, None);
    }
}
