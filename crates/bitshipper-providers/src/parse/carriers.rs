//! Carrier tracking API responses: UPS Track, FedEx Track, USPS Tracking v3, DHL Unified
//! Shipment Tracking. Read by `bitshipper import --format <id>` (and by polling later).

use super::{location, Context, Found, Node};
use crate::{ProviderError, ProviderEvent};

/// A local time given with its offset as a separate field: the wall-clock reading, in that
/// offset (when the field is absent or unreadable, the zone-derived offset stays).
fn with_offset(
    local: chrono::DateTime<chrono::FixedOffset>,
    offset: Option<String>,
) -> chrono::DateTime<chrono::FixedOffset> {
    match offset.and_then(|o| crate::time::parse_offset(&o)) {
        Some(offset) => chrono::TimeZone::from_local_datetime(&offset, &local.naive_local())
            .single()
            .unwrap_or(local),
        None => local,
    }
}

/// DHL: `statusCode`, with `/status` when `status` is a code token (`WC`, `OH`), not a sentence.
fn dhl_code(status_code: Option<String>, status: Option<String>) -> Option<String> {
    let token = status.filter(|s| {
        s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    });
    match (status_code, token) {
        (Some(code), Some(t)) => Some(format!("{code}/{t}")),
        (Some(code), None) => Some(code),
        (None, t) => t,
    }
}

/// UPS Track API: `trackResponse.shipment[].package[].activity[]`. Time: `date` + `time` with
/// `gmtOffset` when given, else the activity location's zone. Raw code: `status.type`, or
/// `status.type/status.code`.
pub(crate) fn ups(cx: &Context, root: Node) -> Result<Vec<ProviderEvent>, ProviderError> {
    let root = root.object()?;
    let response = root.req("trackResponse")?.object()?;
    let mut out = Vec::new();
    for shipment in response.items("shipment")? {
        let shipment = shipment.object()?;
        for package in shipment.items("package")? {
            let package = package.object()?;
            let tracking_number = package.req_text("trackingNumber")?;
            for a in package.items("activity")? {
                let a = a.object()?;
                let loc = match a.get("location").and_then(|l| l.get("address")) {
                    Some(addr) => {
                        addr.location(["city", "stateProvince", "postalCode", "countryCode"])?
                    }
                    None => None,
                };
                let date = a.req_text("date")?;
                let time = a.req_text("time")?;
                let occurred_at = with_offset(
                    crate::time::parse_compact(&date, &time, loc.as_ref())
                        .map_err(|r| ProviderError::at(format!("{}.date", a.path()), r))?,
                    a.opt_text("gmtOffset")?,
                );
                let status = a.req("status")?.object()?;
                out.push(cx.event(Found {
                    carrier: "ups".into(),
                    tracking_number: tracking_number.clone(),
                    occurred_at,
                    raw_code: super::aggregators_composite(
                        status.req_text("type")?,
                        status.opt_text("code")?,
                    ),
                    message: status.opt_text("description")?,
                    location: loc,
                    event_id: None,
                }));
            }
        }
    }
    Ok(out)
}

/// FedEx Track API: `output.completeTrackResults[].trackResults[].scanEvents[]`. Raw code:
/// `eventType`, else `derivedStatusCode`.
pub(crate) fn fedex(cx: &Context, root: Node) -> Result<Vec<ProviderEvent>, ProviderError> {
    let root = root.object()?;
    let output = root.req("output")?.object()?;
    let mut out = Vec::new();
    for complete in output.items("completeTrackResults")? {
        let complete = complete.object()?;
        let outer_number = complete.opt_text("trackingNumber")?;
        for result in complete.items("trackResults")? {
            let result = result.object()?;
            let tracking_number = match result
                .get("trackingNumberInfo")
                .map(|i| i.opt_text("trackingNumber"))
                .transpose()?
                .flatten()
            {
                Some(n) => n,
                None => outer_number.clone().ok_or_else(|| {
                    ProviderError::at(
                        format!("{}.trackingNumberInfo.trackingNumber", result.path()),
                        "is required",
                    )
                })?,
            };
            for e in result.items("scanEvents")? {
                let e = e.object()?;
                let loc = match e.get("scanLocation") {
                    Some(l) => {
                        l.location(["city", "stateOrProvinceCode", "postalCode", "countryCode"])?
                    }
                    None => None,
                };
                out.push(cx.event(Found {
                    carrier: "fedex".into(),
                    tracking_number: tracking_number.clone(),
                    occurred_at: e.time("date", loc.as_ref())?,
                    raw_code: match e.opt_text("eventType")? {
                        Some(t) => t,
                        None => e.req_text("derivedStatusCode")?,
                    },
                    message: e.opt_text("eventDescription")?,
                    location: loc,
                    event_id: None,
                }));
            }
        }
    }
    Ok(out)
}

/// USPS Tracking v3: `trackingEvents[]` with local `eventTimestamp` (and `GMTOffset` when
/// given). Raw code: `eventCode`.
pub(crate) fn usps(cx: &Context, root: Node) -> Result<Vec<ProviderEvent>, ProviderError> {
    let root = root.object()?;
    let tracking_number = root.req_text("trackingNumber")?;
    let mut out = Vec::new();
    for e in root.items("trackingEvents")? {
        let e = e.object()?;
        let loc = e.location(["eventCity", "eventState", "eventZIP", "eventCountry"])?;
        out.push(cx.event(Found {
            carrier: "usps".into(),
            tracking_number: tracking_number.clone(),
            occurred_at: with_offset(
                e.time("eventTimestamp", loc.as_ref())?,
                e.opt_text("GMTOffset")?,
            ),
            raw_code: e.req_text("eventCode")?,
            message: e.opt_text("eventType")?,
            location: loc,
            event_id: None,
        }));
    }
    Ok(out)
}

/// DHL Shipment Tracking - Unified: `shipments[].events[]` (the shipment's own `status` repeats
/// the newest event and is not another). Raw code: `statusCode`, or `statusCode/status` when
/// `status` is a code token.
pub(crate) fn dhl(cx: &Context, root: Node) -> Result<Vec<ProviderEvent>, ProviderError> {
    let root = root.object()?;
    root.req("shipments")?;
    let mut out = Vec::new();
    for shipment in root.items("shipments")? {
        let shipment = shipment.object()?;
        let tracking_number = shipment.req_text("id")?;
        for e in shipment.items("events")? {
            let e = e.object()?;
            let loc = match e.get("location").and_then(|l| l.get("address")) {
                Some(a) => location(
                    a.opt_text("addressLocality")?,
                    None,
                    a.opt_text("postalCode")?,
                    a.opt_text("countryCode")?,
                ),
                None => None,
            };
            out.push(cx.event(Found {
                carrier: "dhl".into(),
                tracking_number: tracking_number.clone(),
                occurred_at: e.time("timestamp", loc.as_ref())?,
                raw_code: dhl_code(e.opt_text("statusCode")?, e.opt_text("status")?).ok_or_else(
                    || ProviderError::at(format!("{}.statusCode", e.path()), "is required"),
                )?,
                message: e.opt_text("description")?.or(e.opt_text("status")?),
                location: loc,
                event_id: None,
            }));
        }
    }
    Ok(out)
}
