//! The site directory in the bucket: the files under the config prefix (`config/`, which
//! Terraform uploads from the site directory), fetched at cold start and again when they
//! change, at most once per [`SiteSource::every`].
//!
//! A change is seen with one ListObjectsV2 request: the listing's keys and ETags are the
//! site's fingerprint, so a file written, replaced or removed changes it, and an unchanged
//! site costs one request a minute and no reads. The functions compile what
//! [`SiteSource::poll`] returns and keep the last site that compiled when a new one does
//! not, so a typo in a suppression never stops detection.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tripline_core::site::SiteFiles;

use crate::error::{Error, Result};
use crate::store::{Listed, ObjectStore};

/// How often the functions look for a changed site by default.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(60);

/// Most files a site may have in the bucket: one listing page.
pub const MAX_FILES: usize = 999;

/// The site directory under a prefix of a bucket.
pub struct SiteSource<S> {
    store: S,
    bucket: String,
    prefix: String,
    /// The shortest time between two looks at the bucket.
    pub every: Duration,
    /// The site paths this source fetches and fingerprints; `None`: every file.
    only: Option<&'static [&'static str]>,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// When the bucket was last looked at.
    at: Option<Instant>,
    /// The listing then.
    listing: Option<Vec<Listed>>,
}

impl<S: ObjectStore> SiteSource<S> {
    /// The site under `prefix` (`config/`) in `bucket`.
    pub fn new(store: S, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        SiteSource {
            store,
            bucket: bucket.into(),
            prefix: prefix.into(),
            every: DEFAULT_EVERY,
            only: None,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// This source fetching only `paths` (`tripline.toml` for notify, which needs no
    /// rules or lists): other files are neither read nor a change.
    pub fn only(mut self, paths: &'static [&'static str]) -> Self {
        self.only = Some(paths);
        self
    }

    /// Makes the next poll (once [`SiteSource::every`] has passed) read the site again even
    /// if it did not change: for what its compiled form judged by the date, such as filters
    /// past their expiry.
    pub fn forget(&self) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).listing = None;
    }

    /// The site's files when they changed since the last poll (or on the first), `None` when
    /// they did not or when the last look was less than [`SiteSource::every`] ago. An error
    /// (the bucket unreadable, too many files) leaves the last listing in place, so the next
    /// poll after `every` tries again.
    pub async fn poll(&self) -> Result<Option<SiteFiles>> {
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.at.is_some_and(|at| at.elapsed() < self.every) {
                return Ok(None);
            }
            seen.at = Some(Instant::now());
        }
        let listing = self
            .store
            .list(&self.bucket, &self.prefix, MAX_FILES + 1)
            .await?;
        if listing.len() > MAX_FILES {
            return Err(Error::Invalid(format!(
                "s3://{}/{}: a site has at most {MAX_FILES} files",
                self.bucket, self.prefix
            )));
        }
        let listing: Vec<Listed> = match self.only {
            None => listing,
            Some(paths) => listing
                .into_iter()
                .filter(|o| paths.contains(&&o.key[self.prefix.len()..]))
                .collect(),
        };
        let changed = {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.listing.as_ref() != Some(&listing)
        };
        if !changed {
            return Ok(None);
        }
        let mut files = SiteFiles::new();
        for object in &listing {
            // Folder markers (`config/rules/`) that consoles create are not files.
            if object.key.ends_with('/') {
                continue;
            }
            let body = self.store.get(&self.bucket, &object.key).await?;
            let path = object.key[self.prefix.len()..].to_owned();
            files.insert(path, body.to_vec());
        }
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).listing = Some(listing);
        Ok(Some(files))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Fault;
    use crate::MemStore;
    use tripline_core::layout::Op;

    #[tokio::test]
    async fn a_site_is_fetched_once_and_again_when_it_changes() {
        let store = MemStore::new();
        store.insert("b", "config/tripline.toml", "max_samples = 3\n");
        store.insert("b", "config/filters/a.yml", "title: a\n");
        store.insert("b", "config/rules/", "");
        store.insert("b", "other/x", "not the site");
        let mut source = SiteSource::new(store.clone(), "b", "config/");
        source.every = Duration::ZERO;
        let first = source.poll().await.unwrap().unwrap();
        assert_eq!(
            first.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            ["filters/a.yml", "tripline.toml"]
        );
        assert_eq!(source.poll().await.unwrap(), None, "unchanged");
        let reads = |s: &MemStore| s.accesses().iter().filter(|a| a.op == Op::Read).count();
        assert_eq!(
            reads(&store),
            2,
            "two files read once; an unchanged site is only listed"
        );

        store.insert("b", "config/filters/a.yml", "title: changed\n");
        let changed = source.poll().await.unwrap().unwrap();
        assert_eq!(changed.get("filters/a.yml").unwrap(), b"title: changed\n");
        store.remove("b", "config/filters/a.yml");
        let removed = source.poll().await.unwrap().unwrap();
        assert!(removed.get("filters/a.yml").is_none());

        // Within `every`, the bucket is not looked at.
        source.every = Duration::from_secs(3600);
        store.insert("b", "config/iocs/x.txt", "1.2.3.4\n");
        assert_eq!(source.poll().await.unwrap(), None);
    }

    /// Notify's source reads the settings alone: a changed list is neither read nor a change.
    #[tokio::test]
    async fn a_source_for_some_paths_reads_and_watches_only_them() {
        let store = MemStore::new();
        store.insert("b", "config/tripline.toml", "max_samples = 3\n");
        store.insert("b", "config/iocs/big.txt", "1.2.3.4\n");
        let mut source = SiteSource::new(store.clone(), "b", "config/").only(&["tripline.toml"]);
        source.every = Duration::ZERO;
        let files = source.poll().await.unwrap().unwrap();
        assert_eq!(
            files.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            ["tripline.toml"]
        );
        store.insert("b", "config/iocs/big.txt", "5.6.7.8\n");
        assert_eq!(source.poll().await.unwrap(), None);
        store.insert("b", "config/tripline.toml", "max_samples = 4\n");
        assert!(source.poll().await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_failed_look_is_tried_again_and_an_empty_prefix_is_an_empty_site() {
        let store = MemStore::new();
        let mut source = SiteSource::new(store.clone(), "b", "config/");
        source.every = Duration::ZERO;
        store.inject(Op::List, "config/", 1, Fault::Fail(crate::Retry::Transient));
        assert!(source.poll().await.is_err());
        let empty = source.poll().await.unwrap().unwrap();
        assert!(empty.is_empty());
        assert_eq!(source.poll().await.unwrap(), None);
    }
}
