//! Synthetic Firehose objects shaped like what a real fleet sends, deterministic by seed.
//!
//! Two shapes:
//! - [`Shape::Osquery`]: osquery's own Firehose logger. Every scalar is a string, `/` is
//!   written `\/`, empty containers are `""`, `log_type` is appended, records end in `\n`,
//!   names are `pack_<pack>_<query>` (or plain schedule names).
//! - [`Shape::Fleet`]: Fleet's Firehose logging. Native JSON numbers and booleans at the top
//!   level, `pack/Global/<query>` (or `pack/team-<n>/<query>`) names, and about a third of
//!   hosts with `--log_numerics_as_numbers` (numeric columns as JSON numbers).
//!
//! The mix is what a fleet logs: evented tables (process_events, socket_events) dominate,
//! then differential results of processes, listening_ports, shell_history, crontab, users,
//! deb_packages, logged_in_users and osquery_info, as single events, `diffResults` batches
//! and `snapshot` records, over thousands of hosts. Values vary (pids, paths, command lines,
//! addresses, ports, times) so the objects compress like real osquery logs (~8-15x), not like
//! a repeated template. About 0.1% of records are attack activity taken from the row shapes
//! of `events/osquery/attack-*.ndjson`, re-targeted to a generated host and time, which the
//! built-in rules fire on; the benign rows are chosen not to fire them.
//!
//! Size is measured in gzip bytes (what Firehose buffers and S3 stores): generation stops
//! once the compressed output reaches the target.

use std::io::{self, Write};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::Value;

use crate::pipeline::CountingWriter;

/// The attack records every generated corpus draws from.
const ATTACK_SOURCES: &[&str] = &[
    include_str!("../../events/osquery/attack-linux.ndjson"),
    include_str!("../../events/osquery/attack-macos.ndjson"),
];

/// Start of generated time: Mon 2026-11-16 08:00:00 UTC.
pub(crate) const T0: i64 = 1_794_816_000;

/// Which Firehose logger wrote the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Osquery,
    Fleet,
}

impl std::str::FromStr for Shape {
    type Err = String;
    fn from_str(s: &str) -> Result<Shape, String> {
        match s {
            "osquery" => Ok(Shape::Osquery),
            "fleet" => Ok(Shape::Fleet),
            _ => Err(format!("unknown shape {s:?} (osquery or fleet)")),
        }
    }
}

/// Parses `5MiB`, `128MiB`, `512KiB` or a plain byte count.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(format!("bad size unit in {s:?} (use KiB, MiB or GiB)")),
    };
    Ok(n * mult)
}

/// What a generation run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenStats {
    pub records: u64,
    /// Rows across all records (= events the decoder should produce).
    pub rows: u64,
    pub attack_records: u64,
    pub plain_bytes: u64,
    pub gzip_bytes: u64,
    pub hosts: u64,
}

/// Attack records per 10,000 records in [`generate`]: about 0.1%.
pub const ATTACKS_PER_10K: u32 = 10;

/// Writes one gzip object of about `target_gzip_bytes` to `out`.
pub fn generate(
    seed: u64,
    target_gzip_bytes: u64,
    shape: Shape,
    out: impl Write,
) -> io::Result<GenStats> {
    generate_with(seed, target_gzip_bytes, shape, ATTACKS_PER_10K, out)
}

/// [`generate`] with another share of attack records (tests use more, to stay small).
pub fn generate_with(
    seed: u64,
    target_gzip_bytes: u64,
    shape: Shape,
    attacks_per_10k: u32,
    out: impl Write,
) -> io::Result<GenStats> {
    let mut enc = GzEncoder::new(
        CountingWriter {
            inner: out,
            count: 0,
        },
        Compression::default(),
    );
    let mut g = Generator::new(seed, shape, target_gzip_bytes);
    g.attacks_per_10k = attacks_per_10k;
    let mut buf = Vec::with_capacity(1 << 20);
    let mut stats = GenStats {
        hosts: g.hosts.len() as u64,
        ..Default::default()
    };
    loop {
        buf.clear();
        // A batch of records between size checks: the encoder's output lags its input by
        // its internal buffer, so checking too often is pointless.
        while buf.len() < 256 << 10 {
            let rows = g.record(&mut buf, &mut stats);
            stats.rows += rows;
            stats.records += 1;
        }
        enc.write_all(&buf)?;
        stats.plain_bytes += buf.len() as u64;
        if enc.get_ref().count >= target_gzip_bytes {
            break;
        }
    }
    let w = enc.finish()?;
    stats.gzip_bytes = w.count;
    Ok(stats)
}

