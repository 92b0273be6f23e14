//! Shipments as clients describe them: the create and update bodies, and their validation into
//! domain values (parse, don't validate).

use crate::error::{CoreError, FieldErrors};
use crate::event::{normalize_carrier, normalize_tracking_number};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MAX_METADATA_ENTRIES: usize = 50;
pub const MAX_METADATA_KEY_LEN: usize = 40;
pub const MAX_METADATA_VALUE_LEN: usize = 500;

/// A postal address. `country` is ISO 3166-1 alpha-2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// The person receiving the parcel. Personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// Parcel weight as sent; stored in grams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Weight {
    #[schema(exclusive_minimum = 0.0, maximum = 1000000.0)]
    pub value: f64,
    pub unit: WeightUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WeightUnit {
    G,
    Kg,
    Oz,
    Lb,
}

impl Weight {
    pub fn to_grams(&self) -> Result<f64, String> {
        let factor = match self.unit {
            WeightUnit::G => 1.0,
            WeightUnit::Kg => 1000.0,
            WeightUnit::Oz => 28.349_523_125,
            WeightUnit::Lb => 453.592_37,
        };
        if !(self.value.is_finite() && self.value > 0.0 && self.value <= 1_000_000.0) {
            return Err("value must be greater than 0 and at most 1000000".into());
        }
        Ok(self.value * factor)
    }
}

