//! AWS KMS as a `KeyProvider`: tenant keys are wrapped by a KMS key through the service's JSON
//! API (`TrentService.Encrypt` / `Decrypt`), signed with Signature Version 4. Credentials come
//! from the usual AWS environment variables; the endpoint can point at any KMS-compatible
//! service.

use super::provider::{KeyProvider, WrappedKey};
use super::DataKey;
use crate::StoreError;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Access key, secret and optional session token.
#[derive(Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: zeroize::Zeroizing<String>,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl AwsCredentials {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, when set, `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Result<Self, StoreError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Ok(AwsCredentials {
                access_key_id: id,
                secret_access_key: zeroize::Zeroizing::new(secret),
                session_token: var("AWS_SESSION_TOKEN"),
            }),
            _ => Err(StoreError::Crypto(
                "AWS KMS needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            )),
        }
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// A request to sign: lower-case header names with trimmed values; the query already in
/// canonical form.
pub(crate) struct SigningInput<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: Vec<(String, String)>,
    pub payload: &'a [u8],
    pub amz_date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// The `Authorization` header value of Signature Version 4 for `input`.
pub(crate) fn sigv4_authorization(input: &SigningInput<'_>, creds: &AwsCredentials) -> String {
    let mut headers = input.headers.clone();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method,
        input.path,
        input.query,
        canonical_headers,
        signed_headers,
        hex::encode(Sha256::digest(input.payload))
    );
    let date = &input.amz_date[..8.min(input.amz_date.len())];
    let scope = format!("{date}/{}/{}/aws4_request", input.region, input.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        input.amz_date,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(
        format!("AWS4{}", creds.secret_access_key.as_str()).as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac(&k_date, input.region.as_bytes());
    let k_service = hmac(&k_region, input.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        creds.access_key_id
    )
}

/// KEKs that live in AWS KMS.
#[derive(Debug)]
pub struct AwsKmsKeyProvider {
    client: reqwest::Client,
    endpoint: String,
    host: String,
    region: String,
    key_id: String,
    credentials: AwsCredentials,
}

/// What BitShipper binds every wrap to (KMS encryption context: decrypt must repeat it).
const ENCRYPTION_CONTEXT: (&str, &str) = ("purpose", "bitshipper-tenant-key");

impl AwsKmsKeyProvider {
    /// `endpoint` defaults to `https://kms.<region>.amazonaws.com`.
    pub fn new(
        key_id: &str,
        region: &str,
        endpoint: Option<&str>,
        credentials: AwsCredentials,
    ) -> Result<Self, StoreError> {
        let endpoint = endpoint
            .map(|e| e.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("https://kms.{region}.amazonaws.com"));
        let host = endpoint
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest).to_string())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| StoreError::Crypto(format!("bad KMS endpoint '{endpoint}'")))?;
        if key_id.trim().is_empty() || region.trim().is_empty() {
            return Err(StoreError::Crypto("KMS needs a key id and a region".into()));
        }
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| StoreError::Crypto(e.to_string()))?;
        Ok(AwsKmsKeyProvider {
            client,
            endpoint,
            host,
            region: region.to_string(),
            key_id: key_id.to_string(),
            credentials,
        })
    }

    async fn call(
        &self,
        target: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, StoreError> {
        let payload = serde_json::to_vec(&body).map_err(|e| StoreError::Crypto(e.to_string()))?;
        let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let content_type = "application/x-amz-json-1.1";
        let mut headers = vec![
            ("content-type".to_string(), content_type.to_string()),
            ("host".to_string(), self.host.clone()),
            ("x-amz-date".to_string(), amz_date.clone()),
            ("x-amz-target".to_string(), target.to_string()),
        ];
        if let Some(token) = &self.credentials.session_token {
            headers.push(("x-amz-security-token".to_string(), token.clone()));
        }
        let authorization = sigv4_authorization(
            &SigningInput {
                method: "POST",
                path: "/",
                query: "",
                headers: headers.clone(),
                payload: &payload,
                amz_date: &amz_date,
                region: &self.region,
                service: "kms",
            },
            &self.credentials,
        );
        let mut request = self
            .client
            .post(format!("{}/", self.endpoint))
            .header("authorization", authorization)
            .body(payload);
        for (name, value) in headers.iter().filter(|(n, _)| n != "host") {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request
            .send()
            .await
            .map_err(|e| StoreError::Crypto(format!("KMS {target}: {e}")))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| StoreError::Crypto(format!("KMS {target}: {e}")))?;
        if !status.is_success() {
            // KMS errors name a type and a message, never key material.
            let kind = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("__type").and_then(|t| t.as_str()).map(String::from))
                .unwrap_or_default();
            return Err(StoreError::Crypto(format!(
                "KMS {target} failed with {status} {kind}"
            )));
        }
        serde_json::from_str(&text)
            .map_err(|e| StoreError::Crypto(format!("KMS {target}: unreadable answer: {e}")))
    }
}

fn field_bytes(v: &serde_json::Value, name: &str) -> Result<Vec<u8>, StoreError> {
    v.get(name)
        .and_then(|b| b.as_str())
        .and_then(|b| BASE64.decode(b).ok())
        .ok_or_else(|| StoreError::Crypto(format!("KMS answer lacks {name}")))
}

