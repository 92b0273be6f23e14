//! Features of a shipment at a prediction time `t`, computed from what was known at `t` only:
//! its description, the events that occurred by `t`, and the history of its lane from
//! shipments delivered before `t`. Training and serving call the same function.

use crate::places;
use bitshipper_core::{NewShipment, Reason, Status, TrackingEvent};
use chrono::{DateTime, Datelike, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Feature names, in column order.
pub const FEATURE_NAMES: &[&str] = &[
    "carrier",
    "service",
    "origin_region",
    "destination_region",
    "weight_kg",
    "ship_weekday",
    "ship_hour",
    "hours_in_transit",
    "status",
    "reason",
    "hours_since_last_scan",
    "scans_so_far",
    "promised_transit_days",
    "hours_until_promised",
    "weekend_at_t",
    "lane_deliveries",
    "lane_on_time_rate",
    "lane_p50_transit_hours",
    "carrier_service_on_time_rate",
    "carrier_service_p50_transit_hours",
    "warehouse",
    "category",
    "international",
    "distance_km",
    "remaining_km",
    "holidays_before_promised",
];

/// The category columns, in the order `Vocabulary` keeps them.
const CATEGORY_COLUMNS: [&str; 6] = [
    "carrier",
    "service",
    "origin_region",
    "destination_region",
    "warehouse",
    "category",
];

/// The values of a record's category columns (same order as `CATEGORY_COLUMNS`).
fn categories(record: &ShipmentRecord) -> [Option<&str>; 6] {
    let d = &record.details;
    let lane = record.lane_ref();
    [
        Some(d.carrier.as_str()),
        d.service_level.as_deref(),
        Some(lane.origin).filter(|s| !s.is_empty()),
        Some(lane.destination).filter(|s| !s.is_empty()),
        d.metadata.get("warehouse").map(String::as_str),
        d.metadata.get("category").map(String::as_str),
    ]
}

/// Strings to category codes, learned from the training records and saved with the model;
/// a value not seen in training is missing (NaN).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Vocabulary {
    /// Ordered maps, so the saved model is the same bytes for the same training data.
    codes: Vec<BTreeMap<String, u32>>,
    /// The same as hash maps for lookups (built on first use).
    #[serde(skip)]
    index: std::sync::OnceLock<Vec<rustc_hash::FxHashMap<String, u32>>>,
}

impl Vocabulary {
    /// Adds the record's category values not yet known.
    pub fn learn(&mut self, record: &ShipmentRecord) {
        self.index = std::sync::OnceLock::new();
        self.codes
            .resize_with(CATEGORY_COLUMNS.len(), BTreeMap::new);
        for (entries, value) in self.codes.iter_mut().zip(categories(record)) {
            if let Some(value) = value {
                if !entries.contains_key(value) {
                    let c = u32::try_from(entries.len()).unwrap_or(u32::MAX);
                    entries.insert(value.to_string(), c);
                }
            }
        }
    }

    fn code(&self, column: usize, value: Option<&str>) -> f64 {
        let index = self.index.get_or_init(|| {
            self.codes
                .iter()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
                .collect()
        });
        value
            .and_then(|v| index.get(column)?.get(v))
            .map_or(f64::NAN, |c| f64::from(*c))
    }
}

/// A shipment as the models see it: what the shipper described and its events in time order.
#[derive(Debug, Clone)]
pub struct ShipmentRecord {
    pub details: NewShipment,
    pub events: Vec<TrackingEvent>,
}

impl ShipmentRecord {
    /// When the carrier first had it (first event), the start of transit.
    pub fn shipped_at(&self) -> Option<DateTime<Utc>> {
        self.events
            .first()
            .map(|e| e.occurred_at.with_timezone(&Utc))
    }

