//! The data bucket's key layout: the one place that spells every key the pipeline reads or
//! writes, and the table of who touches which part of it.
//!
//! ```text
//! <raw>        Firehose objects                        parse reads
//! <normalized> <raw key>.ndjson.zst (or .ndjson.gz)    parse writes, detect reads
//! <quarantine> <raw key>.ndjson.zst (or .ndjson.gz)    parse writes
//! <alerts>     YYYY/MM/DD/<alert id>.json              detect creates if absent, notify reads
//! <state>claim/<alert id>/<destination>/<generation>   notify claims before it sends
//! <state>storm/<rule>/<window start>/<alert id>        notify counts a rule's alerts per window
//! <site>       the site directory's files              Terraform writes, detect and notify read
//! <state>delivery/<alert id>/<destination>             notify checks, then creates if absent
//! ```
//!
//! Every key is a function of the input key or the alert, never of the time or the
//! invocation, so a retried or replayed invocation rewrites or finds the same objects. The
//! functions build keys only through [`Layout`], and the deployment's S3 notifications and
//! IAM grants are checked against [`Layout`]'s values, [`TRIGGERS`] and [`ACCESS`] (the
//! `tests/infra` crate), so the code and the Terraform cannot disagree on a key.

use crate::alert::Alert;
use crate::compress::Codec;

/// Default prefix of raw Firehose objects.
pub const DEFAULT_RAW_PREFIX: &str = "raw/";
/// Default prefix of normalized NDJSON.
pub const DEFAULT_NORMALIZED_PREFIX: &str = "normalized/";
/// Default prefix of quarantined records.
pub const DEFAULT_QUARANTINE_PREFIX: &str = "quarantine/";
/// Default prefix of alert objects.
pub const DEFAULT_ALERTS_PREFIX: &str = "alerts/";
/// Default prefix of notify's claims and delivery markers.
pub const DEFAULT_STATE_PREFIX: &str = "state/";
/// Default prefix of the site directory's files (`tripline.toml`, `rules/`, ...).
pub const DEFAULT_SITE_PREFIX: &str = "config/";

/// What normalized and quarantine keys may end in, one per [`Codec`]: the detect stage reads
/// either, whatever the parse stage's setting was when the object was written.
pub const NDJSON_SUFFIXES: &[&str] = &[".ndjson.zst", ".ndjson.gz"];

/// What alert keys end in.
pub const ALERT_SUFFIX: &str = ".json";

/// Every codec, so [`NDJSON_SUFFIXES`] can be checked against them.
pub const CODECS: [Codec; 2] = [Codec::Zstd, Codec::Gzip];

/// The part of the bucket a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Area {
    /// Firehose objects.
    Raw,
    /// Normalized events.
    Normalized,
    /// Quarantined records.
    Quarantine,
    /// Alerts.
    Alerts,
    /// Notify's claims on a delivery, `<state>claim/`.
    Claim,
    /// Notify's count of each rule's alerts per window, `<state>storm/`.
    Storm,
    /// The site directory (`config/`): uploaded by Terraform, read by detect and notify.
    Site,
    /// Notify's delivery markers, `<state>delivery/`.
    Delivery,
}

impl Area {
    /// Every area.
    pub const ALL: [Area; 8] = [
        Area::Raw,
        Area::Normalized,
        Area::Quarantine,
        Area::Alerts,
        Area::Claim,
        Area::Storm,
        Area::Delivery,
        Area::Site,
    ];

    /// The suffixes a key of this area has, one of which it must end in; empty: any key.
    pub fn suffixes(self) -> &'static [&'static str] {
        match self {
            Area::Normalized | Area::Quarantine => NDJSON_SUFFIXES,
            Area::Alerts => &[ALERT_SUFFIX],
            Area::Raw | Area::Claim | Area::Storm | Area::Delivery | Area::Site => &[],
        }
    }
}

