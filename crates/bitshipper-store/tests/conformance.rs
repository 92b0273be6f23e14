//! The store conformance suite: every test is written once and runs on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use bitshipper_core::{
    EventInput, MappingTable, NewShipment, Scope, ShipmentInput, Status, TenantId, TrackingEvent,
};
use bitshipper_store::testing::{contains_plain_or_hex, fresh_database_url, raw_dump, TestBackend};
use bitshipper_store::{
    AuditRecord, Backend, ChainCheck, EventLog, IdempotencyBegin, KeyProvider as _, ShipmentFilter,
    Store,
};
use proptest::prelude::*;
use serde_json::json;

async fn owner_connection(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.unwrap()
}

async fn store(backend: TestBackend) -> (Store, String) {
    let url = fresh_database_url(backend).await.expect("test database");
    let store = Store::connect(&url)
        .await
        .expect("connect")
        .with_key_provider(std::sync::Arc::new(
            bitshipper_store::LocalKeyProvider::ephemeral(),
        ));
    store.migrate().await.expect("migrate");
    (store, url)
}

fn new_shipment(tn: &str) -> NewShipment {
    let input: ShipmentInput = serde_json::from_value(json!({
        "carrier": "ups", "tracking_number": tn, "reference": "PO-1",
        "recipient": {"name": "Ada", "email": "ada@example.com"},
        "metadata": {"warehouse": "east"}
    }))
    .unwrap();
    NewShipment::try_from(input).unwrap()
}

fn event(tenant: TenantId, tn: &str, hour: u32, code: &str) -> TrackingEvent {
    EventInput::parse(
        tenant,
        &json!({"carrier":"ups","tracking_number":tn,"occurred_at":format!("2026-11-20T{hour:02}:00:00-05:00"),"raw_code":code,
                "location":{"city":"Louisville","country":"US"}}),
        &MappingTable::builtin().unwrap(),
        "",
    )
    .unwrap()
}

macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {
        mod sqlite { use super::*; $( #[tokio::test] async fn $name() { super::$name(TestBackend::Sqlite).await } )+ }
        mod postgres { use super::*; $( #[tokio::test] async fn $name() { super::$name(TestBackend::Postgres).await } )+ }
    };
}

on_both!(
    migrations_are_idempotent,
    tenants_and_keys,
    shipments_are_tenant_scoped,
    listing_filters_and_paginates,
    log_appends_in_order_and_processor_applies_once,
    idempotency_records,
    audit_log_is_append_only_and_chained,
    personal_data_is_sealed_at_rest,
    erasing_a_recipient_leaves_others_alone,
    keys_rotate_without_losing_data,
    erasing_a_tenant_destroys_its_keys_and_rows,
    retention_drops_old_events_and_personal_data_and_prunes_the_log,
    models_are_registered_promoted_and_predictions_keep_their_first,
);

async fn migrations_are_idempotent(b: TestBackend) {
    let (store, _) = store(b).await;
    assert_eq!(store.migrate().await.unwrap(), 0);
    store.ping().await.unwrap();
}

async fn tenants_and_keys(b: TestBackend) {
    let (store, _) = store(b).await;
    let t = store.create_tenant("Acme").await.unwrap();
    assert_eq!(store.get_tenant(t.id).await.unwrap().unwrap().name, "Acme");
    let created = store
        .create_api_key(t.id, "ci", &[Scope::Read, Scope::Ingest], None)
        .await
        .unwrap();
    assert!(created.secret.starts_with("bsk_live_"));
    assert!(created.secret.starts_with(&created.key.prefix));
    let auth = store
        .authenticate_api_key(&created.secret)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (auth.tenant_id, auth.scopes.clone()),
        (t.id, vec![Scope::Ingest, Scope::Read])
    );
    assert!(store
        .authenticate_api_key("bsk_live_nope")
        .await
        .unwrap()
        .is_none());

    store.touch_api_key(t.id, created.key.id).await.unwrap();
    let listed = store.list_api_keys(t.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some());

    let other = store.create_tenant("Other").await.unwrap();
    assert!(
        !store
            .revoke_api_key(other.id, created.key.id)
            .await
            .unwrap(),
        "foreign tenant cannot revoke"
    );
    assert!(store.list_api_keys(other.id).await.unwrap().is_empty());
    assert!(store.revoke_api_key(t.id, created.key.id).await.unwrap());
    assert!(store
        .authenticate_api_key(&created.secret)
        .await
        .unwrap()
        .is_none());

    let expired = store
        .create_api_key(
            t.id,
            "old",
            &[Scope::Read],
            Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
        )
        .await
        .unwrap();
    assert!(store
        .authenticate_api_key(&expired.secret)
        .await
        .unwrap()
        .is_none());
}

async fn shipments_are_tenant_scoped(b: TestBackend) {
    let (store, _) = store(b).await;
    let a = store.create_tenant("A").await.unwrap();
    let bt = store.create_tenant("B").await.unwrap();
    let s = store
        .create_shipment(a.id, new_shipment("1Z1"))
        .await
        .unwrap();
    let again = store
        .create_shipment(a.id, new_shipment("1Z1"))
        .await
        .unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");
    // The same tracking number may exist in another tenant.
    store
        .create_shipment(bt.id, new_shipment("1Z1"))
        .await
        .unwrap();

    let got = store.get_shipment(a.id, s.id).await.unwrap().unwrap();
    assert_eq!(got.details, s.details);
    assert!(store.get_shipment(bt.id, s.id).await.unwrap().is_none());
    assert!(!store.cancel_shipment(bt.id, s.id).await.unwrap());
    assert!(!store
        .update_shipment(bt.id, s.id, &s.details)
        .await
        .unwrap());
    assert_eq!(
        store
            .find_shipment_by_tracking(a.id, "ups", "1Z1")
            .await
            .unwrap()
            .unwrap()
            .id,
        s.id
    );

    let mut changed = s.details.clone();
    changed.reference = Some("PO-2".into());
    assert!(store.update_shipment(a.id, s.id, &changed).await.unwrap());
    assert!(store.cancel_shipment(a.id, s.id).await.unwrap());
    let got = store.get_shipment(a.id, s.id).await.unwrap().unwrap();
    assert_eq!(got.details.reference.as_deref(), Some("PO-2"));
    assert_eq!(got.effective_status(), Status::Cancelled);
}

async fn listing_filters_and_paginates(b: TestBackend) {
    let (store, _) = store(b).await;
    let t = store.create_tenant("A").await.unwrap();
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut s = new_shipment(&format!("1Z{i}"));
        if i % 2 == 0 {
            s.carrier = "fedex".into();
        }
        ids.push(store.create_shipment(t.id, s).await.unwrap().id);
    }
    let mut seen = Vec::new();
    let mut filter = ShipmentFilter {
        limit: 3,
        ..Default::default()
    };
    loop {
        let page = store.list_shipments(t.id, &filter).await.unwrap();
        if page.is_empty() {
            break;
        }
        filter.after = page.last().map(|s| s.id);
        seen.extend(page.into_iter().map(|s| s.id));
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, every shipment once");

    let fedex = ShipmentFilter {
        carrier: Some("fedex".into()),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(store.list_shipments(t.id, &fedex).await.unwrap().len(), 4);
    store.cancel_shipment(t.id, ids[0]).await.unwrap();
    let cancelled = ShipmentFilter {
        status: Some(Status::Cancelled),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        store.list_shipments(t.id, &cancelled).await.unwrap().len(),
        1
    );
    let pre = ShipmentFilter {
        status: Some(Status::PreTransit),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(store.list_shipments(t.id, &pre).await.unwrap().len(), 6);
    let future = ShipmentFilter {
        created_from: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
        limit: 100,
        ..Default::default()
    };
    assert!(store
        .list_shipments(t.id, &future)
        .await
        .unwrap()
        .is_empty());
    let other = store.create_tenant("B").await.unwrap();
    assert!(store
        .list_shipments(other.id, &fedex)
        .await
        .unwrap()
        .is_empty());
}

async fn log_appends_in_order_and_processor_applies_once(b: TestBackend) {
    let (store, url) = store(b).await;
    let log = EventLog::open(&url).await.unwrap();
    let t = store.create_tenant("A").await.unwrap();
    let events = [
        event(t.id, "1ZAUTO", 8, "M"),
        event(t.id, "1ZAUTO", 12, "I"),
        event(t.id, "1ZAUTO", 18, "D"),
    ];
    let entries: Vec<_> = events
        .iter()
        .map(|e| (t.id, serde_json::to_string(e).unwrap()))
        .collect();
    let seqs = log.append(&entries).await.unwrap();
    assert_eq!(seqs.len(), 3);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(log.head().await.unwrap(), seqs[2]);

    let read = log.read_after(0, 100).await.unwrap();
    let outcome = store.apply_log_entries("processor", &read).await.unwrap();
    assert_eq!(
        (outcome.applied, outcome.duplicates, outcome.auto_created),
        (3, 0, 1)
    );
    assert_eq!(store.consumer_position("processor").await.unwrap(), seqs[2]);

    // Redelivery of the same entries (a crash before the position was seen) changes nothing.
    let again = store.apply_log_entries("processor", &read).await.unwrap();
    assert_eq!((again.applied, again.duplicates), (0, 3));
    let s = store
        .find_shipment_by_tracking(t.id, "ups", "1ZAUTO")
        .await
        .unwrap()
        .unwrap();
    assert!(s.auto_created);
    assert_eq!(s.state.status, Status::Delivered);
    assert_eq!(s.state.events_count, 3);
    let timeline = store.list_events(t.id, s.id).await.unwrap();
    assert_eq!(
        timeline
            .iter()
            .map(|e| e.event.raw_code.clone().unwrap())
            .collect::<Vec<_>>(),
        ["M", "I", "D"]
    );
    // Another tenant sees nothing.
    let other = store.create_tenant("B").await.unwrap();
    assert!(store.list_events(other.id, s.id).await.unwrap().is_empty());

    // Readers may start and stop inside a commit's record.
    let more: Vec<_> = (0..5)
        .map(|i| (other.id, format!("{{\"n\":{i}}}")))
        .collect();
    let seqs2 = log.append(&more).await.unwrap();
    let seqs3 = log.append(&more[..2]).await.unwrap();
    assert_eq!(seqs2, (seqs[2] + 1..=seqs[2] + 5).collect::<Vec<_>>());
    assert_eq!(seqs3[0], seqs2[4] + 1);
    let middle = log.read_after(seqs2[1], 4).await.unwrap();
    assert_eq!(
        middle.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [seqs2[2], seqs2[3], seqs2[4], seqs3[0]]
    );
    assert_eq!(middle[0].payload, "{\"n\":2}");
    assert_eq!(middle[0].tenant_id, other.id);
    assert_eq!(log.read_after(0, 1000).await.unwrap().len(), 10);
    assert!(log.read_after(seqs3[1], 10).await.unwrap().is_empty());
    assert!(log
        .append(&[(t.id, "two\nlines".to_string())])
        .await
        .is_err());
    log.close().await;
}

async fn idempotency_records(b: TestBackend) {
    let (store, _) = store(b).await;
    let t = store.create_tenant("A").await.unwrap();
    let o = store.create_tenant("B").await.unwrap();
    assert_eq!(
        store.begin_idempotency(t.id, "k1", "h1").await.unwrap(),
        IdempotencyBegin::Started
    );
    assert_eq!(
        store.begin_idempotency(t.id, "k1", "h1").await.unwrap(),
        IdempotencyBegin::InProgress
    );
    assert_eq!(
        store.begin_idempotency(o.id, "k1", "h1").await.unwrap(),
        IdempotencyBegin::Started,
        "keys are per tenant"
    );
    store
        .complete_idempotency(t.id, "k1", 201, "{\"ok\":true}")
        .await
        .unwrap();
    assert_eq!(
        store.begin_idempotency(t.id, "k1", "h1").await.unwrap(),
        IdempotencyBegin::Replay {
            status: 201,
            body: "{\"ok\":true}".into()
        }
    );
    assert_eq!(
        store.begin_idempotency(t.id, "k1", "h2").await.unwrap(),
        IdempotencyBegin::Mismatch
    );
    store.abort_idempotency(o.id, "k1").await.unwrap();
    assert_eq!(
        store.begin_idempotency(o.id, "k1", "h1").await.unwrap(),
        IdempotencyBegin::Started
    );
    assert_eq!(
        store
            .purge_idempotency(chrono::Duration::hours(24))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge_idempotency(chrono::Duration::seconds(-1))
            .await
            .unwrap(),
        2
    );
}

// Shuffled and duplicated deliveries of the same events give the identical stored state, on
// both stores (each case applies the events through the log in a random order and batching).
fn shuffled_delivery_case(b: TestBackend, order: Vec<usize>, dups: Vec<usize>, batch: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (store, url) = store(b).await;
        let log = EventLog::open(&url).await.unwrap();
        let t = store.create_tenant("A").await.unwrap();
        let codes = ["M", "P", "I", "W", "X", "O", "D"];
        let events: Vec<_> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| event(t.id, "1ZP", 6 + i as u32 * 2, c))
            .collect();
        let mut delivery: Vec<_> = order.iter().map(|&i| events[i].clone()).collect();
        delivery.extend(dups.iter().map(|&i| events[i].clone()));
        for chunk in delivery.chunks(batch) {
            let entries: Vec<_> = chunk
                .iter()
                .map(|e| (t.id, serde_json::to_string(e).unwrap()))
                .collect();
            log.append(&entries).await.unwrap();
            let pos = store.consumer_position("p").await.unwrap();
            let read = log.read_after(pos, 1000).await.unwrap();
            store.apply_log_entries("p", &read).await.unwrap();
        }
        let s = store
            .find_shipment_by_tracking(t.id, "ups", "1ZP")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.state, bitshipper_core::fold(events));
        log.close().await;
        store.close().await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn shuffled_and_duplicated_delivery_gives_the_same_state_sqlite(
        order in Just((0..7usize).collect::<Vec<_>>()).prop_shuffle(),
        dups in proptest::collection::vec(0..7usize, 0..6),
        batch in 1..5usize,
    ) {
        shuffled_delivery_case(TestBackend::Sqlite, order, dups, batch);
    }

    #[test]
    fn shuffled_and_duplicated_delivery_gives_the_same_state_postgres(
        order in Just((0..7usize).collect::<Vec<_>>()).prop_shuffle(),
        dups in proptest::collection::vec(0..7usize, 0..6),
        batch in 1..5usize,
    ) {
        shuffled_delivery_case(TestBackend::Postgres, order, dups, batch);
    }
}

async fn audit_log_is_append_only_and_chained(b: TestBackend) {
    let (store, url) = store(b).await;
    let t = store.create_tenant("A").await.unwrap();
    let o = store.create_tenant("B").await.unwrap();
    let record = |action: &str, n: u32| AuditRecord {
        actor: "cli".into(),
        action: action.into(),
        target: format!("api_key:{n}"),
        details: json!({"scopes": ["read"], "n": n}),
    };
    for n in 0..3 {
        store
            .audit(t.id, record("api_key.created", n))
            .await
            .unwrap();
    }
    store
        .audit(o.id, record("tenant.created", 9))
        .await
        .unwrap();
    assert_eq!(
        store.verify_audit_chain(t.id).await.unwrap(),
        ChainCheck::Intact { entries: 3 }
    );
    assert_eq!(
        store.verify_audit_chain(o.id).await.unwrap(),
        ChainCheck::Intact { entries: 1 }
    );

    let newest = store.audit_entries(t.id, None, 2).await.unwrap();
    assert_eq!(newest.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 2]);
    assert_eq!(newest[0].prev_hash, newest[1].hash);
    let older = store.audit_entries(t.id, Some(2), 10).await.unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].prev_hash, bitshipper_store::audit::GENESIS);
    assert_eq!(
        store.audit_entries(o.id, None, 10).await.unwrap().len(),
        1,
        "chains are per tenant"
    );

    // The database refuses edits and deletions...
    let edit = "UPDATE audit_log SET details = '{}' WHERE seq = 2";
    let refused = match store.backend() {
        Backend::Sqlite(p) => {
            sqlx::query(edit).execute(p).await.is_err()
                && sqlx::query("DELETE FROM audit_log")
                    .execute(p)
                    .await
                    .is_err()
        }
        // As the schema's owner (the application's role would not even see the rows).
        Backend::Postgres(_) => {
            let mut owner = owner_connection(&url).await;
            sqlx::query(edit).execute(&mut owner).await.is_err()
                && sqlx::query("DELETE FROM audit_log")
                    .execute(&mut owner)
                    .await
                    .is_err()
        }
    };
    assert!(refused, "the audit log is append-only");
    // ...and an edit made around that wall shows when the chain is verified.
    match store.backend() {
        Backend::Sqlite(p) => {
            sqlx::query("DROP TRIGGER audit_log_no_update")
                .execute(p)
                .await
                .unwrap();
            sqlx::query(edit).execute(p).await.unwrap();
        }
        Backend::Postgres(_) => {
            let mut owner = owner_connection(&url).await;
            sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
                .execute(&mut owner)
                .await
                .unwrap();
            sqlx::query(edit).execute(&mut owner).await.unwrap();
        }
    }
    assert!(matches!(
        store.verify_audit_chain(t.id).await.unwrap(),
        ChainCheck::Broken { seq: 2, .. }
    ));
    assert_eq!(
        store.verify_audit_chain(o.id).await.unwrap(),
        ChainCheck::Intact { entries: 1 }
    );
}

