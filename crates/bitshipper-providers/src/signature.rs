//! Webhook authentication, per provider: the scheme each documents (HMAC headers), or, where a
//! provider documents none, a secret token in the endpoint URL (`?token=`). Comparisons are
//! constant-time; failures never say which byte was wrong.

use crate::Provider;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How a provider's webhooks prove where they come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// EasyPost: `X-Hmac-Signature: hmac-sha256-hex=<hex HMAC-SHA256 of the body>`.
    EasyPostHmac,
    /// AfterShip: `aftership-hmac-sha256: <base64 HMAC-SHA256 of the body>`.
    AfterShipHmac,
    /// 17TRACK: `sign: <hex SHA-256 of body + "/" + key>`.
    SeventeenTrackSign,
    /// ShipEngine: RSA PKCS#1 v1.5 SHA-256 over `<x-shipengine-timestamp>.<body>`, base64 in
    /// `x-shipengine-rsa-sha256-signature`, key `x-shipengine-rsa-sha256-key-id` of the JWKS
    /// ShipEngine publishes; timestamps more than 5 minutes away are refused.
    ShipEngineRsa,
    /// No documented signature: `?token=<endpoint secret>` in the URL.
    UrlToken,
}

impl Scheme {
    pub fn of(provider: Provider) -> Scheme {
        match provider {
            Provider::EasyPost => Scheme::EasyPostHmac,
            Provider::AfterShip => Scheme::AfterShipHmac,
            Provider::SeventeenTrack => Scheme::SeventeenTrackSign,
            Provider::ShipEngine => Scheme::ShipEngineRsa,
            _ => Scheme::UrlToken,
        }
    }

    /// The header that carries the signature, for documentation and error messages.
    pub fn header(&self) -> Option<&'static str> {
        match self {
            Scheme::EasyPostHmac => Some("x-hmac-signature"),
            Scheme::AfterShipHmac => Some("aftership-hmac-sha256"),
            Scheme::SeventeenTrackSign => Some("sign"),
            Scheme::ShipEngineRsa => Some(SHIPENGINE_SIGNATURE),
            Scheme::UrlToken => None,
        }
    }
}

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the token query parameter is missing")]
    MissingToken,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the timestamp is missing, unreadable, or more than 5 minutes from now")]
    Stale,
    #[error("no public key with this key id (refresh the endpoint's JWKS)")]
    UnknownKey,
}

const SHIPENGINE_SIGNATURE: &str = "x-shipengine-rsa-sha256-signature";
const SHIPENGINE_KEY_ID: &str = "x-shipengine-rsa-sha256-key-id";
const SHIPENGINE_TIMESTAMP: &str = "x-shipengine-timestamp";
/// How far a signed timestamp may be from now.
const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// Checks ShipEngine's RSA signature against the endpoint's JWKS (`{"keys":[{"kid","n","e"}]}`).
fn verify_shipengine(
    jwks: &str,
    body: &[u8],
    header: &impl Fn(&str) -> Option<String>,
) -> Result<(), SignatureError> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let signature =
        header(SHIPENGINE_SIGNATURE).ok_or(SignatureError::Missing(SHIPENGINE_SIGNATURE))?;
    let kid = header(SHIPENGINE_KEY_ID).ok_or(SignatureError::Missing(SHIPENGINE_KEY_ID))?;
    let timestamp =
        header(SHIPENGINE_TIMESTAMP).ok_or(SignatureError::Missing(SHIPENGINE_TIMESTAMP))?;
    let at = chrono::DateTime::parse_from_rfc3339(timestamp.trim())
        .map_err(|_| SignatureError::Stale)?;
    if (chrono::Utc::now() - at.with_timezone(&chrono::Utc))
        .num_seconds()
        .abs()
        > MAX_CLOCK_SKEW_SECS
    {
        return Err(SignatureError::Stale);
    }
    let keys: serde_json::Value =
        serde_json::from_str(jwks).map_err(|_| SignatureError::UnknownKey)?;
    let jwk = keys["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"].as_str() == Some(kid.trim())))
        .ok_or(SignatureError::UnknownKey)?;
    let part = |name: &str| {
        jwk[name]
            .as_str()
            .and_then(|v| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).ok())
            .ok_or(SignatureError::UnknownKey)
    };
    let key = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&part("n")?),
        rsa::BigUint::from_bytes_be(&part("e")?),
    )
    .map_err(|_| SignatureError::UnknownKey)?;
    let signature = BASE64
        .decode(signature.trim())
        .ok()
        .and_then(|s| Signature::try_from(s.as_slice()).ok())
        .ok_or(SignatureError::Mismatch)?;
    let mut signed = timestamp.trim().as_bytes().to_vec();
    signed.push(b'.');
    signed.extend_from_slice(body);
    VerifyingKey::<Sha256>::new(key)
        .verify(&signed, &signature)
        .map_err(|_| SignatureError::Mismatch)
}

