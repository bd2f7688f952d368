//! An HPKI card emulator that plugs into the real pcscd through the vpcd
//! reader driver (vsmartcard). It answers like a JMA card or a JAHIS
//! guideline card: two applications, their certificates, PINs with retry
//! counters that survive restarts, and RSA signatures with the card's keys.
//!
//! Tests and demos use it; the product only ever reaches it through PC/SC.

pub mod apdu_log;
pub mod atr;
pub mod card;
pub mod command;
pub mod control;
pub mod image;
pub mod vpcd;

pub use card::VirtualCard;
pub use image::{AppImage, CardImage, ImageError};
