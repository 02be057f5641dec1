//! A service principal that proves itself with a certificate (`AZURE_CLIENT_CERTIFICATE_PATH`):
//! the OAuth client-assertion flow. Instead of sending a secret, the tool signs a short-lived
//! JWT with the certificate's RSA private key; Entra checks the signature against the
//! certificate uploaded to the app registration, which it finds by the thumbprint in the
//! JWT's header (`x5t` = SHA-1 of the DER certificate for RS256, `x5t#S256` = SHA-256 for
//! PS256).
//!
//! Why our own code and not a crate: the signing primitives are already in the binary
//! (`aws-lc-rs`, which rustls and the AWS SDK use), so the flow costs a JSON header, a JSON
//! body and one signature — no OpenSSL, no second crypto stack. PEM parsing uses
//! `rustls-pki-types`, also already present.
//!
//! What it accepts: one PEM file holding the certificate (first `CERTIFICATE` block = the
//! leaf) and an unencrypted RSA private key (`PRIVATE KEY` = PKCS#8 or `RSA PRIVATE KEY` =
//! PKCS#1). Encrypted keys and PKCS#12 (`.pfx`) files are refused with the command that
//! converts them, because decrypting them would need the crypto we chose not to carry.
//!
//! It must never print the key or an assertion: errors name the file and what is wrong with it.

use crate::secret::Secret;
use aws_lc_rs::{digest, rand::SystemRandom, signature};
use base64::Engine as _;
use rustls_pki_types::pem::{PemObject, SectionKind};
use std::path::{Path, PathBuf};

/// An assertion is valid for this long (Entra accepts at most ten minutes).
pub const ASSERTION_LIFETIME_SECS: i64 = 600;
/// The `client_assertion_type` of a JWT bearer assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The signature algorithm of the assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssertionAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256; header carries `x5t` (SHA-1 thumbprint).
    #[default]
    Rs256,
    /// RSASSA-PSS with SHA-256; header carries `x5t#S256` (SHA-256 thumbprint).
    Ps256,
}

/// Why a certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot read AZURE_CLIENT_CERTIFICATE_PATH {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("AZURE_CLIENT_CERTIFICATE_PATH {path} is not a PEM file (a .pfx/PKCS#12 file?); convert it with `openssl pkcs12 -in cert.pfx -out cert.pem -nodes` (keep the result private)")]
    NotPem { path: PathBuf },
    #[error("AZURE_CLIENT_CERTIFICATE_PATH {path} holds no CERTIFICATE block; the PEM file must hold the certificate and its private key")]
    NoCertificate { path: PathBuf },
    #[error("the private key in AZURE_CLIENT_CERTIFICATE_PATH {path} is encrypted; encrypted keys (and AZURE_CLIENT_CERTIFICATE_PASSWORD) are not supported: decrypt it with `openssl pkey -in key.pem -out plain.pem` (or `openssl pkcs12 … -nodes`) and keep the file private")]
    Encrypted { path: PathBuf },
    #[error("AZURE_CLIENT_CERTIFICATE_PATH {path} holds no private key (PRIVATE KEY or RSA PRIVATE KEY block); the PEM file must hold the certificate and its private key")]
    NoKey { path: PathBuf },
    #[error("the private key in AZURE_CLIENT_CERTIFICATE_PATH {path} is not a usable RSA key ({reason}); Entra certificate credentials need RSA (2048 bits or more)")]
    BadKey { path: PathBuf, reason: String },
    #[error("signing the client assertion failed")]
    Sign,
}

