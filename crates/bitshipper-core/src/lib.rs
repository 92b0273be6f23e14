//! Pure domain of BitShipper: ids, tracking events, the canonical status model, carrier code
//! mapping tables and the fold that derives a shipment's state. Nothing here does I/O.

pub mod analytics;
pub mod error;
pub mod event;
pub mod fold;
pub mod ids;
pub mod mapping;
pub mod scope;
pub mod shipment;
pub mod status;

pub use error::{CoreError, FieldError, FieldErrors};
pub use event::{EventInput, Location, TrackingEvent};
pub use fold::{fold, fold_continue, ShipmentState};
pub use ids::{ApiKeyId, EventKey, ShipmentId, TenantId, UserId};
pub use mapping::{CodeMapping, MappingTable};
pub use scope::{Role, Scope};
pub use shipment::{Address, NewShipment, Recipient, ShipmentInput, ShipmentPatch, Weight};
pub use status::{Reason, Status};
