//! The web configuration file (`--web.config.file`) in the format of Prometheus'
//! exporter-toolkit, so operators reuse the files they have: TLS through rustls, basic-auth
//! users, extra response headers. Everything is checked when the file is loaded; nothing here
//! reads a file while serving.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};

use crate::config::{self, ConfigError, Invalid, locate};
use crate::web::auth::{BasicAuth, bcrypt_hash, max_checks};

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
    basic_auth_users: Option<UserList>,
    rate_limit: Option<IgnoredAny>,
}

/// `basic_auth_users` in the order of the file, repeats kept: a map would silently keep the
/// last of two entries for one user.
#[derive(Debug, Default)]
struct UserList(Vec<(String, String)>);

impl<'de> Deserialize<'de> for UserList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Users;
        impl<'de> Visitor<'de> for Users {
            type Value = UserList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of user names to bcrypt hashes")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<UserList, E> {
                Ok(UserList::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UserList, A::Error> {
                let mut users = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    users.push(entry);
                }
                Ok(UserList(users))
            }
        }
        deserializer.deserialize_map(Users)
    }
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
/// [`Invalid`] naming the key and the line.
pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, Invalid> {
    let raw: RawWebConfig = config::from_yaml(text)?;
    let at = |path: &str, message: String| Invalid::at(text, path, message);
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
        Some(UserList(users)) if users.is_empty() => None,
        Some(UserList(users)) => {
            let mut checked: BTreeMap<String, String> = BTreeMap::new();
            for (user, hash) in users {
                let key = format!("basic_auth_users.{user}");
                if user.is_empty() {
                    return Err(
                        Invalid::of("basic_auth_users", "a user name must not be empty")
                            .on_line(user_lines(text, "").first().copied()),
                    );
                }
                if checked.contains_key(&user) {
                    return Err(Invalid::of(key, "repeated")
                        .on_line(user_lines(text, &user).get(1).copied()));
                }
                if user.contains(':') {
                    return Err(at(&key, "a user name cannot contain ':'".to_owned()));
                }
                bcrypt_hash(&hash).map_err(|m| at(&key, m))?;
                checked.insert(user, hash);
            }
            Some(Arc::new(BasicAuth::new(checked, max_checks())))
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
            "{}, {}, {}",
            if self.tls.is_some() {
                "TLS"
            } else {
                "plain HTTP"
            },
            config::counted(users, "basic-auth user"),
            config::counted(self.headers.len(), "extra header")
        )
    }
}

/// The lines (1-based) where `user` is a key of the block-style `basic_auth_users` mapping,
/// plain or quoted: serde reports no position for a repeat or an empty name.
fn user_lines(text: &str, user: &str) -> Vec<usize> {
    let Some(start) = locate(text, "basic_auth_users") else {
        return Vec::new();
    };
    text.lines()
        .enumerate()
        .skip(start)
        .take_while(|(_, l)| l.is_empty() || l.starts_with([' ', '#']))
        .filter(|(_, l)| {
            let key = l.trim_start();
            [
                format!("{user}:"),
                format!("\"{user}\":"),
                format!("'{user}':"),
            ]
            .iter()
            .any(|k| key.starts_with(k.as_str()))
        })
        .map(|(i, _)| i + 1)
        .collect()
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
                "basic_auth_users.alice: expected text, got a list at line 2",
            ),
            (
                &format!(
                    "basic_auth_users:\n  alice: {}\n",
                    hash.replacen("$2y$", "$2x$", 1)
                ),
                "basic_auth_users.alice: is not a bcrypt hash ($2a$, $2b$ or $2y$): the prefix is $2x$ at line 2",
            ),
            (
                &format!(
                    "basic_auth_users:\n  alice: {}\n",
                    hash.replacen("$10$", "$15$", 1)
                ),
                "basic_auth_users.alice: bcrypt cost 15 is above the maximum of 14 at line 2",
            ),
            (
                &format!(
                    "basic_auth_users:\n  alice: {}\n",
                    hash.replacen("$10$", "$03$", 1)
                ),
                "basic_auth_users.alice: bcrypt cost 3 is below bcrypt's minimum of 4 at line 2",
            ),
            (
                &format!(
                    "basic_auth_users:\n  alice: {hash}\n  bob: {hash}\n  # alice: old\n  'alice': {hash}\n"
                ),
                "basic_auth_users.alice: repeated at line 5",
            ),
            (
                &format!("basic_auth_users:\n  alice: {hash}\n  \"\": {hash}\n"),
                "basic_auth_users: a user name must not be empty at line 3",
            ),
            (
                "basic_auth_users: [alice]\n",
                "basic_auth_users: expected a mapping of user names to bcrypt hashes, got a list at line 1",
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
                    .expect_err(text)
                    .to_string();
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
}
