//! Carriers and their services as the simulator models them: hubs, operating days, promised
//! transit times, base reliability, and the raw status codes each carrier sends.

use bitshipper_core::{Reason, Status};
use chrono::{Datelike, NaiveDate, Weekday};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Carrier {
    Ups,
    Fedex,
    Usps,
    Dhl,
    Ontrac,
    Lso,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Overnight,
    TwoDay,
    Ground,
    Economy,
}

/// A step of a parcel's life; each carrier has its own raw code for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    LabelCreated,
    PickedUp,
    ArrivedFacility,
    DepartedFacility,
    InTransit,
    OutForDelivery,
    Delivered,
    FailedAttempt,
    AddressIssue,
    WeatherDelay,
    Damaged,
    Lost,
    ReturnToSender,
    CustomsHold,
}

impl Stage {
    /// The canonical meaning of this stage.
    pub fn canonical(self) -> (Status, Reason) {
        use Stage::*;
        match self {
            LabelCreated => (Status::PreTransit, Reason::LabelCreated),
            PickedUp => (Status::InTransit, Reason::PickedUp),
            ArrivedFacility => (Status::InTransit, Reason::ArrivedAtFacility),
            DepartedFacility => (Status::InTransit, Reason::DepartedFacility),
            InTransit => (Status::InTransit, Reason::InTransit),
            OutForDelivery => (Status::OutForDelivery, Reason::OutForDelivery),
            Delivered => (Status::Delivered, Reason::Delivered),
            FailedAttempt => (Status::FailedAttempt, Reason::RecipientUnavailable),
            AddressIssue => (Status::Exception, Reason::AddressIssue),
            WeatherDelay => (Status::Exception, Reason::Weather),
            Damaged => (Status::Exception, Reason::Damaged),
            Lost => (Status::Exception, Reason::Lost),
            ReturnToSender => (Status::ReturnToSender, Reason::ReturnedToSender),
            CustomsHold => (Status::Exception, Reason::CustomsHold),
        }
    }

    pub fn message(self) -> &'static str {
        use Stage::*;
        match self {
            LabelCreated => "Shipping label created",
            PickedUp => "Picked up",
            ArrivedFacility => "Arrived at facility",
            DepartedFacility => "Departed facility",
            InTransit => "In transit",
            OutForDelivery => "Out for delivery",
            Delivered => "Delivered",
            FailedAttempt => "Delivery attempted - recipient not available",
            AddressIssue => "Address information needed",
            WeatherDelay => "Delayed due to severe weather",
            Damaged => "Package damaged",
            Lost => "Package cannot be located",
            ReturnToSender => "Returned to sender",
            CustomsHold => "Held by customs",
        }
    }
}

pub const ALL_CARRIERS: [Carrier; 6] = [
    Carrier::Ups,
    Carrier::Fedex,
    Carrier::Usps,
    Carrier::Dhl,
    Carrier::Ontrac,
    Carrier::Lso,
];

