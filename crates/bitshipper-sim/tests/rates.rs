//! The simulator's documented rates (docs/simulator.md) hold on generated data, and the output
//! is deterministic per seed.

use bitshipper_sim::carriers::{Carrier, Service};
use bitshipper_sim::stats::Stats;
use bitshipper_sim::{write_jsonl, Simulation, TenantProfile};
use chrono::{NaiveDate, TimeZone, Utc};

fn history(seed: u64, days: u32, per_day: u32) -> Simulation {
    Simulation::new(
        seed,
        TenantProfile::outdoor(),
        NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
        days,
        per_day,
    )
    .expect("simulation")
}

/// The table in docs/simulator.md: (value, tolerance). Measured as the mean over seeds 7, 2026,
/// 1, 2 and 3; checked here on another seed, so they are properties of the model, not of one
/// draw. Regional carriers serve few lanes, so per-lane effects move them more.
const ON_TIME: [(Carrier, f64, f64); 6] = [
    (Carrier::Ups, 0.84, 0.03),
    (Carrier::Fedex, 0.83, 0.03),
    (Carrier::Usps, 0.79, 0.03),
    (Carrier::Dhl, 0.79, 0.03),
    (Carrier::Ontrac, 0.76, 0.05),
    (Carrier::Lso, 0.78, 0.05),
];
const TRANSIT_DAYS: [f64; 5] = [2.13, 3.02, 4.12, 5.18, 6.25];
const TRANSIT_TOLERANCE: f64 = 0.25;

fn within(name: &str, got: f64, want: f64, tolerance: f64) {
    assert!(
        (got - want).abs() <= tolerance,
        "{name}: measured {got:.4}, documented {want} ± {tolerance}"
    );
}

#[test]
fn documented_rates_hold() {
    let sim = history(11, 365, 60);
    let mut stats = Stats::default();
    for s in sim.shipments() {
        stats.add(&s);
    }
    println!("{stats}");
    assert!(stats.shipments > 15_000);
    for (carrier, want, tolerance) in ON_TIME {
        within(
            carrier.code(),
            stats.carrier_on_time_rate(carrier).expect("deliveries"),
            want,
            tolerance,
        );
    }
    for (band, want) in TRANSIT_DAYS.iter().enumerate() {
        within(
            &format!("transit band {band}"),
            stats.mean_transit_days(band as u8).expect("deliveries"),
            *want,
            TRANSIT_TOLERANCE,
        );
    }
    within("exception rate", stats.exception_rate(), 0.105, 0.015);
    within("return rate", stats.return_rate(), 0.013, 0.004);
    within("duplicate rate", stats.duplicate_rate(), 0.029, 0.005);
    within("out-of-order rate", stats.out_of_order_rate(), 0.043, 0.006);
    within("missing scan rate", stats.missing_scan_rate(), 0.027, 0.005);
    // Faster services are more punctual than slower ones, across carriers.
    let service_rate = |svc: Service| {
        let (n, ok) = stats
            .on_time
            .iter()
            .filter(|((_, s), _)| *s == svc)
            .fold((0, 0), |a, (_, (n, ok))| (a.0 + n, a.1 + ok));
        ok as f64 / n as f64
    };
    assert!(service_rate(Service::Overnight) > service_rate(Service::Economy));
}

#[test]
fn lateness_follows_what_a_model_can_see() {
    // Storms on the route make lateness much more likely: the signal a model should find.
    let sim = history(99, 365, 40);
    let (mut storm, mut calm) = ((0u32, 0u32), (0u32, 0u32));
    for s in sim.shipments() {
        if let Some(on_time) = s.truth.on_time() {
            let slot = if s.truth.storm_on_route {
                &mut storm
            } else {
                &mut calm
            };
            slot.0 += 1;
            slot.1 += u32::from(!on_time);
        }
    }
    let late = |(n, l): (u32, u32)| f64::from(l) / f64::from(n);
    assert!(
        late(storm) > 1.8 * late(calm),
        "storm {:.3} vs calm {:.3}",
        late(storm),
        late(calm)
    );
}

fn jsonl(seed: u64) -> Vec<u8> {
    let sim = history(seed, 10, 20);
    let cutoff = Utc
        .with_ymd_and_hms(2026, 1, 8, 0, 0, 0)
        .single()
        .expect("time");
    let mut out = Vec::new();
    for s in sim.shipments() {
        write_jsonl(&mut out, "t", &s, cutoff).expect("write");
    }
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = jsonl(42);
    assert!(a.len() > 10_000);
    assert_eq!(a, jsonl(42));
    assert_ne!(a, jsonl(43));
}
