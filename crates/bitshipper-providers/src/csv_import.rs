//! CSV import of historical shipments and events: a column-mapping (TOML or JSON) says which
//! column holds which field; each row becomes one event (and, when shipment columns are mapped,
//! describes its shipment). Rows are read one at a time, so a file larger than memory imports.

use crate::ProviderError;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Which CSV column holds each field. Only `tracking_number` and `occurred_at` are required;
/// `carrier` may come from `defaults.carrier`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    pub carrier: Option<String>,
    pub tracking_number: String,
    pub occurred_at: String,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub raw_code: Option<String>,
    pub message: Option<String>,
    pub event_id: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    // Shipment fields (optional): a shipment is created for the first row of each tracking
    // number that has any of them.
    pub service_level: Option<String>,
    pub reference: Option<String>,
    pub ship_date: Option<String>,
    pub promised_delivery_date: Option<String>,
    /// Columns copied into the shipment's metadata: metadata key → column.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// The carrier when no column names it.
    pub carrier: Option<String>,
}

/// A column-mapping file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CsvMapping {
    pub columns: Columns,
    #[serde(default)]
    pub defaults: Defaults,
    /// Field delimiter (default `,`).
    #[serde(default)]
    pub delimiter: Option<char>,
}

impl CsvMapping {
    /// Reads a mapping from TOML or JSON text.
    pub fn parse(text: &str) -> Result<Self, ProviderError> {
        let trimmed = text.trim_start();
        let parsed = if trimmed.starts_with('{') {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else {
            toml::from_str(text).map_err(|e| e.to_string())
        };
        let mapping: CsvMapping = parsed.map_err(|reason| ProviderError::at("mapping", reason))?;
        if mapping.columns.carrier.is_none() && mapping.defaults.carrier.is_none() {
            return Err(ProviderError::at(
                "mapping.columns.carrier",
                "map a carrier column or set defaults.carrier",
            ));
        }
        if mapping.columns.status.is_none() && mapping.columns.raw_code.is_none() {
            return Err(ProviderError::at(
                "mapping.columns.status",
                "map a status column, a raw_code column, or both",
            ));
        }
        Ok(mapping)
    }
}

/// One row read: the event (as `POST /v1/events` takes it) and, when mapped, its shipment.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    /// 1-based line of the row in the file (the header is line 1).
    pub line: u64,
    pub event: Value,
    pub shipment: Option<Value>,
}

/// A row that could not be read, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    pub line: u64,
    pub reason: String,
}

/// Reads rows lazily from `reader`.
pub struct CsvRows<R: std::io::Read> {
    records: csv::StringRecordsIntoIter<R>,
    index: BTreeMap<String, usize>,
    mapping: CsvMapping,
}

impl<R: std::io::Read> CsvRows<R> {
    /// Reads the header and checks that every mapped column exists.
    pub fn new(reader: R, mapping: CsvMapping) -> Result<Self, ProviderError> {
        let mut builder = csv::ReaderBuilder::new();
        builder.flexible(true).trim(csv::Trim::All);
        if let Some(d) = mapping.delimiter {
            builder.delimiter(u8::try_from(d).map_err(|_| {
                ProviderError::at("mapping.delimiter", "must be a single-byte character")
            })?);
        }
        let mut csv = builder.from_reader(reader);
        let header = csv
            .headers()
            .map_err(|e| ProviderError::at("line 1", format!("unreadable header: {e}")))?
            .clone();
        let index: BTreeMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.to_string(), i))
            .collect();
        let c = &mapping.columns;
        let mapped = [
            ("carrier", &c.carrier),
            ("status", &c.status),
            ("reason", &c.reason),
            ("raw_code", &c.raw_code),
            ("message", &c.message),
            ("event_id", &c.event_id),
            ("city", &c.city),
            ("region", &c.region),
            ("postal_code", &c.postal_code),
            ("country", &c.country),
            ("service_level", &c.service_level),
            ("reference", &c.reference),
            ("ship_date", &c.ship_date),
            ("promised_delivery_date", &c.promised_delivery_date),
        ];
        let required = [
            ("tracking_number", &c.tracking_number),
            ("occurred_at", &c.occurred_at),
        ];
        let mut missing: Vec<String> = required
            .iter()
            .filter(|(_, col)| !index.contains_key(col.as_str()))
            .map(|(f, col)| format!("{f} → '{col}'"))
            .collect();
        missing.extend(
            mapped
                .iter()
                .filter_map(|(f, col)| col.as_ref().map(|c| (f, c)))
                .filter(|(_, col)| !index.contains_key(col.as_str()))
                .map(|(f, col)| format!("{f} → '{col}'")),
        );
        missing.extend(
            c.metadata
                .iter()
                .filter(|(_, col)| !index.contains_key(col.as_str()))
                .map(|(k, col)| format!("metadata.{k} → '{col}'")),
        );
        if !missing.is_empty() {
            return Err(ProviderError::at(
                "line 1",
                format!("the header lacks mapped columns: {}", missing.join(", ")),
            ));
        }
        Ok(CsvRows {
            records: csv.into_records(),
            index,
            mapping,
        })
    }

    fn cell<'r>(&self, record: &'r csv::StringRecord, column: &Option<String>) -> Option<&'r str> {
        column
            .as_ref()
            .and_then(|c| self.index.get(c))
            .and_then(|i| record.get(*i))
            .filter(|v| !v.is_empty())
    }

    fn row(&self, line: u64, record: &csv::StringRecord) -> Result<ImportRow, RejectedRow> {
        let c = &self.mapping.columns;
        let get = |col: &Option<String>| self.cell(record, col).map(str::to_string);
        let reject = |reason: String| RejectedRow { line, reason };
        let tracking = get(&Some(c.tracking_number.clone()))
            .ok_or_else(|| reject(format!("'{}' is empty", c.tracking_number)))?;
        let carrier = get(&c.carrier)
            .or_else(|| self.mapping.defaults.carrier.clone())
            .ok_or_else(|| reject("the carrier is empty and there is no default".into()))?;
        let location = crate::parse::location(
            get(&c.city),
            get(&c.region),
            get(&c.postal_code),
            get(&c.country),
        );
        let time_text = get(&Some(c.occurred_at.clone()))
            .ok_or_else(|| reject(format!("'{}' is empty", c.occurred_at)))?;
        let occurred_at = crate::time::parse_time(&time_text, location.as_ref())
            .map_err(|r| reject(format!("{}: {r}", c.occurred_at)))?;
        let mut event = Map::new();
        event.insert("carrier".into(), json!(carrier));
        event.insert("tracking_number".into(), json!(tracking));
        event.insert("occurred_at".into(), json!(occurred_at.to_rfc3339()));
        for (field, column) in [
            ("status", &c.status),
            ("reason", &c.reason),
            ("raw_code", &c.raw_code),
            ("message", &c.message),
            ("event_id", &c.event_id),
        ] {
            if let Some(v) = get(column) {
                event.insert(field.into(), json!(v));
            }
        }
        if let Some(l) = location {
            event.insert("location".into(), json!(l));
        }
        let has_shipment = [
            &c.service_level,
            &c.reference,
            &c.ship_date,
            &c.promised_delivery_date,
        ]
        .iter()
        .any(|col| col.is_some())
            || !c.metadata.is_empty();
        let shipment = has_shipment.then(|| {
            let mut s = Map::new();
            s.insert("carrier".into(), json!(carrier));
            s.insert("tracking_number".into(), json!(tracking));
            for (field, column) in [
                ("service_level", &c.service_level),
                ("reference", &c.reference),
                ("ship_date", &c.ship_date),
                ("promised_delivery_date", &c.promised_delivery_date),
            ] {
                if let Some(v) = get(column) {
                    s.insert(field.into(), json!(v));
                }
            }
            let metadata: Map<String, Value> = c
                .metadata
                .iter()
                .filter_map(|(k, col)| get(&Some(col.clone())).map(|v| (k.clone(), json!(v))))
                .collect();
            if !metadata.is_empty() {
                s.insert("metadata".into(), Value::Object(metadata));
            }
            Value::Object(s)
        });
        Ok(ImportRow {
            line,
            event: Value::Object(event),
            shipment,
        })
    }
}

