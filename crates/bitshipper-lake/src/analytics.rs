//! KPIs from the lake: volume, on-time rate, transit-time p50/p90 (whole hours, as the rollups
//! keep them), exception and first-attempt delivery rates over the tenant's current shipment
//! rows, grouped and filtered as asked.

use crate::warehouse::Warehouse;
use crate::LakeError;
use bitshipper_core::analytics::{GroupBy, KpiQuery, KpiReport, KpiRow};
use bitshipper_core::TenantId;
use chrono::{DateTime, Utc};
use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use deltalake::datafusion::common::ScalarValue;

/// The day a shipment counts on: its first scan, else its ship date, else when it was created.
pub(crate) const SHIP_DAY: &str =
    "COALESCE(CAST(first_scan_at AS DATE), ship_date, CAST(created_at AS DATE))";

fn group_expression(group_by: GroupBy) -> String {
    match group_by {
        GroupBy::All => "'all'".into(),
        GroupBy::Carrier => "s.carrier".into(),
        GroupBy::Service => "COALESCE(s.service_level, '')".into(),
        GroupBy::Lane => "COALESCE(s.lane, '')".into(),
        GroupBy::Day => "CAST(s.ship_day AS VARCHAR)".into(),
        GroupBy::Week => "CAST(CAST(date_trunc('week', s.ship_day) AS DATE) AS VARCHAR)".into(),
    }
}

/// The KPI statement and its parameter values (filters are bound, never spliced).
pub fn kpi_sql(query: &KpiQuery) -> (String, Vec<ScalarValue>) {
    let mut params = vec![
        ScalarValue::Date32(Some(days(query.from))),
        ScalarValue::Date32(Some(days(query.to))),
    ];
    let mut filters = vec![
        "s.ship_day >= $1".to_string(),
        "s.ship_day <= $2".to_string(),
    ];
    for (column, value) in [
        ("s.carrier", &query.carrier),
        ("s.service_level", &query.service),
        ("s.lane", &query.lane),
    ] {
        if let Some(v) = value {
            params.push(ScalarValue::Utf8(Some(v.clone())));
            filters.push(format!("{column} = ${}", params.len()));
        }
    }
    let sql = format!(
        "WITH s AS (
            SELECT *, {SHIP_DAY} AS ship_day,
                   floor((date_part('epoch', delivered_at) - date_part('epoch', first_scan_at)) / 3600.0) AS transit_hours
            FROM shipments_current),
         flags AS (
            SELECT carrier, tracking_number,
                   MAX(CASE WHEN status = 'exception' THEN 1 ELSE 0 END) AS had_exception,
                   MAX(CASE WHEN status = 'failed_attempt' THEN 1 ELSE 0 END) AS had_failed_attempt
            FROM events GROUP BY carrier, tracking_number)
         SELECT {group} AS key,
                COUNT(*) AS volume,
                SUM(CASE WHEN s.delivered_at IS NOT NULL THEN 1 ELSE 0 END) AS delivered,
                SUM(CASE WHEN s.delivered_at IS NOT NULL AND s.promised_delivery_date IS NOT NULL THEN 1 ELSE 0 END) AS delivered_with_promise,
                SUM(CASE WHEN s.delivered_at IS NOT NULL AND CAST(s.delivered_at AS DATE) <= s.promised_delivery_date THEN 1 ELSE 0 END) AS on_time,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY transit_hours) AS transit_p50,
                percentile_cont(0.9) WITHIN GROUP (ORDER BY transit_hours) AS transit_p90,
                SUM(COALESCE(f.had_exception, 0)) AS exceptions,
                SUM(CASE WHEN s.delivered_at IS NOT NULL AND COALESCE(f.had_failed_attempt, 0) = 0 THEN 1 ELSE 0 END) AS first_attempt,
                MAX(s.landed_at) AS as_of
         FROM s LEFT JOIN flags f ON f.carrier = s.carrier AND f.tracking_number = s.tracking_number
         WHERE {filters}
         GROUP BY 1 ORDER BY 1",
        group = group_expression(query.group_by),
        filters = filters.join(" AND "),
    );
    (sql, params)
}

/// A date as Arrow's `Date32` (days since 1970-01-01), for bound parameters.
pub(crate) fn days(date: chrono::NaiveDate) -> i32 {
    (date - chrono::NaiveDate::default()).num_days() as i32
}

/// KPIs for `query` over the tenant's lake data.
pub async fn kpis(
    warehouse: &Warehouse,
    tenant: TenantId,
    query: &KpiQuery,
) -> Result<KpiReport, LakeError> {
    let ctx = warehouse.session(tenant).await?;
    let (sql, params) = kpi_sql(query);
    let batches = ctx
        .sql(&sql)
        .await?
        .with_param_values(params)?
        .collect()
        .await?;
    let mut rows = Vec::new();
    let mut as_of: Option<DateTime<Utc>> = None;
    for batch in batches {
        let cast = |name: &str, to: &deltalake::arrow::datatypes::DataType| {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| LakeError::Query(format!("KPI column {name} missing")))?;
            Ok::<_, LakeError>(deltalake::arrow::compute::cast(column, to)?)
        };
        use deltalake::arrow::datatypes::DataType;
        let key = cast("key", &DataType::Utf8)?;
        let key = key.as_string::<i32>();
        let ints: Vec<_> = [
            "volume",
            "delivered",
            "delivered_with_promise",
            "on_time",
            "exceptions",
            "first_attempt",
        ]
        .iter()
        .map(|n| cast(n, &DataType::Int64))
        .collect::<Result<_, _>>()?;
        let p50 = cast("transit_p50", &DataType::Float64)?;
        let p90 = cast("transit_p90", &DataType::Float64)?;
        let landed = cast(
            "as_of",
            &DataType::Timestamp(
                deltalake::arrow::datatypes::TimeUnit::Microsecond,
                Some("UTC".into()),
            ),
        )?;
        let int = |i: usize, r: usize| ints[i].as_primitive::<Int64Type>().value(r).max(0) as u64;
        let float = |a: &dyn Array, r: usize| {
            let a = a.as_primitive::<Float64Type>();
            (!a.is_null(r)).then(|| a.value(r))
        };
        let landed = landed.as_primitive::<TimestampMicrosecondType>();
        for r in 0..batch.num_rows() {
            if !landed.is_null(r) {
                let t = DateTime::<Utc>::from_timestamp_micros(landed.value(r));
                as_of = as_of.max(t);
            }
            rows.push(
                KpiRow {
                    key: if key.is_null(r) {
                        String::new()
                    } else {
                        key.value(r).to_string()
                    },
                    volume: int(0, r),
                    delivered: int(1, r),
                    delivered_with_promise: int(2, r),
                    on_time: int(3, r),
                    on_time_rate: None,
                    transit_p50_hours: float(p50.as_ref(), r),
                    transit_p90_hours: float(p90.as_ref(), r),
                    exceptions: int(4, r),
                    exception_rate: None,
                    first_attempt: int(5, r),
                    first_attempt_rate: None,
                }
                .with_rates(),
            );
        }
    }
    Ok(KpiReport {
        group_by: query.group_by,
        from: query.from,
        to: query.to,
        source: bitshipper_core::analytics::KpiSource::Lake,
        as_of,
        rows,
    })
}