/// Body of `POST /v1/shipments`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentInput {
    /// Carrier code, e.g. `ups` (letters, digits, `_`, `-`).
    #[schema(min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9_-]+$")]
    pub carrier: String,
    /// Spaces are removed and letters upper-cased.
    #[schema(min_length = 1, max_length = 64, pattern = "^[!-~ ]+$")]
    pub tracking_number: String,
    #[serde(default)]
    pub service_level: Option<String>,
    #[serde(default)]
    pub origin: Option<Address>,
    #[serde(default)]
    pub destination: Option<Address>,
    #[serde(default)]
    pub recipient: Option<Recipient>,
    #[serde(default)]
    pub weight: Option<Weight>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub ship_date: Option<NaiveDate>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub promised_delivery_date: Option<NaiveDate>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// Body of `PATCH /v1/shipments/{id}`: each field given replaces the stored one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentPatch {
    #[serde(default)]
    pub service_level: Option<String>,
    #[serde(default)]
    pub origin: Option<Address>,
    #[serde(default)]
    pub destination: Option<Address>,
    #[serde(default)]
    pub recipient: Option<Recipient>,
    #[serde(default)]
    pub weight: Option<Weight>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub ship_date: Option<NaiveDate>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub promised_delivery_date: Option<NaiveDate>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A validated shipment description, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewShipment {
    pub carrier: String,
    pub tracking_number: String,
    pub service_level: Option<String>,
    pub origin: Option<Address>,
    pub destination: Option<Address>,
    pub recipient: Option<Recipient>,
    pub weight_grams: Option<f64>,
    pub ship_date: Option<NaiveDate>,
    pub promised_delivery_date: Option<NaiveDate>,
    pub reference: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

impl TryFrom<ShipmentInput> for NewShipment {
    type Error = CoreError;

    fn try_from(input: ShipmentInput) -> Result<Self, CoreError> {
        let mut errors = FieldErrors::default();
        let carrier = normalize_carrier(&input.carrier)
            .map_err(|e| errors.push("carrier", e))
            .unwrap_or_default();
        let tracking_number = normalize_tracking_number(&input.tracking_number)
            .map_err(|e| errors.push("tracking_number", e))
            .unwrap_or_default();
        let common = validate_common(
            &mut errors,
            Common {
                service_level: input.service_level,
                origin: input.origin,
                destination: input.destination,
                recipient: input.recipient,
                weight: input.weight,
                ship_date: input.ship_date,
                promised_delivery_date: input.promised_delivery_date,
                reference: input.reference,
                metadata: Some(input.metadata),
            },
        );
        errors.finish(NewShipment {
            carrier,
            tracking_number,
            service_level: common.service_level,
            origin: common.origin,
            destination: common.destination,
            recipient: common.recipient,
            weight_grams: common.weight_grams,
            ship_date: common.ship_date,
            promised_delivery_date: common.promised_delivery_date,
            reference: common.reference,
            metadata: common.metadata.unwrap_or_default(),
        })
    }
}

impl ShipmentPatch {
    /// Validates the patch and applies it to `current`.
    pub fn apply_to(self, current: &NewShipment) -> Result<NewShipment, CoreError> {
        let mut errors = FieldErrors::default();
        let weight_given = self.weight.is_some();
        let c = validate_common(
            &mut errors,
            Common {
                service_level: self.service_level,
                origin: self.origin,
                destination: self.destination,
                recipient: self.recipient,
                weight: self.weight,
                ship_date: self.ship_date,
                promised_delivery_date: self.promised_delivery_date,
                reference: self.reference,
                metadata: self.metadata,
            },
        );
        let mut next = current.clone();
        next.service_level = c.service_level.or(next.service_level);
        next.origin = c.origin.or(next.origin);
        next.destination = c.destination.or(next.destination);
        next.recipient = c.recipient.or(next.recipient);
        if weight_given {
            next.weight_grams = c.weight_grams;
        }
        next.ship_date = c.ship_date.or(next.ship_date);
        next.promised_delivery_date = c.promised_delivery_date.or(next.promised_delivery_date);
        next.reference = c.reference.or(next.reference);
        if let Some(m) = c.metadata {
            next.metadata = m;
        }
        check_dates(&mut errors, next.ship_date, next.promised_delivery_date);
        errors.finish(next)
    }
}

struct Common {
    service_level: Option<String>,
    origin: Option<Address>,
    destination: Option<Address>,
    recipient: Option<Recipient>,
    weight: Option<Weight>,
    ship_date: Option<NaiveDate>,
    promised_delivery_date: Option<NaiveDate>,
    reference: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
}

struct ValidCommon {
    service_level: Option<String>,
    origin: Option<Address>,
    destination: Option<Address>,
    recipient: Option<Recipient>,
    weight_grams: Option<f64>,
    ship_date: Option<NaiveDate>,
    promised_delivery_date: Option<NaiveDate>,
    reference: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
}

fn validate_common(errors: &mut FieldErrors, c: Common) -> ValidCommon {
    let service_level = text(errors, "service_level", c.service_level, 64);
    let reference = text(errors, "reference", c.reference, 128);
    let origin = c.origin.map(|a| address(errors, "origin", a));
    let destination = c.destination.map(|a| address(errors, "destination", a));
    let recipient = c.recipient.map(|r| recipient(errors, r));
    let weight_grams = c
        .weight
        .and_then(|w| w.to_grams().map_err(|e| errors.push("weight", e)).ok());
    check_dates(errors, c.ship_date, c.promised_delivery_date);
    if let Some(m) = &c.metadata {
        if m.len() > MAX_METADATA_ENTRIES {
            errors.push(
                "metadata",
                format!("at most {MAX_METADATA_ENTRIES} entries"),
            );
        }
        for (k, v) in m {
            if k.is_empty() || k.len() > MAX_METADATA_KEY_LEN {
                errors.push(
                    format!("metadata.{k}"),
                    format!("key must be 1 to {MAX_METADATA_KEY_LEN} characters"),
                );
            }
            if v.chars().count() > MAX_METADATA_VALUE_LEN {
                errors.push(
                    format!("metadata.{k}"),
                    format!("value must be at most {MAX_METADATA_VALUE_LEN} characters"),
                );
            }
        }
    }
    ValidCommon {
        service_level,
        origin,
        destination,
        recipient,
        weight_grams,
        ship_date: c.ship_date,
        promised_delivery_date: c.promised_delivery_date,
        reference,
        metadata: c.metadata,
    }
}

fn check_dates(errors: &mut FieldErrors, ship: Option<NaiveDate>, promised: Option<NaiveDate>) {
    if let (Some(s), Some(p)) = (ship, promised) {
        if p < s {
            errors.push("promised_delivery_date", "must not be before ship_date");
        }
    }
}

fn text(errors: &mut FieldErrors, field: &str, v: Option<String>, max: usize) -> Option<String> {
    let v = v?.trim().to_string();
    if v.is_empty() {
        return None;
    }
    if v.chars().count() > max {
        errors.push(field, format!("must be at most {max} characters"));
        return None;
    }
    Some(v)
}

fn address(errors: &mut FieldErrors, field: &str, a: Address) -> Address {
    let f = |n: &str| format!("{field}.{n}");
    let country = text(errors, &f("country"), a.country, 2).map(|c| c.to_ascii_uppercase());
    if let Some(c) = &country {
        if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_alphabetic()) {
            errors.push(f("country"), "must be an ISO 3166-1 alpha-2 code, e.g. US");
        }
    }
    Address {
        line1: text(errors, &f("line1"), a.line1, 200),
        line2: text(errors, &f("line2"), a.line2, 200),
        city: text(errors, &f("city"), a.city, 128),
        region: text(errors, &f("region"), a.region, 128),
        postal_code: text(errors, &f("postal_code"), a.postal_code, 32),
        country,
    }
}

