//! Layered settings: built-in defaults, then a TOML file, then `BITSHIPPER_*` environment
//! variables (nested keys with `__`, e.g. `BITSHIPPER_LIMITS__MAX_BATCH_EVENTS`), then flags.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on, e.g. `127.0.0.1:8080` (`0.0.0.0:8080` in a container).
    pub listen: String,
    /// `sqlite://PATH` (embedded default) or `postgres://...`.
    pub database_url: String,
    /// What this process runs: `api`, `processor`, `lake` (default: all three).
    pub roles: Vec<Role>,
    pub log: LogSettings,
    pub limits: LimitSettings,
    pub pipeline: PipelineSettings,
    pub security: SecuritySettings,
    pub retention: RetentionSettings,
    pub predictions: PredictionSettings,
    pub lake: LakeSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LakeSettings {
    /// Land events, shipment changes and predictions in Delta tables and serve analytics
    /// from them.
    pub enabled: bool,
    /// A directory, or `s3://bucket/prefix` (credentials, region and `AWS_ENDPOINT_URL` from
    /// the usual `AWS_*` variables). Default: `lake/` beside the SQLite database, else
    /// `data/lake`.
    pub location: Option<String>,
    /// Most events in one lake commit.
    pub batch_events: u32,
    /// A partial batch is committed after this many seconds.
    pub flush_seconds: u64,
    /// Minutes between compaction and vacuum runs.
    pub maintenance_minutes: u64,
    /// Hours a file no longer in the table is kept before vacuum deletes it (time travel and
    /// readers in flight need it).
    pub vacuum_retention_hours: u64,
}

