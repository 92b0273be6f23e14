//! `bitshipper sim`: run the simulator into a JSONL file, a running server's API, or straight
//! into the store; and the pieces `demo` reuses (sinks, backfill, the live stream).

use anyhow::Context;
use bitshipper_core::{EventInput, MappingTable, NewShipment, ShipmentInput, TenantId};
use bitshipper_pipeline::LogAppender;
use bitshipper_sim::{write_jsonl, write_line, SimShipment, Simulation, TenantProfile};
use bitshipper_store::Store;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct SimArgs {
    #[command(subcommand)]
    pub mode: SimMode,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Profile {
    Outdoor,
    Books,
}

impl Profile {
    pub fn profile(self) -> TenantProfile {
        match self {
            Profile::Outdoor => TenantProfile::outdoor(),
            Profile::Books => TenantProfile::books(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Write JSON lines to this file (`-` for standard output).
    #[arg(long, conflicts_with_all = ["url", "store"])]
    pub out: Option<PathBuf>,
    /// POST to a running server, e.g. http://127.0.0.1:8080 (needs --key with ingest,write).
    #[arg(long, requires = "key")]
    pub url: Option<String>,
    #[arg(long)]
    pub key: Option<String>,
    /// Write straight into the store named by the settings (creates a tenant).
    #[arg(long)]
    pub store: bool,
}

#[derive(Debug, Subcommand)]
pub enum SimMode {
    /// Generate history, as fast as possible.
    Backfill {
        #[arg(long, default_value_t = 180)]
        days: u32,
        #[arg(long, default_value_t = 200)]
        shipments_per_day: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = Profile::Outdoor)]
        profile: Profile,
        /// Last day of history (default: today); events after now are not sent.
        #[arg(long)]
        end: Option<NaiveDate>,
        #[command(flatten)]
        target: Target,
    },
    /// Stream events in real time.
    Live {
        /// Events per second (approximate).
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Simulated seconds per real second for live shipments' lives.
        #[arg(long, default_value_t = 720.0)]
        speed: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = Profile::Outdoor)]
        profile: Profile,
        /// Stop after this many seconds (default: until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
        #[command(flatten)]
        target: Target,
    },
}

/// Where simulated shipments and events go.
pub enum Sink {
    Jsonl {
        out: Box<dyn Write + Send>,
        tenant: String,
    },
    Api {
        client: reqwest::Client,
        url: String,
        key: String,
    },
    Store {
        store: Store,
        appender: LogAppender,
        mapping: Arc<MappingTable>,
        tenant: TenantId,
    },
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sink::Jsonl { .. } => "Sink::Jsonl",
            Sink::Api { .. } => "Sink::Api",
            Sink::Store { .. } => "Sink::Store",
        })
    }
}

const API_EVENT_BATCH: usize = 1000;
const STORE_EVENT_BATCH: usize = 5000;

