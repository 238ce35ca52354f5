//! TLS to MySQL: the driver's options for each `mysql_ssl_mode`, and what a
//! failed TLS connection means, in words that say what to fix.
//!
//! mysql_async's rustls path (0.37.1) has no "preferred": with TLS options
//! set it fails when the server offers no TLS ([`not_offered`]), and the
//! store then retries in plain only for `preferred`. Nothing else falls back:
//! a certificate or handshake failure is the answer in every mode.

use mysql_async::SslOpts;
use rustls::CertificateError;

use crate::config::{MysqlTls, SslMode};

/// The host name `verify_ca` verifies against. mysql_async 0.37.1 forgives a
/// name mismatch (`with_danger_skip_domain_validation`) only when rustls's
/// message contains `NotValidForName`, which the message of rustls 0.23's
/// `NotValidForNameContext` no longer does (blackbeam/mysql_async#404,
/// fixed upstream by #408, not released). rustls puts the expected name in
/// that message, so verifying against this name makes the check fire on
/// every release: the chain is verified first, and then the name — which
/// `verify_ca` does not care about — always mismatches and is forgiven.
/// The name goes out as SNI; MySQL servers ignore it. Once a fixed
/// mysql_async ships, the override can simply go.
pub const VERIFY_CA_NAME: &str = "NotValidForName.verify-ca.invalid";

/// The driver's TLS options for `tls`, for a server reached as `host`;
/// `None`: a plain connection.
pub fn ssl_opts(tls: &MysqlTls, host: &str) -> Option<SslOpts> {
    let unchecked = SslOpts::default()
        .with_danger_accept_invalid_certs(true)
        // rustls needs a syntactically valid name even when it checks none.
        .with_danger_tls_hostname_override(
            (!is_server_name(host)).then_some("mysql.invalid".to_string()),
        );
    let roots = || match &tls.ca {
        Some(ca) => SslOpts::default()
            .with_root_certs(ca.certs.iter().map(|c| c.clone().into()).collect())
            .with_disable_built_in_roots(true),
        None => SslOpts::default(),
    };
    match tls.mode {
        SslMode::Disabled => None,
        SslMode::Preferred | SslMode::Required => Some(unchecked),
        SslMode::VerifyCa => Some(
            roots()
                .with_danger_skip_domain_validation(true)
                .with_danger_tls_hostname_override(Some(VERIFY_CA_NAME)),
        ),
        SslMode::VerifyIdentity => Some(roots()),
    }
}

fn is_server_name(host: &str) -> bool {
    rustls::pki_types::ServerName::try_from(host).is_ok()
}

/// The server answered without offering TLS, and TLS was asked for.
pub fn not_offered(e: &mysql_async::Error) -> bool {
    matches!(
        e,
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)
    )
}

/// What a driver error that is not a server error means for TLS, when it is
/// about TLS: `host` is `mysql_host` as the certificate must name it.
pub fn explain(e: &mysql_async::Error, tls: &MysqlTls, host: &str) -> Option<String> {
    let mode = tls.mode;
    if not_offered(e) {
        return Some(format!(
            "the server does not offer TLS, and mysql_ssl_mode `{mode}` requires it (enable \
             TLS on the server, or set mysql_ssl_mode: preferred to allow a connection \
             without it)"
        ));
    }
    if let Some(mysql_async::TlsError::InvalidDnsName(_)) = find::<mysql_async::TlsError>(e) {
        return Some(format!(
            "TLS: `{host}` is not a host name a certificate can be checked against \
             (mysql_ssl_mode `{mode}`)"
        ));
    }
    let rustls_error = find::<rustls::Error>(e)?;
    Some(match rustls_error {
        rustls::Error::InvalidCertificate(cert) => certificate(cert, tls, host),
        other => format!(
            "TLS handshake failed: {other} (mysql_ssl_mode `{mode}`; set mysql_ssl_mode: \
             disabled only if the server's TLS cannot be used at all)"
        ),
    })
}

