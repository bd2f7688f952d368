//! The clinic-terminal agent: watches the card readers, asks for the PIN,
//! logs the card in at the gateway with the channel-bound challenge
//! signature, ends the session when the card leaves, and serves a local UI
//! and a local JSON API on the loopback address (`docs/card-agent.md`).

pub mod agent;
pub mod cards;
pub mod config;
pub mod error;
pub mod i18n;
pub mod local_client;
pub mod server;
pub mod token;
pub mod ui_page;
pub mod ui_workflow;
