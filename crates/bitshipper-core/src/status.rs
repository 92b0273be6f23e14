//! The canonical status model and reason taxonomy every provider's codes map into (C2).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown value '{}'; expected one of: {}",
                        other.chars().take(64).collect::<String>(),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// Where a shipment is in its life. A superset that EasyPost, AfterShip, Shippo, ShipEngine,
    /// 17TRACK and carrier codes map into. Declaration order is the order of progress, used only
    /// to break ties between events with the same timestamp.
    Status {
        Unknown => "unknown",
        PreTransit => "pre_transit",
        InTransit => "in_transit",
        OutForDelivery => "out_for_delivery",
        AvailableForPickup => "available_for_pickup",
        FailedAttempt => "failed_attempt",
        Exception => "exception",
        Delivered => "delivered",
        ReturnToSender => "return_to_sender",
        Cancelled => "cancelled",
        Expired => "expired",
    }
);

string_enum!(
    /// Why a status happened: the detail under the status.
    Reason {
        LabelCreated => "label_created",
        PickedUp => "picked_up",
        ArrivedAtFacility => "arrived_at_facility",
        DepartedFacility => "departed_facility",
        InTransit => "in_transit",
        OutForDelivery => "out_for_delivery",
        Delivered => "delivered",
        Weather => "weather",
        AddressIssue => "address_issue",
        CustomsHold => "customs_hold",
        Damaged => "damaged",
        Lost => "lost",
        RecipientUnavailable => "recipient_unavailable",
        CarrierDelay => "carrier_delay",
        Refused => "refused",
        HeldAtLocation => "held_at_location",
        ReturnedToSender => "returned_to_sender",
        Other => "other",
    }
);

impl Status {
    /// True once nothing more is expected to happen to the parcel.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Status::Delivered | Status::ReturnToSender | Status::Cancelled | Status::Expired
        )
    }

    /// True when the carrier has physically handled the parcel (used for `first_scan_at`).
    pub fn is_carrier_scan(&self) -> bool {
        !matches!(
            self,
            Status::Unknown | Status::PreTransit | Status::Cancelled | Status::Expired
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_text_and_json() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), *s);
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>().unwrap(), *r);
            assert_eq!(
                serde_json::to_string(r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
    }

    #[test]
    fn unknown_text_names_the_allowed_values() {
        let err = "teleported".parse::<Status>().unwrap_err();
        assert!(err.contains("teleported") && err.contains("in_transit"));
    }
}