fn certificate(e: &CertificateError, tls: &MysqlTls, host: &str) -> String {
    let roots = match &tls.ca {
        Some(ca) => format!("mysql_ssl_ca ({})", ca.path.display()),
        None => "any of the bundled public root CAs (set mysql_ssl_ca to the bundle of the \
                 CA that signed it, e.g. the RDS one)"
            .to_string(),
    };
    match e {
        // BadSignature: a CA of the same name but another key.
        CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
            "TLS: the server certificate is not signed by {roots} (mysql_ssl_mode `{}`)",
            tls.mode
        ),
        CertificateError::NotValidForNameContext { presented, .. } => {
            let names = if presented.is_empty() {
                "no host name at all".to_string()
            } else {
                presented
                    .iter()
                    .map(|n| format!("`{}`", presented_name(n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "TLS: the server certificate is for {names}, not `{host}` (mysql_ssl_mode \
                 verify_identity checks the name: set mysql_host to a name the certificate \
                 carries, or use verify_ca)"
            )
        }
        CertificateError::NotValidForName => format!(
            "TLS: the server certificate is not for `{host}` (mysql_ssl_mode verify_identity \
             checks the name: set mysql_host to a name the certificate carries, or use \
             verify_ca)"
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("TLS: the server certificate has expired ({e})")
        }
        other => format!(
            "TLS: the server certificate was refused: {other} (mysql_ssl_mode `{}`)",
            tls.mode
        ),
    }
}

/// A name as rustls-webpki reports it presented (`DnsName("db.example")`,
/// `IpAddress(10.0.0.1)`), as the operator would write it.
fn presented_name(text: &str) -> &str {
    let dns = text
        .strip_prefix("DnsName(\"")
        .and_then(|r| r.strip_suffix("\")"));
    let ip = text
        .strip_prefix("IpAddress(")
        .and_then(|r| r.strip_suffix(')'));
    dns.or(ip).unwrap_or(text)
}

/// The first `T` in `e`'s chain of sources, looking inside I/O errors too
/// (tokio-rustls reports rustls's errors as `io::Error`s).
fn find<T: std::error::Error + 'static>(e: &mysql_async::Error) -> Option<&T> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(t) = inner.downcast_ref::<T>()
        {
            return Some(t);
        }
        next = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CaBundle;

    fn tls(mode: SslMode) -> MysqlTls {
        MysqlTls { mode, ca: None }
    }

    fn io_tls(e: rustls::Error) -> mysql_async::Error {
        mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            e,
        )))
    }

    #[test]
    fn each_mode_maps_to_the_drivers_checks() {
        assert!(ssl_opts(&tls(SslMode::Disabled), "db").is_none());
        for mode in [SslMode::Preferred, SslMode::Required] {
            let o = ssl_opts(&tls(mode), "db").unwrap();
            assert!(o.accept_invalid_certs(), "{mode}");
            assert_eq!(o.tls_hostname_override(), None, "{mode}");
        }
        let o = ssl_opts(&tls(SslMode::VerifyCa), "db").unwrap();
        assert!(!o.accept_invalid_certs());
        assert!(o.skip_domain_validation());
        assert_eq!(o.tls_hostname_override(), Some(VERIFY_CA_NAME));
        assert!(is_server_name(VERIFY_CA_NAME));
        let o = ssl_opts(&tls(SslMode::VerifyIdentity), "db").unwrap();
        assert!(!o.accept_invalid_certs() && !o.skip_domain_validation());
        assert_eq!(o.tls_hostname_override(), None);
        assert!(o.root_certs().is_empty() && !o.disable_built_in_roots());
    }

    #[test]
    fn a_configured_ca_is_the_only_root() {
        let ca = CaBundle {
            path: "/ca.pem".into(),
            certs: vec![vec![1, 2], vec![3]],
        };
        let t = MysqlTls {
            mode: SslMode::VerifyIdentity,
            ca: Some(ca),
        };
        let o = ssl_opts(&t, "db").unwrap();
        assert_eq!(o.root_certs().len(), 2);
        assert!(o.disable_built_in_roots());
    }

    #[test]
    fn an_unchecked_mode_gets_by_with_a_host_that_is_no_dns_name() {
        let o = ssl_opts(&tls(SslMode::Required), "db..primary").unwrap();
        assert_eq!(o.tls_hostname_override(), Some("mysql.invalid"));
        let o = ssl_opts(&tls(SslMode::Required), "10.0.0.5").unwrap();
        assert_eq!(o.tls_hostname_override(), None);
    }

    #[test]
    fn the_workaround_name_is_in_rustls_message_for_a_mismatch() {
        // What mysql_async 0.37.1 looks for; if rustls rewords its message,
        // this says so before verify_ca stops working.
        let e = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: rustls::pki_types::ServerName::try_from(VERIFY_CA_NAME)
                .unwrap()
                .to_owned(),
            presented: vec!["db.example".into()],
        });
        assert!(e.to_string().contains("NotValidForName"), "{e}");
    }

    #[test]
    fn failures_say_what_is_wrong() {
        let ca = MysqlTls {
            mode: SslMode::VerifyCa,
            ca: Some(CaBundle {
                path: "/etc/ca.pem".into(),
                certs: vec![],
            }),
        };
        let unknown = io_tls(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        assert_eq!(
            explain(&unknown, &ca, "127.0.0.1").unwrap(),
            "TLS: the server certificate is not signed by mysql_ssl_ca (/etc/ca.pem) \
             (mysql_ssl_mode `verify_ca`)"
        );
        let public = explain(&unknown, &tls(SslMode::VerifyIdentity), "db").unwrap();
        assert!(public.contains("bundled public root CAs"), "{public}");
        assert!(public.contains("set mysql_ssl_ca"), "{public}");

        let name = io_tls(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForNameContext {
                expected: rustls::pki_types::ServerName::try_from("127.0.0.1")
                    .unwrap()
                    .to_owned(),
                presented: vec![
                    "DnsName(\"db.other.test\")".into(),
                    "IpAddress(10.1.1.1)".into(),
                    "DirectoryName".into(),
                ],
            },
        ));
        let text = explain(&name, &tls(SslMode::VerifyIdentity), "127.0.0.1").unwrap();
        assert!(
            text.starts_with(
                "TLS: the server certificate is for `db.other.test`, `10.1.1.1`, `DirectoryName`, \
                 not `127.0.0.1`"
            ),
            "{text}"
        );

        let not_offered =
            mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer);
        let text = explain(&not_offered, &tls(SslMode::Required), "db").unwrap();
        assert!(
            text.starts_with("the server does not offer TLS, and mysql_ssl_mode `required`"),
            "{text}"
        );

        let handshake = mysql_async::Error::Io(mysql_async::IoError::Tls(
            mysql_async::TlsError::Tls(rustls::Error::HandshakeNotComplete),
        ));
        let text = explain(&handshake, &tls(SslMode::Required), "db").unwrap();
        assert!(text.starts_with("TLS handshake failed"), "{text}");

        let closed = mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed);
        assert_eq!(explain(&closed, &tls(SslMode::Required), "db"), None);
    }
}
