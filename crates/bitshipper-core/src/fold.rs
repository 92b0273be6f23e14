//! The fold: a shipment's state as a pure function of the *set* of its events (C3). Arrival order
//! and duplicates never change the result.

use crate::event::{Location, TrackingEvent};
use crate::status::{Reason, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// What the events say about a shipment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShipmentState {
    pub status: Status,
    pub reason: Option<Reason>,
    pub last_location: Option<Location>,
    /// When the carrier first physically handled the parcel.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_scan_at: Option<DateTime<Utc>>,
    /// The earliest delivery scan.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_event_at: Option<DateTime<Utc>>,
    pub events_count: u32,
}

impl Default for ShipmentState {
    fn default() -> Self {
        Self {
            status: Status::PreTransit,
            reason: None,
            last_location: None,
            first_scan_at: None,
            delivered_at: None,
            last_event_at: None,
            events_count: 0,
        }
    }
}

/// Total order over events used by the fold: time, then progress, then identity. Ties on
/// everything but content are broken by the remaining fields so the order is total.
pub fn timeline_order(a: &TrackingEvent, b: &TrackingEvent) -> Ordering {
    a.occurred_at
        .with_timezone(&Utc)
        .cmp(&b.occurred_at.with_timezone(&Utc))
        .then_with(|| a.status.cmp(&b.status))
        .then_with(|| a.event_key.cmp(&b.event_key))
        .then_with(|| a.reason.cmp(&b.reason))
        .then_with(|| a.raw_code.cmp(&b.raw_code))
        .then_with(|| a.message.cmp(&b.message))
        .then_with(|| {
            a.occurred_at
                .offset()
                .local_minus_utc()
                .cmp(&b.occurred_at.offset().local_minus_utc())
        })
}

/// Sorts events into timeline order and drops duplicates (same event key; the first in
/// timeline order wins, so the choice does not depend on arrival).
pub fn timeline(mut events: Vec<TrackingEvent>) -> Vec<TrackingEvent> {
    events.sort_by(timeline_order);
    let mut seen = std::collections::HashSet::with_capacity(events.len());
    events.retain(|e| seen.insert(e.event_key.clone()));
    events
}

/// Derives the state of a shipment from its events, in any order, with any duplicates.
pub fn fold(events: Vec<TrackingEvent>) -> ShipmentState {
    apply_in_order(ShipmentState::default(), timeline(events))
}

/// Continues a fold with events that all happened strictly after `state.last_event_at`: the
/// result equals `fold` over the old events and these together, without the old events. When
/// any event is not strictly later, returns `None` and the caller folds the whole set.
pub fn fold_continue(state: ShipmentState, later: Vec<TrackingEvent>) -> Option<ShipmentState> {
    if let Some(last) = state.last_event_at {
        if later
            .iter()
            .any(|e| e.occurred_at.with_timezone(&Utc) <= last)
        {
            return None;
        }
    }
    Some(apply_in_order(state, timeline(later)))
}

