//! node_exporter's textfile collector: the body written to a `*.prom` file
//! that node_exporter reads on every scrape. Written aside under an
//! unpredictable name that does not end in `.prom` (so the collector never
//! reads a half-written file), synced, made 0644 whatever the umask (the
//! gauges are no secret, and node_exporter usually runs as another user),
//! then renamed over the old one. A symlink is never followed: the temp
//! file is created fresh (`O_CREAT|O_EXCL`), and the rename replaces a link
//! at the path instead of writing through it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

const MODE: u32 = 0o644;

#[derive(Debug)]
pub struct Textfile {
    path: PathBuf,
}

impl Textfile {
    /// `path`: the validated `metrics_textfile`.
    pub fn new(path: PathBuf) -> Textfile {
        Textfile { path }
    }

    /// Replaces the file with `body`, within `limit` (a hung filesystem is
    /// left to its blocking thread). `Ok` says where it went.
    pub async fn write(&self, body: String, limit: Duration) -> Result<String, String> {
        let path = self.path.clone();
        let call = tokio::task::spawn_blocking(move || write_atomically(&path, body.as_bytes()));
        let at = self.path.display();
        match tokio::time::timeout(limit, call).await {
            Err(_) => Err(format!(
                "writing {at} took longer than {}s",
                limit.as_secs()
            )),
            Ok(Err(join)) => Err(format!("writing {at} failed unexpectedly: {join}")),
            Ok(Ok(Err(e))) => Err(format!("cannot write {at}: {e}")),
            Ok(Ok(Ok(()))) => Ok(format!("written to {at}")),
        }
    }
}

/// See the module docs. On failure the temp file is removed and the old
/// file, if any, is left as it was.
pub fn write_atomically(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", random_hex()?));
    let tmp = dir.join(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .open(&tmp)?;
        // The umask may have taken bits off `mode`.
        f.set_permissions(std::fs::Permissions::from_mode(MODE))?;
        f.write_all(body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename survives a crash once the directory is synced; where a
        // filesystem cannot sync a directory the file is in place anyway.
        let _ = File::open(dir).and_then(|d| d.sync_all());
        Ok(())
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn random_hex() -> std::io::Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| std::io::Error::other("the OS random source failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
