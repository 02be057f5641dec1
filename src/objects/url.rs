//! Which object URLs may be read, and how an object is named in messages.
//!
//! A presigned URL carries its own signature, and the API that hands it out is not trusted
//! to send us anywhere: like a foreign next-page link, a URL whose host is not an S3 endpoint
//! is refused *before any request* ([`HostPolicy::check`]). Allowed are the configured S3
//! endpoint (same scheme, host — or a bucket subdomain of it — and port), AWS's own S3 hosts
//! over HTTPS (`s3.amazonaws.com`, `<bucket>.s3.amazonaws.com`, `*.s3.<region>.amazonaws.com`,
//! `s3.<region>.amazonaws.com`, dual-stack and China partitions), and what the user allows
//! with `--allow-object-host` (a host — HTTPS only —, `*.suffix`, `host:port`, or
//! `http://host:port` to allow plain HTTP to it).
//!
//! Names: an object is named by its `s3://bucket/key` or its URL without query string,
//! fragment or userinfo ([`object_name`]), never with the signature.

use super::error::ObjectError;
use super::{ObjectLocation, ObjectRef};
use url::Url;

/// An `s3://bucket/prefix` (or `s3://bucket/key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri {
    pub bucket: String,
    /// Everything after `bucket/` (may be empty: the whole bucket).
    pub key: String,
}

impl S3Uri {
    /// Parse `s3://bucket[/key]`.
    pub fn parse(text: &str) -> Result<S3Uri, ObjectError> {
        let invalid = |reason: &str| ObjectError::InvalidReference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("an S3 URI starts with s3:// (s3://bucket/prefix)"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("no bucket name after s3://"));
        }
        if !bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c))
        {
            return Err(invalid(
                "a bucket name has only lower-case letters, digits, '.', '-' and '_'",
            ));
        }
        Ok(S3Uri {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

impl std::fmt::Display for S3Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// A URL as it may be shown: no userinfo, no query string, no fragment.
pub fn url_without_secrets(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        // Not a URL: show what precedes a query string, if anything.
        Err(_) => url.split(['?', '#']).next().unwrap_or_default().to_string(),
    }
}

/// How an object is named in messages, logs and manifests.
pub fn object_name(obj: &ObjectRef) -> String {
    location_name(&obj.location)
}

/// [`object_name`] of a location.
pub fn location_name(location: &ObjectLocation) -> String {
    match location {
        ObjectLocation::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        ObjectLocation::Url { url } => url_without_secrets(url),
    }
}

/// One `--allow-object-host` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    /// `*.example.com` → suffix match on `.example.com`.
    wildcard: bool,
    host: String,
    port: Option<u16>,
    /// `http://…`: plain HTTP allowed to it.
    http: bool,
}

impl AllowedHost {
    fn parse(entry: &str) -> Result<AllowedHost, ObjectError> {
        let invalid = |reason: &str| ObjectError::InvalidReference {
            reference: format!("--allow-object-host {entry}"),
            reason: reason.to_string(),
        };
        let entry = entry.trim();
        let (http, rest) = if let Some(r) = entry.strip_prefix("http://") {
            (true, r)
        } else {
            (false, entry.strip_prefix("https://").unwrap_or(entry))
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains(['/', '?', '#', '@']) {
            return Err(invalid(
                "give a host name, host:port or *.domain, not a URL path",
            ));
        }
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.starts_with('[') => (
                h,
                Some(
                    p.parse::<u16>()
                        .map_err(|_| invalid("the port is not a number"))?,
                ),
            ),
            _ => (rest, None),
        };
        if host.is_empty() || host.contains('*') {
            return Err(invalid(
                "the host is empty or has a '*' other than a leading '*.'",
            ));
        }
        if http && port.is_none() {
            return Err(invalid(
                "plain HTTP is only allowed to an explicit http://host:port",
            ));
        }
        Ok(AllowedHost {
            wildcard,
            host: host.to_ascii_lowercase(),
            port,
            http,
        })
    }

    fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let host_ok = if self.wildcard {
            host.ends_with(&format!(".{}", self.host))
        } else {
            host == self.host
        };
        let scheme_ok = url.scheme() == "https" || (self.http && url.scheme() == "http");
        let port_ok = self
            .port
            .is_none_or(|p| url.port_or_known_default() == Some(p));
        host_ok && scheme_ok && port_ok
    }
}

/// Whether `host` is one of AWS's S3 hosts (any region, path or virtual-hosted style,
/// dual-stack, FIPS, the China partition).
pub fn is_aws_s3_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let Some(labels) = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))
    else {
        return false;
    };
    let labels: Vec<&str> = labels.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return false;
    }
    labels.iter().any(|l| {
        *l == "s3"
            || *l == "s3-fips"
            || *l == "s3-accelerate"
            || (l.starts_with("s3-")
                && l.len() > 3
                && l[3..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-'))
    })
}

/// The hosts an object URL may point at.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// The configured S3 endpoint (`AWS_ENDPOINT_URL_S3`), when overridden.
    endpoint: Option<Url>,
    allowed: Vec<AllowedHost>,
}

impl HostPolicy {
    /// The policy for the configured endpoint (if any) and the `--allow-object-host` entries.
    pub fn new(endpoint: Option<Url>, allow_hosts: &[String]) -> Result<HostPolicy, ObjectError> {
        let allowed = allow_hosts
            .iter()
            .map(|h| AllowedHost::parse(h))
            .collect::<Result<_, _>>()?;
        Ok(HostPolicy { endpoint, allowed })
    }

    /// Whether the configured endpoint serves `url`: same scheme and port, and the same host
    /// or a bucket subdomain of it (virtual-hosted style).
    fn is_endpoint(&self, url: &Url) -> bool {
        let Some(ep) = &self.endpoint else {
            return false;
        };
        let (Some(h), Some(eh)) = (url.host_str(), ep.host_str()) else {
            return false;
        };
        let (h, eh) = (h.to_ascii_lowercase(), eh.to_ascii_lowercase());
        url.scheme() == ep.scheme()
            && url.port_or_known_default() == ep.port_or_known_default()
            && (h == eh || h.ends_with(&format!(".{eh}")))
    }

