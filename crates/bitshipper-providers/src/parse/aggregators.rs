//! Aggregator webhooks: EasyPost, Shippo, AfterShip, 17TRACK, ShipEngine. Each may carry a whole
//! tracking history; every history entry becomes an event.

use super::{aggregators_composite as composite, location, Context, Found, Node};
use crate::carriers::normalize;
use crate::{ProviderError, ProviderEvent};

/// EasyPost: an `Event` envelope whose `result` is a Tracker, or a bare Tracker; one event per
/// `tracking_details` entry. Raw code: `status`, or `status/status_detail`.
pub(crate) fn easypost(cx: &Context, root: Node) -> Result<Vec<ProviderEvent>, ProviderError> {
    let root = root.object()?;
    let tracker = match root.get("result") {
        Some(r) => r.object()?,
        None => root,
    };
    let carrier = normalize(&tracker.req_text("carrier")?);
    let tracking_number = tracker.req_text("tracking_code")?;
    let mut out = Vec::new();
    for d in tracker.items("tracking_details")? {
        let d = d.object()?;
        let loc = match d.get("tracking_location") {
            Some(l) => l.location(["city", "state", "zip", "country"])?,
            None => None,
        };
        out.push(cx.event(Found {
            carrier: carrier.clone(),
            tracking_number: tracking_number.clone(),
            occurred_at: d.time("datetime", loc.as_ref())?,
            raw_code: composite(d.req_text("status")?, d.opt_text("status_detail")?),
            message: d.opt_text("message")?,
            location: loc,
            event_id: None,
        }));
    }
    Ok(out)
}

/// Shippo `track_updated`: `data.tracking_history` (or the single `data.tracking_status`).
/// Raw code: `status`, or `status/substatus.code`.
pub(crate) fn shippo(cx: &Context, root: Node) -> Result<Vec<ProviderEvent>, ProviderError> {
    let root = root.object()?;
    let data = match root.get("data") {
        Some(d) => d.object()?,
        None => root,
    };
    let carrier = normalize(&data.req_text("carrier")?);
    let tracking_number = data.req_text("tracking_number")?;
    let mut entries = data.items("tracking_history")?;
    if entries.is_empty() {
        entries.push(data.req("tracking_status")?);
    }
    let mut out = Vec::new();
    for e in entries {
        let e = e.object()?;
        let loc = match e.get("location") {
            Some(l) => l.location(["city", "state", "zip", "country"])?,
            None => None,
        };
        let detail = match e.get("substatus") {
            Some(s) if s.value.is_object() => s.opt_text("code")?,
            Some(s) => Some(s.text()?),
            None => None,
        };
        out.push(cx.event(Found {
            carrier: carrier.clone(),
            tracking_number: tracking_number.clone(),
            // Documented as UTC; test-mode examples omit the Z, so no location zone applies.
            occurred_at: e.time("status_date", None)?,
            raw_code: composite(e.req_text("status")?, detail),
            message: e.opt_text("status_details")?,
            location: loc,
            event_id: e.opt_text("object_id")?,
        }));
    }
    Ok(out)
}

/// AfterShip: `msg` (legacy) or `data.tracking`; one event per checkpoint. Raw code: the
/// checkpoint's `subtag` (which begins with its tag), else its `tag`.
pub(crate) fn aftership(cx: &Context, root: Node) -> Result<Vec<ProviderEvent>, ProviderError> {
    let root = root.object()?;
    let tracking = match (root.get("msg"), root.get("data")) {
        (Some(m), _) => m.object()?,
        (None, Some(d)) => match d.get("tracking") {
            Some(t) => t.object()?,
            None => d.object()?,
        },
        (None, None) => return Err(ProviderError::at("$.msg", "is required")),
    };
    let tracking_number = tracking.req_text("tracking_number")?;
    let tracking_slug = tracking.opt_text("slug")?;
    let mut out = Vec::new();
    for c in tracking.items("checkpoints")? {
        let c = c.object()?;
        let country = match c.opt_text("country_iso3")? {
            Some(c) => Some(c),
            None => c.opt_text("country_region")?,
        };
        let loc = location(
            c.opt_text("city")?,
            c.opt_text("state")?,
            c.opt_text("zip")?,
            country,
        );
        let slug = c
            .opt_text("slug")?
            .or_else(|| tracking_slug.clone())
            .ok_or_else(|| ProviderError::at(format!("{}.slug", tracking.path()), "is required"))?;
        let code = match c.opt_text("subtag")? {
            Some(s) => s,
            None => c.req_text("tag")?,
        };
        out.push(cx.event(Found {
            carrier: normalize(&slug),
            tracking_number: tracking_number.clone(),
            occurred_at: c.time("checkpoint_time", loc.as_ref())?,
            raw_code: code,
            message: c.opt_text("message")?,
            location: loc,
            event_id: None,
        }));
    }
    Ok(out)
}