impl<R: std::io::Read> Iterator for CsvRows<R> {
    type Item = Result<ImportRow, RejectedRow>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = self.records.next()?;
        Some(match record {
            Ok(record) => {
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                self.row(line, &record)
            }
            Err(e) => Err(RejectedRow {
                line: e.position().map(|p| p.line()).unwrap_or(0),
                reason: format!("unreadable row: {e}"),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPPING: &str = r#"
[columns]
carrier = "Carrier"
tracking_number = "Tracking"
occurred_at = "When"
raw_code = "Code"
message = "Description"
city = "City"
region = "State"
reference = "Order"

[columns.metadata]
warehouse = "Warehouse"
"#;

    #[test]
    fn rows_become_events_and_shipments_and_bad_rows_say_why() {
        let csv = "Carrier,Tracking,When,Code,Description,City,State,Order,Warehouse\n\
                   ups,1ZCSV1,2026-02-10 09:30:00,I,Departed,Louisville,KY,PO-1,east\n\
                   ups,,2026-02-10 09:30:00,I,Departed,Louisville,KY,PO-1,east\n\
                   ups,1ZCSV1,not a time,D,Delivered,Austin,TX,PO-1,east\n";
        let mapping = CsvMapping::parse(MAPPING).unwrap();
        let rows: Vec<_> = CsvRows::new(csv.as_bytes(), mapping).unwrap().collect();
        assert_eq!(rows.len(), 3);
        let first = rows[0].as_ref().unwrap();
        assert_eq!(first.line, 2);
        assert_eq!(first.event["occurred_at"], "2026-02-10T09:30:00-05:00");
        assert_eq!(first.event["location"]["city"], "Louisville");
        assert_eq!(
            first.shipment.as_ref().unwrap()["metadata"]["warehouse"],
            "east"
        );
        let empty = rows[1].as_ref().unwrap_err();
        assert_eq!(empty.line, 3);
        assert!(empty.reason.contains("Tracking"));
        let bad_time = rows[2].as_ref().unwrap_err();
        assert_eq!(bad_time.line, 4);
        assert!(bad_time.reason.contains("When"));
    }

    #[test]
    fn mappings_and_headers_are_checked() {
        assert!(
            CsvMapping::parse("[columns]\ntracking_number='T'\noccurred_at='W'\nraw_code='C'")
                .is_err(),
            "no carrier"
        );
        assert!(CsvMapping::parse("not toml at all [").is_err());
        let mapping = CsvMapping::parse(MAPPING).unwrap();
        let err = CsvRows::new("Carrier,Tracking\n".as_bytes(), mapping)
            .err()
            .unwrap();
        assert!(err.to_string().contains("When"), "{err}");
        let json = CsvMapping::parse(r#"{"columns":{"tracking_number":"T","occurred_at":"W","status":"S"},"defaults":{"carrier":"usps"}}"#).unwrap();
        assert_eq!(json.defaults.carrier.as_deref(), Some("usps"));
    }
}