/// What a function does with a key, in the object store's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// Reads the object (streamed or whole).
    Read,
    /// Asks whether the object exists.
    Exists,
    /// Writes a small object in one request.
    Put,
    /// Creates a small object only if none exists at the key.
    PutIfAbsent,
    /// Streams an object out (a multipart upload when large).
    Write,
    /// Lists keys under a prefix (one page).
    List,
}

/// One kind of access a function makes: an operation on the keys of an area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Access {
    /// `parse`, `detect` or `notify`.
    pub function: &'static str,
    /// What it does.
    pub op: Op,
    /// Where.
    pub area: Area,
}

const fn access(function: &'static str, op: Op, area: Area) -> Access {
    Access { function, op, area }
}

/// Every access each function makes, and no other: the functions' unit tests hold their
/// handlers to it (every key a handler touches in the in-memory store is a row here, and each
/// row is touched), and the deployment's IAM grants are checked against it.
pub const ACCESS: &[Access] = &[
    // parse: the raw object of the event in, <normalized><raw key><suffix> and (when
    // something was quarantined) <quarantine><raw key><suffix> out.
    access("parse", Op::Read, Area::Raw),
    access("parse", Op::Write, Area::Normalized),
    access("parse", Op::Write, Area::Quarantine),
    // detect: the normalized object of the event in; each alert created only if absent, so
    // the alert object itself says it was written.
    access("detect", Op::Read, Area::Normalized),
    access("detect", Op::PutIfAbsent, Area::Alerts),
    // detect and notify: the site directory, listed at most once a minute and read when it
    // changed.
    access("detect", Op::List, Area::Site),
    access("detect", Op::Read, Area::Site),
    access("notify", Op::List, Area::Site),
    access("notify", Op::Read, Area::Site),
    // notify: the alert of the event in; for each destination, its delivery marker checked,
    // a claim created (read when one is there, rewritten by its owner to renew or release
    // it), the send, then the marker created.
    access("notify", Op::Read, Area::Alerts),
    access("notify", Op::Exists, Area::Delivery),
    access("notify", Op::PutIfAbsent, Area::Claim),
    access("notify", Op::Read, Area::Claim),
    access("notify", Op::Put, Area::Claim),
    access("notify", Op::PutIfAbsent, Area::Delivery),
    // notify, storm control: each alert's mark under its rule and window, a count of the
    // marks there, and past the threshold the first marks' hosts for the roll-up.
    access("notify", Op::PutIfAbsent, Area::Storm),
    access("notify", Op::List, Area::Storm),
    access("notify", Op::Read, Area::Storm),
];

/// Which function each area's S3 `ObjectCreated` notification triggers. A function accepts
/// exactly the keys [`Layout::is`] says are of its area, so the notification's prefix is the
/// area's prefix and its suffix one of [`Area::suffixes`].
pub const TRIGGERS: &[(&str, Area)] = &[
    ("parse", Area::Raw),
    ("detect", Area::Normalized),
    ("notify", Area::Alerts),
];

/// The configurable prefixes. The state prefix holds notify's claims and delivery markers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefixes {
    /// Raw Firehose objects.
    pub raw: String,
    /// Normalized NDJSON.
    pub normalized: String,
    /// Quarantined records.
    pub quarantine: String,
    /// Alerts.
    pub alerts: String,
    /// Claims and delivery markers.
    pub state: String,
    /// The site directory's files.
    pub site: String,
}

impl Default for Prefixes {
    fn default() -> Self {
        Prefixes {
            raw: DEFAULT_RAW_PREFIX.into(),
            normalized: DEFAULT_NORMALIZED_PREFIX.into(),
            quarantine: DEFAULT_QUARANTINE_PREFIX.into(),
            alerts: DEFAULT_ALERTS_PREFIX.into(),
            state: DEFAULT_STATE_PREFIX.into(),
            site: DEFAULT_SITE_PREFIX.into(),
        }
    }
}