    /// Parse `url` and check that it may be read; nothing has been sent when this fails.
    pub fn check(&self, url: &str) -> Result<Url, ObjectError> {
        let shown = url_without_secrets(url);
        let parsed = Url::parse(url).map_err(|e| ObjectError::InvalidReference {
            reference: shown.clone(),
            reason: format!("not a URL ({e})"),
        })?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(ObjectError::InvalidReference {
                reference: shown,
                reason: "an object URL must not carry user credentials".into(),
            });
        }
        if parsed.scheme() != "https" && parsed.scheme() != "http" {
            return Err(ObjectError::InvalidReference {
                reference: shown,
                reason: format!("the scheme {} is not https", parsed.scheme()),
            });
        }
        let host = parsed.host_str().unwrap_or_default().to_string();
        let aws = parsed.scheme() == "https" && is_aws_s3_host(&host);
        if aws || self.is_endpoint(&parsed) || self.allowed.iter().any(|a| a.allows(&parsed)) {
            return Ok(parsed);
        }
        let host = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        Err(ObjectError::HostRefused {
            object: shown,
            host: if parsed.scheme() == "http" {
                format!("http://{host}")
            } else {
                host
            },
            allowed: self.describe(),
        })
    }

    /// What is allowed, for the refusal message.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(ep) = &self.endpoint {
            parts.push(format!("endpoint {}", url_without_secrets(ep.as_str())));
        }
        parts.push("https://*.s3.*.amazonaws.com".to_string());
        for a in &self.allowed {
            let scheme = if a.http { "http://" } else { "" };
            let star = if a.wildcard { "*." } else { "" };
            let port = a.port.map(|p| format!(":{p}")).unwrap_or_default();
            parts.push(format!("{scheme}{star}{}{port}", a.host));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn aws_s3_hosts_are_recognised() {
        for (host, ok) in [
            ("s3.amazonaws.com", true),
            ("bucket.s3.amazonaws.com", true),
            ("my.bucket.s3.eu-west-1.amazonaws.com", true),
            ("s3.eu-west-1.amazonaws.com", true),
            ("bucket.s3.dualstack.us-east-1.amazonaws.com", true),
            ("bucket.s3-us-west-2.amazonaws.com", true),
            ("bucket.s3.cn-north-1.amazonaws.com.cn", true),
            ("S3.AMAZONAWS.COM", true),
            ("execute-api.us-east-1.amazonaws.com", false),
            ("sts.amazonaws.com", false),
            ("s3.amazonaws.com.evil.io", false),
            ("evils3.amazonaws.com", false),
            ("amazonaws.com", false),
            ("s3..amazonaws.com", false),
            ("127.0.0.1", false),
        ] {
            assert_eq!(is_aws_s3_host(host), ok, "{host}");
        }
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let policy = HostPolicy::new(
            Some(Url::parse("http://127.0.0.1:5000").unwrap()),
            &[
                "objects.example.com".into(),
                "*.corp.example".into(),
                "http://127.0.0.1:7000".into(),
            ],
        )
        .unwrap();
        for (url, ok) in [
            (
                "https://b.s3.us-east-1.amazonaws.com/k?X-Amz-Signature=abc",
                true,
            ),
            ("http://b.s3.us-east-1.amazonaws.com/k", false),
            ("http://127.0.0.1:5000/b/k?X-Amz-Signature=abc", true),
            ("http://bucket.127.0.0.1:5000/k", false),
            ("http://127.0.0.1:5001/b/k?X-Amz-Signature=abc", false),
            ("https://127.0.0.1:5000/b/k", false),
            ("https://objects.example.com/x", true),
            ("http://objects.example.com/x", false),
            ("https://a.corp.example/x", true),
            ("https://corp.example/x", false),
            ("http://127.0.0.1:7000/x", true),
            ("http://127.0.0.1:7001/x", false),
            ("https://user:pw@b.s3.amazonaws.com/k", false),
            ("ftp://b.s3.amazonaws.com/k", false),
            ("https://evil.example/k?X-Amz-Signature=topsecret", false),
        ] {
            assert_eq!(policy.check(url).is_ok(), ok, "{url}");
        }
        let e = policy
            .check("https://evil.example/k?X-Amz-Signature=topsecret")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("topsecret") && !e.contains('?'), "{e}");
        assert!(
            e.contains("https://evil.example/k") && e.contains("--allow-object-host evil.example"),
            "{e}"
        );
    }

    #[test]
    fn allowed_host_entries_are_validated() {
        for bad in [
            "",
            "http://host",
            "https://h/path",
            "a*b.com",
            "h:port",
            "u@h",
        ] {
            assert!(HostPolicy::new(None, &[bad.into()]).is_err(), "{bad}");
        }
        assert!(HostPolicy::new(None, &["h.example:8443".into()]).is_ok());
    }

    #[test]
    fn names_never_show_a_query_string() {
        assert_eq!(
            url_without_secrets("https://u:p@h.example/a/b.json?X-Amz-Signature=s#f"),
            "https://h.example/a/b.json"
        );
        assert_eq!(url_without_secrets("not a url?sig=1"), "not a url");
    }

    #[test]
    fn s3_uris_parse() {
        let u = S3Uri::parse("s3://bucket/exports/2024/").unwrap();
        assert_eq!(
            (u.bucket.as_str(), u.key.as_str()),
            ("bucket", "exports/2024/")
        );
        assert_eq!(S3Uri::parse("s3://bucket").unwrap().key, "");
        for bad in ["bucket/key", "s3:///key", "s3://Bucket/k", "https://b/k"] {
            assert!(S3Uri::parse(bad).is_err(), "{bad}");
        }
    }
}
