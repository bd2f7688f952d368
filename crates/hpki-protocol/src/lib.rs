//! The protocol between the card agent and the gateway: JSON wire types and
//! the exact bytes a card signs at login (`docs/protocol.md`).

pub mod emergency;
pub mod error_code;
pub mod login;
pub mod rights;
pub mod wire;

pub use error_code::ErrorCode;

pub use login::{CHANNEL_BINDING_LABEL, CHANNEL_BINDING_LEN, LOGIN_DOMAIN, LoginTbs, NONCE_LEN};
pub mod confirm;
pub mod workflow;

pub use confirm::{CONFIRM_DOMAIN, CONFIRM_DOMAIN_V1, ConfirmDocument, DraftKind};