/// The key layout: the prefixes, plus the codec the parse stage writes with (it names the
/// normalized and quarantine keys' suffix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    prefixes: Prefixes,
    codec: Codec,
    claim: String,
    storm: String,
    delivery: String,
}

impl Default for Layout {
    /// The default prefixes and codec.
    fn default() -> Self {
        Layout::new(Prefixes::default(), Codec::default())
    }
}

impl Layout {
    /// A layout with these prefixes, writing NDJSON with `codec`.
    pub fn new(prefixes: Prefixes, codec: Codec) -> Self {
        Layout {
            claim: format!("{}claim/", prefixes.state),
            storm: format!("{}storm/", prefixes.state),
            delivery: format!("{}delivery/", prefixes.state),
            prefixes,
            codec,
        }
    }

    /// The prefixes.
    pub fn prefixes(&self) -> &Prefixes {
        &self.prefixes
    }

    /// The codec normalized and quarantine objects are written with.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The prefix of an area's keys.
    pub fn prefix(&self, area: Area) -> &str {
        match area {
            Area::Raw => &self.prefixes.raw,
            Area::Normalized => &self.prefixes.normalized,
            Area::Quarantine => &self.prefixes.quarantine,
            Area::Alerts => &self.prefixes.alerts,
            Area::Claim => &self.claim,
            Area::Storm => &self.storm,
            Area::Site => &self.prefixes.site,
            Area::Delivery => &self.delivery,
        }
    }

    /// Whether `key` is a key of `area`: under its prefix, ending in one of its suffixes.
    pub fn is(&self, area: Area, key: &str) -> bool {
        let suffixes = area.suffixes();
        key.starts_with(self.prefix(area))
            && (suffixes.is_empty() || suffixes.iter().any(|s| key.ends_with(s)))
    }

    /// The area whose prefix `key` is under, if any (markers before the rest of the state
    /// prefix). Suffixes are not looked at.
    pub fn area(&self, key: &str) -> Option<Area> {
        Area::ALL
            .into_iter()
            .find(|&a| key.starts_with(self.prefix(a)))
    }

    /// Whether parse takes `key`: anything under the raw prefix.
    pub fn is_raw(&self, key: &str) -> bool {
        self.is(Area::Raw, key)
    }

    /// Whether detect takes `key`: normalized NDJSON as parse writes it, under either codec's
    /// suffix (the reader tells the codec by content, not by name).
    pub fn is_normalized(&self, key: &str) -> bool {
        self.is(Area::Normalized, key)
    }

    /// Whether notify takes `key`: an alert.
    pub fn is_alert(&self, key: &str) -> bool {
        self.is(Area::Alerts, key)
    }

