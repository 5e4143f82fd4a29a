//! The web configuration file (`--web.config.file`) in the format of Prometheus'
//! exporter-toolkit, so operators reuse the files they have: TLS through rustls, basic auth
//! with bcrypt hashes, extra response headers. Everything is checked when the file is loaded;
//! nothing here reads a file while serving.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use hyper::header::{HeaderName, HeaderValue};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::config::{self, ConfigError, line_suffix, locate};

/// A loaded web configuration.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// `None`: plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
    pub basic_auth: Option<Arc<BasicAuth>>,
    /// Added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of web configuration keys")]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// HTTP/2 is not served; the key is accepted so that existing files load.
    #[allow(dead_code)]
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// Reads and checks a web configuration file.
///
/// # Errors
///
/// [`ConfigError`] naming the file, the key and, where it can be found, the line.
pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
    config::load_with(path, |text| {
        parse(text, path.parent().unwrap_or(Path::new(".")))
    })
}

/// Checks web configuration text; relative file names are taken from `dir`.
///
/// # Errors
///
/// A message naming the key and the line.
pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, String> {
    let raw: RawWebConfig = config::from_yaml(text)?;
    let at = |path: &str, message: String| {
        format!("{path}: {message}{}", line_suffix(locate(text, path)))
    };
    if raw.rate_limit.is_some() {
        return Err(at(
            "rate_limit",
            "is not supported by this exporter".to_owned(),
        ));
    }
    let tls = raw
        .tls_server_config
        .map(|t| {
            tls(t, dir).map_err(|(key, message)| at(&format!("tls_server_config.{key}"), message))
        })
        .transpose()?
        .map(Arc::new);
    let headers = raw
        .http_server_config
        .and_then(|h| h.headers)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| {
            header(&name, &value).map_err(|m| at(&format!("http_server_config.headers.{name}"), m))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let basic_auth = match raw.basic_auth_users {
        None => None,
        Some(users) if users.is_empty() => None,
        Some(users) => {
            // The decoy costs what the users' hashes cost, so that timing tells nothing.
            let mut cost = None;
            for (user, hash) in &users {
                if user.contains(':') {
                    return Err(at(
                        &format!("basic_auth_users.{user}"),
                        "a user name cannot contain ':'".to_owned(),
                    ));
                }
                let parts = hash.parse::<bcrypt::HashParts>().map_err(|e| {
                    at(
                        &format!("basic_auth_users.{user}"),
                        format!("is not a bcrypt hash ($2a$, $2b$ or $2y$): {e}"),
                    )
                })?;
                cost = cost.max(Some(parts.get_cost()));
            }
            let cost = cost.unwrap_or(bcrypt::DEFAULT_COST);
            let decoy = bcrypt::hash("decoy", cost)
                .map_err(|e| format!("basic_auth_users: cannot prepare password checks: {e}"))?;
            Some(Arc::new(BasicAuth {
                users,
                verified: Mutex::new(HashSet::new()),
                decoy,
                checks: tokio::sync::Semaphore::new(MAX_CHECKS),
            }))
        }
    };
    Ok(WebConfig {
        tls,
        basic_auth,
        headers,
    })
}

impl WebConfig {
    /// A one-line description, for `--config.check`.
    pub fn summary(&self) -> String {
        let users = self.basic_auth.as_ref().map_or(0, |auth| auth.users.len());
        format!(
            "{}, {} basic-auth users, {} extra headers",
            if self.tls.is_some() {
                "TLS"
            } else {
                "plain HTTP"
            },
            users,
            self.headers.len()
        )
    }
}

/// The response headers exporter-toolkit allows, with the values it accepts.
fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let canonical = [
        "Content-Security-Policy",
        "X-Frame-Options",
        "X-Content-Type-Options",
        "X-XSS-Protection",
        "Strict-Transport-Security",
    ]
    .into_iter()
    .find(|h| h.eq_ignore_ascii_case(name))
    .ok_or_else(|| {
        "is not one of the headers that can be set: Content-Security-Policy, X-Frame-Options, X-Content-Type-Options, X-XSS-Protection, Strict-Transport-Security".to_owned()
    })?;
    let allowed = match canonical {
        "X-Frame-Options" => ["deny", "sameorigin"]
            .iter()
            .any(|v| v.eq_ignore_ascii_case(value)),
        "X-Content-Type-Options" => value.eq_ignore_ascii_case("nosniff"),
        _ => true,
    };
    if !allowed {
        return Err(format!("{value:?} is not an accepted value"));
    }
    let value = HeaderValue::from_str(value)
        .map_err(|_| format!("{value:?} is not a valid header value"))?;
    let name = HeaderName::from_static(match canonical {
        "Content-Security-Policy" => "content-security-policy",
        "X-Frame-Options" => "x-frame-options",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "strict-transport-security",
    });
    Ok((name, value))
}