fn shipment_to(tn: &str, name: &str, email: &str, street: &str) -> NewShipment {
    let input: ShipmentInput = serde_json::from_value(json!({
        "carrier": "ups", "tracking_number": tn,
        "recipient": {"name": name, "email": email, "phone": "+1 502 555 0199",
                      "address": {"line1": street, "line2": "Apt 9", "city": "Louisville", "region": "KY", "postal_code": "40202", "country": "US"}},
        "destination": {"line1": street, "city": "Louisville", "region": "KY", "postal_code": "40202", "country": "US"}
    }))
    .unwrap();
    NewShipment::try_from(input).unwrap()
}

const SECRETS_OF_A: [&str; 3] = [
    "Zanzibar Quixote",
    "zanzibar.q@example.org",
    "742 Evergreen Terrace",
];

async fn personal_data_is_sealed_at_rest(b: TestBackend) {
    let (store, url) = store(b).await;
    let t = store.create_tenant("acme").await.unwrap();
    let created = store
        .create_shipment(
            t.id,
            shipment_to(
                "1ZSEALED1",
                SECRETS_OF_A[0],
                SECRETS_OF_A[1],
                SECRETS_OF_A[2],
            ),
        )
        .await
        .unwrap();
    let read = store.get_shipment(t.id, created.id).await.unwrap().unwrap();
    assert_eq!(
        read.details.recipient, created.details.recipient,
        "authorized reads see the data"
    );
    assert_eq!(read.details.destination, created.details.destination);
    let listed = store
        .list_shipments(
            t.id,
            &ShipmentFilter {
                recipient_email: Some(" Zanzibar.Q@example.org".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        listed.len(),
        1,
        "search by email works through the keyed hash"
    );
    assert_eq!(listed[0].details.recipient, created.details.recipient);
    store
        .complete_idempotency(
            t.id,
            "k1",
            201,
            &format!("{{\"name\":\"{}\"}}", SECRETS_OF_A[0]),
        )
        .await
        .ok();

    let dump = raw_dump(&url).await.unwrap();
    assert!(dump.len() > 1000, "the dump holds the database");
    for secret in SECRETS_OF_A.iter().chain(&["+1 502 555 0199", "Apt 9"]) {
        assert!(
            !contains_plain_or_hex(&dump, secret),
            "{secret} is stored in plaintext"
        );
    }
    assert!(
        contains_plain_or_hex(&dump, "1ZSEALED1"),
        "the dump is readable at all"
    );
}

async fn erasing_a_recipient_leaves_others_alone(b: TestBackend) {
    let (store, url) = store(b).await;
    let t = store.create_tenant("acme").await.unwrap();
    let a1 = store
        .create_shipment(
            t.id,
            shipment_to("1ZA1", SECRETS_OF_A[0], SECRETS_OF_A[1], SECRETS_OF_A[2]),
        )
        .await
        .unwrap();
    let a2 = store
        .create_shipment(
            t.id,
            shipment_to("1ZA2", SECRETS_OF_A[0], SECRETS_OF_A[1], SECRETS_OF_A[2]),
        )
        .await
        .unwrap();
    let other = store
        .create_shipment(
            t.id,
            shipment_to("1ZB1", "Bea Other", "bea@example.org", "1 Main St"),
        )
        .await
        .unwrap();
    // A stored API response that echoed A's shipment.
    assert_eq!(
        store
            .begin_idempotency(t.id, "create-a1", "h")
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );
    store
        .complete_idempotency(t.id, "create-a1", 201, &format!("{{\"id\":\"{}\"}}", a1.id))
        .await
        .unwrap();
    assert_eq!(
        store
            .begin_idempotency(t.id, "create-b", "h")
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );
    store
        .complete_idempotency(
            t.id,
            "create-b",
            201,
            &format!("{{\"id\":\"{}\"}}", other.id),
        )
        .await
        .unwrap();

    let report = store
        .erase_recipient(
            t.id,
            &bitshipper_store::RecipientSelector::Email("ZANZIBAR.Q@example.org".into()),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            report.shipments,
            report.keys_destroyed,
            report.responses_removed
        ),
        (2, 1, 1)
    );
    for id in [a1.id, a2.id] {
        let s = store.get_shipment(t.id, id).await.unwrap().unwrap();
        assert_eq!(s.details.recipient, None);
        assert_eq!(
            s.details.destination.as_ref().and_then(|d| d.line1.clone()),
            None
        );
        assert_eq!(
            s.details
                .destination
                .as_ref()
                .and_then(|d| d.city.clone())
                .as_deref(),
            Some("Louisville"),
            "non-personal fields stay"
        );
    }
    let b_read = store.get_shipment(t.id, other.id).await.unwrap().unwrap();
    assert_eq!(
        b_read.details.recipient, other.details.recipient,
        "other recipients are unaffected"
    );
    assert!(matches!(
        store
            .begin_idempotency(t.id, "create-b", "h")
            .await
            .unwrap(),
        IdempotencyBegin::Replay { .. }
    ));
    assert_eq!(
        store
            .begin_idempotency(t.id, "create-a1", "h")
            .await
            .unwrap(),
        IdempotencyBegin::Started,
        "the response that held A's data is gone"
    );
    let found = store
        .list_shipments(
            t.id,
            &ShipmentFilter {
                recipient_email: Some(SECRETS_OF_A[1].into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(found.is_empty());
    let again = store
        .erase_recipient(t.id, &bitshipper_store::RecipientSelector::Shipment(a1.id))
        .await
        .unwrap();
    assert_eq!(again, Default::default(), "erasing twice is harmless");

    let dump = raw_dump(&url).await.unwrap();
    for secret in SECRETS_OF_A {
        assert!(!contains_plain_or_hex(&dump, secret));
    }
}

async fn keys_rotate_without_losing_data(b: TestBackend) {
    let url = fresh_database_url(b).await.unwrap();
    let dir = std::env::temp_dir().join(format!("bs-rotate-{}", uuid::Uuid::new_v4()));
    let key_file = dir.join("kek.json");
    let open = |url: String, key_file: std::path::PathBuf| async move {
        let provider = bitshipper_store::LocalKeyProvider::load_or_create(&key_file).unwrap();
        let s = Store::connect(&url)
            .await
            .unwrap()
            .with_key_provider(std::sync::Arc::new(provider));
        s.migrate().await.unwrap();
        s
    };
    let store = open(url.clone(), key_file.clone()).await;
    let t = store.create_tenant("acme").await.unwrap();
    let before = store
        .create_shipment(
            t.id,
            shipment_to("1ZR1", "Rot Ation", "rot@example.org", "5 Key St"),
        )
        .await
        .unwrap();

    // Tenant data key rotation: new writes use version 2, old data stays readable.
    let report = store.rotate_tenant_key(t.id).await.unwrap();
    assert_eq!(report.recipient_keys_rewrapped, 1);
    let after = store
        .create_shipment(
            t.id,
            shipment_to("1ZR2", "New Person", "new@example.org", "6 Key St"),
        )
        .await
        .unwrap();
    for s in [&before, &after] {
        assert_eq!(
            store
                .get_shipment(t.id, s.id)
                .await
                .unwrap()
                .unwrap()
                .details
                .recipient,
            s.details.recipient
        );
    }

    // KEK rotation: add a KEK, re-wrap tenant keys, retire the old KEK; everything still opens.
    let mut provider = bitshipper_store::LocalKeyProvider::load_or_create(&key_file).unwrap();
    let old_kek = provider.active_kek_id();
    provider.rotate().unwrap();
    let store = open(url.clone(), key_file.clone()).await;
    assert!(
        store.rewrap_tenant_keys().await.unwrap() >= 3,
        "search key and two data keys"
    );
    provider.retire(&old_kek).unwrap();
    let store = open(url.clone(), key_file.clone()).await;
    for s in [&before, &after] {
        assert_eq!(
            store
                .get_shipment(t.id, s.id)
                .await
                .unwrap()
                .unwrap()
                .details
                .recipient,
            s.details.recipient
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

async fn erasing_a_tenant_destroys_its_keys_and_rows(b: TestBackend) {
    let (store, url) = store(b).await;
    let gone = store.create_tenant("leaving").await.unwrap();
    let stays = store.create_tenant("staying").await.unwrap();
    let key = store
        .create_api_key(gone.id, "k", &[Scope::Admin], None)
        .await
        .unwrap();
    store
        .create_shipment(
            gone.id,
            shipment_to("1ZGONE", SECRETS_OF_A[0], SECRETS_OF_A[1], SECRETS_OF_A[2]),
        )
        .await
        .unwrap();
    let kept = store
        .create_shipment(
            stays.id,
            shipment_to("1ZSTAY", "Bea Other", "bea@example.org", "1 Main St"),
        )
        .await
        .unwrap();
    let report = store.erase_tenant(gone.id).await.unwrap();
    assert_eq!(report.shipments, 1);
    assert!(
        report.keys_destroyed >= 3,
        "search key, data key, recipient key"
    );
    assert!(
        store
            .authenticate_api_key(&key.secret)
            .await
            .unwrap()
            .is_none(),
        "its keys stop working"
    );
    let left = store
        .list_shipments(
            gone.id,
            &ShipmentFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(left.is_empty());
    assert_eq!(
        store
            .get_shipment(stays.id, kept.id)
            .await
            .unwrap()
            .unwrap()
            .details
            .recipient,
        kept.details.recipient
    );
    let dump = raw_dump(&url).await.unwrap();
    for secret in SECRETS_OF_A.iter().chain(&["1ZGONE"]) {
        assert!(!contains_plain_or_hex(&dump, secret), "{secret} survived");
    }
}

/// PostgreSQL only: the application's queries run as a role that row-level security binds, so
/// a query without a tenant sees nothing and one for tenant A never sees tenant B.
#[tokio::test]
async fn row_level_security_is_a_second_wall() {
    let (store, _) = store(TestBackend::Postgres).await;
    let a = store.create_tenant("a").await.unwrap();
    let b = store.create_tenant("b").await.unwrap();
    store
        .create_shipment(a.id, new_shipment("1ZRLSA"))
        .await
        .unwrap();
    store
        .create_shipment(b.id, new_shipment("1ZRLSB"))
        .await
        .unwrap();
    let Backend::Postgres(pool) = store.backend() else {
        unreachable!()
    };
    let mut conn = pool.acquire().await.unwrap();
    let (role, bypass): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(role, "bitshipper_app");
    assert!(
        !bypass,
        "the application role cannot bypass row-level security"
    );
    let unscoped: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM shipments")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(unscoped, 0, "a query that names no tenant sees nothing");
    use sqlx::Connection;
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('bitshipper.tenant_id', $1, true)")
        .bind(a.id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let all_rows: Vec<String> = sqlx::query_scalar("SELECT tracking_number FROM shipments")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        all_rows,
        ["1ZRLSA"],
        "a query without a tenant filter still sees only tenant a"
    );
    let foreign = sqlx::query("UPDATE shipments SET reference = 'x' WHERE tenant_id = $1")
        .bind(b.id.0)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(
        foreign, 0,
        "tenant b's rows cannot be written from tenant a"
    );
    let planted = sqlx::query("INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_at) VALUES ($1, $2, 'x', 'x', 'x', 'read', now())")
        .bind(uuid::Uuid::now_v7())
        .bind(b.id.0)
        .execute(&mut *tx)
        .await;
    assert!(
        planted.is_err(),
        "rows cannot be written into another tenant"
    );
}

fn event_on(tenant: TenantId, tn: &str, day: u32, code: &str) -> TrackingEvent {
    EventInput::parse(
        tenant,
        &json!({"carrier":"ups","tracking_number":tn,"occurred_at":format!("2026-11-{day:02}T10:00:00-05:00"),"raw_code":code}),
        &MappingTable::builtin().unwrap(),
        "",
    )
    .unwrap()
}

async fn retention_drops_old_events_and_personal_data_and_prunes_the_log(b: TestBackend) {
    let (store, url) = store(b).await;
    let log = EventLog::open(&url).await.unwrap();
    let t = store.create_tenant("keeps little").await.unwrap();
    let other = store.create_tenant("keeps all").await.unwrap();
    let old = store
        .create_shipment(
            t.id,
            shipment_to("1ZOLD", SECRETS_OF_A[0], SECRETS_OF_A[1], SECRETS_OF_A[2]),
        )
        .await
        .unwrap();
    let fresh = store
        .create_shipment(
            t.id,
            shipment_to("1ZFRESH", "Bea Other", "bea@example.org", "1 Main St"),
        )
        .await
        .unwrap();
    let untouched = store
        .create_shipment(
            other.id,
            shipment_to("1ZOTHER", "Cy Third", "cy@example.org", "2 Main St"),
        )
        .await
        .unwrap();
    let events = [
        (t.id, event_on(t.id, "1ZOLD", 2, "I")),
        (t.id, event_on(t.id, "1ZOLD", 3, "D")),
        (t.id, event_on(t.id, "1ZFRESH", 24, "I")),
        (other.id, event_on(other.id, "1ZOTHER", 2, "I")),
    ];
    for (tenant, e) in &events {
        log.append(&[(*tenant, serde_json::to_string(e).unwrap())])
            .await
            .unwrap();
    }
    let read = log.read_after(0, 100).await.unwrap();
    assert_eq!(
        store
            .apply_log_entries("processor", &read)
            .await
            .unwrap()
            .applied,
        4
    );

    let policy = bitshipper_store::RetentionPolicy {
        events_days: Some(10),
        personal_data_days: Some(10),
        raw_payload_days: None,
    };
    store.set_retention_policy(t.id, policy).await.unwrap();
    assert_eq!(store.retention_policy(t.id).await.unwrap(), policy);
    let at = "2026-11-26T12:00:00Z".parse().unwrap();
    let report = store.apply_retention(t.id, policy, at).await.unwrap();
    assert_eq!(
        (
            report.events_deleted,
            report.recipients_erased,
            report.recipient_keys_destroyed
        ),
        (2, 1, 1)
    );

    let old_now = store.get_shipment(t.id, old.id).await.unwrap().unwrap();
    assert!(store.list_events(t.id, old.id).await.unwrap().is_empty());
    assert_eq!(
        old_now.state.status,
        Status::Delivered,
        "the folded state stays"
    );
    assert_eq!(old_now.details.recipient, None);
    let fresh_now = store.get_shipment(t.id, fresh.id).await.unwrap().unwrap();
    assert_eq!(fresh_now.details.recipient, fresh.details.recipient);
    assert_eq!(store.list_events(t.id, fresh.id).await.unwrap().len(), 1);
    let other_now = store
        .get_shipment(other.id, untouched.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        other_now.details.recipient, untouched.details.recipient,
        "another tenant's policy is its own"
    );
    assert_eq!(
        store
            .list_events(other.id, untouched.id)
            .await
            .unwrap()
            .len(),
        1
    );

    // The applied part of the log goes; the newest record stays and numbering continues.
    let head = log.head().await.unwrap();
    let total = store
        .run_retention(&log, chrono::Duration::seconds(-60))
        .await
        .unwrap();
    assert_eq!(total.log_records_deleted, 3);
    assert_eq!(log.head().await.unwrap(), head);
    let next = log
        .append(&[(
            t.id,
            serde_json::to_string(&event_on(t.id, "1ZFRESH", 25, "D")).unwrap(),
        )])
        .await
        .unwrap();
    assert_eq!(next, [head + 1]);
    assert_eq!(log.read_after(head, 10).await.unwrap().len(), 1);
    let dump = raw_dump(&url).await.unwrap();
    for secret in SECRETS_OF_A {
        assert!(!contains_plain_or_hex(&dump, secret));
    }
}

async fn models_are_registered_promoted_and_predictions_keep_their_first(b: TestBackend) {
    use bitshipper_store::{NewModel, PredictionWrite};
    let (store, _) = store(b).await;
    let t = store.create_tenant("A").await.unwrap();
    let model = |version: &str, tenant| NewModel {
        version: version.into(),
        tenant_id: tenant,
        trained_from: None,
        trained_to: Some(chrono::Utc::now()),
        metrics: json!({"model": {"auc": 0.71}}),
        feature_schema: vec!["carrier".into(), "service".into()],
        artifact: b"{\"not\": \"a real model\"}",
    };
    store.register_model(&model("v1", None)).await.unwrap();
    store.register_model(&model("v2", None)).await.unwrap();
    store
        .register_model(&model("t1", Some(t.id)))
        .await
        .unwrap();
    assert!(
        store.live_models().await.unwrap().is_empty(),
        "candidates are not live"
    );
    assert!(store.promote_model("v1").await.unwrap());
    assert!(store.promote_model("t1").await.unwrap());
    assert!(
        store.promote_model("v2").await.unwrap(),
        "promoting retires the shared v1 only"
    );
    assert!(!store.promote_model("nope").await.unwrap());
    let live = store.live_models().await.unwrap();
    assert_eq!(live.get(&None).map(String::as_str), Some("v2"));
    assert_eq!(live.get(&Some(t.id)).map(String::as_str), Some("t1"));
    let listed = store.list_models().await.unwrap();
    let status = |v: &str| {
        listed
            .iter()
            .find(|m| m.version == v)
            .unwrap()
            .status
            .clone()
    };
    assert_eq!(
        (status("v1"), status("v2"), status("t1")),
        ("retired".into(), "live".into(), "live".into())
    );
    let (info, bytes) = store.load_model("v2").await.unwrap().unwrap();
    assert_eq!(info.metrics["model"]["auc"], 0.71);
    assert_eq!(info.feature_schema, ["carrier", "service"]);
    assert_eq!(bytes, b"{\"not\": \"a real model\"}");

    // A shipment in transit, scored twice: the latest changes, the first stays.
    let s = store
        .create_shipment(t.id, new_shipment("1ZSCORE"))
        .await
        .unwrap();
    let at = |h: i64| chrono::Utc::now() + chrono::Duration::hours(h);
    let write = |version: &str, h: i64| PredictionWrite {
        shipment_id: s.id,
        model_version: version.into(),
        scored_at: at(0),
        eta_p10: at(h),
        eta_p50: at(h + 5),
        eta_p90: at(h + 10),
        late_risk: Some(0.25),
        reasons: vec!["no scan for 41 hours".into()],
    };
    store
        .save_predictions(t.id, &[write("v1", 10)])
        .await
        .unwrap();
    store
        .save_predictions(t.id, &[write("v2", 20)])
        .await
        .unwrap();
    let stored = store.predictions(t.id, &[s.id]).await.unwrap();
    let p = &stored[&s.id];
    assert_eq!(
        (
            p.first.model_version.as_str(),
            p.latest.model_version.as_str()
        ),
        ("v1", "v2")
    );
    assert_eq!(p.latest.reasons, ["no scan for 41 hours"]);
    assert!(p.first.eta_p50 < p.latest.eta_p50);
    let other = store.create_tenant("B").await.unwrap();
    assert!(store
        .predictions(other.id, &[s.id])
        .await
        .unwrap()
        .is_empty());

    // The scorer's view of a shipment opens no personal data.
    let inputs = store.scoring_inputs(t.id, &[s.id]).await.unwrap();
    assert_eq!(inputs.len(), 1);
    assert!(inputs[0].details.recipient.is_none());
    assert_eq!(
        inputs[0]
            .details
            .metadata
            .get("warehouse")
            .map(String::as_str),
        Some("east")
    );

    // Erasing the tenant removes its predictions and its own models.
    store.erase_tenant(t.id).await.unwrap();
    assert!(store.predictions(t.id, &[s.id]).await.unwrap().is_empty());
    assert!(!store.live_models().await.unwrap().contains_key(&Some(t.id)));
}
