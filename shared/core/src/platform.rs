//! Operating system families, as osquery's schema and hosts name them. A leaf: the table
//! schema (which tables exist where) and the derived fields (which OS a host runs) both read
//! it.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

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