    pub fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.events
            .iter()
            .find(|e| e.status == Status::Delivered)
            .map(|e| e.occurred_at.with_timezone(&Utc))
    }

    /// The end of the promised day, in the time zone of the first event.
    pub fn promised_by(&self) -> Option<DateTime<Utc>> {
        let promised = self.details.promised_delivery_date?;
        let offset = self.events.first().map(|e| *e.occurred_at.offset())?;
        promised
            .and_time(NaiveTime::from_hms_opt(23, 59, 59)?)
            .and_local_timezone(offset)
            .single()
            .map(|t| t.with_timezone(&Utc))
    }

    /// Delivered after the promised day (`None` without a promise or a delivery).
    pub fn late(&self) -> Option<bool> {
        Some(self.delivered_at()? > self.promised_by()?)
    }

    pub fn lane(&self) -> LaneKey {
        self.lane_ref().owned()
    }

    /// The lane without copying its names.
    pub fn lane_ref(&self) -> LaneRef<'_> {
        fn region(a: &Option<bitshipper_core::Address>) -> &str {
            a.as_ref()
                .and_then(|a| a.region.as_deref().or(a.country.as_deref()))
                .unwrap_or("")
        }
        LaneRef {
            carrier: &self.details.carrier,
            service: self.details.service_level.as_deref().unwrap_or(""),
            origin: region(&self.details.origin),
            destination: region(&self.details.destination),
        }
    }
}

/// A lane by borrowed names (what serving looks up without allocating).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneRef<'a> {
    pub carrier: &'a str,
    pub service: &'a str,
    pub origin: &'a str,
    pub destination: &'a str,
}

impl LaneRef<'_> {
    pub fn owned(&self) -> LaneKey {
        LaneKey {
            carrier: self.carrier.to_string(),
            service: self.service.to_string(),
            origin: self.origin.to_string(),
            destination: self.destination.to_string(),
        }
    }

    fn matches(&self, k: &LaneKey) -> bool {
        self.carrier == k.carrier
            && self.service == k.service
            && self.origin == k.origin
            && self.destination == k.destination
    }
}

impl LaneKey {
    fn as_ref(&self) -> LaneRef<'_> {
        LaneRef {
            carrier: &self.carrier,
            service: &self.service,
            origin: &self.origin,
            destination: &self.destination,
        }
    }
}

/// A fixed hash of some names (FxHash: the same in every process).
fn names_hash(names: &[&str]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    names.hash(&mut h);
    h.finish()
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LaneKey {
    pub carrier: String,
    pub service: String,
    pub origin: String,
    pub destination: String,
}

/// Deliveries per lane (and per carrier × service), in delivery order, so a question "as of t"
/// sees only shipments delivered before t.
#[derive(Debug, Default, Clone)]
pub struct LaneHistory {
    lanes: HashMap<LaneKey, Vec<Delivery>>,
    carrier_service: HashMap<(String, String), Vec<Delivery>>,
}

#[derive(Debug, Clone, Copy)]
struct Delivery {
    at: DateTime<Utc>,
    transit_hours: f64,
    late: Option<bool>,
    /// Deliveries up to and including this one that could be judged late or on time, and
    /// those late (running totals, so "as of t" rates cost one lookup).
    judged_through: u32,
    late_through: u32,
}

/// Deliveries in the lane's rolling median of transit time (the most recent ones, a window
/// that follows change).
const MEDIAN_WINDOW: usize = 101;

/// What history says about a lane as of a time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LaneStats {
    pub deliveries: usize,
    pub on_time_rate: f64,
    pub p50_transit_hours: f64,
}

