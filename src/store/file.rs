//! The file store: run records as JSON lines in `state_file`, the run lock as
//! an OS file lock on `<state_file>.lock`. The same file is the spool when
//! MySQL is configured but unreachable.
//!
//! Each line is a `RunRecord` as serde writes it, plus a `cluster` field
//! naming the scope (a line without one belongs to every scope, so a file
//! written by hand or by an older version still reads), so `jq` can read it.
//! A record is appended with one write; a run that dies mid-write leaves at
//! most one broken line, which readers skip with a warning and the next
//! append steps over. Every write — append, compaction, removing flushed
//! spool lines — holds the lock file, so rewrites never lose an append.
//!
//! The files are opened through `private`: created 0600, never followed
//! through a symlink (a symlinked `state_file` is refused, saying so).
//!
//! The file store compacts itself once the file passes [`COMPACT_AT`] bytes,
//! keeping [`RETAIN`] of history and each scope's newest upgrade (it may
//! carry a hold). The spool is never compacted: every spooled record is owed
//! to MySQL.
//!
//! The forecast needs weeks of users but none of the rest of a record, so
//! the store keeps those apart and compactly: each check that read users
//! also appends `scope<TAB>epoch-ms<TAB>users` to `<state_file>.samples`,
//! kept for [`KEEP_SAMPLES`] (the longest lookback and a week more). A
//! run reads a few hundred kilobytes there instead of weeks of records.

use std::collections::{HashMap, HashSet};
use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{Recorded, RunStore, StoreError, private};
use hpa_tier_core::record::{CommandKind, RunRecord};

/// The file store compacts once the file is bigger than this.
pub const COMPACT_AT: u64 = 4 * 1024 * 1024;
/// How much history compaction keeps: far more than any scale-down window
/// or notice-repeat interval, and enough for `status` to show recent runs.
pub const RETAIN: SignedDuration = SignedDuration::from_hours(72);

/// How long the samples file keeps users: the forecast's longest lookback
/// (8 weeks) and one week more.
pub const KEEP_SAMPLES: SignedDuration = SignedDuration::from_hours(9 * 7 * 24);
/// The samples file is compacted once it is bigger than this (about 9
/// weeks of 5-minute runs of one cluster is 350 KB).
const COMPACT_SAMPLES_AT: u64 = 1024 * 1024;

/// What the file is for in this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `mysql_host` is empty: the file is the store.
    Store,
    /// MySQL is configured: the file holds records MySQL has not taken yet.
    Spool,
    /// `--dry-run`: read, never write, never lock.
    ReadOnly,
}

#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    lock_path: PathBuf,
    /// The forecast's users: `<state_file>.samples`.
    samples_path: PathBuf,
    scope: String,
    timeout: Duration,
    role: Role,
    /// The run lock, held from `try_lock` until `close`.
    run_lock: Mutex<Option<File>>,
}

/// One line of the file (and one value of the spool ConfigMap).
#[derive(Serialize, Deserialize)]
pub(super) struct Line {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) cluster: Option<String>,
    #[serde(flatten)]
    pub(super) record: RunRecord,
}

#[derive(Debug)]
enum Entry {
    Record {
        cluster: Option<String>,
        record: Box<RunRecord>,
        raw: String,
    },
    /// Not a record: a write cut short by a crash, or a hand edit gone wrong
    /// (not JSON, not a record, or numbers no run could have written).
    Bad { line_no: usize, why: String },
}

impl Entry {
    fn mine(&self, scope: &str) -> Option<&RunRecord> {
        match self {
            Entry::Record {
                cluster, record, ..
            } if cluster.as_deref().is_none_or(|c| c == scope) => Some(record),
            _ => None,
        }
    }
}

/// The file's lines, parsed. Blank lines are dropped.
fn parse(bytes: &[u8]) -> Vec<Entry> {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .map(|(i, l)| match parse_line(l) {
            Ok((raw, line)) => Entry::Record {
                cluster: line.cluster,
                record: Box::new(line.record),
                raw: raw.trim_end().to_string(),
            },
            Err(why) => Entry::Bad {
                line_no: i + 1,
                why,
            },
        })
        .collect()
}

/// One line as a record with counts this tool could have written (see
/// [`RunRecord::validate`]): a count past 2^31-1 never reaches a decision.
fn parse_line(l: &[u8]) -> Result<(&str, Line), String> {
    let s = std::str::from_utf8(l).map_err(|e| format!("not UTF-8: {e}"))?;
    let line: Line = serde_json::from_str(s).map_err(|e| format!("not a run record: {e}"))?;
    line.record.validate()?;
    Ok((s, line))
}

