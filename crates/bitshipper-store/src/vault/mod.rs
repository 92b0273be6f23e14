//! Envelope encryption of personal data: a key-encryption key (KEK) from a `KeyProvider` wraps
//! each tenant's data keys; a tenant key wraps one data key per recipient; the recipient key seals
//! that recipient's fields (AES-256-GCM, a random 96-bit nonce per seal, the row's identity as
//! associated data). Destroying a recipient key makes everything sealed under it unreadable
//! (crypto-shredding) without touching the tenant's other data.

mod kms;
mod provider;

pub use kms::{AwsCredentials, AwsKmsKeyProvider};
pub use provider::{KeyProvider, LocalKeyProvider, WrappedKey};

use crate::StoreError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Version byte at the head of every sealed value, so the format can change later.
const SEAL_FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;

/// A 256-bit symmetric key, wiped from memory when dropped. Never printed.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        DataKey(bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StoreError::Crypto("a data key must be 32 bytes".into()))?;
        Ok(DataKey(Zeroizing::new(array)))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Encrypts `plaintext`; `context` (associated data) must be given again to open it, which
    /// ties a sealed value to the row it was written for.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new(self.0.as_ref().into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encryption with a valid key and nonce cannot fail for inputs below 64 GiB.
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(SEAL_FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypts a value made by `seal` with the same key and context.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != SEAL_FORMAT_V1 {
            return Err(StoreError::Crypto(
                "sealed value has an unknown format".into(),
            ));
        }
        let cipher = Aes256Gcm::new(self.0.as_ref().into());
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| StoreError::Crypto("sealed value failed authentication".into()))
    }

    /// A keyed hash (HMAC-SHA256, hex): equal inputs give equal tokens, and without the key a
    /// token says nothing about its input. Used to search by email without storing it.
    pub fn keyed_hash(&self, input: &[u8]) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(input);
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_only_with_the_same_key_and_context() {
        let key = DataKey::generate();
        let sealed = key.seal(b"row-1", b"Ada Lovelace");
        assert_eq!(&key.open(b"row-1", &sealed).unwrap()[..], b"Ada Lovelace");
        assert!(key.open(b"row-2", &sealed).is_err(), "context is bound");
        assert!(DataKey::generate().open(b"row-1", &sealed).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(key.open(b"row-1", &tampered).is_err());
        assert!(key.open(b"row-1", &sealed[..10]).is_err());
    }

    #[test]
    fn nonces_are_unique_per_seal() {
        let key = DataKey::generate();
        let a = key.seal(b"", b"same");
        let b = key.seal(b"", b"same");
        assert_ne!(a, b);
    }

    #[test]
    fn keyed_hash_is_stable_per_key() {
        let (k1, k2) = (DataKey::generate(), DataKey::generate());
        assert_eq!(k1.keyed_hash(b"a@b.c"), k1.keyed_hash(b"a@b.c"));
        assert_ne!(k1.keyed_hash(b"a@b.c"), k2.keyed_hash(b"a@b.c"));
    }
}