fn stats_before(list: &[Delivery], t: DateTime<Utc>) -> LaneStats {
    let n = list.partition_point(|d| d.at < t);
    let Some(last) = n.checked_sub(1).map(|i| &list[i]) else {
        return LaneStats {
            deliveries: 0,
            on_time_rate: f64::NAN,
            p50_transit_hours: f64::NAN,
        };
    };
    let on_time_rate = if last.judged_through == 0 {
        f64::NAN
    } else {
        f64::from(last.judged_through - last.late_through) / f64::from(last.judged_through)
    };
    let recent = &list[n.saturating_sub(MEDIAN_WINDOW)..n];
    let mut transit = [0.0; MEDIAN_WINDOW];
    for (slot, d) in transit.iter_mut().zip(recent) {
        *slot = d.transit_hours;
    }
    let transit = &mut transit[..recent.len()];
    let mid = transit.len() / 2;
    let (_, median, _) = transit.select_nth_unstable_by(mid, f64::total_cmp);
    LaneStats {
        deliveries: n,
        on_time_rate,
        p50_transit_hours: *median,
    }
}

/// Where lane statistics as of a time come from: the full history in training, a snapshot
/// taken at training time when serving.
pub trait LaneSource {
    fn lane(&self, key: LaneRef<'_>, t: DateTime<Utc>) -> LaneStats;
    fn carrier_service(&self, carrier: &str, service: &str, t: DateTime<Utc>) -> LaneStats;
}

/// Lane statistics frozen at one time (the end of the training data), saved with a model.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LaneSnapshot {
    /// As of this time; asked about an earlier time, the snapshot knows nothing.
    pub as_of: Option<DateTime<Utc>>,
    lanes: Vec<(LaneKey, LaneStats)>,
    carrier_service: Vec<((String, String), LaneStats)>,
    /// Positions in `lanes` and `carrier_service` by a hash of the names (checked on lookup).
    #[serde(skip)]
    lane_index: rustc_hash::FxHashMap<u64, usize>,
    #[serde(skip)]
    carrier_service_index: rustc_hash::FxHashMap<u64, usize>,
}

impl LaneSnapshot {
    /// Rebuilds the lookup indexes (after loading from JSON).
    pub fn index(&mut self) {
        let lane = |k: &LaneKey| {
            let r = k.as_ref();
            names_hash(&[r.carrier, r.service, r.origin, r.destination])
        };
        self.lane_index = self
            .lanes
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (lane(k), i))
            .collect();
        self.carrier_service_index = self
            .carrier_service
            .iter()
            .enumerate()
            .map(|(i, ((c, s), _))| (names_hash(&[c, s]), i))
            .collect();
    }

    fn known(&self, t: DateTime<Utc>, stats: Option<&LaneStats>) -> LaneStats {
        match (self.as_of, stats) {
            (Some(as_of), Some(s)) if as_of <= t => *s,
            _ => stats_before(&[], t),
        }
    }
}

impl LaneSource for LaneSnapshot {
    fn lane(&self, key: LaneRef<'_>, t: DateTime<Utc>) -> LaneStats {
        let hash = names_hash(&[key.carrier, key.service, key.origin, key.destination]);
        // A hash collision (another lane under the same hash) falls back to a scan.
        let stats = match self.lane_index.get(&hash).map(|i| &self.lanes[*i]) {
            Some((k, s)) if key.matches(k) => Some(s),
            Some(_) => self
                .lanes
                .iter()
                .find(|(k, _)| key.matches(k))
                .map(|(_, s)| s),
            None => None,
        };
        self.known(t, stats)
    }

    fn carrier_service(&self, carrier: &str, service: &str, t: DateTime<Utc>) -> LaneStats {
        let same = |((c, s), _): &&((String, String), LaneStats)| c == carrier && s == service;
        let hash = names_hash(&[carrier, service]);
        let stats = match self
            .carrier_service_index
            .get(&hash)
            .map(|i| &self.carrier_service[*i])
        {
            Some(entry) if same(&entry) => Some(&entry.1),
            Some(_) => self.carrier_service.iter().find(same).map(|(_, s)| s),
            None => None,
        };
        self.known(t, stats)
    }
}

