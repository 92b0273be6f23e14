//! Tracking events: the JSON clients send, its validation into a normalized `TrackingEvent`, and
//! event identity.

use crate::error::{CoreError, FieldErrors};
use crate::ids::{EventKey, TenantId};
use crate::mapping::MappingTable;
use crate::status::{Reason, Status};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub const MAX_TRACKING_NUMBER_LEN: usize = 64;
pub const MAX_CARRIER_LEN: usize = 32;
pub const MAX_TEXT_LEN: usize = 1024;
pub const MAX_CODE_LEN: usize = 64;

/// Where an event happened. Every part is optional; carriers rarely send all of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2 country code, upper case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
}

impl Location {
    /// Stable text form used in event identity.
    fn identity_text(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}",
            self.city.as_deref().unwrap_or(""),
            self.region.as_deref().unwrap_or(""),
            self.country.as_deref().unwrap_or(""),
            self.postal_code.as_deref().unwrap_or(""),
            self.lat.map(|v| format!("{v:.5}")).unwrap_or_default(),
            self.lon.map(|v| format!("{v:.5}")).unwrap_or_default(),
        )
    }
}

/// The event JSON accepted by `POST /v1/events` (documentation shape; parsing is field by field
/// in [`EventInput::parse`] so every problem names its field).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"carrier":"ups","tracking_number":"1Z999AA10123456784","occurred_at":"2026-11-20T14:03:00-05:00","status":"in_transit","reason":"arrived_at_facility","raw_code":"I","message":"Arrived at Facility","location":{"city":"Louisville","region":"KY","country":"US","postal_code":"40213","lat":38.17,"lon":-85.73}}))]
pub struct EventInput {
    /// Carrier code, e.g. `ups`, `fedex`, `usps`, `dhl` (lower case letters, digits, `_`, `-`).
    pub carrier: String,
    pub tracking_number: String,
    /// RFC 3339 timestamp with a UTC offset (`Z` or `±hh:mm`).
    pub occurred_at: String,
    /// Canonical status; may be omitted when `raw_code` maps to one for this carrier.
    pub status: Option<Status>,
    pub reason: Option<Reason>,
    /// The carrier's own status code, kept as sent.
    pub raw_code: Option<String>,
    pub message: Option<String>,
    pub location: Option<Location>,
    /// The provider's id for this event; makes redelivery idempotent.
    pub event_id: Option<String>,
}

/// A validated, normalized tracking event as it travels through the log and the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrackingEvent {
    pub event_key: EventKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub carrier: String,
    pub tracking_number: String,
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: DateTime<FixedOffset>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// The provider payload this event was read from (`GET /v1/raw-payloads/{id}`), when it
    /// came through a webhook or an import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = "uuid")]
    pub raw_payload_id: Option<uuid::Uuid>,
}

const EVENT_FIELDS: &[&str] = &[
    "carrier",
    "tracking_number",
    "occurred_at",
    "status",
    "reason",
    "raw_code",
    "message",
    "location",
    "event_id",
];
const LOCATION_FIELDS: &[&str] = &["city", "region", "country", "postal_code", "lat", "lon"];

