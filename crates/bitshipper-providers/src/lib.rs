//! Carrier and aggregator adapters. Each provider's payload (a webhook body from EasyPost,
//! Shippo, AfterShip, 17TRACK or ShipEngine, or a tracking API response from UPS, FedEx, USPS or
//! DHL) is parsed into `ProviderEvent`s on BitShipper's status model, through the provider's
//! mapping table (data files under `data/providers/`). Webhook signatures are verified here too.
//! Pure functions: no I/O.

pub mod carriers;
pub mod csv_import;
mod error;
pub mod mapping;
pub(crate) mod parse;
pub mod signature;
pub mod time;

pub use error::ProviderError;
pub use mapping::ProviderTable;
pub use parse::parse;

use bitshipper_core::{Location, Reason, Status};
use chrono::{DateTime, FixedOffset};
use serde::Serialize;

/// Every payload format BitShipper reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    EasyPost,
    Shippo,
    AfterShip,
    SeventeenTrack,
    ShipEngine,
    UpsTrack,
    FedexTrack,
    UspsTrack,
    DhlTrack,
}

impl Provider {
    pub const ALL: &'static [Provider] = &[
        Provider::EasyPost,
        Provider::Shippo,
        Provider::AfterShip,
        Provider::SeventeenTrack,
        Provider::ShipEngine,
        Provider::UpsTrack,
        Provider::FedexTrack,
        Provider::UspsTrack,
        Provider::DhlTrack,
    ];

    /// The id used in URLs (`/v1/webhooks/{provider}/...`), `--format`, and data file names.
    pub fn id(&self) -> &'static str {
        match self {
            Provider::EasyPost => "easypost",
            Provider::Shippo => "shippo",
            Provider::AfterShip => "aftership",
            Provider::SeventeenTrack => "17track",
            Provider::ShipEngine => "shipengine",
            Provider::UpsTrack => "ups-track",
            Provider::FedexTrack => "fedex-track",
            Provider::UspsTrack => "usps-track",
            Provider::DhlTrack => "dhl-track",
        }
    }

    pub fn from_id(id: &str) -> Option<Provider> {
        Provider::ALL.iter().copied().find(|p| p.id() == id)
    }

    /// Aggregators push webhooks; carrier formats are API responses read by import (and
    /// polling later).
    pub fn is_webhook(&self) -> bool {
        !matches!(
            self,
            Provider::UpsTrack | Provider::FedexTrack | Provider::UspsTrack | Provider::DhlTrack
        )
    }
}

/// One tracking event read from a provider payload, already on the canonical model. Its JSON is
/// the body of an event in `POST /v1/events`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderEvent {
    pub carrier: String,
    pub tracking_number: String,
    pub occurred_at: DateTime<FixedOffset>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The provider's own code, kept whatever the mapping says.
    pub raw_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// False when the provider's code is not in its mapping table (status is then `unknown`).
    #[serde(skip)]
    pub mapped: bool,
}

impl ProviderEvent {
    /// Validates this event as `POST /v1/events` would, giving the event that travels through
    /// the log; `raw_payload_id` links it to the stored payload.
    pub fn to_tracking_event(
        &self,
        tenant: bitshipper_core::TenantId,
        mapping: &bitshipper_core::MappingTable,
        raw_payload_id: Option<uuid::Uuid>,
        prefix: &str,
    ) -> Result<bitshipper_core::TrackingEvent, bitshipper_core::CoreError> {
        let value = serde_json::json!({
            "carrier": self.carrier,
            "tracking_number": self.tracking_number,
            "occurred_at": self.occurred_at.to_rfc3339(),
            "status": self.status,
            "reason": self.reason,
            "raw_code": self.raw_code.chars().take(bitshipper_core::event::MAX_CODE_LEN).collect::<String>(),
            "message": self.message.as_ref().map(|m| m.chars().take(bitshipper_core::event::MAX_TEXT_LEN).collect::<String>()),
            "location": self.location,
            "event_id": self.event_id,
        });
        let mut event = bitshipper_core::EventInput::parse(tenant, &value, mapping, prefix)?;
        event.raw_payload_id = raw_payload_id;
        Ok(event)
    }
}
