//! Exports: a filtered set of a tenant's shipments or events as CSV or Parquet, encoded batch by
//! batch as the query streams them, so an export larger than memory works (memory holds one
//! batch, and for Parquet one row group).

use crate::analytics::{days, SHIP_DAY};
use crate::warehouse::Warehouse;
use crate::LakeError;
use bitshipper_core::analytics::{ExportFormat, ExportRequest, ExportTable};
use bitshipper_core::TenantId;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::common::ScalarValue;
use deltalake::datafusion::execution::SendableRecordBatchStream;
use deltalake::parquet::arrow::ArrowWriter;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use futures::{Stream, StreamExt};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Rows per Parquet row group in an export (bounds the memory an export holds).
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// The statement and its bound values for `request`.
pub fn export_sql(request: &ExportRequest) -> (String, Vec<ScalarValue>) {
    let (table, day) = match request.table {
        ExportTable::Shipments => ("shipments_current", SHIP_DAY),
        ExportTable::Events => ("events", "event_date"),
    };
    let mut params = vec![
        ScalarValue::Date32(Some(days(request.from))),
        ScalarValue::Date32(Some(days(request.to))),
    ];
    let mut sql = format!("SELECT * FROM {table} WHERE {day} >= $1 AND {day} <= $2");
    for (column, value) in [("carrier", &request.carrier), ("status", &request.status)] {
        if let Some(v) = value {
            params.push(ScalarValue::Utf8(Some(v.clone())));
            sql.push_str(&format!(" AND {column} = ${}", params.len()));
        }
    }
    let order = match request.table {
        ExportTable::Shipments => "shipment_id",
        ExportTable::Events => "log_seq",
    };
    sql.push_str(&format!(" ORDER BY {order}"));
    (sql, params)
}

/// Runs the export query for the tenant.
pub async fn export_stream(
    warehouse: &Warehouse,
    tenant: TenantId,
    request: &ExportRequest,
) -> Result<SendableRecordBatchStream, LakeError> {
    let ctx = warehouse.session(tenant).await?;
    let (sql, params) = export_sql(request);
    let df = ctx.sql(&sql).await?.with_param_values(params)?;
    Ok(df.execute_stream().await?)
}

/// A `Write` whose bytes are taken out after each batch (the encoders write into it).
#[derive(Clone, Default)]
struct Drain(Arc<Mutex<Vec<u8>>>);

impl Write for Drain {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("export buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drain {
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }
}

enum Encoder {
    Csv {
        drain: Drain,
        header: bool,
    },
    Parquet {
        drain: Drain,
        writer: Option<Box<ArrowWriter<Drain>>>,
    },
}

impl Encoder {
    fn new(format: ExportFormat) -> Self {
        match format {
            ExportFormat::Csv => Encoder::Csv {
                drain: Drain::default(),
                header: true,
            },
            ExportFormat::Parquet => Encoder::Parquet {
                drain: Drain::default(),
                writer: None,
            },
        }
    }

    fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, LakeError> {
        match self {
            Encoder::Csv { drain, header } => {
                let mut w = deltalake::arrow::csv::WriterBuilder::new()
                    .with_header(*header)
                    .build(drain.clone());
                w.write(batch)?;
                *header = false;
                Ok(drain.take())
            }
            Encoder::Parquet { drain, writer } => {
                if writer.is_none() {
                    let props = WriterProperties::builder()
                        .set_compression(Compression::ZSTD(ZstdLevel::default()))
                        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                        .build();
                    let created = ArrowWriter::try_new(drain.clone(), batch.schema(), Some(props))?;
                    *writer = Some(Box::new(created));
                }
                if let Some(w) = writer.as_mut() {
                    w.write(batch)?;
                    if w.in_progress_rows() >= ROW_GROUP_ROWS {
                        w.flush()?;
                    }
                }
                Ok(drain.take())
            }
        }
    }

    fn finish(self, schema: deltalake::arrow::datatypes::SchemaRef) -> Result<Vec<u8>, LakeError> {
        match self {
            Encoder::Csv { drain, header } => {
                if header {
                    // No rows: still a header line.
                    let mut w = deltalake::arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .build(drain.clone());
                    w.write(&RecordBatch::new_empty(schema))?;
                }
                Ok(drain.take())
            }
            Encoder::Parquet { drain, writer } => {
                let writer = match writer {
                    Some(w) => *w,
                    None => ArrowWriter::try_new(drain.clone(), schema, None)?,
                };
                writer.close()?;
                Ok(drain.take())
            }
        }
    }
}

/// Encodes the query's batches as they arrive.
pub fn encode(
    stream: SendableRecordBatchStream,
    format: ExportFormat,
) -> impl Stream<Item = Result<Vec<u8>, LakeError>> + Send {
    let schema = stream.schema();
    futures::stream::unfold(
        (stream, Some(Encoder::new(format)), schema),
        |(mut stream, encoder, schema)| async move {
            let mut encoder = encoder?;
            match stream.next().await {
                Some(Ok(batch)) => {
                    let out = encoder.batch(&batch);
                    Some((out, (stream, Some(encoder), schema)))
                }
                Some(Err(e)) => Some((Err(e.into()), (stream, None, schema))),
                None => {
                    let out = encoder.finish(schema.clone());
                    Some((out, (stream, None, schema)))
                }
            }
        },
    )
    .filter(|chunk| futures::future::ready(!matches!(chunk, Ok(bytes) if bytes.is_empty())))
}