impl EventInput {
    /// Validates one event object and normalizes it. `prefix` is prepended to field names in
    /// errors (e.g. `events[3].`).
    pub fn parse(
        tenant: TenantId,
        value: &Value,
        mapping: &MappingTable,
        prefix: &str,
    ) -> Result<TrackingEvent, CoreError> {
        let mut errors = FieldErrors::default();
        let Some(obj) = value.as_object() else {
            return Err(CoreError::field(
                whole_field(prefix),
                "must be a JSON object",
            ));
        };
        for key in obj.keys() {
            if !EVENT_FIELDS.contains(&key.as_str()) {
                errors.push(format!("{prefix}{key}"), "unknown field");
            }
        }
        let f = |name: &str| format!("{prefix}{name}");
        let carrier = parse_carrier(obj.get("carrier"), &f("carrier"), &mut errors);
        let tracking_number = parse_tracking_number(
            obj.get("tracking_number"),
            &f("tracking_number"),
            &mut errors,
        );
        let occurred_at = parse_timestamp(obj.get("occurred_at"), &f("occurred_at"), &mut errors);
        let raw_code = opt_string(
            obj.get("raw_code"),
            &f("raw_code"),
            MAX_CODE_LEN,
            &mut errors,
        );
        let message = opt_string(obj.get("message"), &f("message"), MAX_TEXT_LEN, &mut errors);
        let event_id = opt_string(obj.get("event_id"), &f("event_id"), 128, &mut errors);
        let status = opt_enum::<Status>(obj.get("status"), &f("status"), &mut errors);
        let reason = opt_enum::<Reason>(obj.get("reason"), &f("reason"), &mut errors);
        let location = parse_location(obj.get("location"), &f("location"), &mut errors);

        // Status: explicit, else from the carrier's raw code.
        let mapped = match (&carrier, &raw_code) {
            (Some(c), Some(code)) => mapping.lookup(c, code),
            _ => None,
        };
        let status = match (status, mapped) {
            (Some(Some(s)), _) => Some(s),
            (Some(None), Some(m)) => Some(m.status),
            (Some(None), None) => {
                if obj.get("status").is_none_or(Value::is_null) {
                    match (&raw_code, &carrier) {
                        (None, _) => errors.push(
                            f("status"),
                            "is required when raw_code is not given",
                        ),
                        (Some(code), Some(c)) => errors.push(
                            f("raw_code"),
                            format!(
                                "code '{code}' is not mapped for carrier '{c}'; send an explicit status"
                            ),
                        ),
                        (Some(_), None) => {}
                    }
                }
                None
            }
            (None, _) => None,
        };
        let reason = match reason {
            Some(Some(r)) => Some(r),
            Some(None) => mapped.and_then(|m| m.reason),
            None => None,
        };

        if let (
            Some(carrier),
            Some(tracking_number),
            Some(occurred_at),
            Some(status),
            Some(location),
        ) = (carrier, tracking_number, occurred_at, status, location)
        {
            if errors.is_empty() {
                let event_key = event_key(
                    tenant,
                    &carrier,
                    &tracking_number,
                    occurred_at,
                    raw_code.as_deref(),
                    location.as_ref(),
                    event_id.as_deref(),
                );
                return Ok(TrackingEvent {
                    event_key,
                    event_id,
                    carrier,
                    tracking_number,
                    occurred_at,
                    status,
                    reason,
                    raw_code,
                    message,
                    location,
                    raw_payload_id: None,
                });
            }
        }
        if errors.is_empty() {
            errors.push(whole_field(prefix), "is invalid");
        }
        Err(CoreError::Invalid(errors.0))
    }
}

/// The name of the whole event in errors: `events[3]` from the prefix `events[3].`, else `body`.
fn whole_field(prefix: &str) -> String {
    match prefix.trim_end_matches('.') {
        "" => "body".to_string(),
        name => name.to_string(),
    }
}

/// Event identity: tenant, carrier and tracking number, plus the provider's event id when
/// given, else the event's instant, raw code and location.
pub fn event_key(
    tenant: TenantId,
    carrier: &str,
    tracking_number: &str,
    occurred_at: DateTime<FixedOffset>,
    raw_code: Option<&str>,
    location: Option<&Location>,
    event_id: Option<&str>,
) -> EventKey {
    let mut h = Sha256::new();
    h.update(tenant.0.as_bytes());
    h.update(b"\x1f");
    h.update(carrier.as_bytes());
    h.update(b"\x1f");
    // The tracking number is part of every key, so a key always belongs to one shipment.
    h.update(tracking_number.as_bytes());
    h.update(b"\x1f");
    match event_id {
        Some(id) => {
            h.update(b"id\x1f");
            h.update(id.as_bytes());
        }
        None => {
            h.update(b"fields\x1f");
            h.update(
                occurred_at
                    .with_timezone(&Utc)
                    .to_rfc3339_opts(SecondsFormat::Micros, true)
                    .as_bytes(),
            );
            h.update(b"\x1f");
            h.update(raw_code.unwrap_or("").as_bytes());
            h.update(b"\x1f");
            h.update(
                location
                    .map(Location::identity_text)
                    .unwrap_or_default()
                    .as_bytes(),
            );
        }
    }
    EventKey(hex::encode(h.finalize()))
}

