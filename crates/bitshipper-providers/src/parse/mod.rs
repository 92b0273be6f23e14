//! Reading provider payloads: one module per format, sharing a JSON walker that names the path
//! of anything missing or mistyped, and one place that maps codes to the canonical model.

mod aggregators;
mod carriers;

use crate::mapping::ProviderTable;
use crate::{Provider, ProviderError, ProviderEvent};
use bitshipper_core::{Location, Status};
use chrono::{DateTime, FixedOffset};
use serde_json::Value;

/// Largest payload any parser reads.
pub const MAX_PAYLOAD_BYTES: usize = 5 * 1024 * 1024;

/// Parses `body` as `provider`'s payload into canonical events, in payload order.
pub fn parse(
    provider: Provider,
    table: &ProviderTable,
    body: &[u8],
) -> Result<Vec<ProviderEvent>, ProviderError> {
    if body.len() > MAX_PAYLOAD_BYTES {
        return Err(ProviderError::at(
            "$",
            format!("payload larger than {MAX_PAYLOAD_BYTES} bytes"),
        ));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ProviderError::Json(e.to_string()))?;
    let root = Node::root(&value);
    let cx = Context { table };
    match provider {
        Provider::EasyPost => aggregators::easypost(&cx, root),
        Provider::Shippo => aggregators::shippo(&cx, root),
        Provider::AfterShip => aggregators::aftership(&cx, root),
        Provider::SeventeenTrack => aggregators::seventeen_track(&cx, root),
        Provider::ShipEngine => aggregators::shipengine(&cx, root),
        Provider::UpsTrack => carriers::ups(&cx, root),
        Provider::FedexTrack => carriers::fedex(&cx, root),
        Provider::UspsTrack => carriers::usps(&cx, root),
        Provider::DhlTrack => carriers::dhl(&cx, root),
    }
}

pub(crate) struct Context<'a> {
    table: &'a ProviderTable,
}

/// What a parser found for one event, before mapping.
pub(crate) struct Found {
    pub carrier: String,
    pub tracking_number: String,
    pub occurred_at: DateTime<FixedOffset>,
    pub raw_code: String,
    pub message: Option<String>,
    pub location: Option<Location>,
    pub event_id: Option<String>,
}

impl Context<'_> {
    /// Maps the raw code; an unmapped code is `unknown`, raw code kept.
    pub fn event(&self, f: Found) -> ProviderEvent {
        let mapping = self.table.lookup(&f.raw_code);
        ProviderEvent {
            carrier: f.carrier,
            tracking_number: f.tracking_number,
            occurred_at: f.occurred_at,
            status: mapping.map(|m| m.status).unwrap_or(Status::Unknown),
            reason: mapping.and_then(|m| m.reason),
            raw_code: f.raw_code,
            message: f.message.filter(|m| !m.trim().is_empty()),
            location: f.location,
            event_id: f.event_id,
            mapped: mapping.is_some(),
        }
    }
}

/// A JSON value and where it sits in the payload (`$.result.tracking_details[2].datetime`).
#[derive(Clone)]
pub(crate) struct Node<'a> {
    pub value: &'a Value,
    path: String,
}

impl<'a> Node<'a> {
    pub fn root(value: &'a Value) -> Self {
        Node {
            value,
            path: "$".into(),
        }
    }

    /// The path of this node, for error messages.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A field, absent or null as `None`.
    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        match self.value.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(Node {
                value: v,
                path: format!("{}.{key}", self.path),
            }),
        }
    }

    /// A field that must be there.
    pub fn req(&self, key: &str) -> Result<Node<'a>, ProviderError> {
        self.get(key)
            .ok_or_else(|| ProviderError::at(format!("{}.{key}", self.path), "is required"))
    }

    /// This node as text (numbers are written as text, as some providers mix them).
    pub fn text(&self) -> Result<String, ProviderError> {
        match self.value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(ProviderError::at(
                &self.path,
                format!("must be a string, not {}", kind(other)),
            )),
        }
    }

    /// A required, non-empty text field.
    pub fn req_text(&self, key: &str) -> Result<String, ProviderError> {
        let s = self.req(key)?.text()?;
        if s.trim().is_empty() {
            return Err(ProviderError::at(
                format!("{}.{key}", self.path),
                "must not be empty",
            ));
        }
        Ok(s)
    }

    /// An optional text field (empty as absent); a wrong type is still an error.
    pub fn opt_text(&self, key: &str) -> Result<Option<String>, ProviderError> {
        self.get(key)
            .map(|n| n.text())
            .transpose()
            .map(|s| s.filter(|s| !s.trim().is_empty()))
    }

    /// The elements of an array field (absent: empty).
    pub fn items(&self, key: &str) -> Result<Vec<Node<'a>>, ProviderError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(n) => match n.value {
                Value::Array(items) => Ok(items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Node {
                        value: v,
                        path: format!("{}[{i}]", n.path),
                    })
                    .collect()),
                other => Err(ProviderError::at(
                    n.path,
                    format!("must be an array, not {}", kind(other)),
                )),
            },
        }
    }

    /// The node must be an object.
    pub fn object(self) -> Result<Self, ProviderError> {
        if self.value.is_object() {
            Ok(self)
        } else {
            Err(ProviderError::at(
                &self.path,
                format!("must be an object, not {}", kind(self.value)),
            ))
        }
    }

    /// A location from four optional text fields of this node: city, region, postal code,
    /// country (by their names in the payload).
    pub fn location(
        &self,
        [city, region, postal, country]: [&str; 4],
    ) -> Result<Option<Location>, ProviderError> {
        Ok(location(
            self.opt_text(city)?,
            self.opt_text(region)?,
            self.opt_text(postal)?,
            self.opt_text(country)?,
        ))
    }

    /// A time field read with `crate::time::parse_time`.
    pub fn time(
        &self,
        key: &str,
        location: Option<&Location>,
    ) -> Result<DateTime<FixedOffset>, ProviderError> {
        let text = self.req_text(key)?;
        crate::time::parse_time(&text, location)
            .map_err(|reason| ProviderError::at(format!("{}.{key}", self.path), reason))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `top`, or `top/detail` when there is a detail.
pub(crate) fn aggregators_composite(top: String, detail: Option<String>) -> String {
    match detail {
        Some(d) if !d.trim().is_empty() => format!("{top}/{d}"),
        _ => top,
    }
}

/// A location from optional parts; `None` when every part is empty.
pub(crate) fn location(
    city: Option<String>,
    region: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
) -> Option<Location> {
    if city.is_none() && region.is_none() && postal_code.is_none() && country.is_none() {
        return None;
    }
    Some(Location {
        city,
        region,
        postal_code,
        country: country.map(|c| crate::carriers::country_code(&c)),
        ..Default::default()
    })
}
