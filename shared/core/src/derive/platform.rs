//! The operating system family of the host an event came from (`derived.platform`), from
//! its decorations, columns, paths or pack name.

use super::col_str;
use crate::event::Event;
use crate::fields::{FieldName, FieldValue, Fields};
pub use crate::platform::{platform_from_name, Platform};

/// Decoration and column names that carry the OS (osquery's `os_version.platform`,
/// `osquery_info.build_platform`, common decorator names).
const PLATFORM_KEYS: &[FieldName] = &[
    name!("platform"),
    name!("os_platform"),
    name!("build_platform"),
    name!("os"),
    name!("platform_like"),
    name!("os_family"),
];

pub(super) fn platform(event: &Event) -> Option<Platform> {
    for map in [&event.decorations, &event.columns] {
        for &key in PLATFORM_KEYS {
            if let Some(p) = col_str(map, key).and_then(|v| platform_from_name(&v)) {
                return Some(p);
            }
        }
    }
    for map in [&event.columns, &event.decorations] {
        for v in map.values() {
            if let FieldValue::Str(s) = v {
                if let Some(p) = platform_from_path(s) {
                    return Some(p);
                }
            }
        }
    }
    event.pack.as_deref().and_then(platform_from_pack)
}

/// The platform a record's decorations (or, failing those, its pack's name) declare: what
/// the decoder knows of a host before looking at any row.
pub(crate) fn declared_platform(decorations: &Fields, pack: Option<&str>) -> Option<Platform> {
    PLATFORM_KEYS
        .iter()
        .find_map(|&key| col_str(decorations, key).and_then(|v| platform_from_name(&v)))
        .or_else(|| pack.and_then(platform_from_pack))
}

/// Path prefixes that exist on one OS family only.
fn platform_from_path(s: &str) -> Option<Platform> {
    let b = s.as_bytes();
    if b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\' {
        return Some(Platform::Windows);
    }
    if s.starts_with("\\\\") && s.len() > 2 {
        return Some(Platform::Windows);
    }
    const DARWIN: &[&str] = &[
        "/Users/",
        "/Applications/",
        "/Library/",
        "/System/Library/",
        "/private/var/",
        "/private/etc/",
    ];
    if DARWIN.iter().any(|p| s.starts_with(p)) {
        return Some(Platform::Darwin);
    }
    const LINUX: &[&str] = &[
        "/home/",
        "/proc/",
        "/etc/systemd/",
        "/lib/systemd/",
        "/snap/",
    ];
    if LINUX.iter().any(|p| s.starts_with(p)) {
        return Some(Platform::Linux);
    }
    None
}

fn platform_from_pack(pack: &str) -> Option<Platform> {
    let p = pack.to_ascii_lowercase();
    if p.contains("osx") || p.contains("macos") || p.contains("darwin") {
        Some(Platform::Darwin)
    } else if p.contains("windows") {
        Some(Platform::Windows)
    } else if p.contains("linux") {
        Some(Platform::Linux)
    } else {
        None
    }
}
