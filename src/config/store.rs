//! Where run records go: MySQL (`mysql_*`) when `mysql_host` is set, else the
//! JSON-lines `state_file`; and how the MySQL connection is secured
//! (`mysql_ssl_mode`, `mysql_ssl_ca`). The CA bundle is read and checked
//! here, so a bad one is a configuration error before anything runs.

use std::path::{Path, PathBuf};

use super::Secret;
use super::document::Document;
use super::error::ConfigError;
use super::raw::RawConfig;

pub const DEFAULT_STATE_FILE: &str = "/var/lib/hpa-tier/runs.jsonl";

#[derive(Clone, Debug)]
pub struct MysqlSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub database: String,
    pub tls: MysqlTls,
}

/// `mysql_ssl_mode`: the MySQL client's `--ssl-mode`, with its meanings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disabled,
    /// TLS when the server offers it, else plain; the certificate is not checked.
    #[default]
    Preferred,
    /// TLS or fail; the certificate is not checked.
    Required,
    /// TLS, and the certificate must chain to a trusted CA (any host name).
    VerifyCa,
    /// As `VerifyCa`, and the certificate must be for `mysql_host`.
    VerifyIdentity,
}

impl SslMode {
    pub const ALL: [SslMode; 5] = [
        SslMode::Disabled,
        SslMode::Preferred,
        SslMode::Required,
        SslMode::VerifyCa,
        SslMode::VerifyIdentity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disabled => "disabled",
            SslMode::Preferred => "preferred",
            SslMode::Required => "required",
            SslMode::VerifyCa => "verify_ca",
            SslMode::VerifyIdentity => "verify_identity",
        }
    }

    /// Whether the server certificate is checked against the trusted roots.
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyIdentity)
    }

    /// As the MySQL client spells them too (`VERIFY_CA`, `verify-ca`).
    fn parse(s: &str) -> Option<SslMode> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        SslMode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the MySQL connection is secured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MysqlTls {
    pub mode: SslMode,
    /// `mysql_ssl_ca`: the only roots trusted when set; else the bundled
    /// public (Mozilla) roots.
    pub ca: Option<CaBundle>,
}

/// The certificates of `mysql_ssl_ca`, read and checked at validation.
#[derive(Clone, PartialEq, Eq)]
pub struct CaBundle {
    pub path: PathBuf,
    /// DER, in file order; at least one, each a usable trust anchor.
    pub certs: Vec<Vec<u8>>,
}

impl std::fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CaBundle({}, {} certificates)",
            self.path.display(),
            self.certs.len()
        )
    }
}

impl CaBundle {
    /// Reads a PEM bundle (one or more `CERTIFICATE` blocks, as the RDS
    /// bundle is); every certificate must parse as a trust anchor.
    pub fn read(path: &Path) -> Result<CaBundle, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut certs = vec![];
        let mut roots = rustls::RootCertStore::empty();
        for (i, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
            let cert = cert
                .map_err(|e| format!("{} is not a PEM certificate bundle: {e}", path.display()))?;
            roots.add(cert.clone()).map_err(|e| {
                format!(
                    "certificate {} of {} is not a usable CA certificate: {e}",
                    i + 1,
                    path.display()
                )
            })?;
            certs.push(cert.to_vec());
        }
        if certs.is_empty() {
            return Err(format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
        Ok(CaBundle {
            path: path.to_path_buf(),
            certs,
        })
    }
}

pub(super) struct StoreSettings {
    pub mysql: Option<MysqlSettings>,
    pub state_file: PathBuf,
}

pub(super) fn validate(raw: &RawConfig, doc: &Document) -> Result<StoreSettings, ConfigError> {
    let host = doc.expand("mysql_host", &raw.mysql_host)?;
    let mysql = if host.is_empty() {
        None
    } else {
        Some(mysql(host, raw, doc)?)
    };
    let state_file = doc.expand(
        "state_file",
        raw.state_file.as_deref().unwrap_or(DEFAULT_STATE_FILE),
    )?;
    Ok(StoreSettings {
        mysql,
        state_file: PathBuf::from(doc.home("state_file", state_file)?),
    })
}

fn mysql(host: String, raw: &RawConfig, doc: &Document) -> Result<MysqlSettings, ConfigError> {
    let user = doc.expand("mysql_user", &raw.mysql_user)?;
    let database = doc.expand("mysql_db", &raw.mysql_db)?;
    if user.is_empty() {
        return Err(doc.err("mysql_user", "missing while mysql_host is set"));
    }
    if database.is_empty() {
        return Err(doc.err("mysql_db", "missing while mysql_host is set"));
    }
    // The name is put into statements as an identifier.
    if !database
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
    {
        return Err(doc.err(
            "mysql_db",
            format!("`{database}` is not a plain database name"),
        ));
    }
    if raw.mysql_port == 0 {
        return Err(doc.err("mysql_port", "must be a TCP port, 1..=65535, got 0"));
    }
    Ok(MysqlSettings {
        host,
        port: raw.mysql_port,
        user,
        password: Secret::new(doc.expand("mysql_pwd", &raw.mysql_pwd)?),
        database,
        tls: tls(raw, doc)?,
    })
}

fn tls(raw: &RawConfig, doc: &Document) -> Result<MysqlTls, ConfigError> {
    let mode = match raw.mysql_ssl_mode.as_deref().map(str::trim) {
        None | Some("") => SslMode::default(),
        Some(text) => SslMode::parse(text).ok_or_else(|| {
            let all: Vec<&str> = SslMode::ALL.iter().map(|m| m.as_str()).collect();
            doc.err(
                "mysql_ssl_mode",
                format!("`{text}` is not one of {}", all.join(", ")),
            )
        })?,
    };
    let path = doc.expand("mysql_ssl_ca", raw.mysql_ssl_ca.as_deref().unwrap_or(""))?;
    if path.trim().is_empty() {
        return Ok(MysqlTls { mode, ca: None });
    }
    if !mode.verifies() {
        // A CA the mode then ignores would look like verification to
        // whoever reads the config, and be none.
        return Err(doc.err(
            "mysql_ssl_ca",
            format!(
                "is only used by mysql_ssl_mode verify_ca or verify_identity; with `{mode}` \
                 the server certificate is not checked (set mysql_ssl_mode: verify_identity)"
            ),
        ));
    }
    let path = doc.home("mysql_ssl_ca", path.trim().to_string())?;
    let ca = CaBundle::read(Path::new(&path)).map_err(|e| doc.err("mysql_ssl_ca", e))?;
    Ok(MysqlTls { mode, ca: Some(ca) })
}