fn hmac_sha256(secret: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Computes the signature `provider` would send for `body` with `secret` (what its header
/// carries), or the token for URL-token providers. Used by tests and by `bitshipper` tools
/// that replay payloads. (ShipEngine signs with its private key: nothing to compute here.)
pub fn sign(provider: Provider, secret: &str, body: &[u8]) -> String {
    match Scheme::of(provider) {
        // EasyPost's clients normalize the secret to NFKD before signing.
        Scheme::EasyPostHmac => {
            use unicode_normalization::UnicodeNormalization;
            let normalized: String = secret.nfkd().collect();
            format!(
                "hmac-sha256-hex={}",
                hex::encode(hmac_sha256(normalized.as_bytes(), body))
            )
        }
        Scheme::AfterShipHmac => BASE64.encode(hmac_sha256(secret.as_bytes(), body)),
        Scheme::SeventeenTrackSign => {
            let mut h = Sha256::new();
            h.update(body);
            h.update(b"/");
            h.update(secret.as_bytes());
            hex::encode(h.finalize())
        }
        Scheme::UrlToken => secret.to_string(),
        Scheme::ShipEngineRsa => String::new(),
    }
}

/// Checks a webhook. `secret` is the endpoint's secret (for ShipEngine: its JWKS); `header`
/// looks a request header up by lower-case name; `token` is the URL's `token` query parameter.
pub fn verify(
    provider: Provider,
    secret: &str,
    body: &[u8],
    header: impl Fn(&str) -> Option<String>,
    token: Option<&str>,
) -> Result<(), SignatureError> {
    let scheme = Scheme::of(provider);
    if scheme == Scheme::ShipEngineRsa {
        return verify_shipengine(secret, body, &header);
    }
    let expected = sign(provider, secret, body);
    let presented = match scheme.header() {
        Some(name) => header(name).ok_or(SignatureError::Missing(name))?,
        None => token.ok_or(SignatureError::MissingToken)?.to_string(),
    };
    let presented = presented.trim();
    let ok = match scheme {
        // Hex is case-insensitive; compare in lower case.
        Scheme::EasyPostHmac | Scheme::SeventeenTrackSign => same(
            presented.to_ascii_lowercase().as_bytes(),
            expected.as_bytes(),
        ),
        _ => same(presented.as_bytes(), expected.as_bytes()),
    };
    if ok {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Stand-ins for a provider's private side, for tests and local replay tools.
pub mod testing {
    use super::*;

    /// A key pair standing in for ShipEngine's; the JWKS as ShipEngine publishes it.
    pub fn shipengine_key() -> (rsa::RsaPrivateKey, String) {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use rsa::traits::PublicKeyParts;
        let mut rng = rand::rngs::OsRng;
        let private = rsa::RsaPrivateKey::new(&mut rng, 1024).expect("generating a test key");
        let public = private.to_public_key();
        let jwks = serde_json::json!({"keys": [{"kty": "RSA", "kid": "test-key-1", "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be())}]});
        (private, jwks.to_string())
    }

    pub fn shipengine_sign(key: &rsa::RsaPrivateKey, timestamp: &str, body: &[u8]) -> String {
        use rsa::signature::{SignatureEncoding, Signer};
        let mut signed = timestamp.as_bytes().to_vec();
        signed.push(b'.');
        signed.extend_from_slice(body);
        let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone());
        BASE64.encode(signer.sign(&signed).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_one_changed_byte_fails() {
        let body = br#"{"object":"Event","description":"tracker.updated"}"#;
        for p in Provider::ALL
            .iter()
            .filter(|p| p.is_webhook() && Scheme::of(**p) != Scheme::ShipEngineRsa)
        {
            let sig = sign(*p, "s3cret", body);
            let scheme = Scheme::of(*p);
            let header = |name: &str| (Some(name) == scheme.header()).then(|| sig.clone());
            let token = scheme.header().is_none().then_some(sig.as_str());
            assert_eq!(
                verify(*p, "s3cret", body, header, token),
                Ok(()),
                "{}",
                p.id()
            );
            // Signatures cover the body; a URL token does not.
            if scheme != Scheme::UrlToken {
                let mut tampered = body.to_vec();
                tampered[5] ^= 1;
                assert_eq!(
                    verify(*p, "s3cret", &tampered, header, token),
                    Err(SignatureError::Mismatch),
                    "{}",
                    p.id()
                );
            }
            assert!(verify(*p, "other", body, header, token).is_err());
            assert!(verify(*p, "s3cret", body, |_| None, None).is_err());
        }
    }

    #[test]
    fn shipengine_rsa_signatures_verify_against_the_jwks() {
        let (key, jwks) = testing::shipengine_key();
        let body = br#"{"resource_type":"API_TRACK"}"#;
        let now = chrono::Utc::now().to_rfc3339();
        let sig = testing::shipengine_sign(&key, &now, body);
        let headers = |ts: String, sig: String, kid: &'static str| {
            move |name: &str| match name {
                "x-shipengine-rsa-sha256-signature" => Some(sig.clone()),
                "x-shipengine-rsa-sha256-key-id" => Some(kid.to_string()),
                "x-shipengine-timestamp" => Some(ts.clone()),
                _ => None,
            }
        };
        let ok = verify(
            Provider::ShipEngine,
            &jwks,
            body,
            headers(now.clone(), sig.clone(), "test-key-1"),
            None,
        );
        assert_eq!(ok, Ok(()));
        let mut tampered = body.to_vec();
        tampered[3] ^= 1;
        assert_eq!(
            verify(
                Provider::ShipEngine,
                &jwks,
                &tampered,
                headers(now.clone(), sig.clone(), "test-key-1"),
                None
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                Provider::ShipEngine,
                &jwks,
                body,
                headers(now.clone(), sig.clone(), "other-key"),
                None
            ),
            Err(SignatureError::UnknownKey)
        );
        let old = (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339();
        let old_sig = testing::shipengine_sign(&key, &old, body);
        assert_eq!(
            verify(
                Provider::ShipEngine,
                &jwks,
                body,
                headers(old, old_sig, "test-key-1"),
                None
            ),
            Err(SignatureError::Stale)
        );
        assert!(verify(Provider::ShipEngine, &jwks, body, |_| None, None).is_err());
    }

    #[test]
    fn known_values() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") (RFC 4231 style
        // well-known vector).
        let body = b"The quick brown fox jumps over the lazy dog";
        assert_eq!(
            sign(Provider::EasyPost, "key", body),
            "hmac-sha256-hex=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        // EasyPost normalizes its secret to NFKD: "sécret" signs as its decomposed form
        // (vector computed with Python's hmac and openssl over the golden payload).
        let golden = include_bytes!("../tests/golden/easypost/in_transit.json");
        assert_eq!(
            sign(Provider::EasyPost, "s\u{e9}cret", golden),
            "hmac-sha256-hex=2d8e0f21617610a4ba1119855d51cbba1cc1d0e255e56675085b11e29cb12aad"
        );
        assert_eq!(
            sign(Provider::EasyPost, "s3cret", golden),
            "hmac-sha256-hex=93c3bf8277b0a78cac24053ce2fc6829000dd019ddca2807297d827f516cccdd"
        );
        assert_eq!(
            sign(Provider::AfterShip, "key", body),
            "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=" // pragma: allowlist secret (a test vector)
        );
    }
}