/// Generates into memory (for tests and small objects).
pub fn generate_vec(
    seed: u64,
    target_gzip_bytes: u64,
    shape: Shape,
    attacks_per_10k: u32,
) -> (Vec<u8>, GenStats) {
    let mut v = Vec::new();
    let stats = generate_with(seed, target_gzip_bytes, shape, attacks_per_10k, &mut v)
        .expect("writing to a Vec");
    (v, stats)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Os {
    Linux,
    Darwin,
}

struct Host {
    id: String,
    uuid: String,
    os: Os,
    distro: &'static str,
    osquery: &'static str,
    numerics: bool,
    team: u32,
    counter: u64,
}

/// A scalar in a generated row: text, or a number that the Firehose logger stringifies and
/// a `numerics` host logs natively.
enum V {
    S(String),
    N(i64),
}

type Row = Vec<(&'static str, V)>;

struct Generator {
    rng: fastrand::Rng,
    shape: Shape,
    hosts: Vec<Host>,
    attacks: Vec<Value>,
    t: i64,
    tick: u64,
    /// Hosts send their buffered logs in batches (osquery's logger flushes many records at
    /// once), so consecutive records in a Firehose object mostly come from the same host.
    host: usize,
    burst: u32,
    /// The current host's own address and a few of its long-lived parent pids.
    host_ip: String,
    parents: [i64; 4],
    /// Linux hands out pids in sequence: new processes on one host have nearby pids.
    next_pid: i64,
    /// Where a fleet's connections go: mostly a few hundred services and CDN edges.
    remotes: Vec<String>,
    attacks_per_10k: u32,
}

const WORDS: &[&str] = &[
    "api",
    "worker",
    "billing",
    "ingest",
    "queue",
    "cache",
    "auth",
    "report",
    "sync",
    "export",
    "search",
    "index",
    "metrics",
    "gateway",
    "render",
    "upload",
    "notify",
    "ledger",
    "orders",
    "catalog",
    "session",
    "payments",
    "inventory",
    "scheduler",
    "mailer",
    "thumbs",
    "feeds",
];
const LINUX_BINS: &[&str] = &[
    "/usr/bin/python3.11",
    "/usr/bin/node",
    "/usr/sbin/nginx",
    "/usr/bin/java",
    "/usr/lib/postgresql/15/bin/postgres",
    "/usr/bin/redis-server",
    "/usr/bin/dockerd",
    "/usr/bin/containerd-shim-runc-v2",
    "/usr/sbin/sshd",
    "/usr/lib/systemd/systemd-journald",
    "/usr/bin/bash",
    "/usr/bin/git",
    "/usr/bin/make",
    "/usr/bin/gcc-12",
    "/usr/bin/grep",
    "/usr/bin/tar",
    "/usr/bin/gzip",
    "/usr/bin/ps",
    "/usr/sbin/cron",
    "/usr/bin/rsync",
    "/opt/datadog-agent/bin/agent/agent",
    "/usr/local/bin/node_exporter",
    "/usr/bin/envoy",
    "/usr/local/go/bin/go",
];
const MAC_BINS: &[&str] = &[
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Slack.app/Contents/MacOS/Slack",
    "/Applications/zoom.us.app/Contents/MacOS/zoom.us",
    "/System/Library/CoreServices/Finder.app/Contents/MacOS/Finder",
    "/usr/libexec/trustd",
    "/usr/sbin/mDNSResponder",
    "/bin/zsh",
    "/usr/bin/git",
    "/opt/homebrew/bin/node",
    "/opt/homebrew/bin/python3.12",
    "/Applications/Visual Studio Code.app/Contents/MacOS/Electron",
    "/usr/libexec/xpcproxy",
];
const SHELL_CMDS: &[&str] = &[
    "git status",
    "git pull --rebase origin main",
    "kubectl get pods -n {w}",
    "kubectl logs -f deploy/{w} --since=10m",
    "docker ps -a",
    "docker compose up -d {w}",
    "ls -la /var/log/{w}",
    "tail -n 200 /var/log/{w}/current.log",
    "sudo systemctl restart {w}",
    "journalctl -u {w} --since '1 hour ago'",
    "cd /srv/{w} && make test",
    "vim config/{w}.yaml",
    "grep -rn TODO src/{w}",
    "psql -h db-{n}.internal -U {w} -c 'select count(*) from {w}'",
    "ssh deploy@{w}-{n}.internal",
    "terraform plan -target=module.{w}",
    "htop",
    "df -h",
    "python3 manage.py migrate {w}",
    "npm run build --workspace={w}",
];
const CRON_CMDS: &[&str] = &[
    "root cd / && run-parts --report /etc/cron.hourly",
    "root test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }",
    "/usr/local/bin/backup-{w} --target s3-{n}",
    "/usr/bin/find /var/log/{w} -name '*.gz' -mtime +14 -delete",
    "/usr/sbin/logrotate /etc/logrotate.d/{w}",
    "/srv/{w}/bin/cleanup --older-than {n}d",
    "/usr/bin/certbot -q renew",
];
const PACKAGES: &[&str] = &[
    "openssl",
    "libssl3",
    "curl",
    "libcurl4",
    "bash",
    "coreutils",
    "systemd",
    "libc6",
    "python3.11",
    "nginx",
    "postgresql-15",
    "redis-server",
    "git",
    "vim",
    "tzdata",
    "ca-certificates",
    "linux-image-6.1.0-27-amd64",
    "openssh-server",
    "sudo",
    "zlib1g",
    "libzstd1",
    "gnupg",
    "apt",
    "containerd.io",
    "docker-ce",
    "nodejs",
    "golang-1.22",
    "rsync",
    "tar",
    "libsqlite3-0",
];
const USERS: &[&str] = &[
    "deploy",
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "oscar",
    "peggy",
    "trent",
    "victor",
    "walter",
    "ci-runner",
    "backup",
    "postgres",
];
const PORTS: &[i64] = &[
    443, 443, 443, 80, 53, 5432, 6379, 8080, 9092, 8443, 3306, 9200,
];

impl Generator {
    fn new(seed: u64, shape: Shape, target: u64) -> Generator {
        let mut rng = fastrand::Rng::with_seed(seed);
        // Thousands of hosts; a 5 MiB object from a big fleet still spans most of them.
        let n_hosts = if target >= 32 << 20 { 6000 } else { 2500 };
        let mut hosts = Vec::with_capacity(n_hosts);
        for i in 0..n_hosts {
            let os = if rng.u32(0..100) < 80 {
                Os::Linux
            } else {
                Os::Darwin
            };
            let id = match os {
                Os::Linux => match rng.u32(0..3) {
                    0 => format!(
                        "ip-10-{}-{}-{}.ec2.internal",
                        rng.u8(0..=255),
                        rng.u8(0..=255),
                        rng.u8(1..=254)
                    ),
                    1 => format!(
                        "{}-{:04}.prod.example.com",
                        WORDS[rng.usize(0..WORDS.len())],
                        i
                    ),
                    _ => format!("{:08x}-{:04}", rng.u32(..), i),
                },
                Os::Darwin => format!("{}-mbp-{:04}.local", USERS[rng.usize(0..12)], i),
            };
            hosts.push(Host {
                id,
                uuid: uuid(&mut rng),
                os,
                distro: match os {
                    Os::Linux => ["ubuntu", "debian", "amzn", "rhel"][rng.usize(0..4)],
                    Os::Darwin => "darwin",
                },
                osquery: ["5.12.1", "5.13.1", "5.14.1", "5.15.0"][rng.usize(0..4)],
                numerics: shape == Shape::Fleet && rng.u32(0..3) == 0,
                team: rng.u32(1..6),
                counter: rng.u64(1..400),
            });
        }
        let attacks = ATTACK_SOURCES
            .iter()
            .flat_map(|s| s.lines())
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("name").is_some())
            .collect();
        Generator {
            rng,
            shape,
            hosts,
            attacks,
            t: T0,
            tick: 0,
            host: 0,
            burst: 0,
            host_ip: String::new(),
            parents: [1; 4],
            next_pid: 1000,
            remotes: Vec::new(),
            attacks_per_10k: ATTACKS_PER_10K,
        }
    }

    /// Writes one record and returns its number of rows.
    fn record(&mut self, out: &mut Vec<u8>, stats: &mut GenStats) -> u64 {
        self.tick += 1;
        // About 300 records per second of fleet time.
        if self.tick.is_multiple_of(300) {
            self.t += 1;
        }
        if self.burst == 0 {
            self.host = self.rng.usize(0..self.hosts.len());
            self.burst = self.rng.u32(1..120);
            self.next_pid = self.rng.i64(1000..3_000_000);
            self.host_ip = self.ip_private();
            self.parents = [
                1,
                self.rng.i64(300..40_000),
                self.rng.i64(300..40_000),
                self.rng.i64(300..400_000),
            ];
        }
        self.burst -= 1;
        let h = self.host;
        if self.rng.u32(0..10_000) < self.attacks_per_10k {
            stats.attack_records += 1;
            return self.attack(h, out);
        }
        let t = self.t;
        let r = self.rng.u32(0..1000);
        let os = self.hosts[h].os;
        let (query, pack, rows, format): (&str, &str, Vec<(char, Row)>, Fmt) = match r {
            0..=299 => {
                let n = if self.rng.u32(0..10) < 7 {
                    1
                } else {
                    self.rng.usize(2..12)
                };
                let rows = (0..n)
                    .map(|_| ('a', self.process_event(os, t)))
                    .collect::<Vec<_>>();
                ("process_events", "incident-response", rows, fmt_for(n))
            }
            300..=449 => {
                let n = if self.rng.u32(0..10) < 7 {
                    1
                } else {
                    self.rng.usize(2..10)
                };
                let rows = (0..n).map(|_| ('a', self.socket_event(os, t))).collect();
                ("socket_events", "incident-response", rows, fmt_for(n))
            }
            450..=589 => {
                let rows = (0..self.rng.usize(1..4))
                    .map(|_| (if self.rng.bool() { 'a' } else { 'r' }, self.process(os, t)))
                    .collect::<Vec<_>>();
                let f = fmt_for(rows.len());
                ("processes", "tripline-common", rows, f)
            }
            590..=594 => {
                let rows = (0..self.rng.usize(40..160))
                    .map(|_| {
                        if os == Os::Linux && self.rng.bool() {
                            ('s', self.kernel_thread(t))
                        } else {
                            ('s', self.process(os, t))
                        }
                    })
                    .collect();
                ("processes", "tripline-common", rows, Fmt::Snapshot)
            }
            595..=659 => {
                let rows: Vec<_> = (0..self.rng.usize(1..3))
                    .map(|_| {
                        (
                            if self.rng.bool() { 'a' } else { 'r' },
                            self.listening_port(os),
                        )
                    })
                    .collect();
                let f = fmt_for(rows.len());
                ("listening_ports", "tripline-common", rows, f)
            }
            660..=674 => {
                let rows = (0..self.rng.usize(8..30))
                    .map(|_| ('s', self.listening_port(os)))
                    .collect();
                ("listening_ports", "tripline-common", rows, Fmt::Snapshot)
            }
            675..=714 => {
                let rows = (0..self.rng.usize(1..4))
                    .map(|_| ('a', self.crontab()))
                    .collect::<Vec<_>>();
                let f = fmt_for(rows.len());
                ("crontab", "tripline-common", rows, f)
            }
            715..=814 => {
                let rows = (0..self.rng.usize(1..6))
                    .map(|_| ('a', self.shell_history(os, t)))
                    .collect::<Vec<_>>();
                let f = fmt_for(rows.len());
                ("shell_history", "tripline-common", rows, f)
            }
            815..=849 => {
                let rows = (0..self.rng.usize(1..3))
                    .map(|_| (if self.rng.bool() { 'a' } else { 'r' }, self.user(os)))
                    .collect::<Vec<_>>();
                let f = fmt_for(rows.len());
                ("users", "tripline-common", rows, f)
            }
            850..=919 if os == Os::Linux => {
                // An upgrade: the old version removed, the new one added.
                let mut rows = Vec::new();
                for _ in 0..self.rng.usize(1..6) {
                    let p = self.rng.usize(0..PACKAGES.len());
                    let (a, b) = (self.rng.u32(1..40), self.rng.u32(1..9));
                    rows.push(('r', self.deb_package(p, a, b)));
                    rows.push(('a', self.deb_package(p, a, b + 1)));
                }
                ("deb_packages", "tripline-linux", rows, Fmt::Batch)
            }
            850..=969 => {
                let rows = (0..self.rng.usize(1..4))
                    .map(|_| {
                        (
                            if self.rng.bool() { 'a' } else { 'r' },
                            self.logged_in_user(t),
                        )
                    })
                    .collect::<Vec<_>>();
                let f = fmt_for(rows.len());
                ("logged_in_users", "tripline-common", rows, f)
            }
            _ => {
                let rows = vec![('s', self.osquery_info(h, t))];
                ("osquery_info", "tripline-common", rows, Fmt::Snapshot)
            }
        };
        let n = rows.len() as u64;
        self.write_record(out, h, query, pack, &rows, format, t);
        n
    }

    fn name(&mut self, h: usize, query: &str, pack: &str) -> String {
        match self.shape {
            Shape::Osquery => {
                if pack == "incident-response" && self.rng.u32(0..3) == 0 {
                    // A plain `schedule` query (osquery 5), no pack prefix.
                    query.to_string()
                } else {
                    format!("pack_{pack}_{query}")
                }
            }
            Shape::Fleet => {
                let team = self.hosts[h].team;
                if team == 1 {
                    format!("pack/team-{team}/{query}")
                } else {
                    format!("pack/Global/{query}")
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write_record(
        &mut self,
        out: &mut Vec<u8>,
        h: usize,
        query: &str,
        pack: &str,
        rows: &[(char, Row)],
        format: Fmt,
        t: i64,
    ) {
        let name = self.name(h, query, pack);
        let fh = self.shape == Shape::Osquery;
        let host = &mut self.hosts[h];
        host.counter += 1;
        let numerics = host.numerics;
        let w = |out: &mut Vec<u8>, s: &str| json_str(out, s, fh);
        let num = |out: &mut Vec<u8>, n: i64| {
            if fh {
                out.push(b'"');
                out.extend_from_slice(n.to_string().as_bytes());
                out.push(b'"');
            } else {
                out.extend_from_slice(n.to_string().as_bytes());
            }
        };
        // osquery keeps a row in a `std::map<std::string, ...>`, so it writes the columns in
        // name (byte) order; so do the decorations below.
        let write_row = |out: &mut Vec<u8>, row: &Row| {
            out.push(b'{');
            let mut sorted: Vec<&(&str, V)> = row.iter().collect();
            sorted.sort_unstable_by_key(|(k, _)| *k);
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(out, k, fh);
                out.push(b':');
                match v {
                    V::S(s) => json_str(out, s, fh),
                    V::N(n) if numerics => out.extend_from_slice(n.to_string().as_bytes()),
                    V::N(n) => {
                        out.push(b'"');
                        out.extend_from_slice(n.to_string().as_bytes());
                        out.push(b'"');
                    }
                }
            }
            out.push(b'}');
        };
        let write_rows = |out: &mut Vec<u8>, which: char| {
            let mut any = false;
            for (_, row) in rows.iter().filter(|(a, _)| *a == which) {
                out.push(if any { b',' } else { b'[' });
                any = true;
                write_row(out, row);
            }
            if any {
                out.push(b']');
            } else if fh {
                out.extend_from_slice(b"\"\"");
            } else {
                out.extend_from_slice(b"[]");
            }
        };
        out.push(b'{');
        match format {
            Fmt::Batch => {
                out.extend_from_slice(b"\"diffResults\":{\"removed\":");
                write_rows(out, 'r');
                out.extend_from_slice(b",\"added\":");
                write_rows(out, 'a');
                out.extend_from_slice(b"},");
            }
            Fmt::Snapshot => {
                out.extend_from_slice(b"\"snapshot\":");
                write_rows(out, 's');
                out.extend_from_slice(b",\"action\":\"snapshot\",");
            }
            Fmt::Event => {}
        }
        out.extend_from_slice(b"\"name\":");
        w(out, &name);
        out.extend_from_slice(b",\"hostIdentifier\":");
        w(out, &host.id);
        out.extend_from_slice(b",\"calendarTime\":");
        w(out, &calendar_time(t));
        out.extend_from_slice(b",\"unixTime\":");
        num(out, t);
        out.extend_from_slice(b",\"epoch\":");
        num(out, 0);
        out.extend_from_slice(b",\"counter\":");
        num(
            out,
            if format == Fmt::Snapshot {
                0
            } else {
                host.counter as i64
            },
        );
        out.extend_from_slice(b",\"numerics\":");
        if fh {
            out.extend_from_slice(if numerics { b"\"true\"" } else { b"\"false\"" });
        } else {
            out.extend_from_slice(if numerics { b"true" } else { b"false" });
        }
        out.extend_from_slice(b",\"decorations\":{\"host_uuid\":");
        w(out, &host.uuid);
        out.extend_from_slice(b",\"hostname\":");
        w(out, &host.id);
        out.extend_from_slice(b",\"osquery_version\":");
        w(out, host.osquery);
        out.extend_from_slice(b",\"platform\":");
        w(out, host.distro);
        out.push(b'}');
        if format == Fmt::Event {
            let (action, row) = &rows[0];
            out.extend_from_slice(b",\"columns\":");
            write_row(out, row);
            out.extend_from_slice(if *action == 'r' {
                b",\"action\":\"removed\""
            } else {
                b",\"action\":\"added\""
            });
        }
        if fh {
            out.extend_from_slice(b",\"log_type\":\"result\"");
        }
        out.extend_from_slice(b"}\n");
    }

    /// One record from the attack samples, moved to host `h` at the current time.
    fn attack(&mut self, h: usize, out: &mut Vec<u8>) -> u64 {
        let mut v = self.attacks[self.rng.usize(0..self.attacks.len())].clone();
        let host = &self.hosts[h];
        let obj = v.as_object_mut().expect("attack samples are objects");
        let old_t = obj
            .get("unixTime")
            .and_then(|t| t.as_i64().or_else(|| t.as_str()?.parse().ok()))
            .unwrap_or(self.t);
        let shift = self.t - old_t;
        obj.insert("hostIdentifier".into(), Value::String(host.id.clone()));
        obj.insert("unixTime".into(), Value::from(self.t));
        obj.insert("calendarTime".into(), Value::String(calendar_time(self.t)));
        if let Some(Value::Object(d)) = obj.get_mut("decorations") {
            d.insert("hostname".into(), Value::String(host.id.clone()));
            d.insert("host_uuid".into(), Value::String(host.uuid.clone()));
        }
        if self.shape == Shape::Fleet {
            if let Some(Value::String(name)) = obj.get("name") {
                let (_, query) = tripline_core::query_name::parse(name);
                let query = query.to_string();
                obj.insert("name".into(), Value::String(format!("pack/Global/{query}")));
            }
        }
        // Row times move with the record, so history rows stay as fresh as they were.
        let mut rows = 0;
        for_each_row(obj, &mut |row| {
            rows += 1;
            if let Some(tv) = row.get_mut("time") {
                let n = tv.as_i64().or_else(|| tv.as_str()?.parse().ok());
                if let Some(n) = n.filter(|n| *n > 1_000_000_000) {
                    *tv = if tv.is_string() {
                        Value::String((n + shift).to_string())
                    } else {
                        Value::from(n + shift)
                    };
                }
            }
        });
        match self.shape {
            Shape::Osquery => {
                let mut v = firehose_form(v);
                if let Value::Object(m) = &mut v {
                    m.insert("log_type".into(), Value::String("result".into()));
                }
                write_value(out, &v, true);
            }
            Shape::Fleet => write_value(out, &v, false),
        }
        out.push(b'\n');
        rows
    }

    fn word(&mut self) -> &'static str {
        WORDS[self.rng.usize(0..WORDS.len())]
    }

    fn bin(&mut self, os: Os) -> String {
        if self.rng.u32(0..5) == 0 {
            match os {
                Os::Linux => format!(
                    "/srv/{}/releases/{:08x}/bin/{}",
                    self.word(),
                    self.rng.u32(..),
                    self.word()
                ),
                Os::Darwin => format!(
                    "/Users/{}/go/bin/{}-{}",
                    USERS[self.rng.usize(0..12)],
                    self.word(),
                    self.rng.u32(1..99)
                ),
            }
        } else {
            let list = if os == Os::Linux {
                LINUX_BINS
            } else {
                MAC_BINS
            };
            list[self.rng.usize(0..list.len())].to_string()
        }
    }

    /// A command line for `path`: each binary runs with one of a few argument lists, as
    /// services do; one in eight is a one-off command with arguments of its own.
    fn cmdline(&mut self, path: &str) -> String {
        let variant = if self.rng.u32(0..8) == 0 {
            self.rng.u64(..)
        } else {
            self.rng.u64(0..6)
        };
        let mut r = fastrand::Rng::with_seed(stable(path, i64::MAX) as u64 ^ variant);
        let word = |r: &mut fastrand::Rng| WORDS[r.usize(0..WORDS.len())];
        let mut c = path.to_string();
        for _ in 0..r.usize(0..6) {
            c.push(' ');
            match r.u32(0..6) {
                0 => c.push_str(&format!("--{}={}", word(&mut r), r.u32(1..64))),
                1 => c.push_str(&format!("/var/lib/{}/{}.db", word(&mut r), word(&mut r))),
                2 => c.push_str(&format!(
                    "--host={}-{}.internal:{}",
                    word(&mut r),
                    r.u32(1..400),
                    PORTS[r.usize(0..PORTS.len())]
                )),
                3 => c.push_str(&format!("-j{}", r.u32(1..64))),
                4 => c.push_str(&format!(
                    "--config=/etc/{}/{}.yaml",
                    word(&mut r),
                    word(&mut r)
                )),
                _ => c.push_str(word(&mut r)),
            }
        }
        c
    }

    fn process_event(&mut self, os: Os, t: i64) -> Row {
        let path = self.bin(os);
        let cmd = self.cmdline(&path);
        let uid = if self.rng.bool() {
            0
        } else {
            self.rng.i64(1000..1100)
        };
        let uptime = t - T0 + stable(&cmd[..cmd.len().min(12)], 5_000_000);
        self.next_pid += self.rng.i64(1..40);
        let file_time = T0 - stable(&path, 90_000_000);
        vec![
            ("pid", V::N(self.next_pid)),
            ("parent", V::N(self.parents[self.rng.usize(0..4)])),
            ("path", V::S(path)),
            ("mode", V::S("0100755".into())),
            ("cmdline_size", V::N(cmd.len() as i64)),
            ("cmdline", V::S(cmd)),
            ("env", V::S(String::new())),
            ("env_count", V::N(self.rng.i64(5..60))),
            ("env_size", V::N(self.rng.i64(200..4000))),
            ("cwd", V::S(format!("/srv/{}", self.word()))),
            ("auid", V::N(uid)),
            ("uid", V::N(uid)),
            ("euid", V::N(uid)),
            ("gid", V::N(uid)),
            ("egid", V::N(uid)),
            ("owner_uid", V::N(0)),
            ("owner_gid", V::N(0)),
            ("atime", V::N(t - self.rng.i64(0..86_400))),
            ("mtime", V::N(file_time)),
            ("ctime", V::N(file_time)),
            ("btime", V::N(0)),
            ("overflows", V::S(String::new())),
            ("time", V::N(t - self.rng.i64(0..60))),
            ("uptime", V::N(uptime)),
            ("eid", V::N(uptime * 7 + self.rng.i64(0..100))),
            ("status", V::N(0)),
            ("syscall", V::S("execve".into())),
        ]
    }

    fn socket_event(&mut self, os: Os, t: i64) -> Row {
        let connect = self.rng.u32(0..10) < 8;
        vec![
            (
                "action",
                V::S(if connect { "connect" } else { "bind" }.into()),
            ),
            ("pid", V::N(self.next_pid - self.rng.i64(0..400))),
            ("path", V::S(self.bin(os))),
            ("fd", V::N(self.rng.i64(3..900))),
            ("auid", V::N(self.rng.i64(0..1100))),
            ("success", V::N(1)),
            ("family", V::N(2)),
            ("protocol", V::N(6)),
            ("local_address", V::S(self.host_ip.clone())),
            (
                "remote_address",
                V::S(if connect {
                    self.ip_any()
                } else {
                    "0.0.0.0".into()
                }),
            ),
            ("local_port", V::N(self.rng.i64(32768..61000))),
            (
                "remote_port",
                V::N(if connect {
                    PORTS[self.rng.usize(0..PORTS.len())]
                } else {
                    0
                }),
            ),
            ("socket", V::S(String::new())),
            ("time", V::N(t - self.rng.i64(0..60))),
            ("uptime", V::N(t - T0 + 86_400)),
            ("eid", V::N((t - T0) * 11 + self.rng.i64(0..100))),
            ("status", V::N(0)),
        ]
    }

    fn process(&mut self, os: Os, t: i64) -> Row {
        let path = self.bin(os);
        let name = path.rsplit('/').next().unwrap_or("x").to_string();
        let cmd = self.cmdline(&path);
        let uid = if self.rng.bool() {
            0
        } else {
            self.rng.i64(1000..1100)
        };
        vec![
            ("pid", V::N(self.rng.i64(300..4_000_000))),
            ("name", V::S(name)),
            ("path", V::S(path)),
            ("cmdline", V::S(cmd)),
            (
                "state",
                V::S(if self.rng.bool() { "S" } else { "R" }.into()),
            ),
            ("cwd", V::S(format!("/srv/{}", self.word()))),
            ("root", V::S("/".into())),
            ("uid", V::N(uid)),
            ("gid", V::N(uid)),
            ("euid", V::N(uid)),
            ("egid", V::N(uid)),
            ("on_disk", V::N(1)),
            ("wired_size", V::N(0)),
            ("resident_size", V::N(self.rng.i64(256..1 << 19) * 4096)),
            ("total_size", V::N(self.rng.i64(1024..1 << 21) * 4096)),
            ("user_time", V::N(self.rng.i64(0..90_000))),
            ("system_time", V::N(self.rng.i64(0..9_000))),
            ("disk_bytes_read", V::N(self.rng.i64(0..1 << 20) * 4096)),
            ("disk_bytes_written", V::N(self.rng.i64(0..1 << 18) * 4096)),
            ("start_time", V::N(t - self.rng.i64(0..9_000_000))),
            ("parent", V::N(self.parents[self.rng.usize(0..4)])),
            ("pgroup", V::N(self.parents[self.rng.usize(0..4)])),
            ("threads", V::N(self.rng.i64(1..200))),
            ("nice", V::N(0)),
        ]
    }

    /// Half of a Linux process table: kernel threads, no path or command line.
    fn kernel_thread(&mut self, t: i64) -> Row {
        let name = format!(
            "{}/{}:{}",
            [
                "kworker",
                "ksoftirqd",
                "migration",
                "rcu_gp",
                "kthreadd",
                "jbd2"
            ][self.rng.usize(0..6)],
            self.rng.u32(0..16),
            self.rng.u32(0..3)
        );
        let mut row: Row = vec![
            ("pid", V::N(self.rng.i64(2..3000))),
            ("name", V::S(name)),
            ("path", V::S(String::new())),
            ("cmdline", V::S(String::new())),
            ("state", V::S("I".into())),
            ("cwd", V::S("/".into())),
            ("root", V::S("/".into())),
        ];
        for k in ["uid", "gid", "euid", "egid"] {
            row.push((k, V::N(0)));
        }
        row.push(("on_disk", V::N(-1)));
        for k in [
            "wired_size",
            "resident_size",
            "total_size",
            "user_time",
            "system_time",
            "disk_bytes_read",
            "disk_bytes_written",
        ] {
            row.push((k, V::N(0)));
        }
        row.push((
            "start_time",
            V::N(T0 - stable(&t.to_string()[..6], 9_000_000)),
        ));
        row.push(("parent", V::N(2)));
        row.push(("pgroup", V::N(0)));
        row.push(("threads", V::N(1)));
        row.push(("nice", V::N(0)));
        row
    }

    fn listening_port(&mut self, os: Os) -> Row {
        // Never 22: a fleet-wide sshd would make the ssh_listener rule fire on every host.
        let port =
            [80, 443, 5432, 6379, 8080, 9100, 9090, 3000, 53, 25, 8443][self.rng.usize(0..11)];
        vec![
            ("pid", V::N(self.rng.i64(300..4_000_000))),
            ("port", V::N(port)),
            ("protocol", V::N(if port == 53 { 17 } else { 6 })),
            ("family", V::N(if self.rng.bool() { 2 } else { 10 })),
            (
                "address",
                V::S(if self.rng.bool() {
                    "0.0.0.0".into()
                } else {
                    self.ip_private()
                }),
            ),
            ("fd", V::N(self.rng.i64(3..400))),
            ("socket", V::N(self.rng.i64(10_000..9_999_999))),
            ("path", V::S(self.bin(os))),
            ("net_namespace", V::N(4_026_531_840)),
        ]
    }

    fn template(&mut self, list: &[&str]) -> String {
        let t = list[self.rng.usize(0..list.len())];
        t.replace("{w}", self.word())
            .replace("{n}", &self.rng.u32(1..300).to_string())
    }

    fn crontab(&mut self) -> Row {
        vec![
            ("event", V::S(String::new())),
            ("minute", V::S(self.rng.u32(0..60).to_string())),
            (
                "hour",
                V::S(["*", "3", "*/6", "12"][self.rng.usize(0..4)].into()),
            ),
            ("day_of_month", V::S("*".into())),
            ("month", V::S("*".into())),
            ("day_of_week", V::S("*".into())),
            ("command", V::S(self.template(CRON_CMDS))),
            ("path", V::S(format!("/etc/cron.d/{}", self.word()))),
        ]
    }

    fn shell_history(&mut self, os: Os, t: i64) -> Row {
        let user = USERS[self.rng.usize(0..USERS.len())];
        let home = if os == Os::Darwin {
            format!("/Users/{user}")
        } else {
            format!("/home/{user}")
        };
        let file = if os == Os::Darwin {
            ".zsh_history"
        } else {
            ".bash_history"
        };
        vec![
            ("uid", V::N(self.rng.i64(1000..1100))),
            (
                "time",
                V::N(if os == Os::Darwin {
                    t - self.rng.i64(0..600)
                } else {
                    0
                }),
            ),
            ("command", V::S(self.template(SHELL_CMDS))),
            ("history_file", V::S(format!("{home}/{file}"))),
            ("username", V::S(user.into())),
        ]
    }

    fn user(&mut self, os: Os) -> Row {
        let name = format!(
            "{}{}",
            USERS[self.rng.usize(0..USERS.len())],
            self.rng.u32(0..100)
        );
        let uid = self.rng.i64(1000..60000);
        vec![
            ("uid", V::N(uid)),
            ("gid", V::N(uid)),
            ("uid_signed", V::N(uid)),
            ("gid_signed", V::N(uid)),
            ("username", V::S(name.clone())),
            ("description", V::S(format!("{name} ({})", self.word()))),
            (
                "directory",
                V::S(if os == Os::Darwin {
                    format!("/Users/{name}")
                } else {
                    format!("/home/{name}")
                }),
            ),
            (
                "shell",
                V::S(
                    if os == Os::Darwin {
                        "/bin/zsh"
                    } else {
                        "/bin/bash"
                    }
                    .into(),
                ),
            ),
            (
                "uuid",
                V::S(if os == Os::Darwin {
                    uuid(&mut self.rng)
                } else {
                    String::new()
                }),
            ),
        ]
    }

    fn deb_package(&mut self, p: usize, a: u32, b: u32) -> Row {
        let name = PACKAGES[p];
        vec![
            ("name", V::S(name.into())),
            ("version", V::S(format!("{}.{a}.{b}-1ubuntu{b}", 1 + p % 4))),
            ("source", V::S(name.into())),
            ("size", V::N(self.rng.i64(10_000..90_000_000))),
            ("arch", V::S("amd64".into())),
            ("revision", V::S(format!("1ubuntu{b}"))),
            ("status", V::S("install ok installed".into())),
            (
                "maintainer",
                V::S("Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>".into()),
            ),
            (
                "section",
                V::S(["libs", "net", "admin", "utils"][p % 4].into()),
            ),
            ("priority", V::S("optional".into())),
        ]
    }

    fn logged_in_user(&mut self, t: i64) -> Row {
        vec![
            ("type", V::S("user".into())),
            ("user", V::S(USERS[self.rng.usize(0..USERS.len())].into())),
            ("tty", V::S(format!("pts/{}", self.rng.u32(0..20)))),
            ("host", V::S(self.ip_any())),
            ("time", V::N(t - self.rng.i64(0..86_400))),
            ("pid", V::N(self.rng.i64(300..4_000_000))),
        ]
    }

    fn osquery_info(&mut self, h: usize, t: i64) -> Row {
        let host = &self.hosts[h];
        let (version, distro, uuid_s) = (host.osquery, host.distro, host.uuid.clone());
        vec![
            ("pid", V::N(self.rng.i64(300..4_000_000))),
            ("uuid", V::S(uuid_s)),
            ("instance_id", V::S(uuid(&mut self.rng))),
            ("version", V::S(version.into())),
            (
                "config_hash",
                V::S(format!(
                    "{:016x}{:016x}",
                    self.rng.u64(..),
                    self.rng.u64(..)
                )),
            ),
            ("config_valid", V::N(1)),
            ("extensions", V::S("active".into())),
            ("build_platform", V::S(distro.into())),
            ("build_distro", V::S(distro.into())),
            ("start_time", V::N(t - self.rng.i64(0..900_000))),
            ("watcher", V::N(self.rng.i64(300..4_000_000))),
            ("platform_mask", V::N(9)),
        ]
    }

    fn ip_private(&mut self) -> String {
        format!(
            "10.{}.{}.{}",
            self.rng.u8(0..=255),
            self.rng.u8(0..=255),
            self.rng.u8(1..=254)
        )
    }

    fn ip_any(&mut self) -> String {
        if self.remotes.is_empty() {
            for _ in 0..400 {
                let ip = self.ip_random();
                self.remotes.push(ip);
            }
        }
        if self.rng.u32(0..10) < 9 {
            return self.remotes[self.rng.usize(0..self.remotes.len())].clone();
        }
        self.ip_random()
    }

    fn ip_random(&mut self) -> String {
        if self.rng.bool() {
            self.ip_private()
        } else {
            format!(
                "{}.{}.{}.{}",
                self.rng.u8(1..=223),
                self.rng.u8(0..=255),
                self.rng.u8(0..=255),
                self.rng.u8(1..=254)
            )
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fmt {
    /// One row per record, `columns` + `action` (osquery's default event format).
    Event,
    /// `diffResults` with `added` and `removed` rows (`--logger_event_type=false`).
    Batch,
    /// `snapshot` rows.
    Snapshot,
}

fn fmt_for(rows: usize) -> Fmt {
    if rows == 1 {
        Fmt::Event
    } else {
        Fmt::Batch
    }
}

/// A value in `0..m` fixed by `s` (FNV-1a), for columns that stay put for a given binary.
fn stable(s: &str, m: i64) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    (h % m as u64) as i64
}

fn uuid(rng: &mut fastrand::Rng) -> String {
    let a = rng.u128(..);
    let h = format!("{a:032X}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn for_each_row(
    obj: &mut serde_json::Map<String, Value>,
    f: &mut dyn FnMut(&mut serde_json::Map<String, Value>),
) {
    if let Some(Value::Object(c)) = obj.get_mut("columns") {
        f(c);
    }
    if let Some(Value::Array(rows)) = obj.get_mut("snapshot") {
        rows.iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(&mut *f);
    }
    if let Some(Value::Object(d)) = obj.get_mut("diffResults") {
        for key in ["added", "removed"] {
            if let Some(Value::Array(rows)) = d.get_mut(key) {
                rows.iter_mut()
                    .filter_map(Value::as_object_mut)
                    .for_each(&mut *f);
            }
        }
    }
}

/// osquery's AWS loggers' rewrite: every scalar a string, empty containers `""`.
fn firehose_form(v: Value) -> Value {
    match v {
        Value::Null => Value::String(String::new()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::String(s) => Value::String(s),
        Value::Array(a) if a.is_empty() => Value::String(String::new()),
        Value::Array(a) => Value::Array(a.into_iter().map(firehose_form).collect()),
        Value::Object(m) if m.is_empty() => Value::String(String::new()),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, firehose_form(v))).collect())
        }
    }
}

fn write_value(out: &mut Vec<u8>, v: &Value, escape_slash: bool) {
    match v {
        Value::String(s) => json_str(out, s, escape_slash),
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, x, escape_slash);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(out, k, escape_slash);
                out.push(b':');
                write_value(out, x, escape_slash);
            }
            out.push(b'}');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

/// A JSON string; `escape_slash` writes `/` as `\/` like osquery's property-tree writer.
fn json_str(out: &mut Vec<u8>, s: &str, escape_slash: bool) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' if escape_slash => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// osquery's `calendarTime`: `Mon Nov 16 08:00:12 2026 UTC` (day padded with a space).
pub fn calendar_time(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {} UTC",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        y
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_time_matches_osquery() {
        assert_eq!(calendar_time(1_794_816_012), "Mon Nov 16 08:00:12 2026 UTC");
        assert_eq!(calendar_time(1_623_263_389), "Wed Jun  9 18:29:49 2021 UTC");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("5MiB"), Ok(5 << 20));
        assert_eq!(parse_size("128MiB"), Ok(128 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("5XB").is_err());
    }
}
