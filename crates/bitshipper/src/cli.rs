//! The command line: `serve`, `demo`, `sim`, `migrate`, `tenants create`, `keys create`,
//! `audit verify`, `bench`.

use crate::app::{redact, shutdown_signal, Application};
use crate::settings::Settings;
use anyhow::Context;
use bitshipper_core::scope::parse_scopes;
use bitshipper_core::TenantId;
use bitshipper_store::Store;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "bitshipper",
    version,
    about = "Real-time shipment visibility in one binary"
)]
pub struct Cli {
    /// Settings file (TOML). Default: ./bitshipper.toml when present.
    #[arg(long, global = true, env = "BITSHIPPER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH (default sqlite://data/bitshipper.db) or postgres://...
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: HTTP API and pipeline (all roles in one process by default).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<String>,
        /// Roles to run, comma-separated: api, processor, lake.
        #[arg(long, value_delimiter = ',')]
        roles: Option<Vec<String>>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Run one read-only SQL statement over a tenant's lake views: `events`, `shipments`
    /// (every change), `shipments_current` (one row per shipment) and `predictions`.
    Query {
        /// The tenant whose data the statement sees (its id).
        #[arg(long)]
        tenant: uuid::Uuid,
        /// Output: table, csv or json (one object per line).
        #[arg(long, value_enum, default_value = "table")]
        format: crate::lake::OutputFormat,
        /// Most rows a table shows (csv and json stream everything).
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// The statement, e.g. "SELECT carrier, COUNT(*) FROM shipments_current GROUP BY 1".
        sql: String,
    },
    /// The data lake: catch up, maintain, show where it stands.
    Lake {
        #[command(subcommand)]
        command: crate::lake::LakeCommand,
    },
    /// Manage tenants.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Check the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage dashboard users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Apply retention now (the server's processor role also runs it every 10 minutes).
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// KPI rollups: rebuild a tenant's from its shipments and events.
    Rollups {
        #[command(subcommand)]
        command: RollupsCommand,
    },
    /// Erase personal data: one recipient's, or a whole tenant's (see docs/security.md).
    Erase {
        #[command(subcommand)]
        command: EraseCommand,
    },
    /// Rotate encryption keys without downtime.
    Crypto {
        #[command(subcommand)]
        command: CryptoCommand,
    },
    /// Run everything on this machine: server, demo tenants, history and live events.
    Demo(crate::demo::DemoArgs),
    /// Import history: carrier tracking responses, aggregator payloads, or CSV.
    Import(crate::import::ImportArgs),
    /// Train the delivery models and print their evaluation (see docs/ml.md).
    Train(crate::train::TrainArgs),
    /// The model registry: list models, put one live.
    Models {
        #[command(subcommand)]
        command: crate::train::ModelsCommand,
    },
    /// Generate simulated shipments and events (history or a live stream).
    Sim(crate::simulate::SimArgs),
    /// Measure throughput and latency on this machine (see docs/benchmarks.md).
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant and print its admin API key (shown once).
    Create { name: String },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user (the first owner of a tenant, typically). The password is read from
    /// BITSHIPPER_USER_PASSWORD, or generated and printed once.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// viewer, analyst, admin or owner.
        #[arg(long, default_value = "owner")]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RollupsCommand {
    /// Recompute a tenant's KPI rollups from shipment state and events (for shipments applied
    /// before rollups existed, or as a repair). Processors wait while it runs.
    Rebuild {
        /// The tenant's id.
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Apply every tenant's retention policy, remove expired sessions and invitations, and
    /// prune the applied part of the event log older than retention.log_keep_hours.
    Run,
}

#[derive(Debug, Subcommand)]
pub enum EraseCommand {
    /// Destroy one recipient's data key and delete their data from every shipment.
    Recipient {
        #[arg(long)]
        tenant: String,
        /// The recipient's email address.
        #[arg(
            long,
            conflicts_with = "shipment",
            required_unless_present = "shipment"
        )]
        email: Option<String>,
        /// A shipment id: erase its recipient.
        #[arg(long)]
        shipment: Option<String>,
    },
    /// Destroy every key of a tenant and delete all of its data. Cannot be undone.
    Tenant {
        #[arg(long)]
        tenant: String,
        /// Confirms that the tenant's data is to be destroyed.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CryptoCommand {
    /// Add a new key-encryption key to the key file, re-wrap every tenant key under it, and
    /// (with --retire-old) drop the previous KEKs. Running servers keep working throughout.
    RotateKek {
        #[arg(long)]
        retire_old: bool,
    },
    /// Start a new data key version for a tenant and re-wrap its recipient keys under it.
    RotateTenantKey {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every tenant's hash chain (or one tenant's); fails if any entry was changed
    /// or removed.
    Verify {
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List a tenant's API keys (prefix, scopes, created, last used; never secrets).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke an API key.
    Revoke {
        #[arg(long)]
        tenant: String,
        /// The key's id (from `keys list`).
        id: String,
    },
    /// Create an API key for a tenant and print it (shown once).
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "cli key")]
        name: String,
        /// Comma-separated scopes: ingest, read, write, admin.
        #[arg(long, default_value = "read")]
        scopes: String,
        /// Days until the key stops working.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
}

