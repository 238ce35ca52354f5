//! The GA access-token cache: one small JSON file (mode 0600) beside
//! `state_file` that lets a run within the token's lifetime skip the token
//! endpoint — one round trip to Google instead of two.
//!
//! The file names the token's owner by a hash of everything a token is bound
//! to (client email, key id, token URI, scope), so a rotated key or another
//! service account never picks up a token that is not its own. It is written
//! whole under an unpredictable temporary name in its own directory and
//! renamed over; it is never opened through a symbolic link, nor replaced
//! when one stands in its place. Whatever is wrong with it — missing,
//! unreadable, garbage, another account's, expired, readable by others —
//! means a fresh token and, where allowed, a rewritten file: never a failed
//! run. The token itself never reaches a message.

use std::fs::{OpenOptions, Permissions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Secret, TokenCache as Where};

/// A token is not sent once it has less than this left: the report it goes
/// with must arrive while it is still valid.
pub const REFRESH_MARGIN_SECS: u64 = 60;
/// The longest lifetime believed, from an answer or a file: Google's tokens
/// live an hour, 12 h where an organisation allows longer-lived tokens.
pub const MAX_LIFETIME_SECS: u64 = 12 * 3600;
const VERSION: u32 = 1;
/// A cache file is a few hundred bytes: a larger one is not ours.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// The cache of one service account.
pub struct TokenCache {
    path: PathBuf,
    /// [`account_key`] of the account whose token this cache holds.
    account: String,
    write: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    version: u32,
    account: String,
    access_token: String,
    /// Unix seconds: when Google said the token stops working.
    expires_at: u64,
}

/// Why a cache file's token is not used.
#[derive(Debug, PartialEq, Eq)]
pub enum Unusable {
    /// Not a cache file of this version (edited, truncated, another tool's).
    Garbage(String),
    /// Another service account's, another key's, or another token URI's.
    OtherAccount,
    /// Expired, expiring within [`REFRESH_MARGIN_SECS`], or valid for longer
    /// than any token is (the clock was set back).
    Expired,
}

impl TokenCache {
    /// The cache at `place` for the account `account` ([`account_key`]);
    /// `None` when caching is off.
    pub fn new(place: &Where, account: String) -> Option<TokenCache> {
        let (path, write) = match place {
            Where::Off => return None,
            Where::ReadOnly(p) => (p.clone(), false),
            Where::ReadWrite(p) => (p.clone(), true),
        };
        Some(TokenCache {
            path,
            account,
            write,
        })
    }

    /// The cached token and when it expires, if it may be sent at `now`.
    pub fn load(&self, now: u64) -> Option<(Secret, u64)> {
        let file = self.path.display();
        let text = match read_private(&self.path) {
            Ok(Some(text)) => text,
            Ok(None) => return None,
            Err(why) => {
                tracing::warn!(%file, "not using the GA token cache: {why}; asking Google for a new token");
                return None;
            }
        };
        match parse(&text, &self.account, now) {
            Ok((token, expires_at)) => {
                tracing::debug!(%file, expires_in_secs = expires_at - now, "using the cached GA access token");
                Some((token, expires_at))
            }
            Err(Unusable::Expired) => {
                tracing::debug!(%file, "the cached GA access token has expired or is about to");
                None
            }
            Err(Unusable::OtherAccount) => {
                tracing::debug!(%file, "the GA token cache holds another service account's or key's token");
                None
            }
            Err(Unusable::Garbage(why)) => {
                tracing::warn!(%file, "ignoring the GA token cache ({why}); it is rewritten with the next token");
                None
            }
        }
    }

    /// Keeps `token` for later runs (not in `--dry-run`). A failure only
    /// costs the next run a token request, so it is a warning.
    pub fn store(&self, token: &Secret, expires_at: u64) {
        if !self.write {
            return;
        }
        let entry = Entry {
            version: VERSION,
            account: self.account.clone(),
            access_token: token.expose().to_string(),
            expires_at,
        };
        let written = serde_json::to_vec(&entry)
            .map_err(|e| e.to_string())
            .and_then(|bytes| write_private(&self.path, &bytes));
        match written {
            Ok(()) => tracing::debug!(file = %self.path.display(), "cached the GA access token"),
            Err(why) => tracing::warn!(
                file = %self.path.display(),
                "cannot write the GA token cache: {why}; the next run asks Google for a new token"
            ),
        }
    }

    /// Removes a token Google refused, so the next run does not send it again.
    pub fn discard(&self) {
        if !self.write {
            return;
        }
        // Only a file of ours: a symlink or anything else is left alone.
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.is_file())
            && let Err(e) = std::fs::remove_file(&self.path)
        {
            tracing::warn!(file = %self.path.display(), "cannot remove the refused GA token from its cache: {e}");
        }
    }
}