impl Sink {
    /// Creates shipments (an existing one is kept as it is, so a rerun resumes).
    pub async fn shipments(&mut self, bodies: &[Value]) -> anyhow::Result<()> {
        match self {
            Sink::Jsonl { out, tenant } => {
                for b in bodies {
                    write_line(out, "shipment", tenant, b)?;
                }
            }
            Sink::Api { client, url, key } => {
                for b in bodies {
                    post_until_answered(
                        client,
                        &format!("{url}/v1/shipments"),
                        key,
                        b,
                        &[201, 409],
                    )
                    .await
                    .context("creating a shipment")?;
                }
            }
            Sink::Store { store, tenant, .. } => {
                for b in bodies {
                    let input: ShipmentInput =
                        serde_json::from_value(b.clone()).context("simulated shipment body")?;
                    let new =
                        NewShipment::try_from(input).context("simulated shipment is invalid")?;
                    match store.create_shipment(*tenant, new).await {
                        Ok(_) | Err(bitshipper_store::StoreError::Conflict(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends events; returns once they are durable (store, API) or written (JSONL).
    pub async fn events(&mut self, events: &[Value]) -> anyhow::Result<()> {
        match self {
            Sink::Jsonl { out, tenant } => {
                for e in events {
                    write_line(out, "event", tenant, e)?;
                }
            }
            Sink::Api { client, url, key } => {
                for chunk in events.chunks(API_EVENT_BATCH) {
                    let body = json!({ "events": chunk });
                    post_until_answered(client, &format!("{url}/v1/events"), key, &body, &[202])
                        .await
                        .context("sending events")?;
                }
            }
            Sink::Store {
                appender,
                mapping,
                tenant,
                ..
            } => {
                for chunk in events.chunks(STORE_EVENT_BATCH) {
                    let mut entries = Vec::with_capacity(chunk.len());
                    for e in chunk {
                        let event = EventInput::parse(*tenant, e, mapping, "")
                            .context("simulated event is invalid")?;
                        entries.push((*tenant, serde_json::to_string(&event)?));
                    }
                    loop {
                        match appender.append(entries.clone()).await {
                            Ok(_) => break,
                            Err(bitshipper_pipeline::PipelineError::Busy { retry_after_secs }) => {
                                tokio::time::sleep(std::time::Duration::from_millis(
                                    200 * u64::from(retry_after_secs),
                                ))
                                .await;
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
        Ok(())
    }

    pub fn flush(&mut self) -> anyhow::Result<()> {
        if let Sink::Jsonl { out, .. } = self {
            out.flush()?;
        }
        Ok(())
    }
}

/// POSTs `body` until the server answers one of `done`; waits out 429 and 503 (as long as
/// `Retry-After` says, else a second) and fails on any other answer.
async fn post_until_answered(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
    done: &[u16],
) -> anyhow::Result<()> {
    loop {
        let r = client.post(url).bearer_auth(key).json(body).send().await?;
        let status = r.status().as_u16();
        if done.contains(&status) {
            return Ok(());
        }
        if !matches!(status, 429 | 503) {
            anyhow::bail!("answered {status}: {}", r.text().await.unwrap_or_default());
        }
        let wait = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
}

/// Events scheduled for the future, released as the wall clock reaches them.
#[derive(Debug, Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(DateTime<Utc>, u64, String)>>,
    next: u64,
}

impl Schedule {
    pub fn push(&mut self, at: DateTime<Utc>, event: &Value) {
        self.next += 1;
        self.heap.push(Reverse((at, self.next, event.to_string())));
    }

    /// Everything due by `now`, in time order.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(Reverse((at, _, _))) = self.heap.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, _, e))) = self.heap.pop() {
                if let Ok(v) = serde_json::from_str(&e) {
                    out.push(v);
                }
            }
        }
        out
    }
}

/// Sends `days` of history ending on `end` for one tenant: shipments and every event that has
/// happened by now; later events go into `schedule` (when given) for the live stream.
///
/// With `since`, only events after it are sent (and the shipments they belong to): a resumed
/// demo catches up on what happened while it was stopped without re-sending all history.
pub async fn backfill(
    sink: &mut Sink,
    sim: &Simulation,
    mut schedule: Option<&mut Schedule>,
    since: Option<DateTime<Utc>>,
    progress: bool,
) -> anyhow::Result<(u64, u64)> {
    let now = Utc::now();
    let total = sim.total_shipments();
    let bar = if progress {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>18} [{bar:40}] {pos}/{len} shipments, {msg} ({eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(sim.generator.profile().name.clone());
    let (mut shipments, mut events) = (0u64, 0u64);
    let mut bodies = Vec::with_capacity(500);
    let mut batch = Vec::with_capacity(5000);
    for s in sim.shipments() {
        shipments += 1;
        let mut any = since.is_none();
        for (at, e) in &s.events {
            if *at > now {
                if let Some(schedule) = schedule.as_deref_mut() {
                    schedule.push(*at, e);
                }
            } else if since.is_none_or(|since| *at > since) {
                batch.push(e.clone());
                any = true;
            }
        }
        if any {
            bodies.push(s.shipment.clone());
        }
        if bodies.len() >= 500 || batch.len() >= 5000 {
            events += batch.len() as u64;
            sink.shipments(&bodies).await?;
            sink.events(&batch).await?;
            bodies.clear();
            batch.clear();
            bar.set_message(format!("{events} events"));
        }
        if shipments % 256 == 0 {
            bar.set_position(shipments);
        }
    }
    events += batch.len() as u64;
    sink.shipments(&bodies).await?;
    sink.events(&batch).await?;
    sink.flush()?;
    bar.finish_with_message(format!("{events} events"));
    Ok((shipments, events))
}

/// A live shipment's life compressed by `speed` and re-timed to start now.
pub fn compress(s: &SimShipment, start: DateTime<Utc>, speed: f64) -> Vec<(DateTime<Utc>, Value)> {
    let Some(t0) = s.events.iter().map(|(t, _)| *t).min() else {
        return Vec::new();
    };
    s.events
        .iter()
        .map(|(t, e)| {
            let offset_ms = ((*t - t0).num_milliseconds() as f64 / speed) as i64;
            let at = start + Duration::milliseconds(offset_ms);
            let mut e = e.clone();
            let offset = e["occurred_at"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| *d.offset())
                .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("utc"));
            e["occurred_at"] = json!(at.with_timezone(&offset).to_rfc3339());
            (at, e)
        })
        .collect()
}

/// One tenant's live traffic: its sink, its simulation, its schedule of future events.
#[derive(Debug)]
pub struct LiveStream<'a> {
    pub sink: Sink,
    pub sim: &'a Simulation,
    pub schedule: Schedule,
    /// New live shipments per second are started to reach about this many events per second.
    pub rate: f64,
    /// Index of the next live shipment (kept across runs so tracking numbers never repeat).
    pub next_index: u64,
    owed: f64,
    warmed: bool,
}

impl<'a> LiveStream<'a> {
    pub fn new(
        sink: Sink,
        sim: &'a Simulation,
        schedule: Schedule,
        rate: f64,
        next_index: u64,
    ) -> Self {
        Self {
            sink,
            sim,
            schedule,
            rate,
            next_index,
            owed: 0.0,
            warmed: false,
        }
    }
}

/// Streams events until `stop` turns true: due events from each stream's schedule, plus new
/// live shipments whose lives run `speed` times faster than real time. Returns events sent.
pub async fn live(
    streams: &mut [LiveStream<'_>],
    speed: f64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    const EVENTS_PER_SHIPMENT: f64 = 9.0;
    // About four days from label to delivery.
    const TYPICAL_LIFE_SECS: f64 = 4.0 * 86_400.0;
    let tick = std::time::Duration::from_millis(250);
    let mut sent = 0u64;
    let mut interval = tokio::time::interval(tick);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        // The tick's work is abandoned when a stop arrives: a write waiting on a busy store
        // must not hold up Ctrl-C.
        let work = async {
            let mut sent_now = 0u64;
            let now = Utc::now();
            for stream in streams.iter_mut() {
                if !stream.warmed {
                    // Start with shipments already part-way through their (compressed) lives, so
                    // the stream runs at its rate from the first second instead of ramping up.
                    stream.warmed = true;
                    let life = TYPICAL_LIFE_SECS / speed;
                    let n = (stream.rate / EVENTS_PER_SHIPMENT * life).round() as u64;
                    let mut bodies = Vec::new();
                    for k in 0..n {
                        let start = now
                            - Duration::milliseconds(
                                (life * 1000.0 * (k as f64 + 0.5) / n as f64) as i64,
                            );
                        let s = stream
                            .sim
                            .generator
                            .shipment(stream.next_index, now.date_naive());
                        stream.next_index += 1;
                        bodies.push(s.shipment.clone());
                        for (at, e) in compress(&s, start, speed) {
                            stream.schedule.push(at, &e);
                        }
                    }
                    stream.sink.shipments(&bodies).await?;
                }
                stream.owed += stream.rate / EVENTS_PER_SHIPMENT * tick.as_secs_f64();
                let mut bodies = Vec::new();
                while stream.owed >= 1.0 {
                    stream.owed -= 1.0;
                    let s = stream
                        .sim
                        .generator
                        .shipment(stream.next_index, now.date_naive());
                    stream.next_index += 1;
                    bodies.push(s.shipment.clone());
                    for (at, e) in compress(&s, now, speed) {
                        stream.schedule.push(at, &e);
                    }
                }
                if !bodies.is_empty() {
                    stream.sink.shipments(&bodies).await?;
                }
                let due = stream.schedule.due(now);
                if !due.is_empty() {
                    sent_now += due.len() as u64;
                    stream.sink.events(&due).await?;
                    stream.sink.flush()?;
                }
            }
            anyhow::Ok(sent_now)
        };
        tokio::select! {
            r = work => sent += r?,
            _ = stopped(stop.clone()) => break,
        }
    }
    Ok(sent)
}

/// Resolves once `stop` holds true.
pub async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// `bitshipper sim ...`
pub async fn run(args: SimArgs, settings: crate::settings::Settings) -> anyhow::Result<()> {
    match args.mode {
        SimMode::Backfill {
            days,
            shipments_per_day,
            seed,
            profile,
            end,
            target,
        } => {
            let end = end.unwrap_or_else(|| Utc::now().date_naive());
            let start = end - Duration::days(i64::from(days.max(1)) - 1);
            let sim = Simulation::new(seed, profile.profile(), start, days, shipments_per_day)?;
            let (mut sink, app) = open_target(&target, &settings, &sim).await?;
            let started = std::time::Instant::now();
            let (shipments, events) = if let Sink::Jsonl { out, tenant } = &mut sink {
                // The fast path: straight from the generator to the file.
                let now = Utc::now();
                let bar = ProgressBar::new(sim.total_shipments());
                let (mut n, mut e) = (0u64, 0u64);
                for s in sim.shipments() {
                    e += write_jsonl(out, tenant, &s, now)?;
                    n += 1;
                    if n % 1000 == 0 {
                        bar.set_position(n);
                    }
                }
                out.flush()?;
                bar.finish_and_clear();
                (n, e)
            } else {
                backfill(&mut sink, &sim, None, None, true).await?
            };
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "{shipments} shipments, {events} events in {secs:.1} s ({:.0} events/s)",
                events as f64 / secs
            );
            if let Some(app) = app {
                app.finish().await?;
            }
            Ok(())
        }
        SimMode::Live {
            rate,
            speed,
            seed,
            profile,
            duration,
            target,
        } => {
            let today = Utc::now().date_naive();
            let sim = Simulation::new(seed, profile.profile(), today, 1, 0)?;
            let (sink, app) = open_target(&target, &settings, &sim).await?;
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                match duration {
                    Some(d) => tokio::time::sleep(std::time::Duration::from_secs(d)).await,
                    None => crate::app::shutdown_signal().await,
                }
                let _ = tx.send(true);
            });
            let mut streams = [LiveStream::new(
                sink,
                &sim,
                Schedule::default(),
                rate,
                50_000_000 + seed * 1_000_000,
            )];
            let sent = live(&mut streams, speed, rx).await?;
            eprintln!("{sent} events sent");
            if let Some(app) = app {
                app.finish().await?;
            }
            Ok(())
        }
    }
}

/// An in-process application used by `--store`, stopped once its work is applied.
pub struct Embedded {
    pub app: crate::app::RunningApp,
}

impl Embedded {
    async fn finish(self) -> anyhow::Result<()> {
        self.app
            .wait_applied(std::time::Duration::from_secs(600))
            .await;
        self.app.stop().await
    }
}

async fn open_target(
    target: &Target,
    settings: &crate::settings::Settings,
    sim: &Simulation,
) -> anyhow::Result<(Sink, Option<Embedded>)> {
    let tenant = sim.generator.profile().name.clone();
    if let Some(path) = &target.out {
        let out: Box<dyn Write + Send> = if path.as_os_str() == "-" {
            Box::new(std::io::BufWriter::with_capacity(
                1 << 20,
                std::io::stdout(),
            ))
        } else {
            Box::new(std::io::BufWriter::with_capacity(
                1 << 20,
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            ))
        };
        return Ok((Sink::Jsonl { out, tenant }, None));
    }
    if let Some(url) = &target.url {
        let key = target.key.clone().context("--key is required with --url")?;
        return Ok((
            Sink::Api {
                client: reqwest::Client::new(),
                url: url.trim_end_matches('/').to_string(),
                key,
            },
            None,
        ));
    }
    if target.store {
        let mut s = settings.clone();
        s.listen = "127.0.0.1:0".into();
        let app = crate::app::RunningApp::start(s).await?;
        let (t, key) = crate::admin::create_tenant(app.store(), &tenant).await?;
        eprintln!(
            "tenant {} ({}) created; admin key (shown once): {}",
            t.name, t.id, key.secret
        );
        let sink = Sink::Store {
            store: app.store().clone(),
            appender: app.appender(),
            mapping: Arc::new(MappingTable::builtin()?),
            tenant: t.id,
        };
        return Ok((sink, Some(Embedded { app })));
    }
    anyhow::bail!("choose a target: --out FILE, --url URL --key KEY, or --store")
}
