//! Key-encryption keys: the `KeyProvider` trait, and the local provider that keeps its keys in a
//! file (mode 0600) or takes one from the environment. An AWS KMS provider implements the same
//! trait (`kms`), so the store never sees where a KEK lives.

use super::DataKey;
use crate::StoreError;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A data key encrypted under a KEK, with the id of that KEK so it can be opened after rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub kek_id: String,
    pub ciphertext: Vec<u8>,
}

/// Wraps and unwraps data keys with key-encryption keys held somewhere else.
#[async_trait::async_trait]
pub trait KeyProvider: Send + Sync + std::fmt::Debug {
    /// The KEK new wraps use.
    fn active_kek_id(&self) -> String;
    async fn wrap(&self, key: &DataKey) -> Result<WrappedKey, StoreError>;
    async fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, StoreError>;
}

/// On-disk form of the local key file.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    active: String,
    /// KEK id → base64 of 32 bytes.
    keys: BTreeMap<String, String>,
}

/// KEKs held in this process: from a key file, or one from an environment secret.
pub struct LocalKeyProvider {
    active: String,
    keys: BTreeMap<String, DataKey>,
    file: Option<PathBuf>,
}

impl std::fmt::Debug for LocalKeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeyProvider")
            .field("active", &self.active)
            .field("kek_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("file", &self.file)
            .finish()
    }
}

fn new_kek_id() -> String {
    format!("kek-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"))
}

impl LocalKeyProvider {
    /// A provider with one fresh key that lives only in memory (tests).
    pub fn ephemeral() -> Self {
        let id = new_kek_id();
        LocalKeyProvider {
            active: id.clone(),
            keys: BTreeMap::from([(id, DataKey::generate())]),
            file: None,
        }
    }

    /// One KEK given as base64 of 32 bytes, optionally `id:base64` (for an environment secret).
    pub fn from_secret(secret: &str) -> Result<Self, StoreError> {
        let (id, b64) = match secret.trim().split_once(':') {
            Some((id, b64)) => (id.to_string(), b64),
            None => ("env".to_string(), secret.trim()),
        };
        let bytes = BASE64
            .decode(b64)
            .map_err(|_| StoreError::Crypto("the KEK secret is not valid base64".into()))?;
        Ok(LocalKeyProvider {
            active: id.clone(),
            keys: BTreeMap::from([(id, DataKey::from_bytes(&bytes)?)]),
            file: None,
        })
    }

    /// Reads the key file, creating it (mode 0600) with one fresh KEK when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            let mut provider = Self::ephemeral();
            provider.file = Some(path.to_path_buf());
            provider.save()?;
            return Ok(provider);
        }
        let io = |e: std::io::Error| StoreError::KeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let text = std::fs::read_to_string(path).map_err(io)?;
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| StoreError::KeyFile {
            path: path.display().to_string(),
            reason: format!("not a BitShipper key file: {e}"),
        })?;
        let mut keys = BTreeMap::new();
        for (id, b64) in file.keys {
            let bytes = BASE64.decode(b64).map_err(|_| StoreError::KeyFile {
                path: path.display().to_string(),
                reason: format!("key '{id}' is not valid base64"),
            })?;
            keys.insert(id, DataKey::from_bytes(&bytes)?);
        }
        if !keys.contains_key(&file.active) {
            return Err(StoreError::KeyFile {
                path: path.display().to_string(),
                reason: format!("the active key '{}' is not in the file", file.active),
            });
        }
        Ok(LocalKeyProvider {
            active: file.active,
            keys,
            file: Some(path.to_path_buf()),
        })
    }

    /// Adds a fresh KEK and makes it the active one; older KEKs stay so existing wraps open.
    /// Returns the new id. Saved to the key file when there is one.
    pub fn rotate(&mut self) -> Result<String, StoreError> {
        let mut id = new_kek_id();
        while self.keys.contains_key(&id) {
            id.push('b');
        }
        self.keys.insert(id.clone(), DataKey::generate());
        self.active = id.clone();
        if self.file.is_some() {
            self.save()?;
        }
        Ok(id)
    }

    /// Drops a KEK that no wrap uses any more (after `rewrap`).
    pub fn retire(&mut self, kek_id: &str) -> Result<(), StoreError> {
        if kek_id == self.active {
            return Err(StoreError::Crypto(
                "the active KEK cannot be retired".into(),
            ));
        }
        self.keys.remove(kek_id);
        if self.file.is_some() {
            self.save()?;
        }
        Ok(())
    }

    pub fn kek_ids(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    fn save(&self) -> Result<(), StoreError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let err = |e: std::io::Error| StoreError::KeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let file = KeyFile {
            active: self.active.clone(),
            keys: self
                .keys
                .iter()
                .map(|(id, k)| (id.clone(), BASE64.encode(k.as_bytes())))
                .collect(),
        };
        let text = zeroize::Zeroizing::new(
            serde_json::to_string_pretty(&file).map_err(|e| StoreError::Crypto(e.to_string()))?,
        );
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        // Written beside the target and renamed, so a crash never leaves half a key file.
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(&tmp).map_err(err)?;
            f.write_all(text.as_bytes()).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, path).map_err(err)
    }

    fn kek(&self, id: &str) -> Result<&DataKey, StoreError> {
        self.keys.get(id).ok_or_else(|| {
            StoreError::Crypto(format!(
                "key-encryption key '{id}' is not available to this process"
            ))
        })
    }
}