/// Lower-case carrier code: 1–32 of `a-z0-9_-`.
pub fn normalize_carrier(raw: &str) -> Result<String, String> {
    let c = raw.trim().to_ascii_lowercase();
    if c.is_empty() || c.len() > MAX_CARRIER_LEN {
        return Err(format!("must be 1 to {MAX_CARRIER_LEN} characters"));
    }
    if !c
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    {
        return Err("may contain only letters, digits, '_' and '-'".into());
    }
    Ok(c)
}

/// Upper-case tracking number without spaces: 1–64 printable ASCII characters.
pub fn normalize_tracking_number(raw: &str) -> Result<String, String> {
    let t: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if t.is_empty() || t.len() > MAX_TRACKING_NUMBER_LEN {
        return Err(format!("must be 1 to {MAX_TRACKING_NUMBER_LEN} characters"));
    }
    if !t.chars().all(|c| c.is_ascii_graphic()) {
        return Err("may contain only printable ASCII characters".into());
    }
    Ok(t)
}

/// RFC 3339 with an explicit offset; a timestamp without one is refused with a hint.
pub fn parse_rfc3339_with_offset(text: &str) -> Result<DateTime<FixedOffset>, String> {
    match DateTime::parse_from_rfc3339(text.trim()) {
        Ok(t) if (1990..=2100).contains(&t.year()) => Ok(t),
        Ok(_) => Err("year must be between 1990 and 2100".into()),
        Err(_) => {
            let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f"));
            if naive.is_ok() {
                Err("has no UTC offset; send e.g. 2026-11-20T14:03:00-05:00 or ...Z".into())
            } else {
                Err(
                    "must be an RFC 3339 timestamp with offset, e.g. 2026-11-20T14:03:00-05:00"
                        .into(),
                )
            }
        }
    }
}

fn parse_carrier(v: Option<&Value>, field: &str, errors: &mut FieldErrors) -> Option<String> {
    let s = required_string(v, field, errors)?;
    normalize_carrier(s).map_err(|e| errors.push(field, e)).ok()
}

