//! Notifications (`feishu_webhook_url`, `feishu_secret`). The webhook URL
//! carries the bot's token, so no error here quotes it.

use super::document::Document;
use super::error::ConfigError;
use super::raw::RawConfig;
use super::{Secret, is_http_url};

#[derive(Clone, Debug)]
pub struct FeishuSettings {
    /// The webhook URL carries the bot's token: a secret.
    pub webhook: Secret,
    pub secret: Option<Secret>,
}

/// `None`: no webhook, no notifications.
pub(super) fn validate(
    raw: &RawConfig,
    doc: &Document,
) -> Result<Option<FeishuSettings>, ConfigError> {
    let webhook = doc.expand("feishu_webhook_url", &raw.feishu_webhook_url)?;
    if webhook.is_empty() {
        return Ok(None);
    }
    if !is_http_url(&webhook) {
        return Err(doc.err("feishu_webhook_url", "not an http(s) URL"));
    }
    let secret = doc.expand("feishu_secret", &raw.feishu_secret)?;
    Ok(Some(FeishuSettings {
        webhook: Secret::new(webhook),
        secret: (!secret.is_empty()).then(|| Secret::new(secret)),
    }))
}
