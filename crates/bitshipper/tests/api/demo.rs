//! `bitshipper demo` end to end: a living platform from an empty directory, live events, a
//! clean stop on Ctrl-C and a resume; and `sim backfill` writing the same bytes for a seed.

use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_bitshipper");

async fn start_demo(dir: &std::path::Path) -> (Child, String, Vec<String>) {
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--days",
            "4",
            "--shipments-per-day",
            "40",
            "--rate",
            "40",
        ])
        .arg("--data")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(
            std::fs::File::create(dir.with_extension("stderr.log"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .env("RUST_LOG", "info,sqlx=warn")
        .kill_on_drop(true)
        .spawn()
        .expect("demo starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    let base = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.expect("read") {
            seen.push(line.clone());
            if let Some(url) = line.strip_prefix("BitShipper demo is live at ") {
                return url.trim().to_string();
            }
        }
        panic!("demo exited early: {seen:?}");
    })
    .await
    .expect("demo goes live within two minutes");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base, seen)
}

async fn interrupt(mut child: Child) {
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("stops")
        .expect("wait");
    assert!(exit.success(), "demo exits cleanly on Ctrl-C: {exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_lives_stops_cleanly_and_resumes() {
    let dir = std::env::temp_dir()
        .join("bitshipper-tests")
        .join(format!("demo-{}", uuid::Uuid::new_v4().simple()));
    let (child, base, output) = start_demo(&dir).await;
    assert!(
        output.iter().any(|l| l.contains("bsk_live_")),
        "keys are printed on the first run"
    );
    let keys = std::fs::read_to_string(dir.join("demo-keys.txt")).unwrap();
    let key = keys
        .lines()
        .find(|l| !l.starts_with('#'))
        .and_then(|l| l.split('\t').nth(2))
        .unwrap()
        .to_string();
    let client = reqwest::Client::new();

    let mut statuses = std::collections::BTreeSet::new();
    let mut count = 0;
    let mut path = format!("{base}/v1/shipments?limit=200");
    loop {
        let page: Value = client
            .get(&path)
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for s in page["data"].as_array().unwrap() {
            statuses.insert(s["status"].as_str().unwrap().to_string());
            count += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("{base}/v1/shipments?limit=200&cursor={c}"),
            None => break,
        }
    }
    assert!(count > 100, "only {count} shipments");
    for s in ["delivered", "in_transit"] {
        assert!(statuses.contains(s), "{s} missing from {statuses:?}");
    }

    let head = || async {
        let r: Value = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["log_head"].as_i64().unwrap()
    };
    let before = head().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while head().await <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "live events keep arriving"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    interrupt(child).await;

    let (child, _, output) = start_demo(&dir).await;
    assert!(output.iter().any(|l| l.contains("Resuming")), "{output:?}");
    assert!(
        !output
            .iter()
            .any(|l| l.contains("bsk_live_") && !l.contains("Bearer")),
        "keys are shown only once"
    );
    interrupt(child).await;
}

#[tokio::test]
async fn sim_backfill_writes_the_same_bytes_for_a_seed() {
    let dir = std::env::temp_dir()
        .join("bitshipper-tests")
        .join(format!("sim-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |name: &str, seed: &str| {
        let out = dir.join(name);
        let status = std::process::Command::new(BIN)
            .args([
                "sim",
                "backfill",
                "--days",
                "3",
                "--shipments-per-day",
                "15",
                "--end",
                "2026-06-01",
                "--seed",
                seed,
                "--out",
            ])
            .arg(&out)
            .stderr(Stdio::null())
            .status()
            .expect("sim runs");
        assert!(status.success());
        std::fs::read(out).unwrap()
    };
    let a = run("a.jsonl", "5");
    assert_eq!(a, run("b.jsonl", "5"));
    assert_ne!(a, run("c.jsonl", "6"));
    let first: Value = serde_json::from_slice(a.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["kind"], "shipment");
}