/// 17TRACK carrier numbers of the carriers BitShipper names itself.
fn seventeen_track_carrier(code: &str) -> String {
    match code.trim() {
        "100002" => "ups".into(),
        "100003" => "fedex".into(),
        "21051" => "usps".into(),
        "100001" | "7041" | "7047" | "7048" => "dhl".into(),
        other => format!("17track-{other}"),
    }
}

/// 17TRACK v2 `TRACKING_UPDATED`: `data.track_info.tracking.providers[].events[]`. Raw code:
/// the event's `sub_status`, else its `stage`.
pub(crate) fn seventeen_track(
    cx: &Context,
    root: Node,
) -> Result<Vec<ProviderEvent>, ProviderError> {
    let root = root.object()?;
    let data = root.req("data")?.object()?;
    let tracking_number = data.req_text("number")?;
    let carrier = seventeen_track_carrier(&data.req("carrier")?.text()?);
    let info = data.req("track_info")?.object()?;
    let tracking = info.req("tracking")?.object()?;
    let mut out = Vec::new();
    for provider in tracking.items("providers")? {
        let provider = provider.object()?;
        for e in provider.items("events")? {
            let e = e.object()?;
            let loc = match e.get("address") {
                Some(a) => a.location(["city", "state", "postal_code", "country"])?,
                None => None,
            };
            let occurred_at = match e.get("time_iso") {
                Some(_) => e.time("time_iso", loc.as_ref())?,
                None => e.time("time_utc", loc.as_ref())?,
            };
            let code = match e.opt_text("sub_status")? {
                Some(s) => s,
                None => e.req_text("stage")?,
            };
            out.push(cx.event(Found {
                carrier: carrier.clone(),
                tracking_number: tracking_number.clone(),
                occurred_at,
                raw_code: code,
                message: e.opt_text("description")?,
                location: loc,
                event_id: None,
            }));
        }
    }
    Ok(out)
}

/// ShipEngine / ShipStation `API_TRACK`: `data.events[]`. Raw code: `status_code`, or
/// `status_code/status_detail_code`.
pub(crate) fn shipengine(cx: &Context, root: Node) -> Result<Vec<ProviderEvent>, ProviderError> {
    let root = root.object()?;
    let data = root.req("data")?.object()?;
    let tracking_number = data.req_text("tracking_number")?;
    let carrier_name = match data.opt_text("carrier_code")? {
        Some(c) => c,
        None => data.req_text("carrier_id")?,
    };
    let carrier = normalize(&carrier_name);
    let mut out = Vec::new();
    for e in data.items("events")? {
        let e = e.object()?;
        let loc = e.location([
            "city_locality",
            "state_province",
            "postal_code",
            "country_code",
        ])?;
        out.push(cx.event(Found {
            carrier: carrier.clone(),
            tracking_number: tracking_number.clone(),
            occurred_at: e.time("occurred_at", loc.as_ref())?,
            raw_code: composite(
                e.req_text("status_code")?,
                e.opt_text("status_detail_code")?,
            ),
            message: e.opt_text("description")?,
            location: loc,
            event_id: None,
        }));
    }
    Ok(out)
}
