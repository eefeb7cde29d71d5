//! RFC 3339 timestamps, the one text form of a time in events and alerts: UTC with a `Z`
//! and whole seconds (`2024-05-01T12:00:00Z`), as `time` writes them.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `unix` seconds as RFC 3339 UTC. A time no RFC 3339 date can state (garbage input)
/// falls back to the decimal second count rather than failing the record or alert.
pub fn format(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// Unix seconds of an RFC 3339 timestamp in any offset, or `None`.
pub fn parse(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_and_reads_any_offset() {
        assert_eq!(format(0), "1970-01-01T00:00:00Z");
        assert_eq!(format(1_714_564_800), "2024-05-01T12:00:00Z");
        assert_eq!(format(i64::MAX), i64::MAX.to_string());
        assert_eq!(parse("2024-05-01T12:00:00Z"), Some(1_714_564_800));
        assert_eq!(parse("2024-05-01T14:00:00+02:00"), Some(1_714_564_800));
        assert_eq!(parse("2024-05-01 12:00:00"), None);
    }
}
