//! The users source (`users`, and for GA `property_id`,
//! `key_file_location`, `ga_api_url`): where the number of online users
//! comes from. [`check_key_file`] is separate from validation because only
//! the commands that read GA need the key. GA's access-token cache lives
//! beside `state_file` ([`TOKEN_CACHE_FILE`]), so it is placed once the
//! store's section is validated.

use std::path::{Path, PathBuf};

use super::document::Document;
use super::error::ConfigError;
use super::http_url;
use super::raw::{RawConfig, RawHttpSource, RawPrometheusSource, RawUsers};
use crate::error::UsageError;

pub const DEFAULT_GA_API_URL: &str = "https://analyticsdata.googleapis.com";
/// The GA access-token cache's name, in `state_file`'s directory.
pub const TOKEN_CACHE_FILE: &str = "ga-token.json";

#[derive(Clone, Debug)]
pub enum UsersSource {
    Ga(GaSettings),
    Http { url: String, json_pointer: String },
    Prometheus { url: String, query: String },
}

#[derive(Clone, Debug)]
pub struct GaSettings {
    /// Always `properties/<digits>`.
    pub property: String,
    pub key_file: PathBuf,
    pub minutes: Option<u32>,
    pub api_url: String,
    pub token_cache: TokenCache,
}

/// Where the GA access token is kept between runs, so that a run within
/// the token's hour makes one call to Google instead of two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenCache {
    /// Every run asks for a new token.
    Off,
    /// `--dry-run`: a cached token is used, nothing is written or removed.
    ReadOnly(PathBuf),
    ReadWrite(PathBuf),
}

impl UsersSource {
    /// Places GA's token cache beside `state_file`.
    pub(super) fn keep_token_beside(&mut self, state_file: &Path) {
        if let UsersSource::Ga(ga) = self {
            ga.token_cache = TokenCache::ReadWrite(state_file.with_file_name(TOKEN_CACHE_FILE));
        }
    }

    /// `--dry-run` changes nothing, not even the token cache: it is only read.
    pub fn read_only(&mut self) {
        if let UsersSource::Ga(ga) = self
            && let TokenCache::ReadWrite(path) = &ga.token_cache
        {
            ga.token_cache = TokenCache::ReadOnly(path.clone());
        }
    }
}

pub(super) fn validate(raw: &RawConfig, doc: &Document) -> Result<UsersSource, ConfigError> {
    let users = raw.users.as_ref();
    match users.and_then(|u| u.source.as_deref()).unwrap_or("ga") {
        "ga" => ga(raw, users, doc).map(UsersSource::Ga),
        "http" => http(users.and_then(|u| u.http.as_ref()), doc),
        "prometheus" => prometheus(users.and_then(|u| u.prometheus.as_ref()), doc),
        other => Err(ConfigError::new(
            "users.source",
            format!("`{other}` is not one of ga, http, prometheus"),
        )),
    }
}

fn ga(
    raw: &RawConfig,
    users: Option<&RawUsers>,
    doc: &Document,
) -> Result<GaSettings, ConfigError> {
    let property = doc.expand("property_id", &raw.property_id)?;
    let digits = property.trim().trim_start_matches("properties/");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(doc.err(
            "property_id",
            format!(
                "`{property}` is not a GA4 property id (`properties/123456789` or `123456789`)"
            ),
        ));
    }
    let key_file = doc.expand("key_file_location", &raw.key_file_location)?;
    if key_file.is_empty() {
        return Err(doc.err(
            "key_file_location",
            "missing; the GA source needs the service-account JSON key",
        ));
    }
    let minutes = users.and_then(|u| u.ga_minutes);
    if let Some(m) = minutes
        && !(1..=60).contains(&m)
    {
        return Err(ConfigError::new(
            "users.ga_minutes",
            format!("{m} is out of range (GA allows 1..30, 60 on GA4 360)"),
        ));
    }
    let api_url = doc.expand(
        "ga_api_url",
        raw.ga_api_url.as_deref().unwrap_or(DEFAULT_GA_API_URL),
    )?;
    http_url("ga_api_url", &api_url)?;
    Ok(GaSettings {
        property: format!("properties/{digits}"),
        key_file: PathBuf::from(doc.home("key_file_location", key_file)?),
        minutes,
        api_url: api_url.trim_end_matches('/').to_string(),
        token_cache: TokenCache::Off,
    })
}

fn http(raw: Option<&RawHttpSource>, doc: &Document) -> Result<UsersSource, ConfigError> {
    let Some(h) = raw else {
        return Err(ConfigError::new(
            "users.http",
            "missing; `source: http` needs `http: { url: ..., json_pointer: ... }`",
        ));
    };
    let url = doc.expand("users.http.url", &h.url)?;
    http_url("users.http.url", &url)?;
    let json_pointer = h
        .json_pointer
        .clone()
        .unwrap_or_else(|| "/online_users".into());
    if !(json_pointer.is_empty() || json_pointer.starts_with('/')) {
        return Err(ConfigError::new(
            "users.http.json_pointer",
            format!("`{json_pointer}` must be empty or start with '/' (RFC 6901)"),
        ));
    }
    Ok(UsersSource::Http { url, json_pointer })
}

fn prometheus(
    raw: Option<&RawPrometheusSource>,
    doc: &Document,
) -> Result<UsersSource, ConfigError> {
    let Some(p) = raw else {
        return Err(ConfigError::new(
            "users.prometheus",
            "missing; `source: prometheus` needs `prometheus: { url: ..., query: ... }`",
        ));
    };
    let url = doc.expand("users.prometheus.url", &p.url)?;
    http_url("users.prometheus.url", &url)?;
    if p.query.trim().is_empty() {
        return Err(ConfigError::new("users.prometheus.query", "empty"));
    }
    Ok(UsersSource::Prometheus {
        url: url.trim_end_matches('/').to_string(),
        query: p.query.clone(),
    })
}

/// The GA key file must be readable before a run that reads GA starts.
/// (`tiers` does not need it, so this is not part of validation.)
pub fn check_key_file(users: &UsersSource) -> Result<(), UsageError> {
    if let UsersSource::Ga(ga) = users {
        std::fs::File::open(&ga.key_file).map_err(|e| {
            UsageError::new(format!(
                "key_file_location: cannot read the Google service-account key {}: {e}",
                ga.key_file.display()
            ))
        })?;
    }
    Ok(())
}
