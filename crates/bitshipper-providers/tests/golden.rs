//! Golden tests: for every provider, payloads shaped after its public documentation
//! (`tests/golden/<provider>/<case>.json`) must give exactly the canonical events in
//! `<case>.expected.json`. And no parser panics on arbitrary bytes or arbitrary JSON.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use bitshipper_providers::{parse, Provider, ProviderTable};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::path::PathBuf;

fn golden_dir(p: Provider) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(p.id())
}

fn as_expected(e: &bitshipper_providers::ProviderEvent) -> Value {
    json!({
        "carrier": e.carrier,
        "tracking_number": e.tracking_number,
        "occurred_at": e.occurred_at.to_rfc3339(),
        "status": e.status.as_str(),
        "reason": e.reason.map(|r| r.as_str()),
        "raw_code": e.raw_code,
        "city": e.location.as_ref().and_then(|l| l.city.clone()),
    })
}

#[test]
fn every_provider_turns_its_golden_payloads_into_the_expected_events() {
    let mut failures = Vec::new();
    for p in Provider::ALL {
        let table = ProviderTable::builtin(*p).unwrap();
        let dir = golden_dir(*p);
        let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && !p.to_string_lossy().ends_with(".expected.json")
            })
            .collect();
        cases.sort();
        assert!(
            cases.len() >= 5,
            "{}: only {} golden cases",
            p.id(),
            cases.len()
        );
        let mut statuses = std::collections::BTreeSet::new();
        for case in cases {
            let body = std::fs::read(&case).unwrap();
            let expected_path = case.with_extension("expected.json");
            let expected: Value =
                serde_json::from_slice(&std::fs::read(&expected_path).unwrap()).unwrap();
            match parse(*p, &table, &body) {
                Ok(events) => {
                    let got: Vec<Value> = events.iter().map(as_expected).collect();
                    for e in &events {
                        statuses.insert(e.status.as_str());
                    }
                    if Value::Array(got.clone()) != expected {
                        failures.push(format!(
                            "{}: got\n{}\nexpected\n{}",
                            case.display(),
                            serde_json::to_string_pretty(&got).unwrap(),
                            serde_json::to_string_pretty(&expected).unwrap()
                        ));
                    }
                }
                Err(e) => failures.push(format!("{}: {e}", case.display())),
            }
        }
        for needed in [
            "pre_transit",
            "in_transit",
            "out_for_delivery",
            "delivered",
            "exception",
            "failed_attempt",
            "return_to_sender",
            "unknown",
        ] {
            if !statuses.contains(needed) {
                failures.push(format!("{}: no golden case gives {needed}", p.id()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn truncated_and_mistyped_payloads_name_the_problem() {
    for p in Provider::ALL {
        let table = ProviderTable::builtin(*p).unwrap();
        let dir = golden_dir(*p);
        let case = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| !p.to_string_lossy().ends_with(".expected.json"))
            .unwrap();
        let body = std::fs::read(&case).unwrap();
        let truncated = &body[..body.len() / 2];
        let err = parse(*p, &table, truncated).unwrap_err();
        assert!(err.to_string().contains("JSON"), "{}: {err}", p.id());
        let err = parse(*p, &table, b"[1,2,3]").unwrap_err();
        assert!(err.path().is_some(), "{}: {err}", p.id());
        let err = parse(*p, &table, b"{}").unwrap_err();
        assert!(
            err.path().is_some_and(|path| path.starts_with('$')),
            "{}: {err}",
            p.id()
        );
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,20}".prop_map(Value::String),
        Just(json!("2026-02-10T14:05:00Z")),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("result".to_string()),
            Just("data".to_string()),
            Just("msg".to_string()),
            Just("tracking_details".to_string()),
            Just("checkpoints".to_string()),
            Just("events".to_string()),
            Just("trackResponse".to_string()),
            Just("shipment".to_string()),
            Just("package".to_string()),
            Just("activity".to_string()),
            Just("output".to_string()),
            Just("completeTrackResults".to_string()),
            Just("trackResults".to_string()),
            Just("scanEvents".to_string()),
            Just("trackingEvents".to_string()),
            Just("shipments".to_string()),
            Just("track_info".to_string()),
            Just("tracking".to_string()),
            Just("providers".to_string()),
            Just("tracking_history".to_string()),
            Just("status".to_string()),
            "[a-z_]{1,12}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for p in Provider::ALL {
            let table = ProviderTable::builtin(*p).unwrap();
            let _ = parse(*p, &table, &bytes);
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in arbitrary_json()) {
        let body = serde_json::to_vec(&value).unwrap();
        for p in Provider::ALL {
            let table = ProviderTable::builtin(*p).unwrap();
            let _ = parse(*p, &table, &body);
        }
    }
}