/// The records of `scope` in a state file's `bytes`, and the lines that are
/// not records (1-based line number, why) — what the store reads, as a
/// pure function.
pub fn records_in(bytes: &[u8], scope: &str) -> (Vec<RunRecord>, Vec<(usize, String)>) {
    let (mut records, mut bad) = (vec![], vec![]);
    for e in parse(bytes) {
        match e {
            Entry::Bad { line_no, why } => bad.push((line_no, why)),
            e => records.extend(e.mine(scope).cloned()),
        }
    }
    (records, bad)
}

/// Which entries compaction keeps: records started within `RETAIN` of `now`,
/// and each scope's newest effective upgrade however old (it may carry a
/// hold). Broken lines go.
fn keep_on_compaction(entries: &[Entry], now: Timestamp) -> Vec<bool> {
    let mut newest_upgrade: HashMap<Option<&str>, (Timestamp, usize)> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let Entry::Record {
            cluster, record, ..
        } = e
        else {
            continue;
        };
        if record.is_effective_upgrade() {
            let slot = newest_upgrade
                .entry(cluster.as_deref())
                .or_insert((record.started_at, i));
            if record.started_at >= slot.0 {
                *slot = (record.started_at, i);
            }
        }
    }
    let upgrades: HashSet<usize> = newest_upgrade.values().map(|(_, i)| *i).collect();
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| match e {
            Entry::Record { record, .. } => {
                upgrades.contains(&i) || record.started_at >= now - RETAIN
            }
            Entry::Bad { .. } => false,
        })
        .collect()
}

fn sample_line(scope: &str, at: Timestamp, users: u32) -> String {
    // A scope is a cluster name: no tab or newline can be in it, but a
    // hand-made one must not break the file either.
    let scope: String = scope.chars().filter(|c| !c.is_control()).collect();
    format!("{scope}\t{}\t{users}\n", at.as_millisecond())
}

/// `scope, started_at, users` of a samples line; `None` for anything else
/// (a line cut short by a crash is skipped).
fn parse_sample(line: &str) -> Option<(&str, Timestamp, u32)> {
    let mut parts = line.split('\t');
    let scope = parts.next()?;
    let at = Timestamp::from_millisecond(parts.next()?.parse().ok()?).ok()?;
    let users = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((scope, at, users))
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    if private::is_symlink_refusal(&e) {
        return StoreError::Io(format!(
            "refusing {}: it is a symbolic link, and hpa-tier never follows one to a file it \
             writes (set state_file to the real path)",
            path.display()
        ));
    }
    StoreError::Io(format!(
        "{what} {}: {e} (check that the directory exists or can be created, and is \
         writable by the user hpa-tier runs as; `state_file` sets where it is)",
        path.display()
    ))
}

impl FileStore {
    pub fn new(path: &Path, scope: &str, timeout: Duration, role: Role) -> FileStore {
        let sibling = |suffix: &str| {
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(suffix);
            path.with_file_name(name)
        };
        FileStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                lock_path: sibling(".lock"),
                samples_path: sibling(".samples"),
                scope: scope.to_string(),
                timeout,
                role,
                run_lock: Mutex::new(None),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn role(&self) -> Role {
        self.inner.role
    }

    pub fn describe(&self) -> String {
        match self.inner.role {
            Role::Store => format!("file {}", self.inner.path.display()),
            Role::Spool => format!("spool {}", self.inner.path.display()),
            Role::ReadOnly => format!("file {} (read-only)", self.inner.path.display()),
        }
    }

    /// Runs file work off the async worker threads.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StoreError::Io(format!("the file store task failed: {e}")))?
    }

    /// This scope's records, in file order.
    async fn records(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.blocking(|inner| {
            let entries = inner.read()?;
            Ok(entries
                .into_iter()
                .filter_map(|e| match e {
                    Entry::Record {
                        cluster, record, ..
                    } if cluster.as_deref().is_none_or(|c| c == inner.scope) => Some(*record),
                    _ => None,
                })
                .collect())
        })
        .await
    }

    /// The records of this scope waiting in the spool.
    pub async fn pending(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.records().await
    }