/// Hex SHA-256 of what an access token is bound to.
pub fn account_key(client_email: &str, key_id: &str, token_uri: &str, scope: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [client_email, key_id, token_uri, scope] {
        ctx.update(part.as_bytes());
        // A separator no part contains, so fields cannot run into each other.
        ctx.update(&[0]);
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a token that expires at `expires_at` may still be sent at `now`
/// (Unix seconds): more than the margin left, and no more than any token
/// lives (a clock set back must not stretch a token's life).
pub fn reusable(expires_at: u64, now: u64) -> bool {
    expires_at > now.saturating_add(REFRESH_MARGIN_SECS) && expires_at - now <= MAX_LIFETIME_SECS
}

/// The token of `account` in a cache file's `text`, if usable at `now`.
pub fn parse(text: &str, account: &str, now: u64) -> Result<(Secret, u64), Unusable> {
    // serde_json's messages name positions and types, never the values.
    let entry: Entry = serde_json::from_str(text)
        .map_err(|e| Unusable::Garbage(format!("not a token cache file: {e}")))?;
    if entry.version != VERSION {
        return Err(Unusable::Garbage(format!(
            "version {}, not {VERSION}",
            entry.version
        )));
    }
    if entry.account != account {
        return Err(Unusable::OtherAccount);
    }
    super::check_token(&entry.access_token).map_err(Unusable::Garbage)?;
    if !reusable(entry.expires_at, now) {
        return Err(Unusable::Expired);
    }
    Ok((Secret::new(entry.access_token), entry.expires_at))
}

/// The file's text; `None` if there is none. Refused: a symlink (not
/// followed), anything but a regular file, a mode that lets others read it,
/// a size no cache file has.
fn read_private(path: &Path) -> Result<Option<String>, String> {
    // O_NONBLOCK: opening a FIFO put in its place must not hang the run.
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err("it is a symbolic link, which is not followed".into());
        }
        Err(e) => return Err(format!("cannot open it: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat it: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "its mode is {:04o}, so others may read the token",
            meta.mode() & 0o7777
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("it has {} bytes, too many for a token", meta.len()));
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read it: {e}"))?;
    Ok(Some(text))
}

/// Replaces `path` with `bytes`, mode 0600 whatever the umask: written to
/// an unpredictable name beside it, then renamed over. Not synced: after a
/// crash a torn file is garbage, which costs one token request.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err("a symbolic link stands in its place; it is not replaced".into());
        }
        Ok(m) if !m.is_file() => return Err("something that is not a regular file is there".into()),
        _ => {}
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".ga-token.")
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
    // The umask may have taken bits from the mode asked for above; a token
    // the owner cannot read back is no cache.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(0o600))
        .and_then(|()| tmp.write_all(bytes))
        .map_err(|e| format!("cannot write {}: {e}", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| format!("cannot rename it into place: {}", e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "ab12";
    const NOW: u64 = 1_700_000_000;

    fn entry(account: &str, token: &str, expires_at: u64) -> String {
        serde_json::json!({
            "version": 1, "account": account, "access_token": token, "expires_at": expires_at
        })
        .to_string()
    }

    #[test]
    fn a_token_is_reused_until_a_minute_before_it_expires_and_never_longer_than_any_lives() {
        assert!(reusable(NOW + 3599, NOW));
        assert!(reusable(NOW + 61, NOW));
        assert!(!reusable(NOW + 60, NOW));
        assert!(!reusable(NOW, NOW));
        assert!(!reusable(NOW - 1, NOW));
        assert!(!reusable(0, NOW));
        assert!(reusable(NOW + MAX_LIFETIME_SECS, NOW));
        assert!(
            !reusable(NOW + MAX_LIFETIME_SECS + 1, NOW),
            "clock set back"
        );
        assert!(!reusable(u64::MAX, NOW));
        assert!(!reusable(u64::MAX, u64::MAX));
        assert!(reusable(3600, 0));
    }

    #[test]
    fn a_cache_file_is_read_only_for_its_own_account_and_while_valid() {
        let (t, at) = parse(&entry(ACCOUNT, "ya29.a0", NOW + 600), ACCOUNT, NOW).unwrap();
        assert_eq!((t.expose(), at), ("ya29.a0", NOW + 600));
        assert_eq!(
            parse(&entry("other", "ya29.a0", NOW + 600), ACCOUNT, NOW).unwrap_err(),
            Unusable::OtherAccount
        );
        assert_eq!(
            parse(&entry(ACCOUNT, "ya29.a0", NOW + 30), ACCOUNT, NOW).unwrap_err(),
            Unusable::Expired
        );
        let garbage = [
            String::new(),
            "{".into(),
            "null".into(),
            r#"{"version":2,"account":"ab12","access_token":"x","expires_at":1}"#.into(),
            r#"{"version":1,"account":"ab12","access_token":"x","expires_at":-5}"#.into(),
            r#"{"version":1,"account":"ab12","access_token":"x","expires_at":1.5}"#.into(),
            r#"{"version":1,"account":"ab12","access_token":"x","expires_at":"soon"}"#.into(),
            r#"{"version":1,"account":"ab12","access_token":"x","expires_at":1e300}"#.into(),
            r#"{"version":1,"account":"ab12","access_token":"x"}"#.into(),
            r#"{"version":1,"account":"ab12","access_token":"x","expires_at":1,"more":0}"#.into(),
            entry(ACCOUNT, "", NOW + 600),
            entry(ACCOUNT, "ya29 with spaces", NOW + 600),
            entry(ACCOUNT, "ya29\r\nX-Injected: 1", NOW + 600),
        ];
        for text in garbage {
            let e = parse(&text, ACCOUNT, NOW).unwrap_err();
            let Unusable::Garbage(why) = &e else {
                panic!("{text}: {e:?}")
            };
            assert!(!why.contains("ya29"), "{why}");
        }
    }

    #[test]
    fn the_account_key_changes_with_every_part() {
        let base = account_key("a@p.iam", "k1", "https://t/token", "s");
        assert_eq!(base.len(), 64);
        assert_eq!(base, account_key("a@p.iam", "k1", "https://t/token", "s"));
        for other in [
            account_key("b@p.iam", "k1", "https://t/token", "s"),
            account_key("a@p.iam", "k2", "https://t/token", "s"),
            account_key("a@p.iam", "k1", "https://u/token", "s"),
            account_key("a@p.iam", "k1", "https://t/token", "s2"),
            account_key("a@p.iamk1", "", "https://t/token", "s"),
        ] {
            assert_ne!(base, other);
        }
    }
}
