//! The agent's configuration file (TOML, `docs/card-agent.md`). Relative
//! paths are relative to the file's directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error(
        "{path}: ui.address {address} is not a loopback address; the agent serves its UI and API to this computer only"
    )]
    NotLoopback { path: PathBuf, address: SocketAddr },
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub gateway: GatewaySection,
    pub terminal: TerminalSection,
    pub readers: ReadersSection,
    pub ui: UiSection,
    pub api: ApiSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// `host:port` of the gateway's institution listener.
    pub address: String,
    /// The name in the gateway's certificate (default: the host of `address`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM file with the CA certificates the gateway's certificate chains to.
    pub ca: PathBuf,
    /// Seconds to wait for the gateway before saying it is unreachable.
    #[serde(default = "default_gateway_timeout")]
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalSection {
    pub certificate: PathBuf,
    pub key: PathBuf,
    /// The terminal CA chain written next to the certificate.
    pub chain: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadersSection {
    /// Reader names (or name prefixes) to watch; empty watches every reader.
    #[serde(default)]
    pub watch: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiSection {
    /// Loopback address of the local UI and API.
    #[serde(default = "default_ui_address")]
    pub address: SocketAddr,
    /// `ja` or `en`: the language the UI starts in.
    #[serde(default)]
    pub language: crate::i18n::Lang,
    /// No input for this long locks the screen (the PIN unlocks it).
    #[serde(default = "default_idle_lock")]
    pub idle_lock_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// File holding the per-installation API token; created (mode 0600)
    /// with a fresh random token when missing.
    #[serde(default = "default_token_file")]
    pub token_file: PathBuf,
}

fn default_gateway_timeout() -> u64 {
    10
}
fn default_ui_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7878))
}
fn default_idle_lock() -> u64 {
    300
}
fn default_token_file() -> PathBuf {
    PathBuf::from("api-token")
}

impl Default for UiSection {
    fn default() -> Self {
        UiSection {
            address: default_ui_address(),
            language: Default::default(),
            idle_lock_seconds: default_idle_lock(),
        }
    }
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection { token_file: default_token_file() }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    gateway: GatewaySection,
    terminal: TerminalSection,
    #[serde(default)]
    readers: ReadersSection,
    #[serde(default)]
    ui: UiSection,
    #[serde(default)]
    api: ApiSection,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let f: File = toml::from_str(text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })?;
        if !f.ui.address.ip().is_loopback() {
            return Err(ConfigError::NotLoopback { path: path.to_owned(), address: f.ui.address });
        }
        if f.ui.idle_lock_seconds == 0 {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                what: "ui.idle_lock_seconds must be at least 1".into(),
            });
        }
        if f.gateway.address.rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()) {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                what: format!("gateway.address {:?} is not host:port", f.gateway.address),
            });
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let at = |p: &Path| if p.is_absolute() { p.to_owned() } else { base.join(p) };
        Ok(Config {
            gateway: GatewaySection { ca: at(&f.gateway.ca), ..f.gateway },
            terminal: TerminalSection {
                certificate: at(&f.terminal.certificate),
                key: at(&f.terminal.key),
                chain: at(&f.terminal.chain),
            },
            readers: f.readers,
            ui: f.ui,
            api: ApiSection { token_file: at(&f.api.token_file) },
        })
    }

    /// The gateway's address and certificate name.
    pub fn gateway_address(&self) -> gateway_client::GatewayAddress {
        let host = self.gateway.address.rsplit_once(':').map(|(h, _)| h).unwrap_or(&self.gateway.address);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        gateway_client::GatewayAddress {
            address: self.gateway.address.clone(),
            server_name: self.gateway.server_name.clone().unwrap_or_else(|| host.to_owned()),
        }
    }

    pub fn terminal_credentials(&self) -> gateway_client::TerminalCredentials {
        gateway_client::TerminalCredentials {
            certificate: self.terminal.certificate.clone(),
            key: self.terminal.key.clone(),
            chain: self.terminal.chain.clone(),
        }
    }

    /// Whether the agent watches `reader`.
    pub fn watches(&self, reader: &str) -> bool {
        self.readers.watch.is_empty() || self.readers.watch.iter().any(|w| reader.starts_with(w.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[gateway]\naddress = \"gw.example:8443\"\nca = \"ca.pem\"\n\
        [terminal]\ncertificate = \"t.pem\"\nkey = \"t.key\"\nchain = \"chain.pem\"\n";

    #[test]
    fn defaults_and_relative_paths() {
        let c = Config::parse(BASE, Path::new("/etc/agent/agent.toml")).expect("valid");
        assert_eq!(c.gateway.ca, Path::new("/etc/agent/ca.pem"));
        assert_eq!(c.api.token_file, Path::new("/etc/agent/api-token"));
        assert_eq!(c.ui.address, "127.0.0.1:7878".parse::<SocketAddr>().expect("addr"));
        assert_eq!(c.ui.idle_lock_seconds, 300);
        assert_eq!(c.gateway_address().server_name, "gw.example");
        assert!(c.watches("any reader"));
    }

    #[test]
    fn refuses_a_non_loopback_ui() {
        for addr in ["0.0.0.0:7878", "192.168.1.5:7878", "[::]:7878"] {
            let text = format!("{BASE}[ui]\naddress = \"{addr}\"\n");
            let err = Config::parse(&text, Path::new("a.toml")).expect_err("must refuse");
            assert!(matches!(err, ConfigError::NotLoopback { .. }), "{addr}: {err}");
            assert!(err.to_string().contains("not a loopback address"));
        }
        let text = format!("{BASE}[ui]\naddress = \"[::1]:7878\"\n");
        assert!(Config::parse(&text, Path::new("a.toml")).is_ok());
    }

    #[test]
    fn refuses_unknown_keys_and_bad_addresses() {
        let err = Config::parse(&format!("{BASE}[ui]\nadress = \"127.0.0.1:1\"\n"), Path::new("a.toml"))
            .expect_err("typo must be refused");
        assert!(err.to_string().contains("adress"), "{err}");
        let bad = BASE.replace("gw.example:8443", "gw.example");
        let err = Config::parse(&bad, Path::new("a.toml")).expect_err("no port");
        assert!(err.to_string().contains("host:port"), "{err}");
    }

    #[test]
    fn watch_list_matches_prefixes() {
        let c = Config::parse(&format!("{BASE}[readers]\nwatch = [\"Virtual PCD\"]\n"), Path::new("a.toml"))
            .expect("valid");
        assert!(c.watches("Virtual PCD 00 00"));
        assert!(!c.watches("ACS ACR39U 00 00"));
    }
}
