//! BitShipper's simulator (C12): seeded, deterministic tenants' shipments and carrier events
//! between real places, realistic enough that a model learns something true from them. The
//! generative story and its parameters are in `docs/simulator.md`.

pub mod carriers;
pub mod generate;
pub mod geo;
pub mod model;
pub mod people;
pub mod stats;

pub use generate::{Generator, Outcome, SimShipment, TenantProfile, Truth};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::io::Write;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("unknown city '{0}' (see crates/bitshipper-sim/data/cities.csv)")]
    UnknownCity(String),
    #[error("carrier code table: {0}")]
    Mapping(String),
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

/// One tenant's simulated history: `days` days of shipments starting at `start`.
#[derive(Debug)]
pub struct Simulation {
    pub generator: Generator,
    pub start: NaiveDate,
    pub days: u32,
    pub shipments_per_day: u32,
}

impl Simulation {
    pub fn new(
        seed: u64,
        profile: TenantProfile,
        start: NaiveDate,
        days: u32,
        shipments_per_day: u32,
    ) -> Result<Self, SimError> {
        Ok(Self {
            generator: Generator::new(seed, profile, start, days)?,
            start,
            days,
            shipments_per_day,
        })
    }

    /// Every shipment, day by day, with a global index.
    pub fn shipments(&self) -> impl Iterator<Item = SimShipment> + '_ {
        let mut index = 0u64;
        (0..self.days).flat_map(move |d| {
            let day = self.start + Duration::days(i64::from(d));
            let n = self.generator.shipments_on(day, self.shipments_per_day);
            let first = index;
            index += u64::from(n);
            (0..u64::from(n)).map(move |k| self.generator.shipment(first + k, day))
        })
    }

    /// How many shipments the whole run makes (for progress bars).
    pub fn total_shipments(&self) -> u64 {
        (0..self.days)
            .map(|d| {
                let day = self.start + Duration::days(i64::from(d));
                u64::from(self.generator.shipments_on(day, self.shipments_per_day))
            })
            .sum()
    }
}

/// Writes one JSON line `{"kind":...,"tenant":...,"body":...}`. The envelope is written by
/// hand: wrapping the body in a new JSON value would copy it.
pub fn write_line(
    out: &mut (impl Write + ?Sized),
    kind: &str,
    tenant: &str,
    body: &serde_json::Value,
) -> Result<(), SimError> {
    write!(out, "{{\"kind\":\"{kind}\",\"tenant\":")?;
    serde_json::to_writer(&mut *out, tenant).map_err(std::io::Error::from)?;
    out.write_all(b",\"body\":")?;
    serde_json::to_writer(&mut *out, body).map_err(std::io::Error::from)?;
    out.write_all(b"}\n")?;
    Ok(())
}

/// Writes a shipment and its events that happened by `cutoff` as JSON lines (`kind` is
/// `shipment` or `event`). Returns how many events were written.
pub fn write_jsonl(
    out: &mut impl Write,
    tenant: &str,
    shipment: &SimShipment,
    cutoff: DateTime<Utc>,
) -> Result<u64, SimError> {
    write_line(out, "shipment", tenant, &shipment.shipment)?;
    let mut n = 0;
    for (at, event) in &shipment.events {
        if *at <= cutoff {
            write_line(out, "event", tenant, event)?;
            n += 1;
        }
    }
    Ok(n)
}