impl LaneSource for LaneHistory {
    fn lane(&self, key: LaneRef<'_>, t: DateTime<Utc>) -> LaneStats {
        LaneHistory::lane(self, &key.owned(), t)
    }

    fn carrier_service(&self, carrier: &str, service: &str, t: DateTime<Utc>) -> LaneStats {
        LaneHistory::carrier_service(self, carrier, service, t)
    }
}

impl LaneHistory {
    /// Every lane's statistics as of `t`.
    pub fn snapshot(&self, t: DateTime<Utc>) -> LaneSnapshot {
        let mut snapshot = LaneSnapshot {
            as_of: Some(t),
            lanes: self
                .lanes
                .iter()
                .map(|(k, l)| (k.clone(), stats_before(l, t)))
                .filter(|(_, s)| s.deliveries > 0)
                .collect(),
            carrier_service: self
                .carrier_service
                .iter()
                .map(|(k, l)| (k.clone(), stats_before(l, t)))
                .filter(|(_, s)| s.deliveries > 0)
                .collect(),
            ..Default::default()
        };
        // A stable order, so the same history gives the same artifact.
        snapshot
            .lanes
            .sort_by(|a, b| format!("{:?}", a.0).cmp(&format!("{:?}", b.0)));
        snapshot.carrier_service.sort_by(|a, b| a.0.cmp(&b.0));
        snapshot.index();
        snapshot
    }

    /// Builds the history from shipments (only delivered ones count).
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a ShipmentRecord>) -> Self {
        let mut h = LaneHistory::default();
        for r in records {
            let (Some(shipped), Some(delivered)) = (r.shipped_at(), r.delivered_at()) else {
                continue;
            };
            let d = Delivery {
                at: delivered,
                transit_hours: (delivered - shipped).num_seconds() as f64 / 3600.0,
                late: r.late(),
                judged_through: 0,
                late_through: 0,
            };
            let lane = r.lane();
            h.carrier_service
                .entry((lane.carrier.clone(), lane.service.clone()))
                .or_default()
                .push(d);
            h.lanes.entry(lane).or_default().push(d);
        }
        for list in h.lanes.values_mut().chain(h.carrier_service.values_mut()) {
            list.sort_by_key(|d| d.at);
            let (mut judged, mut late) = (0, 0);
            for d in list.iter_mut() {
                judged += u32::from(d.late.is_some());
                late += u32::from(d.late == Some(true));
                (d.judged_through, d.late_through) = (judged, late);
            }
        }
        h
    }

    pub fn lane(&self, key: &LaneKey, t: DateTime<Utc>) -> LaneStats {
        self.lanes
            .get(key)
            .map(|l| stats_before(l, t))
            .unwrap_or(stats_before(&[], t))
    }

    pub fn carrier_service(&self, carrier: &str, service: &str, t: DateTime<Utc>) -> LaneStats {
        self.carrier_service
            .get(&(carrier.to_string(), service.to_string()))
            .map(|l| stats_before(l, t))
            .unwrap_or(stats_before(&[], t))
    }
}

/// Column index of a feature by name (a compile-time list, so a wrong name is a bug).
pub fn column(name: &str) -> usize {
    FEATURE_NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| unreachable!("unknown feature {name}"))
}

/// The hours to delivery a simple rule expects from a feature row: the end of the promised
/// day, or else the lane's (then the carrier service's) median transit minus the time already
/// in transit, or else nothing. The ETA models learn the correction to this rule, in days: the
/// quantile loss moves a prediction by at most its learning rate per round, so a target in
/// hundreds of hours would need thousands of rounds, and a quantile of `y − f(x)` plus `f(x)`
/// is the same quantile of `y`.
pub fn baseline_eta_hours(row: &[f64]) -> f64 {
    let promised = row[column("hours_until_promised")];
    if promised.is_finite() {
        return promised.max(0.0);
    }
    let in_transit = row[column("hours_in_transit")];
    for median in [
        row[column("lane_p50_transit_hours")],
        row[column("carrier_service_p50_transit_hours")],
    ] {
        if median.is_finite() && in_transit.is_finite() {
            return (median - in_transit).max(0.0);
        }
    }
    0.0
}