#[async_trait::async_trait]
impl KeyProvider for LocalKeyProvider {
    fn active_kek_id(&self) -> String {
        self.active.clone()
    }

    async fn wrap(&self, key: &DataKey) -> Result<WrappedKey, StoreError> {
        let kek = self.kek(&self.active)?;
        Ok(WrappedKey {
            kek_id: self.active.clone(),
            ciphertext: kek.seal(self.active.as_bytes(), key.as_bytes()),
        })
    }

    async fn unwrap(&self, wrapped: &WrappedKey) -> Result<DataKey, StoreError> {
        let kek = self.kek(&wrapped.kek_id)?;
        let bytes = kek.open(wrapped.kek_id.as_bytes(), &wrapped.ciphertext)?;
        DataKey::from_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wraps_survive_rotation_and_reload() {
        let dir = std::env::temp_dir().join(format!("bs-kek-{}", uuid::Uuid::new_v4()));
        let path = dir.join("kek.json");
        let mut provider = LocalKeyProvider::load_or_create(&path).unwrap();
        let key = DataKey::generate();
        let old = provider.wrap(&key).await.unwrap();
        let first = provider.active_kek_id();
        let second = provider.rotate().unwrap();
        assert_ne!(first, second);
        let new = provider.wrap(&key).await.unwrap();
        assert_eq!(new.kek_id, second);

        let reloaded = LocalKeyProvider::load_or_create(&path).unwrap();
        assert_eq!(reloaded.active_kek_id(), second);
        for w in [&old, &new] {
            let k = reloaded.unwrap(w).await.unwrap();
            assert_eq!(k.as_bytes(), key.as_bytes());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut reloaded = reloaded;
        reloaded.retire(&first).unwrap();
        assert!(reloaded.unwrap(&old).await.is_err());
        assert!(reloaded.retire(&second).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn environment_secret_needs_32_bytes_of_base64() {
        assert!(LocalKeyProvider::from_secret("not base64!").is_err());
        assert!(LocalKeyProvider::from_secret(&BASE64.encode([1u8; 16])).is_err());
        let p =
            LocalKeyProvider::from_secret(&format!("prod-1:{}", BASE64.encode([7u8; 32]))).unwrap();
        assert_eq!(p.active_kek_id(), "prod-1");
        let key = DataKey::generate();
        let w = p.wrap(&key).await.unwrap();
        assert_eq!(p.unwrap(&w).await.unwrap().as_bytes(), key.as_bytes());
    }
}