    /// Removes this scope's records with these run ids (MySQL has them now),
    /// keeping everything else — including what was appended meanwhile.
    pub async fn remove(&self, run_ids: HashSet<String>) -> Result<(), StoreError> {
        if self.inner.role == Role::ReadOnly {
            return Ok(());
        }
        self.blocking(move |inner| {
            inner.with_write_lock(|| {
                let entries = inner.read()?;
                let keep: Vec<bool> = entries
                    .iter()
                    .map(|e| {
                        !matches!(e.mine(&inner.scope), Some(r) if run_ids.contains(&r.run_id))
                            && !matches!(e, Entry::Bad { .. })
                    })
                    .collect();
                inner.rewrite(&entries, &keep)
            })
        })
        .await
    }
}

impl Inner {
    fn read(&self) -> Result<Vec<Entry>, StoreError> {
        let bytes = match private::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_err("cannot read", &self.path, e)),
        };
        let entries = parse(&bytes);
        for e in &entries {
            if let Entry::Bad { line_no, why } = e {
                tracing::warn!(
                    file = %self.path.display(),
                    line = line_no,
                    why = %why,
                    "skipping a line that is not a run record (a run that died mid-write \
                     leaves one; it is dropped at the next rewrite)"
                );
            }
        }
        Ok(entries)
    }

    fn open_lock_file(&self) -> Result<File, StoreError> {
        if let Some(dir) = self
            .lock_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
        }
        private::lock(&self.lock_path)
            .map_err(|e| io_err("cannot open the lock file", &self.lock_path, e))
    }

    /// Runs `f` holding the lock file: the run lock if this store holds it,
    /// else the lock taken for just this write, waited for up to the timeout.
    fn with_write_lock<T>(
        &self,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let held = self.run_lock.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_some() {
            return f();
        }
        let file = self.open_lock_file()?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StoreError::Io(format!(
                        "{} stayed locked by another hpa-tier run for {}s; the record \
                         could not be written",
                        self.lock_path.display(),
                        self.timeout.as_secs()
                    )));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(io_err("cannot lock", &self.lock_path, e));
                }
            }
        }
        let out = f();
        let _ = file.unlock();
        out
    }

    /// Appends one record unless this scope already has its run id.
    /// Returns whether it wrote.
    fn append(&self, record: &RunRecord) -> Result<bool, StoreError> {
        self.with_write_lock(|| {
            let existing = match private::read(&self.path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
                Err(e) => return Err(io_err("cannot read", &self.path, e)),
            };
            let entries = parse(&existing);
            if entries.iter().any(|e| {
                e.mine(&self.scope)
                    .is_some_and(|r| r.run_id == record.run_id)
            }) {
                return Ok(false);
            }
            let mut buf = Vec::with_capacity(1024);
            // A line cut short by a crash must not swallow this record.
            if existing.last().is_some_and(|b| *b != b'\n') {
                buf.push(b'\n');
            }
            let line = Line {
                cluster: Some(self.scope.clone()),
                record: record.clone(),
            };
            serde_json::to_writer(&mut buf, &line)
                .map_err(|e| StoreError::Io(format!("cannot serialise the run record: {e}")))?;
            buf.push(b'\n');

            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
            }
            let mut file =
                private::append(&self.path).map_err(|e| io_err("cannot open", &self.path, e))?;
            // One write of the whole line: O_APPEND keeps it in one piece.
            file.write_all(&buf)
                .and_then(|()| file.sync_data())
                .map_err(|e| io_err("cannot append to", &self.path, e))?;

            if self.role == Role::Store {
                self.append_sample(record)?;
            }
            let size = (existing.len() + buf.len()) as u64;
            if self.role == Role::Store && size > COMPACT_AT {
                let mut all = existing;
                all.extend_from_slice(&buf);
                let entries = parse(&all);
                let keep = keep_on_compaction(&entries, Timestamp::now());
                if keep.iter().any(|k| !k) {
                    let kept = keep.iter().filter(|k| **k).count();
                    tracing::info!(
                        file = %self.path.display(),
                        kept,
                        dropped = entries.len() - kept,
                        "compacted the state file"
                    );
                    self.rewrite(&entries, &keep)?;
                }
            }
            Ok(true)
        })
    }

    /// The users of a check that read them, to the samples file (under the
    /// write lock, like the record).
    fn append_sample(&self, record: &RunRecord) -> Result<(), StoreError> {
        let Some(users) = record
            .users
            .filter(|_| record.command == CommandKind::Check)
        else {
            return Ok(());
        };
        let line = sample_line(&self.scope, record.started_at, users);
        let path = &self.samples_path;
        let mut file = private::append(path).map_err(|e| io_err("cannot open", path, e))?;
        file.write_all(line.as_bytes())
            .map_err(|e| io_err("cannot append to", path, e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size > COMPACT_SAMPLES_AT {
            let bytes = private::read(path).map_err(|e| io_err("cannot read", path, e))?;
            let since = Timestamp::now() - KEEP_SAMPLES;
            let kept: String = String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| parse_sample(l).is_some_and(|(_, t, _)| t >= since))
                .map(|l| format!("{l}\n"))
                .collect();
            private::replace(path, kept.as_bytes())
                .map_err(|e| io_err("cannot rewrite", path, e))?;
        }
        Ok(())
    }

    /// This scope's samples since `since`, oldest first; `None` when there
    /// is no samples file yet (a store written before there was one).
    fn samples(&self, since: Timestamp) -> Result<Option<Vec<(Timestamp, u32)>>, StoreError> {
        let bytes = match private::read(&self.samples_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("cannot read", &self.samples_path, e)),
        };
        let mut out: Vec<(Timestamp, u32)> = String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(parse_sample)
            .filter(|(scope, t, _)| *scope == self.scope && *t >= since)
            .map(|(_, t, u)| (t, u))
            .collect();
        out.sort_by_key(|s| s.0);
        Ok(Some(out))
    }

    /// Replaces the file with the kept entries: written aside under a
    /// random name, synced, then renamed over, so a crash leaves either the
    /// old file or the new one.
    fn rewrite(&self, entries: &[Entry], keep: &[bool]) -> Result<(), StoreError> {
        let mut buf = String::new();
        for (e, k) in entries.iter().zip(keep) {
            if let (Entry::Record { raw, .. }, true) = (e, k) {
                buf.push_str(raw);
                buf.push('\n');
            }
        }
        private::replace(&self.path, buf.as_bytes())
            .map_err(|e| io_err("cannot rewrite", &self.path, e))
    }
}

