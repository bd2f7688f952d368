//! HTTP: the institution listener (source allowlist, mutual TLS with the
//! terminal's certificate, the channel binding, HTTP/1.1, one axum router
//! per connection), its endpoint table and layers, the wire form of
//! answers and refusals, the patient listener, the per-source connection
//! slots both use, the ops listener and the reload watcher.

pub mod endpoints;
pub mod error;
pub mod institution;
pub mod layers;
pub mod ops;
pub mod patients;
pub mod reload;
pub mod source_slots;