fn parse_tenant(text: &str) -> anyhow::Result<TenantId> {
    text.parse()
        .map_err(|_| anyhow::anyhow!("--tenant must be a tenant id (a UUID)"))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    let mut s = Settings::load(cli.config.as_deref())?;
    if let Some(url) = &cli.database_url {
        s.database_url = url.clone();
    }
    Ok(s)
}

pub(crate) async fn store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database_url)
        .await
        .with_context(|| format!("connecting to {}", redact(&settings.database_url)))?
        .with_key_provider(
            settings
                .key_provider()
                .context("loading the key provider")?,
        );
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = settings(&cli)?;
    match cli.command {
        Command::Serve { listen, roles } => {
            if let Some(l) = listen {
                settings.listen = l;
            }
            if let Some(roles) = roles {
                settings.roles = roles
                    .iter()
                    .map(|r| {
                        r.parse::<crate::settings::Role>()
                            .map_err(anyhow::Error::msg)
                    })
                    .collect::<anyhow::Result<_>>()?;
            }
            crate::telemetry::init(&settings.log);
            let app = Application::build(settings.clone()).await?;
            tracing::info!(
                listen = %settings.listen,
                port = app.port(),
                database = %redact(&settings.database_url),
                roles = ?settings.roles,
                "bitshipper serving"
            );
            eprintln!(
                "BitShipper is serving on http://{}:{}  (API docs: /docs, OpenAPI: /openapi.json)",
                settings
                    .listen
                    .rsplit_once(':')
                    .map(|(h, _)| h)
                    .unwrap_or("127.0.0.1"),
                app.port()
            );
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate => {
            let store = Store::connect(&settings.database_url)
                .await
                .with_context(|| format!("connecting to {}", redact(&settings.database_url)))?;
            let n = store.migrate().await?;
            println!(
                "{n} migration(s) applied to {}",
                redact(&settings.database_url)
            );
            Ok(())
        }
        Command::Tenants {
            command: TenantsCommand::Create { name },
        } => {
            let store = store(&settings).await?;
            let (tenant, key) = crate::admin::create_tenant(&store, &name).await?;
            println!("tenant created");
            println!("  id:        {}", tenant.id);
            println!("  name:      {}", tenant.name);
            println!("  admin key: {}", key.secret);
            println!("Store the key now: it is shown only this once.");
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::List { tenant },
        } => {
            let tenant = parse_tenant(&tenant)?;
            let store = store(&settings).await?;
            let keys = store.list_api_keys(tenant).await?;
            println!(
                "{:<38} {:<17} {:<24} {:<20} {:<20} state",
                "id", "prefix", "scopes", "created", "last used"
            );
            for k in keys {
                let state = match (k.revoked_at, k.expires_at) {
                    (Some(_), _) => "revoked",
                    (None, Some(e)) if e <= chrono::Utc::now() => "expired",
                    _ => "active",
                };
                println!(
                    "{:<38} {:<17} {:<24} {:<20} {:<20} {state}",
                    k.id.to_string(),
                    k.prefix,
                    k.scopes
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    k.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    k.last_used_at
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_else(|| "-".into()),
                );
            }
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Revoke { tenant, id },
        } => {
            let tenant = parse_tenant(&tenant)?;
            let id: bitshipper_core::ApiKeyId = id
                .parse()
                .map_err(|_| anyhow::anyhow!("the key id must be a UUID (see `keys list`)"))?;
            let store = store(&settings).await?;
            crate::admin::revoke_key(&store, tenant, id).await?;
            println!("api key {id} revoked");
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Create {
                    tenant,
                    name,
                    scopes,
                    expires_in_days,
                },
        } => {
            let tenant: TenantId = tenant
                .parse()
                .map_err(|_| anyhow::anyhow!("--tenant must be a tenant id (a UUID)"))?;
            let scopes = parse_scopes(&scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
            let expires_at =
                expires_in_days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d)));
            let store = store(&settings).await?;
            let key = crate::admin::create_key(&store, tenant, &name, &scopes, expires_at).await?;
            println!("api key created");
            println!("  id:     {}", key.key.id);
            println!(
                "  scopes: {}",
                scopes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            println!("  key:    {}", key.secret);
            println!("Store the key now: it is shown only this once.");
            Ok(())
        }
        Command::Bench(args) => crate::bench::run(args).await,
        Command::Users {
            command:
                UsersCommand::Create {
                    tenant,
                    email,
                    role,
                },
        } => {
            let tenant = parse_tenant(&tenant)?;
            let role: bitshipper_core::Role =
                role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            let (password, generated) = match std::env::var("BITSHIPPER_USER_PASSWORD") {
                Ok(p) => (p, false),
                Err(_) => (bitshipper_api::credentials::random_token(), true),
            };
            bitshipper_api::credentials::check_password_policy("password", &password, &[&email])
                .map_err(|e| anyhow::anyhow!("{e}: {}", e.to_problem().detail))?;
            let store = store(&settings).await?;
            if store.get_tenant(tenant).await?.is_none() {
                anyhow::bail!("no tenant {tenant}");
            }
            let hash = bitshipper_api::credentials::hash_password(password.clone())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let user = store.create_user(tenant, &email, role, &hash).await?;
            store
                .audit(
                    tenant,
                    bitshipper_store::AuditRecord::new(
                        "cli",
                        "user.created",
                        format!("user:{}", user.id),
                    )
                    .with_details(serde_json::json!({ "role": role })),
                )
                .await?;
            println!("user {} ({}) created with role {role}", user.id, user.email);
            if generated {
                println!("password (shown once): {password}");
            }
            Ok(())
        }
        Command::Retention {
            command: RetentionCommand::Run,
        } => {
            let store = store(&settings).await?;
            let log = bitshipper_store::EventLog::open(&settings.database_url).await?;
            let keep = chrono::Duration::hours(i64::from(settings.retention.log_keep_hours));
            let r = store.run_retention(&log, keep).await?;
            println!(
                "retention: {} event(s) deleted, {} recipient(s) erased ({} key(s) destroyed), {} session(s) and {} invitation(s) removed, {} log record(s) pruned",
                r.events_deleted,
                r.recipients_erased,
                r.recipient_keys_destroyed,
                r.sessions_deleted,
                r.invitations_deleted,
                r.log_records_deleted
            );
            Ok(())
        }
        Command::Rollups {
            command: RollupsCommand::Rebuild { tenant },
        } => {
            let tenant = tenant
                .parse::<TenantId>()
                .map_err(|_| anyhow::anyhow!("--tenant must be a tenant id (a UUID)"))?;
            let store = store(&settings).await?;
            if store.get_tenant(tenant).await?.is_none() {
                anyhow::bail!("no tenant {tenant}");
            }
            let started = std::time::Instant::now();
            let r = store.rebuild_rollups(tenant).await?;
            println!(
                "rollups rebuilt for {tenant}: {} shipment(s) into {} cell(s) in {:.1} s",
                r.shipments,
                r.cells,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Erase { command } => return erase(&settings, command).await,
        Command::Crypto { command } => return crypto(&settings, command).await,
        Command::Audit {
            command: AuditCommand::Verify { tenant },
        } => {
            let store = store(&settings).await?;
            let tenants = match tenant {
                Some(t) => vec![t
                    .parse::<TenantId>()
                    .map_err(|_| anyhow::anyhow!("--tenant must be a tenant id (a UUID)"))?],
                None => store.audited_tenants().await?,
            };
            let mut broken = 0;
            for t in &tenants {
                match store.verify_audit_chain(*t).await? {
                    bitshipper_store::ChainCheck::Intact { entries } => {
                        println!("tenant {t}: intact ({entries} entries)")
                    }
                    bitshipper_store::ChainCheck::Broken { seq, reason } => {
                        broken += 1;
                        println!("tenant {t}: BROKEN at entry {seq}: {reason}");
                    }
                }
            }
            if broken > 0 {
                anyhow::bail!("{broken} of {} audit chains are broken", tenants.len());
            }
            println!("{} audit chain(s) verified", tenants.len());
            Ok(())
        }
        Command::Demo(args) => crate::demo::run(args, settings).await,
        Command::Query {
            tenant,
            format,
            limit,
            sql,
        } => {
            crate::lake::query(
                &settings,
                bitshipper_core::TenantId(tenant),
                &sql,
                format,
                limit.max(1),
            )
            .await
        }
        Command::Lake { command } => crate::lake::lake(&settings, command).await,
        Command::Import(args) => {
            let started = std::time::Instant::now();
            let s = crate::import::run(args, &settings).await?;
            println!(
                "imported {} row(s)/payload(s): {} event(s), {} shipment(s) created, {} rejected, {} unmapped code(s) stored as unknown ({:.1} s)",
                s.rows,
                s.events,
                s.shipments_created,
                s.rejected,
                s.unmapped_codes.len(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Train(args) => crate::train::run(args, &settings).await,
        Command::Models { command } => {
            crate::train::models(command, &store(&settings).await?).await
        }
        Command::Sim(args) => {
            crate::telemetry::init(&crate::settings::LogSettings {
                level: "warn".into(),
                ..settings.log.clone()
            });
            crate::simulate::run(args, settings).await
        }
    }
}

async fn erase(settings: &Settings, command: EraseCommand) -> anyhow::Result<()> {
    use bitshipper_store::{AuditRecord, RecipientSelector};
    let store = store(settings).await?;
    match command {
        EraseCommand::Recipient {
            tenant,
            email,
            shipment,
        } => {
            let tenant = parse_tenant(&tenant)?;
            let who = match (email, shipment) {
                (Some(e), _) => RecipientSelector::Email(e),
                (None, Some(s)) => {
                    let id: bitshipper_core::ShipmentId = s
                        .parse()
                        .map_err(|_| anyhow::anyhow!("--shipment must be a shipment id"))?;
                    RecipientSelector::Shipment(id)
                }
                (None, None) => anyhow::bail!("give --email or --shipment"),
            };
            let report = store.erase_recipient(tenant, &who).await?;
            store
                .audit(
                    tenant,
                    AuditRecord::erasure("cli".into(), who.audit_target(), &report),
                )
                .await?;
            println!(
                "erased: {} shipment(s), {} key(s) destroyed, {} stored response(s) removed",
                report.shipments, report.keys_destroyed, report.responses_removed
            );
        }
        EraseCommand::Tenant { tenant, yes } => {
            let tenant = parse_tenant(&tenant)?;
            if !yes {
                anyhow::bail!("erasing a tenant destroys all of its data; add --yes to confirm");
            }
            if store.get_tenant(tenant).await?.is_none() {
                anyhow::bail!("no tenant {tenant}");
            }
            let report = store.erase_tenant(tenant).await?;
            store
                .audit(
                    tenant,
                    AuditRecord::erasure("cli".into(), format!("tenant:{tenant}"), &report),
                )
                .await?;
            println!(
                "tenant {tenant} erased: {} shipment(s) deleted, {} key(s) destroyed",
                report.shipments, report.keys_destroyed
            );
        }
    }
    Ok(())
}

async fn crypto(settings: &Settings, command: CryptoCommand) -> anyhow::Result<()> {
    match command {
        CryptoCommand::RotateKek { retire_old } => {
            if settings.security.kms_key_id.is_some() {
                anyhow::bail!(
                    "the KEK lives in AWS KMS: turn on the key's automatic rotation in KMS (older key material keeps decrypting, so nothing needs re-wrapping)"
                );
            }
            if settings.security.kek.is_some() {
                anyhow::bail!(
                    "the KEK comes from security.kek (an environment secret); rotate it by adding the new secret as a key file entry, or use a key file"
                );
            }
            let path = settings.key_file_path();
            let mut provider = bitshipper_store::LocalKeyProvider::load_or_create(&path)?;
            let old = provider.kek_ids();
            let new = provider.rotate()?;
            let store = Store::connect(&settings.database_url)
                .await?
                .with_key_provider(std::sync::Arc::new(
                    bitshipper_store::LocalKeyProvider::load_or_create(&path)?,
                ));
            store.migrate().await?;
            let n = store.rewrap_tenant_keys().await?;
            println!("new KEK {new}; {n} tenant key(s) re-wrapped");
            if retire_old {
                for id in old {
                    provider.retire(&id)?;
                }
                println!("older KEKs retired; restart servers so they load the new key file");
            }
        }
        CryptoCommand::RotateTenantKey { tenant } => {
            let tenant = parse_tenant(&tenant)?;
            let store = store(settings).await?;
            let r = store.rotate_tenant_key(tenant).await?;
            println!(
                "new data key for tenant {tenant}; {} recipient key(s) re-wrapped",
                r.recipient_keys_rewrapped
            );
        }
    }
    Ok(())
}