impl RunStore for FileStore {
    async fn try_lock(&self, _name: &str) -> Result<bool, StoreError> {
        // One lock file per state file: scopes sharing a file share the lock.
        if self.inner.role == Role::ReadOnly {
            return Ok(true);
        }
        self.blocking(|inner| {
            let mut held = inner.run_lock.lock().unwrap_or_else(|p| p.into_inner());
            if held.is_some() {
                return Ok(true);
            }
            let file = inner.open_lock_file()?;
            match file.try_lock() {
                Ok(()) => {
                    *held = Some(file);
                    Ok(true)
                }
                Err(TryLockError::WouldBlock) => Ok(false),
                Err(TryLockError::Error(e)) => Err(io_err("cannot lock", &inner.lock_path, e)),
            }
        })
        .await
    }

    async fn history(&self, since: Timestamp) -> Result<Vec<RunRecord>, StoreError> {
        Ok(super::window(self.records().await?, since))
    }

    async fn samples(&self, since: Timestamp) -> Result<Vec<(Timestamp, u32)>, StoreError> {
        if let Some(samples) = self.blocking(move |inner| inner.samples(since)).await? {
            return Ok(samples);
        }
        let mut samples: Vec<(Timestamp, u32)> = self
            .records()
            .await?
            .into_iter()
            .filter(|r| r.command == CommandKind::Check && r.started_at >= since)
            .filter_map(|r| Some((r.started_at, r.users?)))
            .collect();
        samples.sort_by_key(|s| s.0);
        Ok(samples)
    }

    async fn last_upgrade(&self) -> Result<Option<RunRecord>, StoreError> {
        let records = self.records().await?;
        // The last in file order wins a tie, as the newest written.
        Ok(records
            .into_iter()
            .filter(|r| r.is_effective_upgrade())
            .reduce(|a, b| if b.started_at >= a.started_at { b } else { a }))
    }

    async fn latest(&self, n: usize) -> Result<Vec<RunRecord>, StoreError> {
        let mut records = self.records().await?;
        records.sort_by_key(|r| r.started_at);
        records.reverse();
        records.truncate(n);
        Ok(records)
    }

    async fn record(&self, record: &RunRecord) -> Result<Recorded, StoreError> {
        let role = self.inner.role;
        if role == Role::ReadOnly {
            return Err(StoreError::Io(
                "the store is open read-only (--dry-run): nothing is recorded".into(),
            ));
        }
        let record = record.clone();
        self.blocking(move |inner| inner.append(&record)).await?;
        Ok(match role {
            Role::Spool => Recorded::Spooled,
            _ => Recorded::Stored,
        })
    }