impl Carrier {
    pub fn code(self) -> &'static str {
        match self {
            Carrier::Ups => "ups",
            Carrier::Fedex => "fedex",
            Carrier::Usps => "usps",
            Carrier::Dhl => "dhl",
            Carrier::Ontrac => "ontrac",
            Carrier::Lso => "lso",
        }
    }

    /// Sort hubs parcels pass through on long routes (city names in `data/cities.csv`).
    pub fn hubs(self) -> &'static [&'static str] {
        match self {
            Carrier::Ups => &["Louisville", "Chicago", "Dallas", "Ontario"],
            Carrier::Fedex => &["Memphis", "Indianapolis", "Fort Worth", "Oakland"],
            Carrier::Usps => &[
                "Chicago",
                "Atlanta",
                "Denver",
                "Los Angeles",
                "Philadelphia",
            ],
            Carrier::Dhl => &["Cincinnati"],
            Carrier::Ontrac => &["Los Angeles", "Phoenix", "Denver"],
            Carrier::Lso => &["Dallas", "Austin", "Houston"],
        }
    }

    /// The US states a regional carrier serves (`None`: nationwide).
    pub fn served_regions(self) -> Option<&'static [&'static str]> {
        match self {
            Carrier::Ontrac => Some(&["CA", "AZ", "NV", "OR", "WA", "UT", "CO", "ID", "NM"]),
            Carrier::Lso => Some(&["TX", "OK", "LA", "AR", "NM"]),
            _ => None,
        }
    }

    /// Whether the carrier delivers on this date.
    pub fn delivers_on(self, d: NaiveDate) -> bool {
        if crate::geo::is_us_holiday(d) || d.weekday() == Weekday::Sun {
            return false;
        }
        // USPS and OnTrac deliver on Saturdays; the others are Monday to Friday for parcels.
        d.weekday() != Weekday::Sat || matches!(self, Carrier::Usps | Carrier::Ontrac)
    }

    pub fn service_name(self, s: Service) -> &'static str {
        match (self, s) {
            (Carrier::Ups, Service::Overnight) => "ups_next_day_air",
            (Carrier::Ups, Service::TwoDay) => "ups_2nd_day_air",
            (Carrier::Ups, Service::Ground) => "ups_ground",
            (Carrier::Ups, Service::Economy) => "ups_surepost",
            (Carrier::Fedex, Service::Overnight) => "fedex_priority_overnight",
            (Carrier::Fedex, Service::TwoDay) => "fedex_2day",
            (Carrier::Fedex, Service::Ground) => "fedex_ground",
            (Carrier::Fedex, Service::Economy) => "fedex_ground_economy",
            (Carrier::Usps, Service::Overnight) => "usps_priority_mail_express",
            (Carrier::Usps, Service::TwoDay) => "usps_priority_mail",
            (Carrier::Usps, Service::Ground) => "usps_ground_advantage",
            (Carrier::Usps, Service::Economy) => "usps_parcel_select",
            (Carrier::Dhl, Service::Overnight | Service::TwoDay) => "dhl_express_worldwide",
            (Carrier::Dhl, _) => "dhl_ecommerce",
            (Carrier::Ontrac, Service::Overnight | Service::TwoDay) => "ontrac_sunrise",
            (Carrier::Ontrac, _) => "ontrac_ground",
            (Carrier::Lso, Service::Overnight | Service::TwoDay) => "lso_priority_next_day",
            (Carrier::Lso, _) => "lso_ground",
        }
    }

    /// Base log-odds of a late delivery, before distance, weather, season and noise.
    pub fn base_late_logit(self, s: Service) -> f64 {
        let carrier = match self {
            Carrier::Ups => -3.2,
            Carrier::Fedex => -3.0,
            Carrier::Usps => -2.6,
            Carrier::Dhl => -2.8,
            Carrier::Ontrac => -2.4,
            Carrier::Lso => -2.5,
        };
        let service = match s {
            Service::Overnight => -0.6,
            Service::TwoDay => -0.3,
            Service::Ground => 0.0,
            Service::Economy => 0.35,
        };
        carrier + service
    }

    /// The raw code this carrier sends for a stage.
    pub fn raw_code(self, stage: Stage) -> &'static str {
        use Stage::*;
        match self {
            Carrier::Ups => match stage {
                LabelCreated => "M",
                PickedUp => "P",
                ArrivedFacility => "W",
                DepartedFacility | InTransit => "I",
                OutForDelivery => "O",
                Delivered => "D",
                ReturnToSender => "RS",
                _ => "X",
            },
            Carrier::Fedex => match stage {
                LabelCreated => "OC",
                PickedUp => "PU",
                ArrivedFacility => "AR",
                DepartedFacility => "DP",
                InTransit => "IT",
                OutForDelivery => "OD",
                Delivered => "DL",
                FailedAttempt => "DE",
                WeatherDelay => "DY",
                CustomsHold => "CD",
                ReturnToSender => "RS",
                _ => "SE",
            },
            Carrier::Usps => match stage {
                LabelCreated => "MA",
                PickedUp => "03",
                ArrivedFacility => "07",
                DepartedFacility | InTransit => "10",
                OutForDelivery => "OF",
                Delivered => "01",
                FailedAttempt => "02",
                AddressIssue => "05",
                ReturnToSender => "09",
                _ => "10",
            },
            Carrier::Dhl => match stage {
                LabelCreated => "PL",
                PickedUp => "PU",
                ArrivedFacility => "AF",
                DepartedFacility | InTransit => "DF",
                OutForDelivery => "WC",
                Delivered => "OK",
                FailedAttempt => "NH",
                AddressIssue => "BA",
                CustomsHold => "CR",
                ReturnToSender => "RT",
                _ => "DF",
            },
            Carrier::Ontrac | Carrier::Lso => match stage {
                LabelCreated => "ORDER_CREATED",
                PickedUp => "PICKED_UP",
                ArrivedFacility => "ARRIVED_HUB",
                DepartedFacility | InTransit => "DEPARTED_HUB",
                OutForDelivery => "OUT_FOR_DELIVERY",
                Delivered => "DELIVERED",
                FailedAttempt => "DELIVERY_ATTEMPTED",
                ReturnToSender => "RETURNED",
                _ => "EXCEPTION",
            },
        }
    }
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Overnight => "overnight",
            Service::TwoDay => "2-day",
            Service::Ground => "ground",
            Service::Economy => "economy",
        }
    }

    /// Promised business days in transit for a domestic route of `km`.
    pub fn promised_days(self, km: f64, international: bool) -> u32 {
        if international {
            return match self {
                Service::Overnight | Service::TwoDay => 3,
                _ => 6,
            };
        }
        let ground = match km {
            k if k < 300.0 => 1,
            k if k < 800.0 => 2,
            k if k < 1600.0 => 3,
            k if k < 2800.0 => 4,
            _ => 5,
        };
        match self {
            Service::Overnight => 1,
            Service::TwoDay => 2,
            Service::Ground => ground,
            Service::Economy => ground + 2,
        }
    }
}
