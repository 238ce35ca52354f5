//! Where run records go: MySQL (`mysql_*`) when `mysql_host` is set, else the
//! JSON-lines `state_file`.

use std::path::PathBuf;

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
    })
}
