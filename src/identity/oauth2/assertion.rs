//! The `private_key_jwt` client assertion (RFC 7523 §2.2, OpenID Connect Core §9): a JWT
//! issued by and about the client, for the token endpoint, signed RS256 with the client's
//! key. Okta checks it against the public key registered on the app, chosen by `kid`.
//!
//! The key file is a PEM RSA private key (`PRIVATE KEY` = PKCS#8 or `RSA PRIVATE KEY` =
//! PKCS#1), alone or with its certificate — the same file an Azure service principal's
//! certificate credential uses, signed by the same code ([`crate::identity::certificate`]).
//! With a certificate the header carries its thumbprint (`x5t`) too. It never prints the key
//! or an assertion: errors name the file and what is wrong with it.

use crate::identity::certificate::{
    assertion_claims, sign_jwt, AssertionAlgorithm, ClientCertificate,
};
use crate::secret::Secret;
use aws_lc_rs::signature::RsaKeyPair;
use rustls_pki_types::pem::{PemObject, SectionKind};
use std::path::{Path, PathBuf};

/// Why the key file cannot sign assertions.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read --client-key-file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--client-key-file {path} holds no unencrypted RSA private key (PEM PRIVATE KEY or RSA PRIVATE KEY block){why}; convert it with `openssl pkey -in key.pem -out plain.pem` and keep the result private")]
    NoKey { path: PathBuf, why: String },
    #[error("the key in --client-key-file {path} is not a usable RSA key ({reason}); private_key_jwt needs RSA, 2048 bits or more")]
    BadKey { path: PathBuf, reason: String },
    #[error("--client-key-file {path}: {message}")]
    Certificate { path: PathBuf, message: String },
    #[error("signing the client assertion failed")]
    Sign,
}

/// A loaded `private_key_jwt` key.
pub enum AssertionKey {
    /// A certificate and its key: `x5t` in the header (and `kid` when given).
    Certificate {
        certificate: ClientCertificate,
        key_id: Option<String>,
    },
    /// A bare RSA key: `kid` in the header when given.
    Key {
        key: RsaKeyPair,
        key_id: Option<String>,
    },
}

impl std::fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AssertionKey::Certificate { key_id, .. } => {
                write!(f, "AssertionKey::Certificate(kid {key_id:?})")
            }
            AssertionKey::Key { key_id, .. } => write!(f, "AssertionKey::Key(kid {key_id:?})"),
        }
    }
}

impl AssertionKey {
    /// Read `path`; `key_id` is the `kid` the provider knows the public key by.
    pub fn load(path: &Path, key_id: Option<String>) -> Result<Self, KeyError> {
        let pem = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pem(path, &pem, key_id)
    }

    /// Parse PEM bytes (`path` only names them in errors).
    pub fn from_pem(path: &Path, pem: &[u8], key_id: Option<String>) -> Result<Self, KeyError> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("-----BEGIN CERTIFICATE-----") {
            let certificate = ClientCertificate::from_pem(path, pem).map_err(|e| {
                // Its messages name the Azure variable; say which flag this file came from.
                KeyError::Certificate {
                    path: path.to_path_buf(),
                    message: e
                        .to_string()
                        .replace("AZURE_CLIENT_CERTIFICATE_PATH ", "the file ")
                        .replace("in AZURE_CLIENT_CERTIFICATE_PATH ", "in "),
                }
            })?;
            return Ok(AssertionKey::Certificate {
                certificate,
                key_id,
            });
        }
        let no_key = |why: &str| KeyError::NoKey {
            path: path.to_path_buf(),
            why: why.to_string(),
        };
        if text.contains("ENCRYPTED") {
            return Err(no_key(": the key is encrypted"));
        }
        let mut found = None;
        for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
            let Ok((kind, der)) = item else {
                return Err(no_key(": not a PEM file"));
            };
            if matches!(kind, SectionKind::PrivateKey | SectionKind::RsaPrivateKey) {
                found = Some((kind, der));
                break;
            }
            if kind == SectionKind::EcPrivateKey {
                return Err(KeyError::BadKey {
                    path: path.to_path_buf(),
                    reason: "an EC key".into(),
                });
            }
        }
        let (kind, der) = found.ok_or_else(|| no_key(""))?;
        let key = match kind {
            SectionKind::RsaPrivateKey => RsaKeyPair::from_der(&der),
            _ => RsaKeyPair::from_pkcs8(&der),
        }
        .map_err(|e| KeyError::BadKey {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(AssertionKey::Key { key, key_id })
    }

    /// A signed assertion for `client_id` at `token_url`, valid from `now` (unix seconds).
    pub fn assertion(
        &self,
        client_id: &str,
        token_url: &str,
        now: i64,
    ) -> Result<Secret, KeyError> {
        let (key, mut header) = match self {
            AssertionKey::Certificate {
                certificate,
                key_id,
            } => (
                certificate.signing_key(),
                serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": certificate.x5t(), "kid": key_id}),
            ),
            AssertionKey::Key { key, key_id } => (
                key,
                serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": key_id}),
            ),
        };
        if let Some(h) = header.as_object_mut() {
            h.retain(|_, v| !v.is_null());
        }
        let claims = assertion_claims(token_url, client_id, now);
        sign_jwt(key, AssertionAlgorithm::Rs256, &header, &claims).map_err(|_| KeyError::Sign)
    }
}
