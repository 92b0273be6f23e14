//! One Delta table of the lake: created on first use, appended to exactly once per application
//! version (Delta's `txn` action), compacted and vacuumed.

use crate::location::LakeLocation;
use crate::rows::TableSpec;
use crate::LakeError;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::{StructType, Transaction};
use deltalake::operations::optimize::OptimizeType;
use deltalake::protocol::SaveMode;
use deltalake::DeltaTable;

/// A table handle that knows its spec. Cheap to clone (the table state is shared).
#[derive(Debug, Clone)]
pub struct LakeTable {
    pub spec: &'static TableSpec,
    table: DeltaTable,
}

impl LakeTable {
    /// Opens the table, creating it (empty, with its schema and partitioning) when missing.
    pub async fn open_or_create(
        location: &LakeLocation,
        spec: &'static TableSpec,
    ) -> Result<Self, LakeError> {
        let url = location.table_url(spec.name)?;
        if let Ok(path) = url.to_file_path() {
            std::fs::create_dir_all(&path)?;
        }
        let table =
            DeltaTable::try_from_url_with_storage_options(url.clone(), location.storage_options())
                .await?;
        if table.version().is_some() {
            return Ok(LakeTable { spec, table });
        }
        let schema: StructType = spec.schema.as_ref().try_into_kernel()?;
        let created = table
            .create()
            .with_table_name(spec.name)
            .with_columns(schema.fields().cloned())
            .with_partition_columns(spec.partition_columns.iter().copied())
            .with_save_mode(SaveMode::Ignore)
            .await;
        let table = match created {
            Ok(t) => t,
            // Another writer created it between our look and our create: open theirs.
            Err(_) if Self::exists(location, spec).await? => {
                DeltaTable::try_from_url_with_storage_options(url, location.storage_options())
                    .await?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(LakeTable { spec, table })
    }

    async fn exists(location: &LakeLocation, spec: &TableSpec) -> Result<bool, LakeError> {
        let url = location.table_url(spec.name)?;
        let t =
            DeltaTable::try_from_url_with_storage_options(url, location.storage_options()).await?;
        Ok(t.version().is_some())
    }

    /// Opens an existing table; `None` when it was never written.
    pub async fn open_existing(
        location: &LakeLocation,
        spec: &'static TableSpec,
    ) -> Result<Option<Self>, LakeError> {
        let url = location.table_url(spec.name)?;
        let table =
            DeltaTable::try_from_url_with_storage_options(url, location.storage_options()).await?;
        Ok(table
            .version()
            .is_some()
            .then_some(LakeTable { spec, table }))
    }

    pub fn delta(&self) -> &DeltaTable {
        &self.table
    }

    /// Re-reads the table's log (new commits by anyone).
    pub async fn refresh(&mut self) -> Result<(), LakeError> {
        self.table.update_state().await?;
        Ok(())
    }

    /// The last version `app_id` committed (from the table itself, after a refresh).
    pub async fn committed_version(&mut self, app_id: &str) -> Result<Option<i64>, LakeError> {
        self.refresh().await?;
        let log_store = self.table.log_store();
        Ok(self
            .table
            .snapshot()?
            .transaction_version(log_store.as_ref(), app_id)
            .await?)
    }

    /// Appends `batch` and records `(app_id, version)` in the same commit: a retry of a commit
    /// that already landed is seen through [`committed_version`](Self::committed_version) and
    /// skipped, so a crash anywhere never doubles rows.
    pub async fn append(
        &mut self,
        batch: RecordBatch,
        app_id: &str,
        version: i64,
    ) -> Result<(), LakeError> {
        let properties = CommitProperties::default()
            .with_application_transaction(Transaction::new(app_id, version));
        let table = self
            .table
            .clone()
            .write(vec![batch])
            .with_save_mode(SaveMode::Append)
            .with_partition_columns(self.spec.partition_columns.iter().copied())
            .with_commit_properties(properties)
            .await?;
        self.table = table;
        Ok(())
    }

    /// Rewrites small files into large ones (a no-op where nothing is small).
    pub async fn compact(&mut self) -> Result<u64, LakeError> {
        let (table, metrics) = self
            .table
            .clone()
            .optimize()
            .with_type(OptimizeType::Compact)
            .await?;
        self.table = table;
        Ok(metrics.num_files_removed)
    }

    /// Deletes files no version younger than `retention` refers to.
    pub async fn vacuum(&mut self, retention: chrono::Duration) -> Result<usize, LakeError> {
        let (table, metrics) = self
            .table
            .clone()
            .vacuum()
            .with_retention_period(retention)
            .with_enforce_retention_duration(false)
            .await?;
        self.table = table;
        Ok(metrics.files_deleted.len())
    }
}