fn parse_tracking_number(
    v: Option<&Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<String> {
    let s = required_string(v, field, errors)?;
    normalize_tracking_number(s)
        .map_err(|e| errors.push(field, e))
        .ok()
}

fn parse_timestamp(
    v: Option<&Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<DateTime<FixedOffset>> {
    let s = required_string(v, field, errors)?;
    parse_rfc3339_with_offset(s)
        .map_err(|e| errors.push(field, e))
        .ok()
}

fn required_string<'a>(
    v: Option<&'a Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<&'a str> {
    match v {
        None | Some(Value::Null) => {
            errors.push(field, "is required");
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            errors.push(field, format!("must be a string, not {}", json_type(other)));
            None
        }
    }
}

/// `Some(None)` when absent or null, `Some(Some(s))` when valid, `None` after recording an error.
fn opt_string(
    v: Option<&Value>,
    field: &str,
    max: usize,
    errors: &mut FieldErrors,
) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() > max => {
            errors.push(field, format!("must be at most {max} characters"));
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(other) => {
            errors.push(field, format!("must be a string, not {}", json_type(other)));
            None
        }
    }
}

fn opt_enum<T: std::str::FromStr<Err = String>>(
    v: Option<&Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<Option<T>> {
    match v {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => match s.parse::<T>() {
            Ok(t) => Some(Some(t)),
            Err(e) => {
                errors.push(field, e);
                None
            }
        },
        Some(other) => {
            errors.push(field, format!("must be a string, not {}", json_type(other)));
            None
        }
    }
}

fn parse_location(
    v: Option<&Value>,
    field: &str,
    errors: &mut FieldErrors,
) -> Option<Option<Location>> {
    let obj: &Map<String, Value> = match v {
        None | Some(Value::Null) => return Some(None),
        Some(Value::Object(o)) => o,
        Some(other) => {
            errors.push(
                field,
                format!("must be an object, not {}", json_type(other)),
            );
            return None;
        }
    };
    let before = errors.0.len();
    for key in obj.keys() {
        if !LOCATION_FIELDS.contains(&key.as_str()) {
            errors.push(format!("{field}.{key}"), "unknown field");
        }
    }
    let sub = |n: &str| format!("{field}.{n}");
    let city = opt_string(obj.get("city"), &sub("city"), 128, errors);
    let region = opt_string(obj.get("region"), &sub("region"), 128, errors);
    let postal_code = opt_string(obj.get("postal_code"), &sub("postal_code"), 32, errors);
    let country =
        opt_string(obj.get("country"), &sub("country"), 2, errors).map(|c| c.to_ascii_uppercase());
    if let Some(c) = &country {
        if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_alphabetic()) {
            errors.push(
                sub("country"),
                "must be an ISO 3166-1 alpha-2 code, e.g. US",
            );
        }
    }
    let lat = opt_number(obj.get("lat"), &sub("lat"), -90.0, 90.0, errors);
    let lon = opt_number(obj.get("lon"), &sub("lon"), -180.0, 180.0, errors);
    if errors.0.len() == before && lat.is_some() != lon.is_some() {
        errors.push(field, "lat and lon must be given together");
    }
    if errors.0.len() > before {
        return None;
    }
    Some(Some(Location {
        city,
        region,
        country,
        postal_code,
        lat,
        lon,
    }))
}

fn opt_number(
    v: Option<&Value>,
    field: &str,
    min: f64,
    max: f64,
    errors: &mut FieldErrors,
) -> Option<f64> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if (min..=max).contains(&x) => Some(x),
            _ => {
                errors.push(field, format!("must be between {min} and {max}"));
                None
            }
        },
        Some(other) => {
            errors.push(field, format!("must be a number, not {}", json_type(other)));
            None
        }
    }
}

pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<TrackingEvent, CoreError> {
        EventInput::parse(
            TenantId(uuid::Uuid::nil()),
            &v,
            &MappingTable::builtin().unwrap(),
            "",
        )
    }

    fn fields(r: Result<TrackingEvent, CoreError>) -> Vec<String> {
        match r {
            Err(CoreError::Invalid(errs)) => errs.into_iter().map(|e| e.field).collect(),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn the_documented_example_parses() {
        let e = parse(json!({"carrier":"ups","tracking_number":"1Z999","occurred_at":"2026-11-20T14:03:00-05:00",
            "status":"in_transit","reason":"arrived_at_facility","raw_code":"I","message":"Arrived at Facility",
            "location":{"city":"Louisville","region":"KY","country":"US","postal_code":"40213","lat":38.17,"lon":-85.73}}))
        .unwrap();
        assert_eq!(e.status, Status::InTransit);
        assert_eq!(e.occurred_at.to_rfc3339(), "2026-11-20T14:03:00-05:00");
        assert_eq!(e.event_key.0.len(), 64);
    }

    #[test]
    fn status_comes_from_the_raw_code_when_omitted() {
        let e = parse(json!({"carrier":"ups","tracking_number":"1Z","occurred_at":"2026-11-20T14:03:00Z","raw_code":"d"}))
            .unwrap();
        assert_eq!(
            (e.status, e.reason),
            (Status::Delivered, Some(Reason::Delivered))
        );
    }

    #[test]
    fn bad_inputs_name_their_fields() {
        assert_eq!(
            fields(parse(
                json!({"carrier":"ups","tracking_number":"1Z","occurred_at":"2026-11-20T14:03:00"})
            )),
            ["occurred_at", "status"]
        );
        assert_eq!(
            fields(parse(
                json!({"carrier":"ups","tracking_number":"1Z","occurred_at":"2026-11-20T14:03:00Z","raw_code":"ZZ"})
            )),
            ["raw_code"]
        );
        assert_eq!(
            fields(parse(
                json!({"carrier":5,"occurred_at":"2026-11-20T14:03:00Z","status":"lost_in_space","extra":1})
            )),
            ["extra", "carrier", "tracking_number", "status"]
        );
        assert_eq!(
            fields(parse(
                json!({"carrier":"ups","tracking_number":"1Z","occurred_at":"2026-11-20T14:03:00Z","status":"delivered","location":{"lat":91.0}})
            )),
            ["location.lat"]
        );
        assert_eq!(fields(parse(json!([1, 2]))), ["body"]);
    }

    #[test]
    fn identity_uses_the_provider_id_when_given_else_the_fields() {
        let base = json!({"carrier":"ups","tracking_number":"1Z","occurred_at":"2026-11-20T14:03:00-05:00","status":"in_transit"});
        let a = parse(base.clone()).unwrap();
        let mut same_instant = base.clone();
        same_instant["occurred_at"] = json!("2026-11-20T19:03:00Z");
        assert_eq!(parse(same_instant).unwrap().event_key, a.event_key);
        let mut with_id = base.clone();
        with_id["event_id"] = json!("evt_1");
        let b = parse(with_id.clone()).unwrap();
        assert_ne!(a.event_key, b.event_key);
        with_id["message"] = json!("changed text, same provider event");
        assert_eq!(parse(with_id).unwrap().event_key, b.event_key);
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| serde_json::json!(f)),
            any::<i64>().prop_map(|i| serde_json::json!(i)),
            ".{0,40}".prop_map(Value::String),
            prop_oneof![
                Just("ups"),
                Just("I"),
                Just("D"),
                Just("2026-11-20T14:03:00-05:00"),
                Just("2026-11-20T14:03:00"),
                Just("in_transit"),
                Just("weather"),
                Just("US"),
            ]
            .prop_map(|s| Value::String(s.to_string())),
        ];
        leaf.prop_recursive(3, 40, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("carrier".to_string()),
                        Just("tracking_number".to_string()),
                        Just("occurred_at".to_string()),
                        Just("status".to_string()),
                        Just("reason".to_string()),
                        Just("raw_code".to_string()),
                        Just("location".to_string()),
                        Just("lat".to_string()),
                        Just("lon".to_string()),
                        Just("country".to_string()),
                        Just("event_id".to_string()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..8,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        /// Arbitrary JSON never panics the parser; a refusal always names at least one field.
        #[test]
        fn arbitrary_json_is_parsed_or_refused_with_fields(v in arb_json()) {
            let table = MappingTable::builtin().unwrap();
            match EventInput::parse(TenantId(uuid::Uuid::nil()), &v, &table, "events[0].") {
                Ok(e) => prop_assert_eq!(e.event_key.0.len(), 64),
                Err(CoreError::Invalid(errors)) => {
                    prop_assert!(!errors.is_empty());
                    prop_assert!(errors.iter().all(|e| !e.field.is_empty() && !e.reason.is_empty()));
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }

        /// Arbitrary text as a timestamp never panics.
        #[test]
        fn arbitrary_timestamps_never_panic(s in ".{0,64}") {
            let _ = parse_rfc3339_with_offset(&s);
            let _ = normalize_tracking_number(&s);
            let _ = normalize_carrier(&s);
        }
    }
}