/// Builds the rustls configuration; an error names the key within `tls_server_config`.
fn tls(raw: RawTls, dir: &Path) -> Result<ServerConfig, (&'static str, String)> {
    if raw.client_allowed_sans.is_some() {
        return Err((
            "client_allowed_sans",
            "is not supported by this exporter".to_owned(),
        ));
    }
    let certs = pem(
        &raw.cert,
        &raw.cert_file,
        ("cert", "cert_file"),
        dir,
        certificates,
    )?
    .ok_or(("cert_file", "is required".to_owned()))?;
    let key = pem(
        &raw.key,
        &raw.key_file,
        ("key", "key_file"),
        dir,
        private_key,
    )?
    .ok_or(("key_file", "is required".to_owned()))?;
    let client_ca = pem(
        &raw.client_ca,
        &raw.client_ca_file,
        ("client_ca", "client_ca_file"),
        dir,
        certificates,
    )?;

    let provider = Arc::new(provider(&raw)?);
    let versions = versions(raw.min_version.as_deref(), raw.max_version.as_deref())?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| {
            (
                "cipher_suites",
                format!("leaves no usable cipher suite: {e}"),
            )
        })?;
    let auth_type = raw.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let builder = match auth_type {
        "NoClientCert" => builder.with_no_client_auth(),
        "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
            let Some(ca) = client_ca else {
                return Err((
                    "client_ca_file",
                    format!("is required with client_auth_type {auth_type}"),
                ));
            };
            let mut roots = RootCertStore::empty();
            for cert in ca {
                roots.add(cert).map_err(|e| {
                    (
                        "client_ca_file",
                        format!("holds a certificate that cannot be used: {e}"),
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth_type == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| {
                (
                    "client_ca_file",
                    format!("cannot verify client certificates: {e}"),
                )
            })?)
        }
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err((
                "client_auth_type",
                format!(
                    "{auth_type} accepts certificates without verifying them and is not supported; use RequireAndVerifyClientCert"
                ),
            ));
        }
        other => {
            return Err((
                "client_auth_type",
                format!(
                    "{other:?} is not one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
                ),
            ));
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        (
            "key_file",
            format!("does not match the certificate or cannot be used: {e}"),
        )
    })?;
    config.ignore_client_order = raw.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A PEM value given inline or as a file (never both), parsed; `None` if neither is given.
/// An error names the key it is about.
fn pem<T>(
    inline: &Option<String>,
    file: &Option<String>,
    (inline_key, file_key): (&'static str, &'static str),
    dir: &Path,
    parse: fn(&[u8]) -> Result<T, String>,
) -> Result<Option<T>, (&'static str, String)> {
    match (inline, file) {
        (Some(_), Some(_)) => Err((
            inline_key,
            format!("give either {inline_key} or {file_key}, not both"),
        )),
        (Some(text), None) => parse(text.as_bytes())
            .map(Some)
            .map_err(|e| (inline_key, e)),
        (None, Some(file)) => read(dir, file)
            .and_then(|bytes| parse(&bytes))
            .map(Some)
            .map_err(|e| (file_key, e)),
        (None, None) => Ok(None),
    }
}

fn read(dir: &Path, file: &str) -> Result<Vec<u8>, String> {
    let path = dir.join(file);
    config::read_file(&path).map_err(|e| format!("{}: {e}", path.display()))
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("is not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".to_owned());
    }
    Ok(certs)
}

fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("holds no PEM private key: {e}"))
}

/// `TLS12` or `TLS13`, as exporter-toolkit writes them; rustls has nothing older.
fn versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static SupportedProtocolVersion>, (&'static str, String)> {
    let rank = |key: &'static str, v: &str| match v {
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        "TLS10" | "TLS11" => Err((key, format!("{v} is not supported; use TLS12 or TLS13"))),
        other => Err((key, format!("{other:?} is not one of TLS12, TLS13"))),
    };
    let low = min.map_or(Ok(12), |v| rank("min_version", v))?;
    let high = max.map_or(Ok(13), |v| rank("max_version", v))?;
    if low > high {
        return Err(("max_version", "is below min_version".to_owned()));
    }
    Ok(
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (low..=high).contains(v))
            .map(|(_, version)| version)
            .collect(),
    )
}

