//! Provider mapping tables: versioned data files (`data/providers/<provider>.json`) from each
//! provider's status, sub-status, tag and detail codes to the canonical status and reason. A
//! composite code `top/detail` falls back to `top`; a code in neither is `unknown`.

use crate::{Provider, ProviderError};
use bitshipper_core::{Reason, Status};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeMapping {
    pub status: Status,
    pub reason: Option<Reason>,
}

#[derive(Deserialize)]
struct Entry {
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct TableFile {
    provider: String,
    version: String,
    #[serde(default)]
    sources: Vec<String>,
    codes: HashMap<String, Entry>,
    #[serde(default)]
    documented: Vec<String>,
}

/// One provider's table.
#[derive(Debug, Clone)]
pub struct ProviderTable {
    pub provider: String,
    pub version: String,
    pub sources: Vec<String>,
    codes: HashMap<String, CodeMapping>,
    /// Every code the provider documents (the completeness test walks these).
    pub documented: Vec<String>,
}

fn builtin_text(provider: Provider) -> &'static str {
    match provider {
        Provider::EasyPost => include_str!("../data/providers/easypost.json"),
        Provider::Shippo => include_str!("../data/providers/shippo.json"),
        Provider::AfterShip => include_str!("../data/providers/aftership.json"),
        Provider::SeventeenTrack => include_str!("../data/providers/17track.json"),
        Provider::ShipEngine => include_str!("../data/providers/shipengine.json"),
        Provider::UpsTrack => include_str!("../data/providers/ups-track.json"),
        Provider::FedexTrack => include_str!("../data/providers/fedex-track.json"),
        Provider::UspsTrack => include_str!("../data/providers/usps-track.json"),
        Provider::DhlTrack => include_str!("../data/providers/dhl-track.json"),
    }
}

impl ProviderTable {
    /// The table shipped in the binary for `provider`.
    pub fn builtin(provider: Provider) -> Result<Self, ProviderError> {
        Self::from_json(builtin_text(provider))
    }

    /// Parses a table; every status and reason must be canonical.
    pub fn from_json(text: &str) -> Result<Self, ProviderError> {
        let file: TableFile = serde_json::from_str(text).map_err(|e| ProviderError::Table {
            provider: "?".into(),
            reason: e.to_string(),
        })?;
        let bad = |reason: String| ProviderError::Table {
            provider: file.provider.clone(),
            reason,
        };
        let mut codes = HashMap::with_capacity(file.codes.len());
        for (code, entry) in &file.codes {
            let status: Status = entry
                .status
                .parse()
                .map_err(|e| bad(format!("code '{code}': {e}")))?;
            let reason = entry
                .reason
                .as_deref()
                .map(str::parse::<Reason>)
                .transpose()
                .map_err(|e| bad(format!("code '{code}': {e}")))?;
            codes.insert(code.clone(), CodeMapping { status, reason });
        }
        Ok(ProviderTable {
            provider: file.provider.clone(),
            version: file.version,
            sources: file.sources,
            codes,
            documented: file.documented,
        })
    }

    /// The mapping of `raw_code`: the whole code, else the part before the first `/`.
    pub fn lookup(&self, raw_code: &str) -> Option<CodeMapping> {
        self.codes.get(raw_code).copied().or_else(|| {
            raw_code
                .split_once('/')
                .and_then(|(top, _)| self.codes.get(top).copied())
        })
    }
}

/// Every provider's table, loaded once.
#[derive(Debug, Clone)]
pub struct Tables {
    tables: HashMap<Provider, ProviderTable>,
}

impl Tables {
    pub fn builtin() -> Result<Self, ProviderError> {
        let mut tables = HashMap::new();
        for p in Provider::ALL {
            tables.insert(*p, ProviderTable::builtin(*p)?);
        }
        Ok(Tables { tables })
    }

    pub fn get(&self, provider: Provider) -> Option<&ProviderTable> {
        self.tables.get(&provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_code_of_every_provider_is_mapped() {
        for p in Provider::ALL {
            let table = ProviderTable::builtin(*p).unwrap_or_else(|e| panic!("{}: {e}", p.id()));
            assert_eq!(table.provider, p.id());
            assert!(
                table.documented.len() >= 5,
                "{}: the documented code list is missing",
                p.id()
            );
            assert!(!table.sources.is_empty(), "{}: no sources", p.id());
            let unmapped: Vec<&String> = table
                .documented
                .iter()
                .filter(|c| table.lookup(c).is_none())
                .collect();
            assert!(
                unmapped.is_empty(),
                "{}: unmapped documented codes {unmapped:?}",
                p.id()
            );
        }
    }

    #[test]
    fn composite_codes_fall_back_to_their_top_level() {
        let t = ProviderTable::from_json(
            r#"{"provider":"x","version":"1","codes":{"in_transit":{"status":"in_transit"},"in_transit/arrived":{"status":"in_transit","reason":"arrived_at_facility"}}}"#,
        )
        .unwrap();
        assert_eq!(
            t.lookup("in_transit/arrived").unwrap().reason,
            Some(Reason::ArrivedAtFacility)
        );
        assert_eq!(
            t.lookup("in_transit/other").unwrap().status,
            Status::InTransit
        );
        assert_eq!(t.lookup("nope"), None);
        assert!(ProviderTable::from_json(
            r#"{"provider":"x","version":"1","codes":{"a":{"status":"teleported"}}}"#
        )
        .is_err());
    }
}
