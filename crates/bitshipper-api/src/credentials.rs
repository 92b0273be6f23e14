//! Credentials for people: argon2id password hashes (computed off the async threads), the
//! password policy, TOTP second factors (RFC 6238), and session cookies.

use crate::problem::ApiError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use totp_rs::{Algorithm, TOTP};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "bs_session";
/// The header a cookie-authenticated write must carry (the token from login).
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A random URL-safe secret of 32 bytes (sessions, CSRF tokens, invitations).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Hashes a password with argon2id (OWASP parameters: 19 MiB, 2 passes) on a blocking thread.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    let password = zeroize::Zeroizing::new(password);
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// A hash that matches no password, verified when the account does not exist so that
/// unknown and known emails take the same time.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4dCq5m7Qx0XbxpV2wAyg2cHj1e6wD0BHW5m4y5Yk0hI";

/// Checks a password against a stored hash (or the dummy) on a blocking thread.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    let password = zeroize::Zeroizing::new(password);
    tokio::task::spawn_blocking(move || {
        let stored = hash.as_deref().unwrap_or(DUMMY_HASH);
        let ok = PasswordHash::new(stored)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && hash.is_some()
    })
    .await
    .unwrap_or(false)
}

/// The password policy (OWASP ASVS 5.0 §6.2): 8 to 128 characters, and not a common or easily
/// guessed password (zxcvbn's dictionaries of common passwords, names and words; score ≥ 2).
pub fn check_password_policy(
    field: &'static str,
    password: &str,
    user_inputs: &[&str],
) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ApiError::field(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ApiError::field(
            field,
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    let estimate = zxcvbn::zxcvbn(password, user_inputs);
    if u8::from(estimate.score()) < 2 {
        return Err(ApiError::field(
            field,
            "is a common or easily guessed password; choose a longer, less predictable one",
        ));
    }
    Ok(())
}

/// A TOTP generator for a secret: SHA-1, 6 digits, 30-second steps, one step of clock skew
/// (the RFC 6238 defaults every authenticator app supports).
pub fn totp(secret: &[u8]) -> Result<TOTP, ApiError> {
    TOTP::new(Algorithm::SHA1, 6, 1, 30, secret.to_vec())
        .map_err(|e| ApiError::Internal(format!("totp: {e}")))
}

/// A fresh 160-bit TOTP secret.
pub fn new_totp_secret() -> zeroize::Zeroizing<Vec<u8>> {
    let mut bytes = zeroize::Zeroizing::new(vec![0u8; 20]);
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// The 30-second step whose code `code` is, if it is the current one or one step either side
/// of it; the caller spends the step so the code cannot be used again.
pub fn totp_step(secret: &[u8], code: &str) -> Result<Option<i64>, ApiError> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let generator = totp(secret)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .as_secs();
    let current = now / 30;
    Ok([current.saturating_sub(1), current, current + 1]
        .into_iter()
        .find(|step| secrets_equal(&generator.generate(step * 30), code))
        .and_then(|step| i64::try_from(step).ok()))
}

/// `Set-Cookie` for a new session: HttpOnly, Secure, SameSite=Lax, for the whole site.
pub fn session_cookie(secret: &str, max_age_secs: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age_secs}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("bs_session=; Path=/; Max-Age=0"))
}

/// `Set-Cookie` that removes the session cookie.
pub fn cleared_session_cookie() -> HeaderValue {
    HeaderValue::from_static("bs_session=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0")
}

/// The session secret from the request's cookies, if any.
pub fn session_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Compares secrets in constant time.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_refuses_short_and_common_passwords() {
        assert!(check_password_policy("p", "short", &[]).is_err());
        for common in ["password123", "qwertyuiop", "iloveyou1", "12345678"] {
            assert!(check_password_policy("p", common, &[]).is_err(), "{common}");
        }
        assert!(check_password_policy("p", "ada@example.com", &["ada@example.com"]).is_err());
        assert!(check_password_policy("p", "violet-harbour-tractor-92", &[]).is_ok());
    }

    #[test]
    fn totp_follows_rfc_6238() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", 8 digits in the RFC;
        // the 6-digit code is the last six of the RFC's value.
        let t = TOTP::new(Algorithm::SHA1, 6, 1, 30, b"12345678901234567890".to_vec()).unwrap();
        assert_eq!(t.generate(59), "287082");
        assert_eq!(t.generate(1_111_111_109), "081804");
        let secret = new_totp_secret();
        let now = totp(&secret).unwrap().generate_current().unwrap();
        assert!(totp_step(&secret, &now).unwrap().is_some());
        assert_eq!(totp_step(&secret, "abcdef").unwrap(), None);
    }

    #[tokio::test]
    async fn passwords_verify_only_against_their_hash() {
        let hash = hash_password("violet-harbour-tractor-92".into())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("violet-harbour-tractor-92".into(), Some(hash.clone())).await);
        assert!(!verify_password("violet-harbour-tractor-93".into(), Some(hash)).await);
        assert!(!verify_password("anything".into(), None).await);
    }

    #[test]
    fn cookies_parse_and_compare() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; bs_session=abc; b=2"),
        );
        assert_eq!(session_secret(&h).as_deref(), Some("abc"));
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "ab"));
    }
}
