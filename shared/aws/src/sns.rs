//! SNS publish for alert e-mail.
//!
//! SNS rejects the whole Publish for a bad subject (line breaks, control characters, 100
//! characters or more) and for empty attribute values, and an alert's title comes from rule
//! metadata and event data we don't control; so the subject is sanitized and empty attributes
//! are dropped here rather than turning one odd alert into a failed delivery.

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;

use crate::error::{Error, Result};

/// Longest subject SNS accepts ("less than 100 characters").
pub const MAX_SUBJECT_CHARS: usize = 99;

/// Message attribute data types we send.
pub const STRING: &str = "String";
/// A JSON array of strings (and numbers, booleans, null), usable in SNS filter policies.
pub const STRING_ARRAY: &str = "String.Array";
/// A number, sent as its decimal text.
pub const NUMBER: &str = "Number";

/// Makes a subject SNS accepts: printable ASCII only (other characters become `?`, line breaks
/// and control characters a space, runs of spaces one), trimmed, and cut to
/// [`MAX_SUBJECT_CHARS`] with `...`. `None` when nothing printable is left (Publish then goes
/// without a subject).
pub fn sanitize_subject(subject: &str) -> Option<String> {
    let mut out = String::with_capacity(subject.len().min(MAX_SUBJECT_CHARS));
    for c in subject.chars() {
        let c = match c {
            c if c.is_control() || c.is_whitespace() => ' ',
            c if c.is_ascii() => c,
            _ => '?',
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    let trimmed = out.trim_end();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.len() <= MAX_SUBJECT_CHARS {
        return Some(trimmed.to_owned());
    }
    // All ASCII now, so byte and char counts agree.
    let cut = trimmed[..MAX_SUBJECT_CHARS - 3].trim_end();
    Some(format!("{cut}..."))
}

/// The value of a [`STRING_ARRAY`] attribute: the items as a JSON array.
pub fn string_array<S: AsRef<str>>(items: &[S]) -> String {
    serde_json::Value::Array(
        items
            .iter()
            .map(|s| serde_json::Value::String(s.as_ref().to_owned()))
            .collect(),
    )
    .to_string()
}

/// Publishes `message` to `topic_arn` with a sanitized subject and message attributes given as
/// `(name, value, data_type)`, `data_type` being [`STRING`], [`STRING_ARRAY`] (a JSON array, see
/// [`string_array`]) or [`NUMBER`]. Attributes with empty values are skipped (SNS rejects them);
/// an unknown data type or a `String.Array` value that isn't a JSON array is an error. Returns
/// the SNS message id.
pub async fn publish(
    client: &Client,
    topic_arn: &str,
    subject: &str,
    message: &str,
    attributes: &[(&str, &str, &str)],
) -> Result<String> {
    let mut request = client.publish().topic_arn(topic_arn).message(message);
    if let Some(subject) = sanitize_subject(subject) {
        request = request.subject(subject);
    }
    for &(name, value, data_type) in attributes {
        if value.is_empty() {
            continue;
        }
        match data_type {
            STRING | NUMBER => {}
            STRING_ARRAY => {
                if !matches!(
                    serde_json::from_str::<serde_json::Value>(value),
                    Ok(serde_json::Value::Array(_))
                ) {
                    return Err(Error::Invalid(format!(
                        "SNS attribute {name}: String.Array value is not a JSON array"
                    )));
                }
            }
            other => {
                return Err(Error::Invalid(format!(
                    "SNS attribute {name}: unsupported data type {other:?}"
                )))
            }
        }
        let attr = MessageAttributeValue::builder()
            .data_type(data_type)
            .string_value(value)
            .build()
            .map_err(|e| Error::Invalid(format!("SNS attribute {name}: {e}")))?;
        request = request.message_attributes(name, attr);
    }
    let out = request
        .send()
        .await
        .map_err(|e| Error::aws(format!("SNS Publish {topic_arn}"), e))?;
    Ok(out.message_id().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        assert_eq!(
            sanitize_subject("[high] Reverse shell on host-1").as_deref(),
            Some("[high] Reverse shell on host-1")
        );
        assert_eq!(
            sanitize_subject("  line1\r\nline2\t\u{7}end  ").as_deref(),
            Some("line1 line2 end")
        );
        assert_eq!(
            sanitize_subject("café ✓ 東京").as_deref(),
            Some("caf? ? ??")
        );
        assert_eq!(sanitize_subject(" \n\t "), None);
        assert_eq!(sanitize_subject(""), None);
        let long = "x".repeat(300);
        let s = sanitize_subject(&long).unwrap();
        assert_eq!(s.len(), MAX_SUBJECT_CHARS);
        assert!(s.ends_with("..."));
        let exact = "y".repeat(MAX_SUBJECT_CHARS);
        assert_eq!(sanitize_subject(&exact).unwrap(), exact);
        let multibyte = "é".repeat(200);
        assert!(sanitize_subject(&multibyte).unwrap().len() <= MAX_SUBJECT_CHARS);
    }

    #[test]
    fn string_arrays() {
        assert_eq!(string_array(&["T1059", "T1105"]), r#"["T1059","T1105"]"#);
        assert_eq!(string_array::<&str>(&[]), "[]");
        assert_eq!(string_array(&["a\"b"]), r#"["a\"b"]"#);
    }
}