    async fn close(self) {
        let held = self
            .inner
            .run_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(file) = held {
            let _ = file.unlock();
        }
    }

    fn describe(&self) -> String {
        FileStore::describe(self)
    }

    fn spool_location(&self) -> String {
        self.path().display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpa_tier_core::record::{CommandKind, Outcome};

    fn now() -> Timestamp {
        "2025-06-01T12:00:00Z".parse().unwrap()
    }

    fn line(cluster: Option<&str>, r: &RunRecord) -> String {
        serde_json::to_string(&Line {
            cluster: cluster.map(str::to_string),
            record: r.clone(),
        })
        .unwrap()
    }

    fn upgrade(hours_ago: i64, outcome: Outcome) -> RunRecord {
        let mut r = RunRecord::check_needing(2000, 2000, now(), hours_ago * 60);
        r.command = CommandKind::Upgrade;
        r.outcome = outcome;
        r.run_id = format!("up-{hours_ago}-{}", outcome.as_str());
        r
    }

    #[test]
    fn a_samples_line_round_trips_and_anything_else_is_skipped() {
        let at = now();
        let line = sample_line("prod", at, 1234);
        assert_eq!(line, format!("prod\t{}\t1234\n", at.as_millisecond()));
        assert_eq!(parse_sample(line.trim_end()), Some(("prod", at, 1234)));
        for bad in [
            "",
            "prod",
            "prod\t12",
            "prod\tx\t1",
            "prod\t1\t-4",
            "prod\t1\t2\t3",
            "p\t1\t99999999999",
        ] {
            assert_eq!(parse_sample(bad), None, "{bad:?}");
        }
        assert_eq!(
            sample_line("a\tb\nc", at, 1),
            format!("abc\t{}\t1\n", at.as_millisecond())
        );
    }

    #[tokio::test]
    async fn checks_leave_their_users_in_the_samples_file_which_keeps_nine_weeks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.jsonl");
        let store = FileStore::new(&path, "prod", Duration::from_secs(2), Role::Store);
        let real_now = Timestamp::now();
        let mut r = RunRecord::check_needing(600, 600, real_now, 5);
        r.users = Some(321);
        store.record(&r).await.unwrap();
        let mut up = RunRecord::check_needing(600, 600, real_now, 4);
        (up.command, up.run_id) = (CommandKind::Upgrade, "up".into());
        store.record(&up).await.unwrap();
        let got = store
            .samples(real_now - SignedDuration::from_hours(1))
            .await
            .unwrap();
        let ms = Timestamp::from_millisecond(r.started_at.as_millisecond()).unwrap();
        assert_eq!(got, vec![(ms, 321)], "upgrades read no users");
        // Ten weeks of lines for two scopes, then one more append: compacted
        // to nine weeks, every scope kept.
        let mut old = String::new();
        for i in 0..(10 * 7 * 24 * 30) {
            let at = real_now - SignedDuration::from_mins(2 * i + 10);
            old.push_str(&sample_line("prod", at, 1));
            old.push_str(&sample_line("staging", at, 1));
        }
        assert!(old.len() as u64 > COMPACT_SAMPLES_AT, "{}", old.len());
        std::fs::write(dir.path().join("runs.jsonl.samples"), &old).unwrap();
        let mut next = RunRecord::check_needing(600, 600, real_now, 0);
        next.run_id = "next".into();
        store.record(&next).await.unwrap();
        let text = std::fs::read_to_string(dir.path().join("runs.jsonl.samples")).unwrap();
        let oldest = text
            .lines()
            .filter_map(parse_sample)
            .map(|(_, t, _)| t)
            .min()
            .unwrap();
        assert!(real_now.duration_since(oldest) <= KEEP_SAMPLES, "{oldest}");
        assert!(text.lines().any(|l| l.starts_with("staging\t")));
        let prod = store.samples(real_now - KEEP_SAMPLES).await.unwrap();
        assert!(prod.len() > 9 * 7 * 720 - 10, "{}", prod.len());
        assert!(prod.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn a_line_is_the_record_json_plus_its_cluster() {
        let r = RunRecord::check_needing(600, 600, now(), 5);
        let v: serde_json::Value = serde_json::from_str(&line(Some("prod"), &r)).unwrap();
        assert_eq!(v["cluster"], "prod");
        assert_eq!(v["run_id"], r.run_id.as_str());
        assert_eq!(v["command"], "check");
        assert_eq!(v["started_at"], "2025-06-01T11:55:00Z");
        let back: RunRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn parse_skips_blank_lines_and_marks_broken_ones() {
        let r = RunRecord::check_needing(600, 600, now(), 5);
        let good = line(Some("prod"), &r);
        let text = format!("{good}\n\n{{\"run_id\": 1}}\n{good}\n{}", &good[..20]);
        let kinds: Vec<String> = parse(text.as_bytes())
            .iter()
            .map(|e| match e {
                Entry::Record { .. } => "record".to_string(),
                Entry::Bad { line_no, .. } => format!("bad@{line_no}"),
            })
            .collect();
        assert_eq!(kinds, ["record", "bad@3", "record", "bad@5"]);
    }

    #[test]
    fn a_hand_edited_line_with_numbers_no_run_writes_is_skipped_saying_why() {
        let r = RunRecord::check_needing(600, 600, now(), 5);
        let good = line(Some("prod"), &r);
        let edit = |from: &str, to: &str| {
            let l = good.replace(from, to);
            assert_ne!(l, good, "{from}");
            l
        };
        let lines = [
            edit("\"users\":600", "\"users\":4294967295"),
            edit("\"users\":600", "\"users\":-1"),
            edit("\"users\":600", "\"users\":6e2"),
            edit("\"to_capacity\":600", "\"to_capacity\":2147483648"),
            edit(
                "2025-06-01T11:55:00Z\",\"finished",
                "2025-13-01T11:55:00Z\",\"finished",
            ),
            good[..good.len() / 2].to_string(),
            format!("{{\"detail\":{}", "[".repeat(10_000)),
            good.clone(),
        ];
        let (records, bad) = records_in(lines.join("\n").as_bytes(), "prod");
        assert_eq!(records, vec![r]);
        let why: Vec<String> = bad.iter().map(|(n, w)| format!("{n}: {w}")).collect();
        let says = [
            "1: users is 4294967295, more than 2147483647",
            "2: not a run record: invalid value: integer `-1`",
            "3: not a run record: invalid type: floating point",
            "4: to_capacity is 2147483648",
            "5: not a run record: failed to parse",
            "6: not a run record: EOF",
            "7: not a run record: recursion limit exceeded",
        ];
        assert_eq!(why.len(), says.len(), "{why:#?}");
        for (w, s) in why.iter().zip(says) {
            assert!(w.starts_with(s), "{w}");
        }
    }

    #[test]
    fn a_line_without_cluster_belongs_to_every_scope() {
        let r = RunRecord::check_needing(600, 600, now(), 5);
        let text = format!(
            "{}\n{}\n{}\n",
            line(None, &r),
            line(Some("prod"), &r),
            line(Some("staging"), &r)
        );
        let mine: Vec<bool> = parse(text.as_bytes())
            .iter()
            .map(|e| e.mine("prod").is_some())
            .collect();
        assert_eq!(mine, [true, true, false]);
    }

    #[test]
    fn compaction_keeps_recent_records_and_each_scopes_newest_upgrade() {
        let old_check = RunRecord::check_needing(600, 600, now(), 100 * 60);
        let recent_check = RunRecord::check_needing(600, 600, now(), 60);
        let cases: Vec<(&str, Vec<String>, Vec<bool>)> = vec![
            (
                "old checks go, recent stay",
                vec![line(Some("a"), &old_check), line(Some("a"), &recent_check)],
                vec![false, true],
            ),
            (
                "the newest effective upgrade stays however old",
                vec![
                    line(Some("a"), &upgrade(200, Outcome::Applied)),
                    line(Some("a"), &upgrade(100, Outcome::Applied)),
                    line(Some("a"), &upgrade(90, Outcome::Blocked)),
                ],
                vec![false, true, false],
            ),
            (
                "per scope",
                vec![
                    line(Some("a"), &upgrade(200, Outcome::Applied)),
                    line(Some("b"), &upgrade(100, Outcome::Noop)),
                    line(None, &upgrade(150, Outcome::Partial)),
                ],
                vec![true, true, true],
            ),
            (
                "broken lines go",
                vec![line(Some("a"), &recent_check), "{\"run_id\"".into()],
                vec![true, false],
            ),
        ];
        for (name, lines, want) in cases {
            let text = lines.join("\n");
            let got = keep_on_compaction(&parse(text.as_bytes()), now());
            assert_eq!(got, want, "{name}");
        }
    }
}