fn recipient(errors: &mut FieldErrors, r: Recipient) -> Recipient {
    let email = text(errors, "recipient.email", r.email, 254);
    if let Some(e) = &email {
        let valid = e
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        if !valid {
            errors.push(
                "recipient.email",
                "must be an email address like name@example.com",
            );
        }
    }
    let phone = text(errors, "recipient.phone", r.phone, 32);
    if let Some(p) = &phone {
        if !p
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        {
            errors.push(
                "recipient.phone",
                "may contain only digits, spaces and + - ( ) .",
            );
        }
    }
    Recipient {
        name: text(errors, "recipient.name", r.name, 200),
        email,
        phone,
        address: r.address.map(|a| address(errors, "recipient.address", a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ShipmentInput {
        serde_json::from_value(serde_json::json!({
            "carrier": "UPS", "tracking_number": "1z 999 aa1",
            "weight": {"value": 2, "unit": "lb"},
            "ship_date": "2026-11-20", "promised_delivery_date": "2026-11-23",
            "recipient": {"name": "Ada", "email": "ada@example.com"},
            "metadata": {"warehouse": "east"}
        }))
        .unwrap()
    }

    #[test]
    fn a_valid_shipment_is_normalized() {
        let s = NewShipment::try_from(input()).unwrap();
        assert_eq!(s.carrier, "ups");
        assert_eq!(s.tracking_number, "1Z999AA1");
        assert!((s.weight_grams.unwrap() - 907.18474).abs() < 1e-6);
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut i = input();
        i.carrier = "u p s!".into();
        i.promised_delivery_date = NaiveDate::from_ymd_opt(2026, 11, 1);
        i.recipient = Some(Recipient {
            email: Some("nope".into()),
            ..Default::default()
        });
        let CoreError::Invalid(errs) = NewShipment::try_from(i).unwrap_err() else {
            panic!()
        };
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["carrier", "recipient.email", "promised_delivery_date"]
        );
    }

    #[test]
    fn a_patch_replaces_only_given_fields() {
        let s = NewShipment::try_from(input()).unwrap();
        let patch = ShipmentPatch {
            reference: Some("PO-7".into()),
            ..Default::default()
        };
        let next = patch.apply_to(&s).unwrap();
        assert_eq!(next.reference.as_deref(), Some("PO-7"));
        assert_eq!(next.weight_grams, s.weight_grams);
        assert_eq!(next.metadata, s.metadata);
    }
}