/// The crypto provider, narrowed to the configured TLS 1.2 cipher suites (as in Go, they do
/// not apply to TLS 1.3) and curves, in the configured order.
fn provider(raw: &RawTls) -> Result<CryptoProvider, (&'static str, String)> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(names) = &raw.cipher_suites {
        let all = provider.cipher_suites.clone();
        let mut chosen: Vec<_> = all
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .copied()
            .collect();
        for name in names {
            let suite = all
                .iter()
                .find(|s| {
                    let own = format!("{:?}", s.suite());
                    own == *name || own == format!("{name}_SHA256")
                })
                .ok_or_else(|| {
                    (
                        "cipher_suites",
                        format!("{name:?} is not a supported TLS 1.2 cipher suite"),
                    )
                })?;
            chosen.push(*suite);
        }
        provider.cipher_suites = chosen;
    }
    if let Some(names) = &raw.curve_preferences {
        let all = provider.kx_groups.clone();
        provider.kx_groups = names
            .iter()
            .map(|name| {
                let wanted = match name.as_str() {
                    "X25519" => "X25519",
                    "CurveP256" => "secp256r1",
                    "CurveP384" => "secp384r1",
                    "CurveP521" => "secp521r1",
                    "X25519MLKEM768" => "X25519MLKEM768",
                    _ => "",
                };
                all.iter()
                    .find(|g| format!("{:?}", g.name()) == wanted)
                    .copied()
                    .ok_or_else(|| {
                        (
                            "curve_preferences",
                            format!("{name:?} is not a supported curve"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(provider)
}

/// Users and their bcrypt hashes; checks `Authorization: Basic` headers.
#[derive(Debug)]
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// Credentials that verified once: bcrypt costs tens of milliseconds a check, by design,
    /// and a scraper sends the same ones every few seconds.
    verified: Mutex<HashSet<(String, String)>>,
    /// A hash checked for unknown users, so that their answer takes as long as a wrong
    /// password's and does not tell which users exist.
    decoy: String,
    /// bcrypt checks under way at once: wrong credentials must not be able to take every core.
    checks: tokio::sync::Semaphore,
}

/// One bcrypt check per core of a small machine; more callers wait their turn.
const MAX_CHECKS: usize = 2;

/// Remembered successes at most, so that the cache cannot grow without bound.
const MAX_VERIFIED: usize = 1024;

impl BasicAuth {
    /// Whether the `Authorization` header carries the credentials of a configured user.
    pub async fn allows(self: &Arc<Self>, header: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = header.and_then(credentials) else {
            return false;
        };
        let key = (user, password);
        if self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&key)
        {
            return true;
        }
        let Ok(_turn) = self.checks.acquire().await else {
            return false;
        };
        let this = Arc::clone(self);
        let checked = tokio::task::spawn_blocking(move || {
            let ok = match this.users.get(&key.0) {
                Some(hash) => bcrypt::verify(&key.1, hash).unwrap_or(false),
                None => {
                    let _ = bcrypt::verify(&key.1, &this.decoy);
                    false
                }
            };
            if ok {
                let mut verified = this
                    .verified
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if verified.len() < MAX_VERIFIED {
                    verified.insert(key);
                }
            }
            ok
        })
        .await;
        checked.unwrap_or(false)
    }
}

/// User and password of a `Basic` authorization header.
fn credentials(header: &HeaderValue) -> Option<(String, String)> {
    let value = header.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each bad web configuration and the exact message it gets.
    #[test]
    fn bad_web_configs() {
        let hash = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG";
        let cases: &[(&str, &str)] = &[
            (
                "tls_config:\n  cert_file: a\n",
                "unknown field `tls_config`, expected one of `tls_server_config`, `http_server_config`, `basic_auth_users`, `rate_limit` at line 1",
            ),
            (
                "rate_limit:\n  interval: 1s\n",
                "rate_limit: is not supported by this exporter at line 1",
            ),
            (
                "tls_server_config:\n  key_file: k.pem\n",
                "tls_server_config.cert_file: is required",
            ),
            (
                "tls_server_config:\n  cert_file: missing.crt\n  key_file: k.pem\n",
                "tls_server_config.cert_file: /nonexistent/missing.crt: cannot read: No such file or directory (os error 2) at line 2",
            ),
            (
                "tls_server_config:\n  cert_file: /\n  key_file: k.pem\n",
                "tls_server_config.cert_file: /: is a directory, not a regular file at line 2",
            ),
            (
                "tls_server_config:\n  cert_file: /dev/zero\n  key_file: k.pem\n",
                "tls_server_config.cert_file: /dev/zero: is a character device, not a regular file at line 2",
            ),
            (
                "tls_server_config:\n  cert: \"not pem\"\n  key: \"not pem\"\n",
                "tls_server_config.cert: holds no PEM certificate at line 2",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  cert: b\n",
                "tls_server_config.cert: give either cert or cert_file, not both at line 3",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_allowed_sans: [x]\n",
                "tls_server_config.client_allowed_sans: is not supported by this exporter at line 4",
            ),
            (
                "tls_server_config:\n  cert_fil: a\n",
                "tls_server_config: unknown field `cert_fil`, expected one of `cert`, `key`, `client_ca`, `cert_file`, `key_file`, `client_auth_type`, `client_ca_file`, `client_allowed_sans`, `min_version`, `max_version`, `cipher_suites`, `prefer_server_cipher_suites`, `curve_preferences` at line 2 column 3",
            ),
            (
                &format!("basic_auth_users:\n  alice: {hash}\n  bob: plaintext\n"),
                "basic_auth_users.bob: is not a bcrypt hash ($2a$, $2b$ or $2y$): Invalid hash: the hash format is malformed; expected 60 ASCII bytes at line 3",
            ),
            (
                "basic_auth_users:\n  alice: [x]\n",
                "basic_auth_users.alice: invalid type: sequence, expected a string at line 2 column 10",
            ),
            (
                "http_server_config:\n  headers:\n    Server: nginx\n",
                "http_server_config.headers.Server: is not one of the headers that can be set: Content-Security-Policy, X-Frame-Options, X-Content-Type-Options, X-XSS-Protection, Strict-Transport-Security at line 3",
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
                "http_server_config.headers.X-Frame-Options: \"allow\" is not an accepted value at line 3",
            ),
            (
                "http_server_config:\n  http3: true\n",
                "http_server_config: unknown field `http3`, expected `http2` or `headers` at line 2 column 3",
            ),
        ];
        let mismatches: Vec<String> = cases
            .iter()
            .filter_map(|(text, want)| {
                let got = parse(text, Path::new("/nonexistent"))
                    .map(|_| ())
                    .expect_err(text);
                (got != *want).then(|| format!("{text}\n  got: {got}\n want: {want}"))
            })
            .collect();
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
    }

    #[test]
    fn tls_settings_that_rustls_cannot_honour_are_refused_by_name() {
        let raw = |extra: &str| -> RawTls {
            config::from_yaml(&format!("cert: a\nkey: b\n{extra}")).expect("shape")
        };
        let cases = [
            (
                "min_version: TLS11\n",
                ("min_version", "TLS11 is not supported; use TLS12 or TLS13"),
            ),
            (
                "max_version: TLS14\n",
                ("max_version", "\"TLS14\" is not one of TLS12, TLS13"),
            ),
            (
                "min_version: TLS13\nmax_version: TLS12\n",
                ("max_version", "is below min_version"),
            ),
        ];
        for (extra, (key, message)) in cases {
            let r = raw(extra);
            assert_eq!(
                versions(r.min_version.as_deref(), r.max_version.as_deref()).map(|_| ()),
                Err((key, message.to_owned())),
                "{extra}"
            );
        }
        let r = raw("cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n");
        assert_eq!(
            provider(&r).map(|_| ()).err(),
            Some((
                "cipher_suites",
                "\"TLS_RSA_WITH_RC4_128_SHA\" is not a supported TLS 1.2 cipher suite".to_owned()
            ))
        );
        let r = raw(
            "cipher_suites: [TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305]\ncurve_preferences: [CurveP256, X25519]\n",
        );
        let p = provider(&r).expect("known suite and curves");
        assert_eq!(p.kx_groups.len(), 2);
        assert_eq!(
            p.cipher_suites
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS12)
                .count(),
            1
        );
    }

    #[test]
    fn credentials_of_a_basic_header() {
        let header = |s: &str| HeaderValue::from_str(s).expect("header");
        assert_eq!(
            credentials(&header("Basic dXNlcjpwYTpzcw==")),
            Some(("user".into(), "pa:ss".into()))
        );
        assert_eq!(
            credentials(&header("basic dXNlcjpw")),
            Some(("user".into(), "p".into()))
        );
        for bad in ["Bearer dXNlcjpw", "Basic !!!", "Basic dXNlcg==", "Basic"] {
            assert_eq!(credentials(&header(bad)), None, "{bad}");
        }
    }
}