    /// What normalized and quarantine keys end in: `.ndjson` and the codec's extension.
    pub fn ndjson_suffix(&self) -> &'static str {
        match self.codec {
            Codec::Zstd => NDJSON_SUFFIXES[0],
            Codec::Gzip => NDJSON_SUFFIXES[1],
        }
    }

    /// The suffix this layout gives the keys it writes in `area`, for areas whose keys have
    /// one.
    pub fn written_suffix(&self, area: Area) -> Option<&'static str> {
        match area {
            Area::Normalized | Area::Quarantine => Some(self.ndjson_suffix()),
            Area::Alerts => Some(ALERT_SUFFIX),
            Area::Raw | Area::Claim | Area::Storm | Area::Delivery | Area::Site => None,
        }
    }

    /// `<normalized><raw key><suffix>`: the raw key kept whole, so the output names its
    /// input and keeps Firehose's `YYYY/MM/DD/HH/`.
    pub fn normalized_key(&self, raw_key: &str) -> String {
        format!(
            "{}{raw_key}{}",
            self.prefixes.normalized,
            self.ndjson_suffix()
        )
    }

    /// `<quarantine><raw key><suffix>`.
    pub fn quarantine_key(&self, raw_key: &str) -> String {
        format!(
            "{}{raw_key}{}",
            self.prefixes.quarantine,
            self.ndjson_suffix()
        )
    }

    /// `<alerts>YYYY/MM/DD/<id>.json`, dated by the alert's window start so the key is the
    /// same in every invocation that computes this alert.
    pub fn alert_key(&self, alert: &Alert) -> String {
        let date = alert
            .dedup
            .window_start
            .get(..10)
            .unwrap_or("0000-00-00")
            .replace('-', "/");
        format!("{}{date}/{}{ALERT_SUFFIX}", self.prefixes.alerts, alert.id)
    }

    /// `<state>claim/<alert id>/<destination>/<generation>`: an invocation's claim on
    /// sending the alert to `destination`. Generation 0 is the first claim; a claim whose
    /// owner died or let go is taken over by creating the next generation, so every claim is
    /// created if absent and no two invocations can hold the same one.
    pub fn claim(&self, alert_id: &str, destination: &str, generation: u32) -> String {
        format!("{}{alert_id}/{destination}/{generation}", self.claim)
    }

    /// `<state>storm/<rule>/<window start>/`: the marks of a rule's alerts in one window.
    pub fn storm_prefix(&self, alert: &Alert) -> String {
        format!(
            "{}{}/{}/",
            self.storm, alert.rule.name, alert.dedup.window_start
        )
    }

    /// `<alerts>YYYY/MM/DD/`: where the alerts of `alert`'s window day are.
    pub fn alerts_day_prefix(&self, alert: &Alert) -> String {
        let key = self.alert_key(alert);
        key[..key.rfind('/').map_or(0, |i| i + 1)].to_owned()
    }

    /// `<state>delivery/<alert id>/<destination>`: created once `destination` accepted the
    /// alert.
    pub fn delivery_marker(&self, alert_id: &str, destination: &str) -> String {
        format!("{}{alert_id}/{destination}", self.delivery)
    }
}

/// Whether `function` may do `op` in `area` ([`ACCESS`]).
pub fn allowed(function: &str, op: Op, area: Area) -> bool {
    ACCESS
        .iter()
        .any(|a| a.function == function && a.op == op && a.area == area)
}

/// The start of the hour an object is dated by in its key, in unix seconds: Firehose writes
/// `<prefix>YYYY/MM/DD/HH/<name>` (the hour it buffered the records in, UTC), and the parse
/// stage keeps that key under its own prefix (`normalized/raw/YYYY/MM/DD/HH/<name>.ndjson.zst`).
///
/// The date is the last run of `YYYY/MM/DD/HH` path segments that a name follows, whatever
/// comes before it: Firehose puts its date right before the name, and a prefix chosen by an
/// operator comes before that. `%2F` separates segments as `/` does (moto leaves `/` encoded
/// in event keys). `None` when there is no such run or its date does not exist (month 13,
/// hour 24, 31 February), never a guess.
pub fn key_hour(key: &str) -> Option<i64> {
    let key = key.replace("%2F", "/").replace("%2f", "/");
    let segments: Vec<&str> = key.split('/').collect();
    segments
        .windows(5)
        .rev()
        .filter(|w| !w[4].is_empty())
        .find_map(|w| date_hour(w[0], w[1], w[2], w[3]))
}

