//! The listeners: the institution listener (source allowlist, mutual TLS
//! with the terminal's certificate, the channel binding, HTTP/1.1, the route
//! table), the ops listener, the reload watcher, and the TLS configurations.

pub mod institution;
pub mod ops;
pub mod reload;
pub mod tls;
