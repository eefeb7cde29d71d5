//! The operating system family of the host an event came from (`derived.platform`), from
//! its decorations, columns, paths or pack name.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::col_str;
use crate::event::Event;
use crate::fields::{FieldName, FieldValue, Fields};

/// Operating system family of the host an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// macOS.
    Darwin,
    /// Linux.
    Linux,
    /// Windows.
    Windows,
}

impl Platform {
    /// The lower-case name, as serialized: `darwin`, `linux` or `windows`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Darwin => "darwin",
            Platform::Linux => "linux",
            Platform::Windows => "windows",
        }
    }
}

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

/// Maps an OS name as osquery and decorators report it (`darwin`, `ubuntu`, `rhel`,
/// `Microsoft Windows 11 Pro`) to its family; unknown names give `None` rather than a guess.
pub fn platform_from_name(name: &str) -> Option<Platform> {
    // Borrowed when already lower case (`darwin`, `ubuntu`): this runs for every event.
    let t = name.trim();
    let n: Cow<'_, str> = if t.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(t.to_ascii_lowercase())
    } else {
        Cow::Borrowed(t)
    };
    let n = n.as_ref();
    if n.is_empty() {
        return None;
    }
    // The bare names osquery and decorators usually report decide without the substring
    // searches below (each sets up a searcher, and this runs for every event). None of
    // them contains another family's marker, so the answer is the same.
    match n {
        "darwin" | "macos" | "osx" => return Some(Platform::Darwin),
        "windows" | "win32" | "win64" => return Some(Platform::Windows),
        _ if LINUX.contains(&n) => return Some(Platform::Linux),
        _ => {}
    }
    if n.contains("darwin") || n.contains("macos") || n.contains("mac os") || n == "osx" {
        return Some(Platform::Darwin);
    }
    if n.contains("windows") || n == "win32" || n == "win64" {
        return Some(Platform::Windows);
    }
    const LINUX: &[&str] = &[
        "linux",
        "ubuntu",
        "debian",
        "rhel",
        "centos",
        "fedora",
        "amzn",
        "amazon",
        "arch",
        "suse",
        "opensuse",
        "gentoo",
        "alpine",
        "rocky",
        "almalinux",
        "manjaro",
        "kali",
        "oracle",
        "ol",
        "pop",
        "mint",
        "nixos",
    ];
    let first = n.split(|c: char| !c.is_ascii_alphanumeric()).next()?;
    if LINUX.contains(&first) || n.contains("linux") {
        return Some(Platform::Linux);
    }
    None
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