/// `YYYY`, `MM`, `DD`, `HH` (exactly that many digits each) as unix seconds, if that hour
/// exists.
fn date_hour(year: &str, month: &str, day: &str, hour: &str) -> Option<i64> {
    fn digits(s: &str, n: usize) -> Option<u16> {
        (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    }
    let month = time::Month::try_from(u8::try_from(digits(month, 2)?).ok()?).ok()?;
    let day = u8::try_from(digits(day, 2)?).ok()?;
    let date = time::Date::from_calendar_date(i32::from(digits(year, 4)?), month, day).ok()?;
    let hour = i64::from(digits(hour, 2)?);
    (hour < 24).then(|| date.midnight().assume_utc().unix_timestamp() + hour * 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str, window_start: &str) -> Alert {
        let mut a: Alert = serde_json::from_value(serde_json::json!({
            "id": id,
            "rule": {"name": "r", "id": "i", "title": "t", "level": "high"},
            "severity": "high",
            "title": "t",
            "dedup": {"fields": [], "values": [], "window": "1h", "window_start": window_start},
            "first_seen": window_start,
            "last_seen": window_start,
            "count": 1,
            "hosts": [],
            "host_count": 0,
            "attack": [],
            "samples": []
        }))
        .unwrap();
        a.dedup.window_start = window_start.into();
        a
    }

    #[test]
    fn keys_are_spelled_as_the_pipeline_always_spelled_them() {
        let l = Layout::default();
        let raw = "raw/2026/11/22/14/osquery results+1.gz";
        assert_eq!(
            l.normalized_key(raw),
            format!("normalized/{raw}.ndjson.zst")
        );
        assert_eq!(
            l.quarantine_key(raw),
            format!("quarantine/{raw}.ndjson.zst")
        );
        let gz = Layout::new(Prefixes::default(), Codec::Gzip);
        assert_eq!(
            gz.normalized_key(raw),
            format!("normalized/{raw}.ndjson.gz")
        );
        assert_eq!(
            gz.quarantine_key(raw),
            format!("quarantine/{raw}.ndjson.gz")
        );
        let a = alert("00ff", "2026-11-22T14:00:00Z");
        assert_eq!(l.alert_key(&a), "alerts/2026/11/22/00ff.json");
        assert_eq!(l.alert_key(&alert("x", "")), "alerts/0000/00/00/x.json");
        assert_eq!(l.claim("00ff", "slack", 2), "state/claim/00ff/slack/2");
        assert_eq!(
            l.delivery_marker("00ff", "slack"),
            "state/delivery/00ff/slack"
        );
        assert_eq!(l.prefix(Area::Claim), "state/claim/");
        assert_eq!(l.prefix(Area::Delivery), "state/delivery/");
    }

    #[test]
    fn the_ndjson_suffix_is_ndjson_and_the_codec_extension() {
        for codec in CODECS {
            let l = Layout::new(Prefixes::default(), codec);
            assert_eq!(l.ndjson_suffix(), format!(".ndjson{}", codec.extension()));
            assert!(NDJSON_SUFFIXES.contains(&l.ndjson_suffix()));
        }
        assert_eq!(NDJSON_SUFFIXES.len(), CODECS.len());
    }

    #[test]
    fn each_function_takes_its_areas_keys_only() {
        let l = Layout::default();
        assert!(l.is_raw("raw/a.gz") && l.is_raw("raw/"));
        assert!(!l.is_raw("normalized/raw/a.gz.ndjson.zst"));
        assert!(l.is_normalized("normalized/raw/a.gz.ndjson.zst"));
        assert!(l.is_normalized("normalized/raw/a.gz.ndjson.gz"));
        for other in [
            "normalized/a.zst",
            "normalized/a.ndjson",
            "normalized/a.json.gz",
            "raw/a.ndjson.zst",
            "",
        ] {
            assert!(!l.is_normalized(other), "{other}");
        }
        assert!(l.is_alert("alerts/2026/11/22/x.json"));
        assert!(!l.is_alert("alerts/2026/11/22/x.json.tmp"));
        assert!(!l.is_alert("state/claim/x.json"));
    }

    #[test]
    fn keys_are_told_apart_by_area() {
        let l = Layout::default();
        let a = alert("id", "2026-11-22T14:00:00Z");
        let keys = [
            ("raw/x", Area::Raw),
            (&l.normalized_key("raw/x"), Area::Normalized),
            (&l.quarantine_key("raw/x"), Area::Quarantine),
            (&l.alert_key(&a), Area::Alerts),
            (&l.claim("id", "sns", 0), Area::Claim),
            (&l.delivery_marker("id", "sns"), Area::Delivery),
        ];
        for (key, area) in keys {
            assert_eq!(l.area(key), Some(area), "{key}");
            if !area.suffixes().is_empty() {
                assert!(l.is(area, key), "{key}");
            }
        }
        assert_eq!(l.area("state/other"), None);
        assert_eq!(l.area("elsewhere/x"), None);
    }

    #[test]
    fn the_access_table_is_consistent() {
        for (function, area) in TRIGGERS {
            assert!(
                allowed(function, Op::Read, *area),
                "{function} reads {area:?}"
            );
        }
        // Every area a function is triggered on is written by another function (raw: by
        // Firehose).
        for (function, area) in TRIGGERS.iter().filter(|(_, a)| *a != Area::Raw) {
            let writers: Vec<_> = ACCESS
                .iter()
                .filter(|a| {
                    a.area == *area && matches!(a.op, Op::Write | Op::Put | Op::PutIfAbsent)
                })
                .collect();
            assert!(writers.iter().any(|a| a.function != *function), "{area:?}");
        }
        let mut rows = ACCESS.to_vec();
        rows.sort();
        rows.dedup();
        assert_eq!(rows.len(), ACCESS.len());
    }

    /// 2026-11-22T14:00:00Z, the hour of the S3 event fixtures (`events/s3`).
    const HOUR: i64 = 1_795_356_000;

    #[test]
    fn key_hour_of_real_shaped_keys() {
        for key in [
            // What Firehose writes, and what the parse stage makes of it.
            "raw/2026/11/22/14/tripline-osquery-1-2026-11-22-14-05-00-6d1f0c2e.gz",
            "normalized/raw/2026/11/22/14/tripline-osquery-1-2026-11-22-14-05-00-6d1f0c2e.gz.ndjson.zst",
            "normalized/raw/2026/11/22/14/x.gz.ndjson.gz",
            // Other prefixes, none, deeper ones, a space in the name.
            "2026/11/22/14/x.gz",
            "logs/osquery/prod/2026/11/22/14/fleet export:host/a 1+1.ndjson.zst",
            "normalized/2026/11/22/14/fleet export:host/a 1+1.ndjson.zst",
            // moto leaves `/` encoded, in either case.
            "raw%2F2026%2F11%2F22%2F14%2Ftripline+osquery+1.gz",
            "normalized%2fraw%2f2026%2f11%2f22%2f14%2fx.gz.ndjson.zst",
        ] {
            assert_eq!(key_hour(key), Some(HOUR), "{key}");
        }
        assert_eq!(key_hour("raw/2026/11/22/00/x.gz"), Some(HOUR - 14 * 3600));
        assert_eq!(key_hour("raw/2024/02/29/23/x.gz"), Some(1_709_247_600));
        // The date nearest the name wins over a date-like prefix.
        assert_eq!(
            key_hour("archive/2020/01/01/00/raw/2026/11/22/14/x.gz"),
            Some(HOUR)
        );
    }

    #[test]
    fn keys_without_a_date_have_no_hour() {
        for key in [
            "",
            "x.gz",
            "raw/x.gz",
            // No name after the hour: a folder, not an object.
            "raw/2026/11/22/14/",
            "raw/2026/11/22/14",
            // Dates that do not exist.
            "raw/2026/13/22/14/x.gz",
            "raw/2026/00/22/14/x.gz",
            "raw/2026/02/30/14/x.gz",
            "raw/2025/02/29/14/x.gz",
            "raw/2026/11/22/24/x.gz",
            // Not exactly YYYY/MM/DD/HH.
            "raw/2026/11/22/4/x.gz",
            "raw/26/11/22/14/x.gz",
            "raw/2026/11/22/+4/x.gz",
            "raw/20260/11/22/14/x.gz",
            "raw/2026-11-22-14/x.gz",
            "raw/2026/11/22/1４/x.gz",
            // Firehose's name carries a date too, but not as path segments.
            "raw/tripline-osquery-1-2026-11-22-14-05-00-6d1f0c2e.gz",
        ] {
            assert_eq!(key_hour(key), None, "{key}");
        }
    }
}
