//! Generating one tenant's shipments day by day, each with its carrier events: the plan of what
//! really happened, then the noisy way carriers report it (missing scans, duplicates,
//! out-of-order delivery, local times, raw codes).

use crate::carriers::{Carrier, Service, Stage, ALL_CARRIERS};
use crate::geo::{cities, distance_km, City};
use crate::model::{self, LateFactors, Weather};
use crate::people;
use bitshipper_core::MappingTable;
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Utc, Weekday};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Who is shipping: their warehouses and how they pick carriers and services.
#[derive(Debug, Clone)]
pub struct TenantProfile {
    pub name: String,
    /// Warehouse cities (names in `data/cities.csv`).
    pub origins: Vec<String>,
    /// Relative weight of each carrier.
    pub carrier_mix: Vec<(Carrier, f64)>,
    /// Relative weight of each service.
    pub service_mix: Vec<(Service, f64)>,
    pub categories: Vec<String>,
    /// Share of shipments going abroad (always DHL).
    pub international_share: f64,
}

impl TenantProfile {
    /// The demo's outdoor-gear shipper (Reno and Columbus warehouses).
    pub fn outdoor() -> Self {
        Self {
            name: "Summit Outdoor Co.".into(),
            origins: vec!["Reno".into(), "Columbus".into()],
            carrier_mix: vec![
                (Carrier::Ups, 0.32),
                (Carrier::Fedex, 0.24),
                (Carrier::Usps, 0.26),
                (Carrier::Dhl, 0.04),
                (Carrier::Ontrac, 0.08),
                (Carrier::Lso, 0.06),
            ],
            service_mix: vec![
                (Service::Overnight, 0.08),
                (Service::TwoDay, 0.2),
                (Service::Ground, 0.57),
                (Service::Economy, 0.15),
            ],
            categories: ["tents", "apparel", "footwear", "climbing", "camp kitchen"]
                .map(String::from)
                .to_vec(),
            international_share: 0.03,
        }
    }

    /// The demo's second tenant: a bookshop shipping from Chicago, mostly USPS.
    pub fn books() -> Self {
        Self {
            name: "Bluebird Books".into(),
            origins: vec!["Chicago".into()],
            carrier_mix: vec![
                (Carrier::Usps, 0.6),
                (Carrier::Ups, 0.25),
                (Carrier::Fedex, 0.15),
            ],
            service_mix: vec![
                (Service::TwoDay, 0.15),
                (Service::Ground, 0.55),
                (Service::Economy, 0.3),
            ],
            categories: ["fiction", "nonfiction", "children", "textbooks"]
                .map(String::from)
                .to_vec(),
            international_share: 0.01,
        }
    }
}

/// How a shipment's life ended (or will end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    DeliveredAfterFailedAttempt,
    DeliveredAfterAddressIssue,
    ReturnedRefused,
    ReturnedDamaged,
    Lost,
}

/// What really happened, kept beside the noisy events so tests can measure the model.
#[derive(Debug, Clone)]
pub struct Truth {
    pub carrier: Carrier,
    pub service: Service,
    pub km: f64,
    pub international: bool,
    pub ship_date: NaiveDate,
    pub pickup_date: NaiveDate,
    pub promised_date: NaiveDate,
    pub delivered_date: Option<NaiveDate>,
    pub outcome: Outcome,
    pub storm_on_route: bool,
    /// Events in the plan (before noise), duplicates added, adjacent swaps made, scans dropped.
    pub planned_events: u32,
    pub duplicates: u32,
    pub swaps: u32,
    pub dropped: u32,
}

impl Truth {
    pub fn on_time(&self) -> Option<bool> {
        self.delivered_date.map(|d| d <= self.promised_date)
    }
}

/// One simulated shipment: the create body, its events in arrival order, and the truth.
#[derive(Debug, Clone)]
pub struct SimShipment {
    pub index: u64,
    pub shipment: Value,
    /// `(occurred_at, event JSON)` in the order the carrier delivers them.
    pub events: Vec<(DateTime<Utc>, Value)>,
    pub truth: Truth,
}

