//! Rates measured from generated shipments: what `docs/simulator.md` documents and the tests
//! check.

use crate::carriers::{Carrier, Service};
use crate::generate::{Outcome, SimShipment};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub shipments: u64,
    /// (carrier, service) → (delivered, on time).
    pub on_time: BTreeMap<(Carrier, Service), (u64, u64)>,
    /// carrier → (delivered, on time).
    pub on_time_by_carrier: BTreeMap<Carrier, (u64, u64)>,
    /// distance band (0: <300 km, 1: <800, 2: <1600, 3: <2800, 4: beyond) → (delivered, transit days sum).
    pub transit_by_band: BTreeMap<u8, (u64, u64)>,
    pub with_exception: u64,
    pub returned: u64,
    pub lost: u64,
    pub storm_on_route: u64,
    pub events_reported: u64,
    pub planned_events: u64,
    pub duplicates: u64,
    pub swaps: u64,
    pub dropped: u64,
}

pub fn distance_band(km: f64) -> u8 {
    match km {
        k if k < 300.0 => 0,
        k if k < 800.0 => 1,
        k if k < 1600.0 => 2,
        k if k < 2800.0 => 3,
        _ => 4,
    }
}

pub const BAND_NAMES: [&str; 5] = [
    "< 300 km",
    "300–800 km",
    "800–1600 km",
    "1600–2800 km",
    "≥ 2800 km",
];

impl Stats {
    pub fn add(&mut self, s: &SimShipment) {
        let t = &s.truth;
        self.shipments += 1;
        if let Some(on_time) = t.on_time() {
            let e = self.on_time.entry((t.carrier, t.service)).or_default();
            e.0 += 1;
            e.1 += u64::from(on_time);
            let c = self.on_time_by_carrier.entry(t.carrier).or_default();
            c.0 += 1;
            c.1 += u64::from(on_time);
            if !t.international {
                if let Some(d) = t.delivered_date {
                    let b = self.transit_by_band.entry(distance_band(t.km)).or_default();
                    b.0 += 1;
                    b.1 += (d - t.pickup_date).num_days().max(0) as u64;
                }
            }
        }
        if t.outcome != Outcome::Delivered
            || s.events.iter().any(|(_, e)| e["status"] == "exception")
        {
            self.with_exception += 1;
        }
        if matches!(
            t.outcome,
            Outcome::ReturnedRefused | Outcome::ReturnedDamaged
        ) {
            self.returned += 1;
        }
        if t.outcome == Outcome::Lost {
            self.lost += 1;
        }
        self.storm_on_route += u64::from(t.storm_on_route);
        self.events_reported += s.events.len() as u64;
        self.planned_events += u64::from(t.planned_events);
        self.duplicates += u64::from(t.duplicates);
        self.swaps += u64::from(t.swaps);
        self.dropped += u64::from(t.dropped);
    }

    fn ratio(a: u64, b: u64) -> f64 {
        if b == 0 {
            0.0
        } else {
            a as f64 / b as f64
        }
    }

    pub fn on_time_rate(&self, c: Carrier, s: Service) -> Option<f64> {
        self.on_time
            .get(&(c, s))
            .map(|(n, ok)| Self::ratio(*ok, *n))
    }
    pub fn carrier_on_time_rate(&self, c: Carrier) -> Option<f64> {
        self.on_time_by_carrier
            .get(&c)
            .map(|(n, ok)| Self::ratio(*ok, *n))
    }
    pub fn mean_transit_days(&self, band: u8) -> Option<f64> {
        self.transit_by_band
            .get(&band)
            .map(|(n, sum)| Self::ratio(*sum, *n))
    }
    pub fn exception_rate(&self) -> f64 {
        Self::ratio(self.with_exception, self.shipments)
    }
    pub fn return_rate(&self) -> f64 {
        Self::ratio(self.returned, self.shipments)
    }
    pub fn duplicate_rate(&self) -> f64 {
        Self::ratio(self.duplicates, self.events_reported)
    }
    pub fn out_of_order_rate(&self) -> f64 {
        Self::ratio(self.swaps, self.events_reported)
    }
    pub fn missing_scan_rate(&self) -> f64 {
        Self::ratio(self.dropped, self.planned_events)
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "shipments: {}", self.shipments)?;
        for ((c, s), (n, ok)) in &self.on_time {
            writeln!(
                f,
                "on-time {:>7} {:>9}: {:.3} (n={n})",
                c.code(),
                s.name(),
                Self::ratio(*ok, *n)
            )?;
        }
        for (c, (n, ok)) in &self.on_time_by_carrier {
            writeln!(
                f,
                "on-time {:>7} all: {:.3} (n={n})",
                c.code(),
                Self::ratio(*ok, *n)
            )?;
        }
        for (b, (n, sum)) in &self.transit_by_band {
            writeln!(
                f,
                "transit days {:>13}: {:.2} (n={n})",
                BAND_NAMES[*b as usize],
                Self::ratio(*sum, *n)
            )?;
        }
        writeln!(f, "exception rate: {:.4}", self.exception_rate())?;
        writeln!(f, "return rate: {:.4}", self.return_rate())?;
        writeln!(
            f,
            "lost rate: {:.4}",
            Self::ratio(self.lost, self.shipments)
        )?;
        writeln!(
            f,
            "storm on route: {:.4}",
            Self::ratio(self.storm_on_route, self.shipments)
        )?;
        writeln!(f, "duplicate rate: {:.4}", self.duplicate_rate())?;
        writeln!(f, "out-of-order rate: {:.4}", self.out_of_order_rate())?;
        writeln!(f, "missing scan rate: {:.4}", self.missing_scan_rate())?;
        writeln!(
            f,
            "events per shipment: {:.2}",
            Self::ratio(self.events_reported, self.shipments)
        )
    }
}
