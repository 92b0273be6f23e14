//! Training data: a tenant's delivered history comes from the store (the CLI reads it); for
//! development, tests and the documented numbers, simulated history as the same records,
//! its events validated exactly as ingest would.

use crate::features::ShipmentRecord;
use crate::MlError;
use bitshipper_core::{EventInput, MappingTable, NewShipment, ShipmentInput, TenantId};
use bitshipper_sim::{Simulation, TenantProfile};

/// `days` of simulated history from 2026-01-05, `per_day` shipments a day; `progress` hears
/// each shipment built and the total.
pub fn simulated(
    days: u32,
    per_day: u32,
    seed: u64,
    progress: &dyn Fn(u64, u64),
) -> Result<Vec<ShipmentRecord>, MlError> {
    let fail = |e: &dyn std::fmt::Display| MlError::Data(e.to_string());
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 5)
        .ok_or_else(|| MlError::Data("start date".into()))?;
    let sim = Simulation::new(seed, TenantProfile::outdoor(), start, days, per_day)
        .map_err(|e| fail(&e))?;
    let mapping = MappingTable::builtin().map_err(|e| fail(&e))?;
    // Event keys include the tenant, and same-time events are ordered by key: a tenant fixed
    // by the seed keeps the whole history, and so the trained models, the same run to run.
    let tenant = TenantId(uuid::Uuid::from_u64_pair(0x6269_7473_6869_7070, seed));
    let total = sim.total_shipments();
    let mut records = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for (i, s) in sim.shipments().enumerate() {
        progress(i as u64 + 1, total);
        let input: ShipmentInput =
            serde_json::from_value(s.shipment.clone()).map_err(|e| fail(&e))?;
        let details = NewShipment::try_from(input).map_err(|e| fail(&e))?;
        let mut events: Vec<_> = s
            .events
            .iter()
            .filter_map(|(_, e)| EventInput::parse(tenant, e, &mapping, "").ok())
            .collect();
        events.sort_by(bitshipper_core::fold::timeline_order);
        events.dedup_by(|a, b| a.event_key == b.event_key);
        records.push(ShipmentRecord { details, events });
    }
    Ok(records)
}