fn status_code(s: Status) -> f64 {
    Status::ALL
        .iter()
        .position(|x| *x == s)
        .map(|i| i as f64)
        .unwrap_or(f64::NAN)
}

fn reason_code(r: Option<Reason>) -> f64 {
    r.and_then(|r| Reason::ALL.iter().position(|x| *x == r))
        .map(|i| i as f64)
        .unwrap_or(f64::NAN)
}

fn hours(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (a - b).num_seconds() as f64 / 3600.0
}

/// The feature row of `record` at time `t`. Only events that occurred at or before `t` are
/// read, and only history of deliveries before `t`.
pub fn features_at(
    record: &ShipmentRecord,
    t: DateTime<Utc>,
    history: &impl LaneSource,
    vocabulary: &Vocabulary,
) -> Vec<f64> {
    let d = &record.details;
    // Events are in timeline order, which is not always time order: filter, do not cut.
    // One pass: how many scans, the first and the last, and the last one with a location.
    let (mut scans, mut first, mut last): (usize, Option<&TrackingEvent>, Option<&TrackingEvent>) =
        (0, None, None);
    let mut last_location: Option<&bitshipper_core::Location> = None;
    for e in record
        .events
        .iter()
        .filter(|e| e.occurred_at.with_timezone(&Utc) <= t)
    {
        scans += 1;
        first = first.or(Some(e));
        last = Some(e);
        last_location = e.location.as_ref().or(last_location);
    }
    let shipped = first.map(|e| e.occurred_at);
    let lane = record.lane_ref();
    let lane_stats = history.lane(lane, t);
    let cs_stats = history.carrier_service(lane.carrier, lane.service, t);
    let promised_days = match (d.promised_delivery_date, shipped) {
        (Some(p), Some(s)) => (p - s.date_naive()).num_days() as f64,
        _ => f64::NAN,
    };
    let until_promised = record
        .promised_by()
        .map(|p| hours(p, t))
        .unwrap_or(f64::NAN);
    fn country(a: &Option<bitshipper_core::Address>) -> Option<&str> {
        a.as_ref().and_then(|a| a.country.as_deref())
    }
    let (origin_country, destination_country) = (country(&d.origin), country(&d.destination));
    fn place(a: &Option<bitshipper_core::Address>) -> Option<(f64, f64)> {
        let a = a.as_ref()?;
        places::coordinates(a.city.as_deref(), a.region.as_deref(), a.country.as_deref())
    }
    let destination_point = place(&d.destination);
    // Where the parcel was last seen: the last scan with a location, by its coordinates when
    // the carrier gave them.
    let last_position = last_location.and_then(|l| match (l.lat, l.lon) {
        (Some(lat), Some(lon)) => Some((lat, lon)),
        _ => places::coordinates(l.city.as_deref(), l.region.as_deref(), l.country.as_deref()),
    });
    let [carrier, service, origin, destination, warehouse, category] = categories(record);
    let code = |i: usize, v: Option<&str>| vocabulary.code(i, v);
    vec![
        code(0, carrier),
        code(1, service),
        code(2, origin),
        code(3, destination),
        d.weight_grams.map(|g| g / 1000.0).unwrap_or(f64::NAN),
        shipped
            .map(|s| f64::from(s.weekday().num_days_from_monday()))
            .unwrap_or(f64::NAN),
        shipped.map(|s| f64::from(s.hour())).unwrap_or(f64::NAN),
        shipped
            .map(|s| hours(t, s.with_timezone(&Utc)))
            .unwrap_or(f64::NAN),
        last.map(|e| status_code(e.status)).unwrap_or(f64::NAN),
        last.map(|e| reason_code(e.reason)).unwrap_or(f64::NAN),
        last.map(|e| hours(t, e.occurred_at.with_timezone(&Utc)))
            .unwrap_or(f64::NAN),
        scans as f64,
        promised_days,
        until_promised,
        f64::from(u8::from(matches!(
            t.weekday(),
            chrono::Weekday::Sat | chrono::Weekday::Sun
        ))),
        lane_stats.deliveries as f64,
        lane_stats.on_time_rate,
        lane_stats.p50_transit_hours,
        cs_stats.on_time_rate,
        cs_stats.p50_transit_hours,
        code(4, warehouse),
        code(5, category),
        match (origin_country, destination_country) {
            (Some(o), Some(dc)) => f64::from(u8::from(o != dc)),
            _ => f64::NAN,
        },
        places::distance_km(place(&d.origin), destination_point),
        places::distance_km(last_position, destination_point),
        match d.promised_delivery_date {
            Some(p) => f64::from(places::holidays_between(t.date_naive(), p)),
            None => f64::NAN,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitshipper_core::{EventInput, MappingTable, ShipmentInput, TenantId};
    use serde_json::json;

    fn record(tn: &str, events: &[(&str, &str)]) -> ShipmentRecord {
        let tenant = TenantId::new();
        let mapping = MappingTable::builtin().unwrap_or_else(|e| panic!("{e}"));
        let input: ShipmentInput = serde_json::from_value(json!({
            "carrier": "ups", "tracking_number": tn, "service_level": "ground",
            "origin": {"region": "KY", "country": "US"}, "destination": {"region": "TX", "country": "US"},
            "promised_delivery_date": "2026-02-13", "metadata": {"warehouse": "east"}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let details = NewShipment::try_from(input).unwrap_or_else(|e| panic!("{e}"));
        let events = events
            .iter()
            .map(|(at, code)| {
                EventInput::parse(
                    tenant,
                    &json!({"carrier": "ups", "tracking_number": tn, "occurred_at": at, "raw_code": code}),
                    &mapping,
                    "",
                )
                .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        ShipmentRecord { details, events }
    }

    fn same(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
    }

    /// Features at t do not change when anything that happens after t is added: later events of
    /// the shipment, or deliveries on its lane after t.
    #[test]
    fn features_at_t_use_nothing_known_after_t() {
        let t: DateTime<Utc> = "2026-02-11T12:00:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let early = [
            ("2026-02-10T09:00:00-05:00", "M"),
            ("2026-02-10T18:00:00-05:00", "P"),
        ];
        let now = record("1ZNOW", &early);
        let past = record(
            "1ZPAST",
            &[
                ("2026-02-01T09:00:00-05:00", "M"),
                ("2026-02-04T10:00:00-05:00", "D"),
            ],
        );
        let mut vocabulary = Vocabulary::default();
        vocabulary.learn(&now);
        let history = LaneHistory::from_records([&past]);
        let before = features_at(&now, t, &history, &vocabulary);

        let mut later = early.to_vec();
        later.extend([
            ("2026-02-12T08:00:00-06:00", "O"),
            ("2026-02-12T15:00:00-06:00", "D"),
        ]);
        let full = record("1ZNOW", &later);
        let future = record(
            "1ZFUT",
            &[
                ("2026-02-09T09:00:00-05:00", "M"),
                ("2026-02-11T13:00:00-05:00", "D"),
            ],
        );
        let richer = LaneHistory::from_records([&past, &future, &full]);
        let after = features_at(&full, t, &richer, &vocabulary);
        assert!(same(&before, &after), "{before:?}\n{after:?}");
        assert_eq!(before[15], 1.0, "one delivery on the lane was known at t");

        // And the lane history does count a delivery once t is past it.
        let later_t: DateTime<Utc> = "2026-02-12T00:00:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(features_at(&full, later_t, &richer, &vocabulary)[15], 2.0);
    }
}