/// A certificate credential: the signing key and the certificate's thumbprints.
pub struct ClientCertificate {
    path: PathBuf,
    key: signature::RsaKeyPair,
    /// base64url SHA-1 of the DER certificate (`x5t`).
    x5t: String,
    /// base64url SHA-256 of the DER certificate (`x5t#S256`).
    x5t_s256: String,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("path", &self.path)
            .field("x5t", &self.x5t)
            .finish_non_exhaustive()
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl ClientCertificate {
    /// Load the certificate and key from a PEM file.
    pub fn load(path: &Path) -> Result<Self, CertificateError> {
        let pem = std::fs::read(path).map_err(|source| CertificateError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pem(path, &pem)
    }

    /// Parse the certificate and key from PEM bytes (`path` only names them in errors).
    pub fn from_pem(path: &Path, pem: &[u8]) -> Result<Self, CertificateError> {
        let path = path.to_path_buf();
        let text = String::from_utf8_lossy(pem);
        if !text.contains("-----BEGIN ") {
            return Err(CertificateError::NotPem { path });
        }
        // Legacy OpenSSL encryption marks the block with headers; PKCS#8 with its own label.
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            || text.contains("Proc-Type: 4,ENCRYPTED")
        {
            return Err(CertificateError::Encrypted { path });
        }
        let mut cert: Option<Vec<u8>> = None;
        let mut key: Option<(SectionKind, Vec<u8>)> = None;
        for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
            let Ok((kind, der)) = item else {
                return Err(CertificateError::NotPem { path });
            };
            match kind {
                SectionKind::Certificate if cert.is_none() => cert = Some(der),
                SectionKind::PrivateKey | SectionKind::RsaPrivateKey if key.is_none() => {
                    key = Some((kind, der))
                }
                SectionKind::EcPrivateKey if key.is_none() => {
                    return Err(CertificateError::BadKey {
                        path,
                        reason: "an EC key".into(),
                    })
                }
                _ => {}
            }
        }
        let cert = cert.ok_or_else(|| CertificateError::NoCertificate { path: path.clone() })?;
        let (kind, der) = key.ok_or_else(|| CertificateError::NoKey { path: path.clone() })?;
        let parsed = match kind {
            SectionKind::RsaPrivateKey => signature::RsaKeyPair::from_der(&der),
            _ => signature::RsaKeyPair::from_pkcs8(&der),
        };
        let key = parsed.map_err(|e| CertificateError::BadKey {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            path,
            key,
            x5t: b64url(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &cert).as_ref()),
            x5t_s256: b64url(digest::digest(&digest::SHA256, &cert).as_ref()),
        })
    }

    /// The certificate's SHA-1 thumbprint, base64url (what `x5t` carries; Entra and the
    /// portal show the same bytes in hex).
    pub fn x5t(&self) -> &str {
        &self.x5t
    }

    /// The certificate's SHA-256 thumbprint, base64url (`x5t#S256`).
    pub fn x5t_s256(&self) -> &str {
        &self.x5t_s256
    }

    /// A signed client assertion for `client_id` at the token endpoint `audience`
    /// (`{authority}/{tenant}/oauth2/v2.0/token`), valid from `now` (unix seconds) for
    /// [`ASSERTION_LIFETIME_SECS`].
    pub fn assertion(
        &self,
        algorithm: AssertionAlgorithm,
        audience: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Secret, CertificateError> {
        let header = match algorithm {
            AssertionAlgorithm::Rs256 => {
                serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t})
            }
            AssertionAlgorithm::Ps256 => {
                serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.x5t_s256})
            }
        };
        sign_jwt(
            &self.key,
            algorithm,
            &header,
            &assertion_claims(audience, client_id, now),
        )
    }

    /// The certificate's RSA key, for a client assertion with another header (an OAuth2
    /// `private_key_jwt` with a `kid`, `identity::oauth2::assertion`).
    pub(crate) fn signing_key(&self) -> &signature::RsaKeyPair {
        &self.key
    }
}

/// The claims of an RFC 7523 client assertion: issued by and about `client_id`, for the token
/// endpoint `audience`, valid from `now` (unix seconds) for [`ASSERTION_LIFETIME_SECS`], with
/// a fresh `jti` (providers refuse a replayed one).
pub(crate) fn assertion_claims(audience: &str, client_id: &str, now: i64) -> serde_json::Value {
    serde_json::json!({
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": hex::encode(rand::random::<[u8; 16]>()),
        "iat": now,
        "nbf": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
    })
}

