//! The generative story's knobs: demand over the calendar, regional weather, and the late-risk
//! model. Every number here is documented in `docs/simulator.md`.

use crate::carriers::{Carrier, Service};
use crate::geo::cities;
use chrono::{Datelike, NaiveDate, Weekday};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, HashSet};

/// Demand multiplier for a ship date: weekday pattern and the holiday peak.
pub fn demand_factor(d: NaiveDate) -> f64 {
    let weekday = match d.weekday() {
        Weekday::Mon => 1.25,
        Weekday::Tue => 1.15,
        Weekday::Wed => 1.1,
        Weekday::Thu => 1.05,
        Weekday::Fri => 1.0,
        Weekday::Sat => 0.45,
        Weekday::Sun => 0.3,
    };
    weekday * if is_peak(d) { 1.6 } else { 1.0 }
}

/// The holiday peak: 25 November to 24 December.
pub fn is_peak(d: NaiveDate) -> bool {
    (d.month() == 11 && d.day() >= 25) || (d.month() == 12 && d.day() <= 24)
}

/// Regional storms: a state has a storm on a day with a small probability (three times higher
/// from December to February); a storm lasts 2 to 4 days. Drawn once per seed and date range.
#[derive(Debug, Clone, Default)]
pub struct Weather {
    stormy: HashMap<String, HashSet<NaiveDate>>,
}

pub const STORM_START_PROBABILITY: f64 = 0.004;
pub const CONGESTION_START_PROBABILITY: f64 = 0.01;

impl Weather {
    pub fn generate(seed: u64, start: NaiveDate, days: u32) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5745_4154_4845_5221);
        let mut regions: Vec<&str> = cities()
            .iter()
            .filter(|c| c.is_us())
            .map(|c| c.region.as_str())
            .collect();
        regions.sort_unstable();
        regions.dedup();
        let mut stormy: HashMap<String, HashSet<NaiveDate>> = HashMap::new();
        // Start a little early so storms already running on the first day exist.
        for offset in 0..(days + 10) {
            let day = start + chrono::Duration::days(i64::from(offset) - 5);
            let winter = matches!(day.month(), 12 | 1 | 2);
            let p = STORM_START_PROBABILITY * if winter { 3.0 } else { 1.0 };
            for region in &regions {
                if rng.gen::<f64>() < p {
                    let length = rng.gen_range(2..=4);
                    let days = stormy.entry(region.to_string()).or_default();
                    for k in 0..length {
                        days.insert(day + chrono::Duration::days(k));
                    }
                }
            }
        }
        Self { stormy }
    }

    /// Hub congestion: each hub city is congested on a day with a small probability (five times
    /// higher in the holiday peak), for 1 to 3 days. Keyed like storms, under `hub:<city>`.
    pub fn add_congestion(&mut self, seed: u64, hubs: &[&str], start: NaiveDate, days: u32) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4855_4243_4f4e_4745);
        for offset in 0..(days + 10) {
            let day = start + chrono::Duration::days(i64::from(offset) - 5);
            let p = CONGESTION_START_PROBABILITY * if is_peak(day) { 5.0 } else { 1.0 };
            for hub in hubs {
                if rng.gen::<f64>() < p {
                    let length = rng.gen_range(1..=3);
                    let days = self.stormy.entry(format!("hub:{hub}")).or_default();
                    for k in 0..length {
                        days.insert(day + chrono::Duration::days(k));
                    }
                }
            }
        }
    }

    pub fn is_congested(&self, hub: &str, day: NaiveDate) -> bool {
        self.stormy
            .get(&format!("hub:{hub}"))
            .is_some_and(|days| days.contains(&day))
    }

    pub fn is_stormy(&self, region: &str, day: NaiveDate) -> bool {
        self.stormy
            .get(region)
            .is_some_and(|days| days.contains(&day))
    }

    /// Days in `[from, to]` with a storm in `region`.
    pub fn stormy_days(&self, region: &str, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        from.iter_days()
            .take_while(|d| *d <= to)
            .filter(|d| self.is_stormy(region, *d))
            .collect()
    }
}

/// What the late-risk model sees about a shipment.
#[derive(Debug, Clone, Copy)]
pub struct LateFactors {
    pub carrier: Carrier,
    pub service: Service,
    pub km: f64,
    pub storm_on_route: bool,
    pub hub_congested: bool,
    /// The lane's own tendency (origin state → destination state), fixed per seed.
    pub lane_effect: f64,
    pub peak: bool,
    pub heavy: bool,
    pub friday_pickup: bool,
}

pub const DISTANCE_WEIGHT: f64 = 0.25;
pub const STORM_WEIGHT: f64 = 1.6;
pub const PEAK_WEIGHT: f64 = 0.9;
pub const CONGESTION_WEIGHT: f64 = 1.0;
/// Standard deviation of the per-lane effect.
pub const LANE_SD: f64 = 0.2;
pub const HEAVY_WEIGHT: f64 = 0.5;
pub const FRIDAY_WEIGHT: f64 = 0.3;
pub const NOISE_SD: f64 = 0.5;

/// Probability of a late delivery (before irreducible noise is added by the caller).
pub fn late_logit(f: &LateFactors) -> f64 {
    f.carrier.base_late_logit(f.service)
        + DISTANCE_WEIGHT * (f.km / 1000.0).min(4.0)
        + if f.storm_on_route { STORM_WEIGHT } else { 0.0 }
        + if f.hub_congested {
            CONGESTION_WEIGHT
        } else {
            0.0
        }
        + f.lane_effect
        + if f.peak { PEAK_WEIGHT } else { 0.0 }
        + if f.heavy { HEAVY_WEIGHT } else { 0.0 }
        + if f.friday_pickup { FRIDAY_WEIGHT } else { 0.0 }
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A lane's fixed effect on lateness: a normal draw seeded by the seed and the two regions.
pub fn lane_effect(seed: u64, origin_region: &str, dest_region: &str) -> f64 {
    // A stable hash (not std's randomized one) so the same lane gets the same effect.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in origin_region
        .bytes()
        .chain([b'>'])
        .chain(dest_region.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ h);
    LANE_SD * normal(&mut rng)
}