/// Rates of the reporting noise.
pub const MISSING_SCAN_RATE: f64 = 0.05;
pub const DUPLICATE_RATE: f64 = 0.03;
pub const OUT_OF_ORDER_RATE: f64 = 0.05;

/// A seeded generator for one tenant over a date range.
#[derive(Debug)]
pub struct Generator {
    seed: u64,
    profile: TenantProfile,
    weather: Weather,
    mapping: MappingTable,
    origins: Vec<&'static City>,
    us_destinations: Vec<(&'static City, f64)>,
    international: Vec<&'static City>,
}

fn city_named(name: &str) -> Option<&'static City> {
    cities().iter().find(|c| c.name == name)
}

fn pick_weighted<'a, T>(rng: &mut impl Rng, items: &'a [(T, f64)]) -> &'a T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen::<f64>() * total;
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    &items[items.len() - 1].0
}

impl Generator {
    pub fn new(
        seed: u64,
        profile: TenantProfile,
        start: NaiveDate,
        days: u32,
    ) -> Result<Self, crate::SimError> {
        let origins = profile
            .origins
            .iter()
            .map(|n| city_named(n).ok_or_else(|| crate::SimError::UnknownCity(n.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let us_destinations = cities()
            .iter()
            .filter(|c| c.is_us())
            .map(|c| (c, (c.population as f64).sqrt()))
            .collect();
        let international = cities().iter().filter(|c| !c.is_us()).collect();
        let mut weather = Weather::generate(seed, start, days + 30);
        let mut hubs: Vec<&str> = ALL_CARRIERS
            .iter()
            .flat_map(|c| c.hubs().iter().copied())
            .collect();
        hubs.sort_unstable();
        hubs.dedup();
        weather.add_congestion(seed, &hubs, start, days + 30);
        Ok(Self {
            seed,
            weather,
            mapping: MappingTable::builtin()
                .map_err(|e| crate::SimError::Mapping(e.to_string()))?,
            profile,
            origins,
            us_destinations,
            international,
        })
    }

    pub fn profile(&self) -> &TenantProfile {
        &self.profile
    }

    /// How many shipments are created on `day` (deterministic).
    pub fn shipments_on(&self, day: NaiveDate, per_day: u32) -> u32 {
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed ^ (day.num_days_from_ce() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let mean = f64::from(per_day) * model::demand_factor(day);
        (mean * (1.0 + 0.1 * model::normal(&mut rng)))
            .round()
            .max(0.0) as u32
    }

    /// The shipment with global `index`, created on `day`.
    pub fn shipment(&self, index: u64, day: NaiveDate) -> SimShipment {
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ index);
        let origin = *self.origins.choose(&mut rng).expect("at least one origin");
        let international = rng.gen::<f64>() < self.profile.international_share;
        let (carrier, dest) = if international {
            (
                Carrier::Dhl,
                *self
                    .international
                    .choose(&mut rng)
                    .expect("international cities"),
            )
        } else {
            let carrier = *pick_weighted(&mut rng, &self.profile.carrier_mix);
            let dest = match carrier.served_regions() {
                None => *pick_weighted(&mut rng, &self.us_destinations),
                Some(regions) => {
                    let served: Vec<(&City, f64)> = self
                        .us_destinations
                        .iter()
                        .filter(|(c, _)| regions.contains(&c.region.as_str()))
                        .copied()
                        .collect();
                    *pick_weighted(&mut rng, &served)
                }
            };
            (carrier, dest)
        };
        let service = if international {
            if rng.gen::<f64>() < 0.6 {
                Service::TwoDay
            } else {
                Service::Economy
            }
        } else {
            *pick_weighted(&mut rng, &self.profile.service_mix)
        };
        let km = distance_km(origin, dest);
        let promised_days = service.promised_days(km, international);
        let pickup_date = next_operating_day(carrier, day, true);
        let promised_date = add_business_days(carrier, pickup_date, promised_days);
        let weight_kg = (1.2 * (0.8 * model::normal(&mut rng)).exp()).clamp(0.05, 60.0);
        let hub = pick_hub(carrier, origin, dest, km, international);
        let storm_on_route = !self
            .weather
            .stormy_days(&dest.region, pickup_date, promised_date)
            .is_empty()
            || hub.is_some_and(|h| {
                !self
                    .weather
                    .stormy_days(&h.region, pickup_date, promised_date)
                    .is_empty()
            })
            || !self
                .weather
                .stormy_days(&origin.region, pickup_date, pickup_date + Duration::days(1))
                .is_empty();
        let hub_congested = hub.is_some_and(|h| {
            (0..2).any(|k| {
                self.weather
                    .is_congested(&h.name, pickup_date + Duration::days(k))
            })
        });
        let factors = LateFactors {
            carrier,
            service,
            km,
            storm_on_route,
            hub_congested,
            lane_effect: model::lane_effect(self.seed, &origin.region, &dest.region),
            peak: model::is_peak(pickup_date),
            heavy: weight_kg > 20.0,
            friday_pickup: pickup_date.weekday() == Weekday::Fri,
        };
        let p_late =
            model::sigmoid(model::late_logit(&factors) + model::NOISE_SD * model::normal(&mut rng));
        let late = rng.gen::<f64>() < p_late;
        let mut extra: i64 = 0;
        if late {
            extra = 1;
            while rng.gen::<f64>() < 0.45 && extra < 6 {
                extra += 1;
            }
        } else if matches!(service, Service::Ground | Service::Economy)
            && promised_days > 1
            && rng.gen::<f64>() < 0.12
        {
            extra = -1;
        }
        let r: f64 = rng.gen();
        let outcome = match r {
            x if x < 0.003 => Outcome::Lost,
            x if x < 0.006 => Outcome::ReturnedDamaged,
            x if x < 0.016 => Outcome::DeliveredAfterAddressIssue,
            x if x < 0.026 => Outcome::ReturnedRefused,
            x if x < 0.066 => Outcome::DeliveredAfterFailedAttempt,
            _ => Outcome::Delivered,
        };
        let transit_days = (i64::from(promised_days) + extra).max(1) as u32;
        let first_attempt = add_business_days(carrier, pickup_date, transit_days);

        let route = Route {
            index,
            day,
            origin,
            dest,
            carrier,
            service,
            km,
            weight_kg,
            promised_date,
            pickup_date,
            storm_on_route,
            international,
        };
        let mut plan = Plan::default();
        let t = |city: &City, date: NaiveDate, from: u32, to: u32, rng: &mut ChaCha8Rng| {
            city.local(date, rng.gen_range(from..to))
                .with_timezone(&Utc)
        };
        plan.push(
            t(origin, day, 8 * 60, 15 * 60, &mut rng),
            Stage::LabelCreated,
            origin,
        );
        plan.push(
            t(origin, pickup_date, 16 * 60, 18 * 60 + 30, &mut rng),
            Stage::PickedUp,
            origin,
        );
        plan.push(
            t(origin, pickup_date, 20 * 60, 23 * 60 + 30, &mut rng),
            Stage::DepartedFacility,
            origin,
        );
        let mut cursor = pickup_date + Duration::days(1);
        if let Some(h) = hub {
            plan.push(
                t(h, cursor, 60, 5 * 60, &mut rng),
                Stage::ArrivedFacility,
                h,
            );
            if outcome == Outcome::ReturnedDamaged {
                plan.push(t(h, cursor, 6 * 60, 9 * 60, &mut rng), Stage::Damaged, h);
                let back = add_business_days(carrier, cursor, 2);
                plan.push(
                    t(h, back, 9 * 60, 17 * 60, &mut rng),
                    Stage::ReturnToSender,
                    h,
                );
                return self.finish(&route, None, outcome, plan, rng);
            }
            if outcome == Outcome::Lost {
                let found = add_business_days(carrier, promised_date, 6);
                plan.push(t(h, found, 9 * 60, 17 * 60, &mut rng), Stage::Lost, h);
                return self.finish(&route, None, outcome, plan, rng);
            }
            plan.push(
                t(h, cursor, 6 * 60, 11 * 60, &mut rng),
                Stage::DepartedFacility,
                h,
            );
        }
        if international {
            cursor += Duration::days(1);
            plan.push(
                t(dest, cursor, 6 * 60, 12 * 60, &mut rng),
                Stage::ArrivedFacility,
                dest,
            );
            if rng.gen::<f64>() < 0.2 {
                plan.push(
                    t(dest, cursor, 12 * 60, 16 * 60, &mut rng),
                    Stage::CustomsHold,
                    dest,
                );
            }
        }
        // Days in between: an in-transit scan most days, a weather scan on stormy days.
        let last_transit_day = first_attempt - Duration::days(1);
        let mut day_cursor = cursor + Duration::days(1);
        while day_cursor < last_transit_day {
            let at = hub.unwrap_or(dest);
            if self.weather.is_stormy(&at.region, day_cursor)
                || self.weather.is_stormy(&dest.region, day_cursor)
            {
                plan.push(
                    t(at, day_cursor, 8 * 60, 18 * 60, &mut rng),
                    Stage::WeatherDelay,
                    at,
                );
            } else if rng.gen::<f64>() < 0.6 {
                plan.push(
                    t(at, day_cursor, 2 * 60, 22 * 60, &mut rng),
                    Stage::InTransit,
                    at,
                );
            }
            day_cursor += Duration::days(1);
        }
        if !international {
            let arrive_day = if first_attempt > pickup_date + Duration::days(1) {
                last_transit_day
            } else {
                first_attempt
            };
            let (from, to) = if arrive_day < first_attempt {
                (21 * 60, 23 * 60 + 50)
            } else {
                (2 * 60, 5 * 60)
            };
            plan.push(
                t(dest, arrive_day, from, to, &mut rng),
                Stage::ArrivedFacility,
                dest,
            );
        }
        let mut attempt = first_attempt;
        if outcome == Outcome::DeliveredAfterAddressIssue {
            plan.push(
                t(dest, attempt, 6 * 60, 9 * 60, &mut rng),
                Stage::AddressIssue,
                dest,
            );
            attempt = add_business_days(carrier, attempt, 2);
        }
        let tries = match outcome {
            Outcome::DeliveredAfterFailedAttempt => 1,
            Outcome::ReturnedRefused => 2,
            _ => 0,
        };
        for _ in 0..tries {
            plan.push(
                t(dest, attempt, 7 * 60, 9 * 60 + 30, &mut rng),
                Stage::OutForDelivery,
                dest,
            );
            plan.push(
                t(dest, attempt, 11 * 60, 18 * 60, &mut rng),
                Stage::FailedAttempt,
                dest,
            );
            attempt = add_business_days(carrier, attempt, 1);
        }
        let delivered = if outcome == Outcome::ReturnedRefused {
            plan.push(
                t(dest, attempt, 9 * 60, 17 * 60, &mut rng),
                Stage::ReturnToSender,
                dest,
            );
            None
        } else {
            plan.push(
                t(dest, attempt, 7 * 60, 9 * 60 + 30, &mut rng),
                Stage::OutForDelivery,
                dest,
            );
            plan.push(
                t(dest, attempt, 10 * 60, 19 * 60 + 30, &mut rng),
                Stage::Delivered,
                dest,
            );
            Some(attempt)
        };
        self.finish(&route, delivered, outcome, plan, rng)
    }

    fn finish(
        &self,
        route: &Route,
        delivered_date: Option<NaiveDate>,
        outcome: Outcome,
        plan: Plan,
        mut rng: ChaCha8Rng,
    ) -> SimShipment {
        let Route {
            index,
            day,
            origin,
            dest,
            carrier,
            service,
            km,
            weight_kg,
            promised_date,
            pickup_date,
            storm_on_route,
            international,
        } = *route;
        let tracking = tracking_number(carrier, index, &mut rng);
        let planned_events = plan.steps.len() as u32;
        let (events, duplicates, swaps, dropped) =
            self.report(&plan, carrier, &tracking, index, &mut rng);
        let person = people::person(&mut rng);
        let category = self
            .profile
            .categories
            .choose(&mut rng)
            .cloned()
            .unwrap_or_default();
        let shipment = json!({
            "carrier": carrier.code(),
            "tracking_number": tracking,
            "service_level": carrier.service_name(service),
            "origin": {"city": origin.name, "region": origin.region, "country": origin.country},
            "destination": {"city": dest.name, "region": dest.region, "country": dest.country},
            "recipient": {
                "name": person.name,
                "email": person.email,
                "phone": person.phone,
                "address": {"line1": person.street, "city": dest.name, "region": dest.region, "country": dest.country}
            },
            "weight": {"value": (weight_kg * 1000.0).round() / 1000.0, "unit": "kg"},
            "ship_date": day.to_string(),
            "promised_delivery_date": promised_date.to_string(),
            "reference": format!("SO-{:07}", index),
            "metadata": {
                "warehouse": origin.name,
                "category": category,
                "declared_value": format!("{:.2}", 10.0 + rng.gen::<f64>() * 240.0),
            }
        });
        SimShipment {
            index,
            shipment,
            events,
            truth: Truth {
                carrier,
                service,
                km,
                international,
                ship_date: day,
                pickup_date,
                promised_date,
                delivered_date,
                outcome,
                storm_on_route,
                planned_events,
                duplicates,
                swaps,
                dropped,
            },
        }
    }

    /// The carrier's noisy report of a plan.
    fn report(
        &self,
        plan: &Plan,
        carrier: Carrier,
        tracking: &str,
        index: u64,
        rng: &mut ChaCha8Rng,
    ) -> (Vec<(DateTime<Utc>, Value)>, u32, u32, u32) {
        let mut steps: Vec<&Step> = plan.steps.iter().collect();
        steps.sort_by_key(|s| s.at);
        let mut out = Vec::with_capacity(steps.len() + 2);
        let mut dropped = 0;
        let mut duplicates = 0;
        let with_ids = matches!(carrier, Carrier::Ups | Carrier::Fedex | Carrier::Dhl);
        for (k, step) in steps.iter().enumerate() {
            let optional = matches!(
                step.stage,
                Stage::ArrivedFacility | Stage::DepartedFacility | Stage::InTransit
            );
            if optional && rng.gen::<f64>() < MISSING_SCAN_RATE {
                dropped += 1;
                continue;
            }
            let code = carrier.raw_code(step.stage);
            let (status, reason) = step.stage.canonical();
            let offset: FixedOffset = step.city.offset_at(step.at);
            let mut e = json!({
                "carrier": carrier.code(),
                "tracking_number": tracking,
                "occurred_at": step.at.with_timezone(&offset).to_rfc3339(),
                "raw_code": code,
                "message": step.stage.message(),
                "location": {"city": step.city.name, "region": step.city.region, "country": step.city.country,
                             "lat": step.city.lat, "lon": step.city.lon},
            });
            // Send the canonical status only when the code alone would not say it (and half
            // of the time anyway), so normalization is exercised.
            let mapped = self.mapping.lookup(carrier.code(), code);
            let implied = mapped.is_some_and(|m| m.status == status && m.reason == Some(reason));
            if !implied || rng.gen::<f64>() < 0.5 {
                e["status"] = json!(status.as_str());
                e["reason"] = json!(reason.as_str());
            }
            if with_ids {
                let mut h = Sha256::new();
                h.update(self.seed.to_le_bytes());
                h.update(index.to_le_bytes());
                h.update((k as u64).to_le_bytes());
                e["event_id"] = json!(format!("evt_{}", &hex::encode(h.finalize())[..20]));
            }
            out.push((step.at, e));
            if rng.gen::<f64>() < DUPLICATE_RATE {
                duplicates += 1;
                out.push(out[out.len() - 1].clone());
            }
        }
        let mut swaps = 0;
        let mut i = 1;
        while i < out.len() {
            if rng.gen::<f64>() < OUT_OF_ORDER_RATE {
                out.swap(i - 1, i);
                swaps += 1;
                i += 2;
            } else {
                i += 1;
            }
        }
        (out, duplicates, swaps, dropped)
    }
}

/// The facts of one shipment's journey, decided before its scans are planned.
#[derive(Debug, Clone, Copy)]
struct Route {
    index: u64,
    day: NaiveDate,
    origin: &'static City,
    dest: &'static City,
    carrier: Carrier,
    service: Service,
    km: f64,
    weight_kg: f64,
    promised_date: NaiveDate,
    pickup_date: NaiveDate,
    storm_on_route: bool,
    international: bool,
}

#[derive(Debug)]
struct Step {
    at: DateTime<Utc>,
    stage: Stage,
    city: &'static City,
}

#[derive(Debug, Default)]
struct Plan {
    steps: Vec<Step>,
}

impl Plan {
    fn push(&mut self, at: DateTime<Utc>, stage: Stage, city: &'static City) {
        self.steps.push(Step { at, stage, city });
    }
}

/// The hub a long domestic route passes through (the carrier's hub with the shortest detour),
/// DHL's gateway for international routes, none for short routes.
fn pick_hub(
    carrier: Carrier,
    origin: &City,
    dest: &City,
    km: f64,
    international: bool,
) -> Option<&'static City> {
    if !international && km < 500.0 {
        return None;
    }
    carrier
        .hubs()
        .iter()
        .filter_map(|n| city_named(n))
        .filter(|h| h.name != origin.name && h.name != dest.name)
        .min_by(|a, b| {
            let da = distance_km(origin, a) + distance_km(a, dest);
            let db = distance_km(origin, b) + distance_km(b, dest);
            da.total_cmp(&db)
        })
}

/// The first day on or after `d` the carrier works (`pickup`: pickups are Monday to Friday).
pub fn next_operating_day(carrier: Carrier, d: NaiveDate, pickup: bool) -> NaiveDate {
    let mut day = d;
    loop {
        let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        let ok = if pickup {
            !weekend && !crate::geo::is_us_holiday(day)
        } else {
            carrier.delivers_on(day)
        };
        if ok {
            return day;
        }
        day += Duration::days(1);
    }
}

/// `n` delivery days after `d`.
pub fn add_business_days(carrier: Carrier, d: NaiveDate, n: u32) -> NaiveDate {
    let mut day = d;
    let mut left = n;
    while left > 0 {
        day += Duration::days(1);
        if carrier.delivers_on(day) {
            left -= 1;
        }
    }
    day
}

/// Carrier-shaped, unique tracking numbers (the index is embedded so none repeat).
fn tracking_number(carrier: Carrier, index: u64, rng: &mut ChaCha8Rng) -> String {
    let tail = index % 100_000_000;
    match carrier {
        Carrier::Ups => format!(
            "1Z{:06X}{:02}{:08}",
            rng.gen_range(0..0xFF_FFFF_u32),
            rng.gen_range(0..100),
            tail
        ),
        Carrier::Fedex => format!("{:04}{:08}", rng.gen_range(0..10_000), tail),
        Carrier::Usps => format!(
            "9400{:010}{:08}",
            rng.gen_range(0..10_000_000_000_u64),
            tail
        ),
        Carrier::Dhl => format!("{:02}{:08}", rng.gen_range(10..100), tail),
        Carrier::Ontrac => format!("C{:06}{:08}", rng.gen_range(0..1_000_000), tail),
        Carrier::Lso => format!("L{:02}{:08}", rng.gen_range(0..100), tail),
    }
}