/// Folds events already in timeline order and free of duplicates into `state`.
fn apply_in_order(mut state: ShipmentState, events: Vec<TrackingEvent>) -> ShipmentState {
    // A known status was seen before iff the state holds one (unknown is only ever kept while
    // nothing else is known).
    let mut known_seen = state.events_count > 0 && state.status != Status::Unknown;
    state.events_count = state
        .events_count
        .saturating_add(u32::try_from(events.len()).unwrap_or(u32::MAX));
    for e in &events {
        let at = e.occurred_at.with_timezone(&Utc);
        // The latest event that says something decides the status; an unmapped ("unknown")
        // scan never overrides a known one.
        if e.status != Status::Unknown {
            state.status = e.status;
            state.reason = e.reason;
            known_seen = true;
        } else if !known_seen {
            state.status = Status::Unknown;
            state.reason = e.reason;
        }
        if e.location.is_some() {
            state.last_location.clone_from(&e.location);
        }
        if e.status.is_carrier_scan() && state.first_scan_at.is_none() {
            state.first_scan_at = Some(at);
        }
        if e.status == Status::Delivered && state.delivered_at.is_none() {
            state.delivered_at = Some(at);
        }
        state.last_event_at = Some(at);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::EventKey;
    use chrono::{FixedOffset, TimeZone, Timelike};
    use proptest::prelude::*;

    fn ev(key: &str, hour: u32, offset_h: i32, status: Status) -> TrackingEvent {
        let tz = FixedOffset::east_opt(offset_h * 3600).unwrap();
        TrackingEvent {
            event_key: EventKey(key.into()),
            event_id: None,
            carrier: "ups".into(),
            tracking_number: "1Z".into(),
            occurred_at: tz.with_ymd_and_hms(2026, 11, 20, hour, 0, 0).unwrap(),
            status,
            reason: None,
            raw_code: None,
            message: None,
            location: Some(Location {
                city: Some(format!("city-{key}")),
                ..Default::default()
            }),
            raw_payload_id: None,
        }
    }

    fn life() -> Vec<TrackingEvent> {
        vec![
            ev("a", 8, 0, Status::PreTransit),
            ev("b", 10, -5, Status::InTransit), // 15:00Z
            ev("c", 12, 0, Status::InTransit),
            ev("d", 16, 0, Status::Unknown),
            ev("e", 20, 0, Status::OutForDelivery),
            ev("f", 22, 0, Status::Delivered),
            ev("g", 22, 0, Status::OutForDelivery), // same instant: progress order decides
        ]
    }

    #[test]
    fn folds_a_whole_life() {
        let s = fold(life());
        assert_eq!(s.status, Status::Delivered);
        assert_eq!(s.events_count, 7);
        assert_eq!(
            s.first_scan_at.unwrap().to_rfc3339(),
            "2026-11-20T12:00:00+00:00"
        );
        assert_eq!(
            s.delivered_at.unwrap().to_rfc3339(),
            "2026-11-20T22:00:00+00:00"
        );
        assert_eq!(s.last_location.unwrap().city.as_deref(), Some("city-f"));
    }

    #[test]
    fn an_unknown_scan_does_not_hide_a_known_status() {
        let s = fold(vec![
            ev("a", 8, 0, Status::InTransit),
            ev("b", 9, 0, Status::Unknown),
        ]);
        assert_eq!(s.status, Status::InTransit);
        let only_unknown = fold(vec![ev("a", 8, 0, Status::Unknown)]);
        assert_eq!(only_unknown.status, Status::Unknown);
    }

    #[test]
    fn continuing_with_an_earlier_event_is_refused() {
        let later = fold(vec![ev("b", 12, 0, Status::InTransit)]);
        assert_eq!(
            fold_continue(later.clone(), vec![ev("a", 8, 0, Status::PreTransit)]),
            None
        );
        assert_eq!(
            fold_continue(later, vec![ev("c", 12, 0, Status::Delivered)]),
            None,
            "same instant"
        );
    }

    #[test]
    fn no_events_is_pre_transit() {
        assert_eq!(fold(vec![]), ShipmentState::default());
    }

    fn random_life(n: usize, seed: &[(u8, u8)]) -> Vec<TrackingEvent> {
        seed.iter()
            .take(n)
            .enumerate()
            .map(|(i, (hour, st))| {
                let status = Status::ALL[usize::from(*st) % Status::ALL.len()];
                let mut e = ev(&format!("k{i}"), u32::from(*hour % 24), 0, status);
                if hour % 3 == 0 {
                    e.location = None;
                }
                e
            })
            .collect()
    }

    proptest! {
        /// Continuing a fold with strictly later events equals folding everything at once.
        #[test]
        fn continuing_a_fold_equals_folding_the_whole_set(
            seed in proptest::collection::vec((0u8..24, any::<u8>()), 1..12),
            cut in 0u8..24,
        ) {
            let all = random_life(seed.len(), &seed);
            let (before, after): (Vec<_>, Vec<_>) =
                all.iter().cloned().partition(|e| e.occurred_at.hour() < u32::from(cut));
            let whole = fold(all);
            match fold_continue(fold(before.clone()), after.clone()) {
                Some(continued) => prop_assert_eq!(continued, whole),
                None => prop_assert!(!before.is_empty() && !after.is_empty()),
            }
        }

        #[test]
        fn arrival_order_and_duplicates_never_change_the_state(
            order in Just((0..7usize).collect::<Vec<_>>()).prop_shuffle(),
            dups in proptest::collection::vec(0..7usize, 0..10),
        ) {
            let base = life();
            let mut shuffled: Vec<_> = order.iter().map(|&i| base[i].clone()).collect();
            shuffled.extend(dups.iter().map(|&i| base[i].clone()));
            prop_assert_eq!(fold(shuffled), fold(base));
        }
    }
}