#[async_trait::async_trait]
impl KeyProvider for AwsKmsKeyProvider {
    fn active_kek_id(&self) -> String {
        format!("kms:{}", self.key_id)
    }

    async fn wrap(&self, key: &DataKey) -> Result<WrappedKey, StoreError> {
        let answer = self
            .call(
                "TrentService.Encrypt",
                serde_json::json!({
                    "KeyId": self.key_id,
                    "Plaintext": BASE64.encode(key.as_bytes()),
                    "EncryptionContext": { ENCRYPTION_CONTEXT.0: ENCRYPTION_CONTEXT.1 },
                }),
            )
            .await?;
        Ok(WrappedKey {
            kek_id: self.active_kek_id(),
            ciphertext: field_bytes(&answer, "CiphertextBlob")?,
        })
    }

    async fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, StoreError> {
        let key_id = wrapped.kek_id.strip_prefix("kms:").ok_or_else(|| {
            StoreError::Crypto(format!(
                "key '{}' was not wrapped by KMS; re-wrap it with the provider that made it",
                wrapped.kek_id
            ))
        })?;
        let answer = self
            .call(
                "TrentService.Decrypt",
                serde_json::json!({
                    "KeyId": key_id,
                    "CiphertextBlob": BASE64.encode(&wrapped.ciphertext),
                    "EncryptionContext": { ENCRYPTION_CONTEXT.0: ENCRYPTION_CONTEXT.1 },
                }),
            )
            .await?;
        let plain = zeroize::Zeroizing::new(field_bytes(&answer, "Plaintext")?);
        DataKey::from_bytes(&plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_credentials() -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: zeroize::Zeroizing::new(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(), // pragma: allowlist secret (AWS's published test key)
            ),
            session_token: None,
        }
    }

    /// The `get-vanilla` case of AWS's Signature Version 4 test suite.
    #[test]
    fn signs_like_the_aws_test_suite() {
        let authorization = sigv4_authorization(
            &SigningInput {
                method: "GET",
                path: "/",
                query: "",
                headers: vec![
                    ("x-amz-date".into(), "20150830T123600Z".into()),
                    ("host".into(), "example.amazonaws.com".into()),
                ],
                payload: b"",
                amz_date: "20150830T123600Z",
                region: "us-east-1",
                service: "service",
            },
            &example_credentials(),
        );
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// A KMS stand-in on loopback checks each request's shape (target, content type, signed
    /// headers, credential scope, body fields) and answers like KMS; keys round-trip.
    #[tokio::test]
    async fn wraps_through_the_kms_json_api() {
        use axum::http::HeaderMap;
        use std::sync::{Arc, Mutex};
        let seen: Arc<Mutex<Vec<(HeaderMap, serde_json::Value)>>> = Arc::default();
        let recorder = seen.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let recorder = recorder.clone();
                async move {
                    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
                    recorder.lock().unwrap().push((headers.clone(), json.clone()));
                    let target = headers["x-amz-target"].to_str().unwrap().to_string();
                    let answer = match target.as_str() {
                        // "Encrypts" by prefixing, so the test can see what was sent.
                        "TrentService.Encrypt" => serde_json::json!({
                            "CiphertextBlob": BASE64.encode(format!("wrapped:{}", json["Plaintext"].as_str().unwrap())),
                            "KeyId": "arn:aws:kms:eu-west-1:111122223333:key/test",
                        }),
                        _ => {
                            let blob = String::from_utf8(BASE64.decode(json["CiphertextBlob"].as_str().unwrap()).unwrap()).unwrap();
                            serde_json::json!({ "Plaintext": blob.strip_prefix("wrapped:").unwrap() })
                        }
                    };
                    answer.to_string()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let provider = AwsKmsKeyProvider::new(
            "alias/bitshipper",
            "eu-west-1",
            Some(&format!("http://{addr}")),
            AwsCredentials {
                session_token: Some("session-token".into()),
                ..example_credentials()
            },
        )
        .unwrap();
        let key = DataKey::generate();
        let wrapped = provider.wrap(&key).await.unwrap();
        assert_eq!(wrapped.kek_id, "kms:alias/bitshipper");
        let back = provider.unwrap(&wrapped).await.unwrap();
        assert_eq!(back.as_bytes(), key.as_bytes());

        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        for ((headers, body), target) in seen
            .iter()
            .zip(["TrentService.Encrypt", "TrentService.Decrypt"])
        {
            assert_eq!(headers["x-amz-target"], target);
            assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
            assert_eq!(headers["x-amz-security-token"], "session-token");
            let auth = headers["authorization"].to_str().unwrap();
            let date = &headers["x-amz-date"].to_str().unwrap()[..8];
            assert!(auth.starts_with(&format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{date}/eu-west-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature="
            )), "{auth}");
            assert_eq!(body["KeyId"], "alias/bitshipper");
            assert_eq!(
                body["EncryptionContext"]["purpose"],
                "bitshipper-tenant-key"
            );
        }
        assert!(seen[0].1["Plaintext"].is_string());
        assert!(seen[1].1["CiphertextBlob"].is_string());
    }

    #[test]
    fn refuses_bad_configuration() {
        assert!(AwsKmsKeyProvider::new("", "eu-west-1", None, example_credentials()).is_err());
        assert!(
            AwsKmsKeyProvider::new("k", "eu-west-1", Some("nonsense"), example_credentials())
                .is_err()
        );
    }
}