impl LakeSettings {
    pub fn writer_settings(&self) -> bitshipper_lake::WriterSettings {
        bitshipper_lake::WriterSettings {
            batch_events: self.batch_events.max(1),
            flush_interval: std::time::Duration::from_secs(self.flush_seconds.max(1)),
            maintenance_interval: std::time::Duration::from_secs(
                self.maintenance_minutes.max(1) * 60,
            ),
            vacuum_retention: chrono::Duration::hours(
                i64::try_from(self.vacuum_retention_hours).unwrap_or(i64::MAX / 3_600_000),
            ),
            ..bitshipper_lake::WriterSettings::default()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PredictionSettings {
    /// Score shipments with the live model (where the processor runs).
    pub enabled: bool,
    /// Seconds between looks at the model registry for a newly promoted model.
    pub refresh_seconds: u64,
    /// Minutes between re-scoring every shipment in transit as time passes.
    pub rescore_minutes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Hours the event log keeps records every consumer has applied (for replay and audit).
    /// Per-tenant limits on events and personal data are tenant settings (`/v1/tenant/retention`).
    pub log_keep_hours: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    /// The key-encryption key file (JSON, mode 0600), created on first start when missing.
    /// Default: `keys/kek.json` beside the SQLite database, or `data/keys/kek.json`.
    pub key_file: Option<String>,
    /// A KEK given as a secret instead of a file: base64 of 32 bytes, optionally `id:base64`
    /// (`BITSHIPPER_SECURITY__KEK`). Takes precedence over `key_file`.
    pub kek: Option<String>,
    /// An AWS KMS key (id, ARN or alias) to wrap tenant keys with; takes precedence over `kek`
    /// and `key_file`. Credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
    /// `AWS_SESSION_TOKEN`.
    pub kms_key_id: Option<String>,
    /// The KMS region (default: `AWS_REGION`, then `AWS_DEFAULT_REGION`).
    pub kms_region: Option<String>,
    /// A KMS-compatible endpoint instead of `https://kms.<region>.amazonaws.com`.
    pub kms_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Api,
    Processor,
    /// The lake writer: lands the log in Delta tables.
    Lake,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "api" => Ok(Role::Api),
            "processor" => Ok(Role::Processor),
            "lake" => Ok(Role::Lake),
            other => Err(format!(
                "unknown role '{other}'; expected api, processor or lake"
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `info`, `debug`, or a full filter like `bitshipper=debug,sqlx=warn`.
    pub level: String,
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub max_body_bytes: usize,
    pub max_batch_events: usize,
    pub max_page_size: u32,
    /// Seconds an authenticated API key is remembered (0: look up every request). A key
    /// revoked through another process stops working within this time.
    pub key_cache_seconds: u64,
    /// Sustained requests per second one API key may make (bursts of twice that pass;
    /// 0: no limit). Beyond it: 429 with Retry-After.
    pub requests_per_second_per_key: u32,
    /// Failed authentications per minute from one IP before it gets 429s (0: no limit).
    pub failed_auth_per_minute_per_ip: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    /// Ingest requests waiting for a log commit before 503.
    pub queue_capacity: usize,
    /// Most events in one log commit.
    pub max_commit_events: usize,
    /// Log entries applied per state transaction.
    pub processor_batch_size: u32,
    /// Unapplied events beyond which ingest answers 503.
    pub max_lag: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://data/bitshipper.db".into(),
            roles: vec![Role::Api, Role::Processor, Role::Lake],
            log: LogSettings {
                level: "info".into(),
                format: LogFormat::Text,
            },
            limits: LimitSettings {
                max_body_bytes: 1024 * 1024,
                max_batch_events: 1000,
                max_page_size: 200,
                key_cache_seconds: 10,
                requests_per_second_per_key: 1000,
                failed_auth_per_minute_per_ip: 60,
            },
            pipeline: PipelineSettings {
                queue_capacity: 512,
                max_commit_events: 10_000,
                processor_batch_size: 2_000,
                max_lag: 500_000,
            },
            security: SecuritySettings::default(),
            retention: RetentionSettings {
                log_keep_hours: 168,
            },
            predictions: PredictionSettings {
                enabled: true,
                refresh_seconds: 30,
                rescore_minutes: 15,
            },
            lake: LakeSettings {
                enabled: true,
                location: None,
                batch_events: 100_000,
                flush_seconds: 5,
                maintenance_minutes: 60,
                vacuum_retention_hours: 168,
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config file {0} does not exist")]
    MissingFile(String),
    #[error("invalid settings: {0}")]
    Invalid(#[from] Box<figment::Error>),
}

impl Settings {
    /// Where the local KEK file lives when none is configured.
    pub fn key_file_path(&self) -> std::path::PathBuf {
        if let Some(path) = &self.security.key_file {
            return path.into();
        }
        let db_dir = bitshipper_store::sqlite_path(&self.database_url)
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .filter(|d| !d.as_os_str().is_empty());
        db_dir
            .unwrap_or_else(|| Path::new("data").to_path_buf())
            .join("keys")
            .join("kek.json")
    }

    /// Where the lake lives: `lake.location`, else `lake/` beside the SQLite database, else
    /// `data/lake`.
    pub fn lake_location(
        &self,
    ) -> Result<bitshipper_lake::LakeLocation, bitshipper_lake::LakeError> {
        let text = match &self.lake.location {
            Some(l) => l.clone(),
            None => {
                let db_dir = bitshipper_store::sqlite_path(&self.database_url)
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .filter(|d| !d.as_os_str().is_empty());
                db_dir
                    .unwrap_or_else(|| Path::new("data").to_path_buf())
                    .join("lake")
                    .display()
                    .to_string()
            }
        };
        bitshipper_lake::LakeLocation::parse(&text)
    }

    /// The key provider these settings name: the environment secret, else the key file.
    pub fn key_provider(
        &self,
    ) -> Result<std::sync::Arc<dyn bitshipper_store::KeyProvider>, bitshipper_store::StoreError>
    {
        use bitshipper_store::{AwsCredentials, AwsKmsKeyProvider, LocalKeyProvider, StoreError};
        if let Some(key_id) = &self.security.kms_key_id {
            let region = self
                .security
                .kms_region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
                .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                .ok_or_else(|| {
                    StoreError::Crypto(
                        "security.kms_key_id is set but no region: set security.kms_region or AWS_REGION".into(),
                    )
                })?;
            return Ok(std::sync::Arc::new(AwsKmsKeyProvider::new(
                key_id,
                &region,
                self.security.kms_endpoint.as_deref(),
                AwsCredentials::from_env()?,
            )?));
        }
        Ok(match &self.security.kek {
            Some(secret) => std::sync::Arc::new(LocalKeyProvider::from_secret(secret)?),
            None => std::sync::Arc::new(LocalKeyProvider::load_or_create(&self.key_file_path())?),
        })
    }

    /// Defaults, then `config` (or `./bitshipper.toml` when present), then the environment.
    pub fn load(config: Option<&Path>) -> Result<Self, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match config {
            Some(path) => {
                if !path.exists() {
                    return Err(SettingsError::MissingFile(path.display().to_string()));
                }
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("bitshipper.toml")),
        }
        // BITSHIPPER_CONFIG names the file (a flag's env form); BITSHIPPER_TEST_* are for the
        // test suite. None is a setting.
        figment = figment.merge(
            Env::prefixed("BITSHIPPER_")
                .ignore(&[
                    "config",
                    "test_postgres_url",
                    "test_s3_endpoint",
                    "test_s3_bucket",
                ])
                .split("__"),
        );
        figment
            .extract()
            .map_err(|e| SettingsError::Invalid(Box::new(e)))
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                "listen = \"0.0.0.0:9000\"\n[limits]\nmax_batch_events = 10\n",
            )?;
            jail.set_env("BITSHIPPER_LIMITS__MAX_BATCH_EVENTS", "20");
            jail.set_env("BITSHIPPER_TEST_POSTGRES_URL", "postgres://elsewhere/x");
            jail.set_env("BITSHIPPER_CONFIG", "custom.toml");
            let s = Settings::load(Some(Path::new("custom.toml"))).expect("settings");
            assert_eq!(s.listen, "0.0.0.0:9000");
            assert_eq!(s.limits.max_batch_events, 20);
            assert_eq!(s.database_url, Settings::default().database_url);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bitshipper.toml", "lisen = \"x\"\n")?;
            assert!(Settings::load(None)
                .unwrap_err()
                .to_string()
                .contains("lisen"));
            assert!(matches!(
                Settings::load(Some(Path::new("nope.toml"))),
                Err(SettingsError::MissingFile(_))
            ));
            Ok(())
        });
    }
}
