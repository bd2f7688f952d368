//! The listeners: the institution listener (source allowlist, mutual TLS
//! with the terminal's certificate, the channel binding, HTTP/1.1, the route
//! table), the ops listener, and the reload watcher.

pub mod institution;
pub mod ops;
pub mod reload;
