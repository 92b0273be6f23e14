//! Personal data at rest: recipients (and the street lines of the destination) are sealed under
//! a per-recipient data key, wrapped by the tenant's data key, wrapped by a KEK from the
//! `KeyProvider`. Also: search by email through a keyed hash, key rotation, and erasure of one
//! recipient or a whole tenant by destroying keys and deleting rows.

use crate::tenants::now;
use crate::vault::{DataKey, KeyProvider, WrappedKey};
use crate::{on_all_tenants, on_tenant, Store, StoreError};
use bitshipper_core::{Address, Recipient, ShipmentId, TenantId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Tenant key version 0 is the search key; data keys count from 1.
const SEARCH_KEY_VERSION: i32 = 0;
const UNWRAPPED_CACHE_MAX: usize = 10_000;

/// The key provider and the tenant keys this process has already unwrapped.
pub(crate) struct Vault {
    provider: Arc<dyn KeyProvider>,
    unwrapped: Mutex<HashMap<(Uuid, i32), DataKey>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl Vault {
    pub(crate) fn new(provider: Arc<dyn KeyProvider>) -> Self {
        Vault {
            provider,
            unwrapped: Mutex::default(),
        }
    }

    fn cached(&self, tenant: Uuid, version: i32) -> Option<DataKey> {
        self.unwrapped.lock().ok()?.get(&(tenant, version)).cloned()
    }

    fn remember(&self, tenant: Uuid, version: i32, key: &DataKey) {
        if let Ok(mut map) = self.unwrapped.lock() {
            if map.len() >= UNWRAPPED_CACHE_MAX {
                map.clear();
            }
            map.insert((tenant, version), key.clone());
        }
    }

    fn forget_tenant(&self, tenant: Uuid) {
        if let Ok(mut map) = self.unwrapped.lock() {
            map.retain(|(t, _), _| *t != tenant);
        }
    }
}

/// What is sealed for one shipment: the recipient and the destination's street lines.
#[derive(Serialize, Deserialize, Default)]
struct SealedPersonal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recipient: Option<Recipient>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    line1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    line2: Option<String>,
}

/// A shipment's personal data ready to store: no plaintext left in `destination`.
pub(crate) struct SealedFields {
    pub recipient_ref: Option<String>,
    pub recipient_sealed: Option<Vec<u8>>,
    pub destination: Option<Address>,
}

/// Whose data to erase.
#[derive(Debug, Clone)]
pub enum RecipientSelector {
    /// Every shipment to this email address.
    Email(String),
    /// The recipient of this shipment (and every shipment sharing its email, if it has one).
    Shipment(ShipmentId),
}

impl RecipientSelector {
    /// How the audit log names the request: by id, never by the personal data itself.
    pub fn audit_target(&self) -> String {
        match self {
            RecipientSelector::Email(_) => "recipient:by_email".into(),
            RecipientSelector::Shipment(id) => format!("shipment:{id}"),
        }
    }
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErasureReport {
    /// Shipments whose personal data was removed.
    pub shipments: u64,
    /// Data keys destroyed.
    pub keys_destroyed: u64,
    /// Stored API responses (idempotency replays) removed because they held the data.
    pub responses_removed: u64,
}

/// How a rotation went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RotationReport {
    pub tenant_keys_rewrapped: u64,
    pub recipient_keys_rewrapped: u64,
}

pub(crate) fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn sealed_context(tenant: TenantId, shipment: ShipmentId) -> Vec<u8> {
    let mut c = b"shipment-personal:".to_vec();
    c.extend_from_slice(tenant.0.as_bytes());
    c.extend_from_slice(shipment.0.as_bytes());
    c
}

fn recipient_key_context(tenant: Uuid, recipient_ref: &str) -> Vec<u8> {
    let mut c = b"recipient-key:".to_vec();
    c.extend_from_slice(tenant.as_bytes());
    c.extend_from_slice(recipient_ref.as_bytes());
    c
}

fn response_context(tenant: TenantId, key: &str) -> Vec<u8> {
    let mut c = b"stored-response:".to_vec();
    c.extend_from_slice(tenant.0.as_bytes());
    c.extend_from_slice(key.as_bytes());
    c
}

impl Store {
    /// Sets where key-encryption keys come from. Without one, writing personal data fails
    /// (it is never stored in plaintext).
    pub fn with_key_provider(mut self, provider: Arc<dyn KeyProvider>) -> Self {
        self.vault = Some(Arc::new(Vault::new(provider)));
        self
    }

    fn vault(&self) -> Result<&Vault, StoreError> {
        self.vault.as_deref().ok_or_else(|| {
            StoreError::Crypto("no key provider is configured, so personal data cannot be stored or read (set security.key_file or security.kek)".into())
        })
    }

    /// Tenant key `version`, unwrapped (cached after the first use).
    async fn tenant_key(&self, tenant: Uuid, version: i32) -> Result<Option<DataKey>, StoreError> {
        let vault = self.vault()?;
        if let Some(key) = vault.cached(tenant, version) {
            return Ok(Some(key));
        }
        let row: Option<(String, Vec<u8>)> = on_tenant!(self, TenantId(tenant), pool => {
            sqlx::query_as("SELECT kek_id, wrapped_key FROM tenant_keys WHERE tenant_id = $1 AND version = $2")
                .bind(tenant)
                .bind(version)
                .fetch_optional(pool)
                .await?
        });
        let Some((kek_id, ciphertext)) = row else {
            return Ok(None);
        };
        let key = vault
            .provider
            .unwrap(&WrappedKey { kek_id, ciphertext })
            .await?;
        vault.remember(tenant, version, &key);
        Ok(Some(key))
    }

    /// Creates tenant key `version` unless another writer got there first; returns the stored one.
    async fn create_tenant_key(&self, tenant: Uuid, version: i32) -> Result<DataKey, StoreError> {
        let vault = self.vault()?;
        let wrapped = vault.provider.wrap(&DataKey::generate()).await?;
        on_tenant!(self, TenantId(tenant), pool => {
            sqlx::query("INSERT INTO tenant_keys (tenant_id, version, kek_id, wrapped_key, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, version) DO NOTHING")
                .bind(tenant)
                .bind(version)
                .bind(&wrapped.kek_id)
                .bind(&wrapped.ciphertext)
                .bind(now())
                .execute(pool)
                .await?;
        });
        self.tenant_key(tenant, version)
            .await?
            .ok_or_else(|| StoreError::Crypto("tenant key vanished after creation".into()))
    }

    async fn current_data_key_version(&self, tenant: Uuid) -> Result<Option<i32>, StoreError> {
        let v: Option<i32> = on_tenant!(self, TenantId(tenant), pool => {
            sqlx::query_scalar("SELECT MAX(version) FROM tenant_keys WHERE tenant_id = $1 AND version > 0")
                .bind(tenant)
                .fetch_one(pool)
                .await?
        });
        Ok(v)
    }

    /// The tenant's current data key and its version, created on first use.
    pub(crate) async fn current_data_key(
        &self,
        tenant: Uuid,
    ) -> Result<(i32, DataKey), StoreError> {
        match self.current_data_key_version(tenant).await? {
            Some(v) => match self.tenant_key(tenant, v).await? {
                Some(k) => Ok((v, k)),
                None => Err(StoreError::Crypto("tenant data key missing".into())),
            },
            None => Ok((1, self.create_tenant_key(tenant, 1).await?)),
        }
    }

    async fn search_key(&self, tenant: Uuid) -> Result<DataKey, StoreError> {
        match self.tenant_key(tenant, SEARCH_KEY_VERSION).await? {
            Some(k) => Ok(k),
            None => self.create_tenant_key(tenant, SEARCH_KEY_VERSION).await,
        }
    }

    /// The keyed hash that stands for an email address in this tenant.
    pub(crate) async fn email_ref(
        &self,
        tenant: TenantId,
        email: &str,
    ) -> Result<String, StoreError> {
        let key = self.search_key(tenant.0).await?;
        Ok(format!(
            "em:{}",
            key.keyed_hash(normalize_email(email).as_bytes())
        ))
    }

    /// The recipient's data key, created (and wrapped under the current tenant key) if new.
    async fn recipient_key(
        &self,
        tenant: TenantId,
        recipient_ref: &str,
    ) -> Result<DataKey, StoreError> {
        if let Some(key) = self.existing_recipient_key(tenant, recipient_ref).await? {
            return Ok(key);
        }
        let (version, tenant_key) = self.current_data_key(tenant.0).await?;
        let fresh = DataKey::generate();
        let wrapped = tenant_key.seal(
            &recipient_key_context(tenant.0, recipient_ref),
            fresh.as_bytes(),
        );
        on_tenant!(self, tenant, pool => {
            sqlx::query("INSERT INTO recipient_keys (tenant_id, recipient_ref, key_version, wrapped_key, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, recipient_ref) DO NOTHING")
                .bind(tenant.0)
                .bind(recipient_ref)
                .bind(version)
                .bind(&wrapped)
                .bind(now())
                .execute(pool)
                .await?;
        });
        self.existing_recipient_key(tenant, recipient_ref)
            .await?
            .ok_or_else(|| StoreError::Crypto("recipient key vanished after creation".into()))
    }

    async fn existing_recipient_key(
        &self,
        tenant: TenantId,
        recipient_ref: &str,
    ) -> Result<Option<DataKey>, StoreError> {
        let row: Option<(i32, Vec<u8>)> = on_tenant!(self, tenant, pool => {
            sqlx::query_as("SELECT key_version, wrapped_key FROM recipient_keys WHERE tenant_id = $1 AND recipient_ref = $2")
                .bind(tenant.0)
                .bind(recipient_ref)
                .fetch_optional(pool)
                .await?
        });
        match row {
            None => Ok(None),
            Some((version, wrapped)) => self
                .open_recipient_key(tenant.0, recipient_ref, version, &wrapped)
                .await
                .map(Some),
        }
    }

    async fn open_recipient_key(
        &self,
        tenant: Uuid,
        recipient_ref: &str,
        version: i32,
        wrapped: &[u8],
    ) -> Result<DataKey, StoreError> {
        let tenant_key = self
            .tenant_key(tenant, version)
            .await?
            .ok_or_else(|| StoreError::Crypto(format!("tenant key version {version} missing")))?;
        let bytes = tenant_key.open(&recipient_key_context(tenant, recipient_ref), wrapped)?;
        DataKey::from_bytes(&bytes)
    }

    /// Seals a shipment's recipient and destination street lines for storage.
    pub(crate) async fn seal_personal(
        &self,
        tenant: TenantId,
        shipment: ShipmentId,
        recipient: &Option<Recipient>,
        destination: &Option<Address>,
    ) -> Result<SealedFields, StoreError> {
        let mut destination = destination.clone();
        let (line1, line2) = match destination.as_mut() {
            Some(d) => (d.line1.take(), d.line2.take()),
            None => (None, None),
        };
        if recipient.is_none() && line1.is_none() && line2.is_none() {
            return Ok(SealedFields {
                recipient_ref: None,
                recipient_sealed: None,
                destination,
            });
        }
        let recipient_ref = match recipient.as_ref().and_then(|r| r.email.as_deref()) {
            Some(email) => self.email_ref(tenant, email).await?,
            None => format!("shp:{}", shipment.0),
        };
        let key = self.recipient_key(tenant, &recipient_ref).await?;
        let payload = zeroize::Zeroizing::new(
            serde_json::to_vec(&SealedPersonal {
                recipient: recipient.clone(),
                line1,
                line2,
            })
            .map_err(|e| StoreError::Crypto(e.to_string()))?,
        );
        Ok(SealedFields {
            recipient_ref: Some(recipient_ref),
            recipient_sealed: Some(key.seal(&sealed_context(tenant, shipment), &payload)),
            destination,
        })
    }

    /// Opens what `seal_personal` stored: the recipient, and the destination with its street
    /// lines back. An erased recipient (key gone) reads as no recipient.
    pub(crate) async fn reveal_personal(
        &self,
        tenant: TenantId,
        shipment: ShipmentId,
        sealed: Option<&[u8]>,
        recipient_key: Option<(&str, i32, &[u8])>,
        destination: &mut Option<Address>,
    ) -> Result<Option<Recipient>, StoreError> {
        let (Some(sealed), Some((recipient_ref, version, wrapped))) = (sealed, recipient_key)
        else {
            return Ok(None);
        };
        let key = self
            .open_recipient_key(tenant.0, recipient_ref, version, wrapped)
            .await?;
        let plain = key.open(&sealed_context(tenant, shipment), sealed)?;
        let personal: SealedPersonal =
            serde_json::from_slice(&plain).map_err(StoreError::corrupt)?;
        if personal.line1.is_some() || personal.line2.is_some() {
            let d = destination.get_or_insert_with(Address::default);
            d.line1 = personal.line1;
            d.line2 = personal.line2;
        }
        Ok(personal.recipient)
    }

    /// Seals bytes under the tenant's current data key, as text (`sealed:v<version>:<base64>`).
    pub(crate) async fn seal_for_tenant(
        &self,
        tenant: TenantId,
        context: &[u8],
        plain: &[u8],
    ) -> Result<String, StoreError> {
        use base64::Engine;
        let (version, tenant_key) = self.current_data_key(tenant.0).await?;
        let sealed = tenant_key.seal(context, plain);
        Ok(format!(
            "sealed:v{version}:{}",
            base64::engine::general_purpose::STANDARD.encode(sealed)
        ))
    }

    /// Opens what `seal_for_tenant` made.
    pub(crate) async fn open_for_tenant(
        &self,
        tenant: TenantId,
        context: &[u8],
        stored: &str,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
        use base64::Engine;
        let rest = stored
            .strip_prefix("sealed:v")
            .ok_or_else(|| StoreError::corrupt("sealed value has no version"))?;
        let (version, b64) = rest
            .split_once(':')
            .ok_or_else(|| StoreError::corrupt("sealed value has no key version"))?;
        let version: i32 = version.parse().map_err(StoreError::corrupt)?;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(StoreError::corrupt)?;
        let tenant_key = self
            .tenant_key(tenant.0, version)
            .await?
            .ok_or_else(|| StoreError::Crypto("the key of a sealed value is gone".into()))?;
        tenant_key.open(context, &sealed)
    }

    /// Seals a stored API response (it may echo personal data) under the tenant's data key.
    pub(crate) async fn seal_response(
        &self,
        tenant: TenantId,
        key: &str,
        body: &str,
    ) -> Result<String, StoreError> {
        self.seal_for_tenant(tenant, &response_context(tenant, key), body.as_bytes())
            .await
    }

    pub(crate) async fn open_response(
        &self,
        tenant: TenantId,
        key: &str,
        stored: &str,
    ) -> Result<String, StoreError> {
        if !stored.starts_with("sealed:v") {
            return Ok(stored.to_string());
        }
        let plain = self
            .open_for_tenant(tenant, &response_context(tenant, key), stored)
            .await?;
        String::from_utf8(plain.to_vec()).map_err(StoreError::corrupt)
    }

    /// Erases one recipient: destroys their data key and deletes their sealed data from every
    /// shipment, and stored responses that echoed it. Other recipients are untouched.
    pub async fn erase_recipient(
        &self,
        tenant: TenantId,
        who: &RecipientSelector,
    ) -> Result<ErasureReport, StoreError> {
        let recipient_ref: Option<String> = match who {
            RecipientSelector::Email(email) => Some(self.email_ref(tenant, email).await?),
            RecipientSelector::Shipment(id) => on_tenant!(self, tenant, pool => {
                sqlx::query_scalar::<_, Option<String>>("SELECT recipient_ref FROM shipments WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(id.0)
                    .fetch_optional(pool)
                    .await?
                    .flatten()
            }),
        };
        let Some(recipient_ref) = recipient_ref else {
            return Ok(ErasureReport::default());
        };
        let at = now();
        let (ids, keys_destroyed) = on_tenant!(self, tenant, pool => {
            let mut tx = sqlx::Acquire::begin(pool).await?;
            let keys = sqlx::query("DELETE FROM recipient_keys WHERE tenant_id = $1 AND recipient_ref = $2")
                .bind(tenant.0)
                .bind(&recipient_ref)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let rows: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, tracking_number FROM shipments WHERE tenant_id = $1 AND recipient_ref = $2")
                .bind(tenant.0)
                .bind(&recipient_ref)
                .fetch_all(&mut *tx)
                .await?;
            sqlx::query("UPDATE shipments SET recipient = NULL, recipient_sealed = NULL, recipient_ref = NULL, recipient_erased_at = $3, updated_at = $3 WHERE tenant_id = $1 AND recipient_ref = $2")
                .bind(tenant.0)
                .bind(&recipient_ref)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            (rows, keys)
        });
        let (ids, tracking_numbers): (Vec<Uuid>, Vec<String>) = ids.into_iter().unzip();
        let responses_removed = self.remove_responses_mentioning(tenant, &ids).await?
            + self
                .delete_raw_payloads_for(tenant, &tracking_numbers)
                .await?;
        self.scrub_freed_space().await?;
        Ok(ErasureReport {
            shipments: ids.len() as u64,
            keys_destroyed,
            responses_removed,
        })
    }

    /// Deletes stored idempotency responses that mention any of `shipments`.
    async fn remove_responses_mentioning(
        &self,
        tenant: TenantId,
        shipments: &[Uuid],
    ) -> Result<u64, StoreError> {
        if shipments.is_empty() {
            return Ok(0);
        }
        let rows: Vec<(String, String)> = on_tenant!(self, tenant, pool => {
            sqlx::query_as("SELECT key, response_body FROM idempotency_keys WHERE tenant_id = $1 AND response_body IS NOT NULL")
                .bind(tenant.0)
                .fetch_all(pool)
                .await?
        });
        let needles: Vec<String> = shipments
            .iter()
            .map(|id| ShipmentId(*id).to_string())
            .collect();
        let mut removed = 0;
        for (key, body) in rows {
            let plain = match self.open_response(tenant, &key, &body).await {
                Ok(p) => p,
                // Unreadable already (its key is gone): remove it too.
                Err(StoreError::Crypto(_)) => String::new(),
                Err(e) => return Err(e),
            };
            if plain.is_empty() || needles.iter().any(|n| plain.contains(n.as_str())) {
                removed += on_tenant!(self, tenant, pool => {
                    sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2")
                        .bind(tenant.0)
                        .bind(&key)
                        .execute(pool)
                        .await?
                        .rows_affected()
                });
            }
        }
        Ok(removed)
    }

    /// Makes deleted bytes unrecoverable from the files where the engine allows it: SQLite runs
    /// with secure_delete (freed pages are zeroed) and its write-ahead log is truncated here;
    /// PostgreSQL marks dead rows reusable by VACUUM (see docs/security.md for what remains).
    async fn scrub_freed_space(&self) -> Result<(), StoreError> {
        match &self.db {
            crate::Backend::Sqlite(pool) => {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(pool)
                    .await?;
            }
            crate::Backend::Postgres(pool) => {
                for table in [
                    "raw_payloads",
                    "recipient_keys",
                    "shipments",
                    "idempotency_keys",
                    "tenant_keys",
                ] {
                    sqlx::query(&format!("VACUUM {table}"))
                        .execute(pool)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Erases a whole tenant: every key of theirs is destroyed and every row of their data is
    /// deleted; the tenant row stays, marked erased, and so does its audit chain (which holds no
    /// personal data) so the erasure itself can be proven.
    pub async fn erase_tenant(&self, tenant: TenantId) -> Result<ErasureReport, StoreError> {
        let at = now();
        let report = on_tenant!(self, tenant, pool => {
            let mut tx = sqlx::Acquire::begin(pool).await?;
            let recipient_keys = sqlx::query("DELETE FROM recipient_keys WHERE tenant_id = $1")
                .bind(tenant.0).execute(&mut *tx).await?.rows_affected();
            let tenant_keys = sqlx::query("DELETE FROM tenant_keys WHERE tenant_id = $1")
                .bind(tenant.0).execute(&mut *tx).await?.rows_affected();
            sqlx::query("DELETE FROM tracking_events WHERE tenant_id = $1")
                .bind(tenant.0).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM predictions WHERE tenant_id = $1")
                .bind(tenant.0).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM kpi_rollups WHERE tenant_id = $1")
                .bind(tenant.0).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM kpi_transit_hours WHERE tenant_id = $1")
                .bind(tenant.0).execute(&mut *tx).await?;
            // Models trained on this tenant's history alone go too (the registry is read
            // across tenants, so this runs as the all-tenants path would).
            sqlx::query("DELETE FROM models WHERE tenant_id = $1")
                .bind(tenant.0).execute(&mut *tx).await?;
            let shipments = sqlx::query("DELETE FROM shipments WHERE tenant_id = $1")
                .bind(tenant.0).execute(&mut *tx).await?.rows_affected();
            let responses_removed = sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1")
                .bind(tenant.0).execute(&mut *tx).await?.rows_affected()
                + sqlx::query("DELETE FROM raw_payloads WHERE tenant_id = $1")
                .bind(tenant.0).execute(&mut *tx).await?.rows_affected();
            sqlx::query("UPDATE webhook_endpoints SET revoked_at = COALESCE(revoked_at, $2) WHERE tenant_id = $1")
                .bind(tenant.0).bind(at).execute(&mut *tx).await?;
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2), name = 'erased' WHERE tenant_id = $1")
                .bind(tenant.0).bind(at).execute(&mut *tx).await?;
            sqlx::query("UPDATE tenants SET erased_at = $2, name = 'erased' WHERE id = $1")
                .bind(tenant.0).bind(at).execute(&mut *tx).await?;
            let report = ErasureReport {
                shipments,
                keys_destroyed: recipient_keys + tenant_keys,
                responses_removed,
            };
            tx.commit().await?;
            report
        });
        if let Ok(vault) = self.vault() {
            vault.forget_tenant(tenant.0);
        }
        self.scrub_freed_space().await?;
        self.kpi_index.forget(tenant);
        Ok(report)
    }

    /// Re-wraps every tenant key under the provider's active KEK (after a KEK rotation), so the
    /// old KEK can be retired. Data is not re-encrypted; reads work throughout.
    pub async fn rewrap_tenant_keys(&self) -> Result<u64, StoreError> {
        let vault = self.vault()?;
        let active = vault.provider.active_kek_id();
        let rows: Vec<(Uuid, i32, String, Vec<u8>)> = on_all_tenants!(self, pool => {
            sqlx::query_as("SELECT tenant_id, version, kek_id, wrapped_key FROM tenant_keys WHERE kek_id <> $1")
                .bind(&active)
                .fetch_all(pool)
                .await?
        });
        let mut n = 0;
        for (tenant, version, kek_id, ciphertext) in rows {
            let key = vault
                .provider
                .unwrap(&WrappedKey { kek_id, ciphertext })
                .await?;
            let wrapped = vault.provider.wrap(&key).await?;
            n += on_all_tenants!(self, pool => {
                sqlx::query("UPDATE tenant_keys SET kek_id = $3, wrapped_key = $4 WHERE tenant_id = $1 AND version = $2")
                    .bind(tenant)
                    .bind(version)
                    .bind(&wrapped.kek_id)
                    .bind(&wrapped.ciphertext)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
        }
        Ok(n)
    }

    /// Starts a new data key version for the tenant: new recipient keys are wrapped under it,
    /// and existing recipient keys are re-wrapped, so older versions hold nothing afterwards.
    pub async fn rotate_tenant_key(&self, tenant: TenantId) -> Result<RotationReport, StoreError> {
        let next = self.current_data_key_version(tenant.0).await?.unwrap_or(0) + 1;
        let new_key = self.create_tenant_key(tenant.0, next).await?;
        let rows: Vec<(String, i32, Vec<u8>)> = on_tenant!(self, tenant, pool => {
            sqlx::query_as("SELECT recipient_ref, key_version, wrapped_key FROM recipient_keys WHERE tenant_id = $1 AND key_version <> $2")
                .bind(tenant.0)
                .bind(next)
                .fetch_all(pool)
                .await?
        });
        let mut report = RotationReport {
            tenant_keys_rewrapped: 1,
            recipient_keys_rewrapped: 0,
        };
        for (recipient_ref, version, wrapped) in rows {
            let key = self
                .open_recipient_key(tenant.0, &recipient_ref, version, &wrapped)
                .await?;
            let rewrapped = new_key.seal(
                &recipient_key_context(tenant.0, &recipient_ref),
                key.as_bytes(),
            );
            report.recipient_keys_rewrapped += on_tenant!(self, tenant, pool => {
                sqlx::query("UPDATE recipient_keys SET key_version = $3, wrapped_key = $4 WHERE tenant_id = $1 AND recipient_ref = $2 AND key_version = $5")
                    .bind(tenant.0)
                    .bind(&recipient_ref)
                    .bind(next)
                    .bind(&rewrapped)
                    .bind(version)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
        }
        Ok(report)
    }

    /// Seals recipients stored in plaintext by versions before encryption at rest; run at start.
    pub async fn seal_legacy_personal_data(&self) -> Result<u64, StoreError> {
        let rows: Vec<(Uuid, Uuid, String, Option<String>)> = on_all_tenants!(self, pool => {
            sqlx::query_as("SELECT tenant_id, id, recipient, destination FROM shipments WHERE recipient IS NOT NULL AND recipient_sealed IS NULL")
                .fetch_all(pool)
                .await?
        });
        let mut n = 0;
        for (tenant, id, recipient, destination) in rows {
            let recipient: Option<Recipient> =
                serde_json::from_str(&recipient).map_err(StoreError::corrupt)?;
            let destination: Option<Address> = destination
                .map(|d| serde_json::from_str(&d))
                .transpose()
                .map_err(StoreError::corrupt)?;
            let sealed = self
                .seal_personal(TenantId(tenant), ShipmentId(id), &recipient, &destination)
                .await?;
            n += on_tenant!(self, TenantId(tenant), pool => {
                sqlx::query("UPDATE shipments SET recipient = NULL, recipient_ref = $3, recipient_sealed = $4, destination = $5 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(id)
                    .bind(&sealed.recipient_ref)
                    .bind(&sealed.recipient_sealed)
                    .bind(crate::shipments::to_json(&sealed.destination))
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
        }
        Ok(n)
    }
}
