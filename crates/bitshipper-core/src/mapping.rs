//! Carrier raw-code mapping tables, kept as a versioned data file (`data/carrier-codes.json`) so
//! adding a code is a data change, not a code change.

use crate::error::CoreError;
use crate::status::{Reason, Status};
use serde::Deserialize;
use std::collections::HashMap;

const BUILTIN_TABLE: &str = include_str!("../data/carrier-codes.json");

/// What one raw code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct CodeMapping {
    pub status: Status,
    #[serde(default)]
    pub reason: Option<Reason>,
}

#[derive(Deserialize)]
struct TableFile {
    version: String,
    carriers: HashMap<String, HashMap<String, CodeMapping>>,
}

/// Parsed mapping table: carrier → upper-cased raw code → mapping.
#[derive(Debug, Clone)]
pub struct MappingTable {
    version: String,
    carriers: HashMap<String, HashMap<String, CodeMapping>>,
}

impl MappingTable {
    /// The table shipped inside the binary.
    pub fn builtin() -> Result<Self, CoreError> {
        Self::from_json(BUILTIN_TABLE)
    }

    /// Parses a table file; fails on any status or reason outside the canonical model.
    pub fn from_json(text: &str) -> Result<Self, CoreError> {
        let file: TableFile =
            serde_json::from_str(text).map_err(|e| CoreError::Mapping(e.to_string()))?;
        let carriers = file
            .carriers
            .into_iter()
            .map(|(carrier, codes)| {
                let codes = codes
                    .into_iter()
                    .map(|(code, mapping)| (code.to_ascii_uppercase(), mapping))
                    .collect();
                (carrier.to_ascii_lowercase(), codes)
            })
            .collect();
        Ok(Self {
            version: file.version,
            carriers,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The mapping of `raw_code` for `carrier`, if the table knows it.
    pub fn lookup(&self, carrier: &str, raw_code: &str) -> Option<CodeMapping> {
        let codes = self.carriers.get(carrier)?;
        codes.get(&raw_code.trim().to_ascii_uppercase()).copied()
    }

    /// Every (carrier, code, mapping) entry, for documentation and tests.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, CodeMapping)> {
        self.carriers.iter().flat_map(|(carrier, codes)| {
            codes
                .iter()
                .map(move |(code, m)| (carrier.as_str(), code.as_str(), *m))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_covers_the_big_carriers() {
        let table = MappingTable::builtin().unwrap();
        for carrier in ["ups", "fedex", "usps", "dhl"] {
            assert!(table.entries().any(|(c, _, _)| c == carrier), "{carrier}");
            // Every carrier must be able to express the basic life of a parcel.
            for status in [Status::PreTransit, Status::InTransit, Status::Delivered] {
                assert!(
                    table
                        .entries()
                        .any(|(c, _, m)| c == carrier && m.status == status),
                    "{carrier} has no code for {status}"
                );
            }
        }
    }

    #[test]
    fn lookup_is_case_insensitive_on_codes() {
        let table = MappingTable::builtin().unwrap();
        assert_eq!(table.lookup("ups", "d").unwrap().status, Status::Delivered);
        assert!(table.lookup("ups", "ZZZ").is_none());
        assert!(table.lookup("nonesuch", "D").is_none());
    }

    #[test]
    fn a_table_with_a_non_canonical_status_is_refused() {
        let bad = r#"{"version":"x","carriers":{"ups":{"I":{"status":"in_orbit"}}}}"#;
        assert!(matches!(
            MappingTable::from_json(bad),
            Err(CoreError::Mapping(_))
        ));
    }
}