/// `header` and `claims` as a compact JWS signed with `key` (RS256 or PS256).
pub(crate) fn sign_jwt(
    key: &signature::RsaKeyPair,
    algorithm: AssertionAlgorithm,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> Result<Secret, CertificateError> {
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let padding: &'static dyn signature::RsaEncoding = match algorithm {
        AssertionAlgorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
        AssertionAlgorithm::Ps256 => &signature::RSA_PSS_SHA256,
    };
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        padding,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| CertificateError::Sign)?;
    Ok(Secret::new(format!("{signing_input}.{}", b64url(&sig))))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::KeyPair as _;

    /// A throwaway 2048-bit key, generated here (no file checked in), as PKCS#8 PEM.
    fn key_pem() -> (Vec<u8>, signature::RsaKeyPair) {
        use aws_lc_rs::encoding::AsDer as _;
        let key = signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der = key.as_der().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        (pem.into_bytes(), key)
    }

    /// Not a real certificate: the thumbprint only hashes the DER bytes.
    const FAKE_CERT: &str = "-----BEGIN CERTIFICATE-----\nAQIDBA==\n-----END CERTIFICATE-----\n";

    #[test]
    fn assertions_are_signed_and_carry_the_thumbprint() {
        let (key_pem, key) = key_pem();
        let mut pem = FAKE_CERT.as_bytes().to_vec();
        pem.extend_from_slice(&key_pem);
        let cert = ClientCertificate::from_pem(Path::new("c.pem"), &pem).unwrap();
        assert_eq!(
            cert.x5t(),
            b64url(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &[1, 2, 3, 4]).as_ref())
        );
        let public = key.public_key().as_ref().to_vec();
        for (alg, verify, thumb_name) in [
            (
                AssertionAlgorithm::Rs256,
                &signature::RSA_PKCS1_2048_8192_SHA256 as &dyn signature::VerificationAlgorithm,
                "x5t",
            ),
            (
                AssertionAlgorithm::Ps256,
                &signature::RSA_PSS_2048_8192_SHA256,
                "x5t#S256",
            ),
        ] {
            let a = cert
                .assertion(alg, "https://login.test/t/oauth2/v2.0/token", "app", 1000)
                .unwrap();
            let parts: Vec<&str> = a.expose().split('.').collect();
            assert_eq!(parts.len(), 3);
            let dec = |s: &str| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(s)
                    .unwrap()
            };
            let header: serde_json::Value = serde_json::from_slice(&dec(parts[0])).unwrap();
            let claims: serde_json::Value = serde_json::from_slice(&dec(parts[1])).unwrap();
            assert_eq!(header["typ"], "JWT");
            assert!(header[thumb_name].is_string(), "{header}");
            assert_eq!(claims["aud"], "https://login.test/t/oauth2/v2.0/token");
            assert_eq!(claims["iss"], "app");
            assert_eq!(claims["sub"], "app");
            assert_eq!(claims["exp"], 1600);
            let signed = format!("{}.{}", parts[0], parts[1]);
            signature::UnparsedPublicKey::new(verify, &public)
                .verify(signed.as_bytes(), &dec(parts[2]))
                .unwrap();
        }
        assert!(!format!("{cert:?}").contains("PRIVATE"));
    }

    #[test]
    fn unusable_files_are_explained() {
        let p = Path::new("c.pem");
        let err = |pem: &str| {
            ClientCertificate::from_pem(p, pem.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert!(err("\x30binary").contains("pkcs12"));
        assert!(err(FAKE_CERT).contains("no private key"));
        let enc = format!(
            "{FAKE_CERT}-----BEGIN ENCRYPTED PRIVATE KEY-----\nAQID\n-----END ENCRYPTED PRIVATE KEY-----\n"
        );
        assert!(err(&enc).contains("encrypted"));
        let (key_pem, _) = key_pem();
        let only_key = String::from_utf8(key_pem).unwrap();
        assert!(err(&only_key).contains("no CERTIFICATE"));
        let bad =
            format!("{FAKE_CERT}-----BEGIN PRIVATE KEY-----\nAQID\n-----END PRIVATE KEY-----\n");
        assert!(err(&bad).contains("not a usable RSA key"));
    }
}
