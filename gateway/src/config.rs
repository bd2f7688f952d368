//! The gateway's configuration file (TOML). Every option, with its default,
//! is documented in `docs/gateway.md`. Relative paths are relative to
//! the configuration file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::store::StoreConfig;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The identity a card signs into its login (`gateway_id` in the TBS).
    pub gateway_id: String,
    #[serde(default)]
    pub store: StoreSection,
    pub listener: ListenerSection,
    pub hpki: HpkiSection,
    #[serde(default)]
    pub sessions: SessionSection,
    #[serde(default)]
    pub ops: OpsSection,
    #[serde(default)]
    pub records: RecordsSection,
    #[serde(default)]
    pub audit: AuditSection,
    /// The patient listener (TLS, ID and password); absent: not served.
    pub patients: Option<PatientSection>,
    /// Abnormal-access rules (LOG-4); absent: no rule runs.
    pub alerts: Option<AlertsSection>,
    /// The RFC 3161 time-stamping authority every confirm signature is
    /// stamped by (DATA-4); absent: records are signed without a
    /// time-stamp (CAdES B-B), which no production gateway should do.
    pub timestamps: Option<TimestampsSection>,
    /// Emergency access to one patient by a designated clinician (FLOW-7).
    #[serde(default)]
    pub break_glass: BreakGlassSection,
    /// De-identified exports for research (FLOW-8).
    #[serde(default)]
    pub research: ResearchSection,
    /// How long records are kept before `records erase --expired` (DATA-8).
    #[serde(default)]
    pub retention: RetentionSection,
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Directory of the SQLite files (the default store).
    #[serde(default = "default_data_dir")]
    pub sqlite_dir: PathBuf,
    /// Use PostgreSQL instead (`postgres://user@host/db`).
    pub postgres_url: Option<String>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection { sqlite_dir: default_data_dir(), postgres_url: None }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSection {
    pub address: SocketAddr,
    /// Server certificate chain (PEM) and key (PEM, PKCS#8).
    pub certificate: PathBuf,
    pub key: PathBuf,
    /// CA certificates whose terminal certificates are accepted (PEM).
    pub terminal_ca: Vec<PathBuf>,
    /// CRLs of those CAs (DER or PEM); one past its nextUpdate fails closed.
    pub terminal_crls: Vec<PathBuf>,
    /// Source networks allowed to connect (the VPN ranges); anything else is
    /// refused before TLS.
    pub allow: Vec<IpNet>,
    #[serde(default = "d10")]
    pub handshake_timeout_seconds: u64,
    #[serde(default = "d60")]
    pub idle_timeout_seconds: u64,
    #[serde(default = "d1024")]
    pub max_connections: usize,
    #[serde(default = "d65536")]
    pub max_body_bytes: usize,
    /// Requests per second per terminal (a burst of the same size allowed).
    #[serde(default = "d50")]
    pub requests_per_second_per_terminal: u32,
    /// TLS handshakes in progress at once; they hold no connection slot, so
    /// a flood of handshakes cannot take the terminals' slots.
    #[serde(default = "d256")]
    pub max_handshakes: usize,
    /// Connections (handshaking or open) from one source address.
    #[serde(default = "d256")]
    pub max_connections_per_source: usize,
    /// A request body must arrive whole within this (`body_timeout`, 408).
    #[serde(default = "d10")]
    pub body_timeout_seconds: u64,
    /// Refused requests and connections audited one by one each second;
    /// the rest of the second are written as counted entries.
    #[serde(default = "d100u")]
    pub refusal_entries_per_second: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HpkiSection {
    /// HPKI and institution-PKI trust anchors (PEM or DER).
    pub anchors: Vec<PathBuf>,
    #[serde(default)]
    pub intermediates: Vec<PathBuf>,
    /// CRLs of every CA below the anchors.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// Accept the test HPKI policies of `hpki-certs` cards (never in
    /// production).
    #[serde(default)]
    pub accept_test_policies: bool,
    /// Further accepted authentication policies (dotted OIDs).
    #[serde(default)]
    pub accept_authentication_policies: Vec<String>,
    /// What each trust anchor, or CA below one, may certify (`[[hpki.scope]]`).
    /// A card whose chain passes through no scoped CA is refused.
    #[serde(default)]
    pub scope: Vec<ScopeSection>,
}

/// One `[[hpki.scope]]`: a CA certificate and what it may certify.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeSection {
    /// The CA's certificate (PEM or DER): an anchor or an intermediate. It
    /// is matched by subject and key, so a renewed certificate of the same
    /// CA keeps its scope.
    pub ca: PathBuf,
    pub certifies: Certifies,
    /// With `licensed`: only these professions (slug, hcRole text or
    /// Japanese name); absent: every profession.
    #[serde(default)]
    pub professions: Option<Vec<String>>,
    /// With `assistants`: the institutions (Subject O) whose assistants
    /// this CA certifies.
    #[serde(default)]
    pub institutions: Vec<String>,
    /// With `assistants`: any institution the certificate names instead of
    /// a list (for an institution CA the region's IT staff run themselves).
    #[serde(default)]
    pub any_institution: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Certifies {
    /// Licensed professionals by hcRole (the HPKI roots and their CAs).
    Licensed,
    /// Assistants without hcRole (an institution-PKI CA).
    Assistants,
    /// No card holder (terminal, server, VPN CAs).
    Nothing,
}

impl ScopeSection {
    /// The library's grant, or why this section says nothing coherent.
    pub fn grant(&self) -> Result<hpki_profile::Grant, String> {
        use hpki_profile::Grant;
        let ca = self.ca.display();
        match self.certifies {
            Certifies::Licensed => {
                if !self.institutions.is_empty() || self.any_institution {
                    return Err(format!("hpki.scope {ca}: institutions belong to certifies = \"assistants\""));
                }
                let professions = self
                    .professions
                    .as_ref()
                    .map(|list| {
                        list.iter()
                            .map(|p| p.parse::<hpki_profile::Profession>().map_err(|e| format!("hpki.scope {ca}: {e}")))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .transpose()?;
                if professions.as_ref().is_some_and(Vec::is_empty) {
                    return Err(format!(
                        "hpki.scope {ca}: professions = [] would certify nobody; leave it out for all"
                    ));
                }
                Ok(Grant::Licensed { professions })
            }
            Certifies::Assistants => {
                if self.professions.is_some() {
                    return Err(format!("hpki.scope {ca}: professions belong to certifies = \"licensed\""));
                }
                match (self.institutions.is_empty(), self.any_institution) {
                    (false, false) => Ok(Grant::Assistants { institutions: Some(self.institutions.clone()) }),
                    (true, true) => Ok(Grant::Assistants { institutions: None }),
                    (false, true) => Err(format!("hpki.scope {ca}: give institutions or any_institution, not both")),
                    (true, false) => Err(format!(
                        "hpki.scope {ca}: name the institutions whose assistants it certifies \
                         (institutions = [\"...\"]), or set any_institution = true"
                    )),
                }
            }
            Certifies::Nothing => {
                if self.professions.is_some() || !self.institutions.is_empty() || self.any_institution {
                    return Err(format!(
                        "hpki.scope {ca}: a CA that certifies nothing takes no professions or institutions"
                    ));
                }
                Ok(Grant::Nothing)
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSection {
    #[serde(default = "d300")]
    pub idle_timeout_seconds: i64,
    #[serde(default = "d43200")]
    pub max_lifetime_seconds: i64,
    #[serde(default = "d120")]
    pub challenge_lifetime_seconds: i64,
}

impl Default for SessionSection {
    fn default() -> Self {
        SessionSection { idle_timeout_seconds: 300, max_lifetime_seconds: 43_200, challenge_lifetime_seconds: 120 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpsSection {
    /// /healthz, /readyz and /metrics; loopback or a management network.
    #[serde(default = "default_ops")]
    pub address: SocketAddr,
}

fn default_ops() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

impl Default for OpsSection {
    fn default() -> Self {
        OpsSection { address: default_ops() }
    }
}

/// Retention per record kind (DATA-8): years after the patient's last
/// encounter at the record's institution (or the record's date, without
/// one). A kind not listed is never erased. The audit log is never erased.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    #[serde(default = "default_retention_years")]
    pub years: std::collections::BTreeMap<String, i64>,
}

/// Medical records 5 years after the treatment ended (医師法 §24), the
/// pharmacist's dispensing records 3 years (薬剤師法 §28), the rest as
/// medical records.
fn default_retention_years() -> std::collections::BTreeMap<String, i64> {
    [("medical", 5), ("dispensing", 3), ("note", 5), ("received", 5), ("correction", 5)]
        .into_iter()
        .map(|(k, y)| (k.to_owned(), y))
        .collect()
}

impl Default for RetentionSection {
    fn default() -> Self {
        RetentionSection { years: default_retention_years() }
    }
}

/// De-identified exports (FLOW-8, `hpki-gateway export research`): how
/// institutions generalise to regions, and which content fields may leave
/// (everything else, free text above all, is dropped).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResearchSection {
    /// Institution name → region; an institution not listed is exported
    /// as `unspecified`, never by name.
    #[serde(default)]
    pub regions: std::collections::BTreeMap<String, String>,
    /// Content fields exported when their value is a string, number or
    /// boolean (e.g. `["type", "drug", "days"]`); none by default.
    #[serde(default)]
    pub keep_fields: Vec<String>,
}

/// Break-glass access (FLOW-7): who may is designated by IT staff
/// (`hpki-gateway admin break-glass grant`); this is how long an access
/// lasts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassSection {
    #[serde(default = "d3600")]
    pub duration_seconds: i64,
}

impl Default for BreakGlassSection {
    fn default() -> Self {
        BreakGlassSection { duration_seconds: 3600 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsSection {
    /// AES-256-GCM record keys (TOML, mode 0600). Created with one fresh key
    /// at the first start when the store holds no encrypted rows yet.
    #[serde(default = "default_key_file")]
    pub key_file: PathBuf,
    /// An encounter closes by itself after this long (FLOW-3).
    #[serde(default = "d14400")]
    pub encounter_max_seconds: i64,
}

/// Signed checkpoints of the audit chain's head (`audit::checkpoint`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// The append-only checkpoint file: keep it off the database's disk and
    /// out of the database administrator's reach (or ship it elsewhere).
    #[serde(default = "default_checkpoints")]
    pub checkpoints: PathBuf,
    /// Ed25519 signing key (PKCS#8, mode 0600), created at the first start;
    /// its public half is written beside it (`.pub`).
    #[serde(default = "default_checkpoint_key")]
    pub checkpoint_key: PathBuf,
    #[serde(default = "d300")]
    pub checkpoint_every_seconds: i64,
}

fn default_checkpoints() -> PathBuf {
    PathBuf::from("audit-checkpoints.jsonl")
}

fn default_checkpoint_key() -> PathBuf {
    PathBuf::from("audit-checkpoint.key")
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            checkpoints: default_checkpoints(),
            checkpoint_key: default_checkpoint_key(),
            checkpoint_every_seconds: 300,
        }
    }
}

fn default_key_file() -> PathBuf {
    PathBuf::from("record-keys.toml")
}

impl Default for RecordsSection {
    fn default() -> Self {
        RecordsSection { key_file: default_key_file(), encounter_max_seconds: 14_400 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PatientSection {
    /// Where patients connect (TLS, no client certificate; NET-2).
    pub address: SocketAddr,
    /// Server certificate chain and key (PEM).
    pub certificate: PathBuf,
    pub key: PathBuf,
    #[serde(default = "d900")]
    pub session_idle_seconds: i64,
    #[serde(default = "d28800")]
    pub session_max_seconds: i64,
    /// Consecutive wrong passwords before the account locks.
    #[serde(default = "d5i")]
    pub max_failed_logins: i64,
    /// The first lock; each further failure doubles it, up to a day.
    #[serde(default = "d30i")]
    pub lockout_seconds: i64,
    #[serde(default = "d8192")]
    pub max_body_bytes: usize,
    /// What one patient listener may take of the gateway (it faces the
    /// internet): `[patients.limits]`.
    #[serde(default)]
    pub limits: PatientLimits,
}

/// The patient listener's own limits, apart from the institution
/// listener's, so that a flood from the internet cannot take the clinics'
/// connections, threads or audit disk.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PatientLimits {
    pub max_connections: usize,
    pub max_connections_per_source: usize,
    pub handshake_timeout_seconds: u64,
    /// The request headers must arrive within this.
    pub header_timeout_seconds: u64,
    /// The body must arrive whole within this.
    pub body_timeout_seconds: u64,
    /// Sign-ins (and password changes) a minute per source address, in
    /// bursts of `login_burst`.
    pub logins_per_minute_per_source: u32,
    /// Sign-ins a minute per patient ID, known or not, in bursts of
    /// `login_burst`.
    pub logins_per_minute_per_id: u32,
    pub login_burst: u32,
    /// Password hashes computed at once, and waiting beyond those.
    pub password_workers: usize,
    pub password_queue: usize,
    /// Refusals audited one by one each second; the rest are counted.
    pub refusal_entries_per_second: u32,
}

impl Default for PatientLimits {
    fn default() -> Self {
        PatientLimits {
            max_connections: 256,
            max_connections_per_source: 8,
            handshake_timeout_seconds: 5,
            header_timeout_seconds: 10,
            body_timeout_seconds: 10,
            logins_per_minute_per_source: 30,
            logins_per_minute_per_id: 10,
            login_burst: 10,
            password_workers: 2,
            password_queue: 16,
            refusal_entries_per_second: 20,
        }
    }
}

/// `[timestamps]`: the TSA and what its tokens are checked against.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampsSection {
    /// `http://host[:port]/path`: RFC 3161 over HTTP (tokens are signed;
    /// the request carries only a hash).
    pub url: String,
    /// Trust anchors for TSA certificates (PEM or DER).
    pub anchors: Vec<PathBuf>,
    #[serde(default)]
    pub intermediates: Vec<PathBuf>,
    /// CRLs for the TSA's chain; a TSA certificate is refused without a
    /// current one (fail closed).
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// How long a confirm waits for the TSA before `timestamp_unavailable`.
    #[serde(default = "d5000")]
    pub timeout_ms: u64,
    /// The TSA policy to ask for and require (dotted OID); absent: any.
    pub policy: Option<String>,
    /// How far a token's genTime may be from the gateway's clock.
    #[serde(default = "d300")]
    pub max_skew_seconds: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// `http://` URL that receives every alert as JSON (POST).
    pub webhook: Option<String>,
    pub refused_logins: Option<RefusedLoginsRule>,
    pub institution_hopping: Option<HoppingRule>,
    pub opening_hours: Option<OpeningHoursRule>,
}

/// `max` refused logins from one terminal within `window_seconds`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RefusedLoginsRule {
    #[serde(default = "d5u")]
    pub max: u32,
    #[serde(default = "d300")]
    pub window_seconds: i64,
    #[serde(default = "yes")]
    pub suspend_terminal: bool,
}

/// One card logged in at two institutions within `window_seconds`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HoppingRule {
    #[serde(default = "d600")]
    pub window_seconds: i64,
    #[serde(default = "yes")]
    pub suspend_person: bool,
}

/// Logins outside `open`–`close` ("HH:MM", local time at
/// `utc_offset_minutes`, Japan +540 by default).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningHoursRule {
    pub open: String,
    pub close: String,
    #[serde(default = "d540")]
    pub utc_offset_minutes: i32,
    #[serde(default)]
    pub suspend_person: bool,
}

/// Minutes after midnight of "HH:MM".
fn hhmm(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && text.len() == 5).then_some(h * 60 + m)
}

impl OpeningHoursRule {
    pub fn open_minute(&self) -> u16 {
        hhmm(&self.open).unwrap_or(0)
    }
    pub fn close_minute(&self) -> u16 {
        hhmm(&self.close).unwrap_or(0)
    }
}

const fn yes() -> bool {
    true
}
const fn d5u() -> u32 {
    5
}
const fn d600() -> i64 {
    600
}
const fn d540() -> i32 {
    540
}
const fn d3600() -> i64 {
    3600
}
const fn d14400() -> i64 {
    14_400
}
const fn d900() -> i64 {
    900
}
const fn d28800() -> i64 {
    28_800
}
const fn d5i() -> i64 {
    5
}
const fn d30i() -> i64 {
    30
}
const fn d8192() -> usize {
    8192
}
const fn d10() -> u64 {
    10
}
const fn d60() -> u64 {
    60
}
const fn d1024() -> usize {
    1024
}
const fn d256() -> usize {
    256
}
const fn d100u() -> u32 {
    100
}
const fn d65536() -> usize {
    65_536
}
const fn d50() -> u32 {
    50
}
const fn d5000() -> u64 {
    5000
}
const fn d300() -> i64 {
    300
}
const fn d43200() -> i64 {
    43_200
}
const fn d120() -> i64 {
    120
}

impl TimestampsSection {
    fn validate(&self) -> Result<(), String> {
        crate::signatures::tsa_client::TsaUrl::parse(&self.url).map_err(|e| format!("timestamps.url: {e}"))?;
        if self.anchors.is_empty() {
            return Err("timestamps.anchors is empty: no TSA certificate could be trusted".into());
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return Err("timestamps.timeout_ms must be 100–60000".into());
        }
        if !(1..=3600).contains(&self.max_skew_seconds) {
            return Err("timestamps.max_skew_seconds must be 1–3600".into());
        }
        if let Some(p) = &self.policy
            && hpki_profile::Oid::parse(p).is_err()
        {
            return Err(format!("timestamps.policy {p:?} is not a dotted OID"));
        }
        Ok(())
    }
}

impl AlertsSection {
    /// Writes the configuration as TOML to `path` (relative paths stay
    /// relative to the file's directory) after the checks `load` makes.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate().map_err(|detail| ConfigError::Invalid { path: path.into(), detail })?;
        let text =
            toml::to_string(self).map_err(|e| ConfigError::Write { path: path.into(), detail: e.to_string() })?;
        std::fs::write(path, text).map_err(|e| ConfigError::Write { path: path.into(), detail: e.to_string() })
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.webhook
            && !url.starts_with("http://")
        {
            return Err(format!("alerts.webhook {url:?}: only http:// (an alert relay on the management network)"));
        }
        if let Some(r) = &self.refused_logins
            && (r.max == 0 || !(1..=86_400).contains(&r.window_seconds))
        {
            return Err("alerts.refused_logins: max must be at least 1 and window_seconds 1–86400".into());
        }
        if let Some(r) = &self.institution_hopping
            && !(1..=86_400).contains(&r.window_seconds)
        {
            return Err("alerts.institution_hopping.window_seconds must be 1–86400".into());
        }
        if let Some(r) = &self.opening_hours {
            if hhmm(&r.open).is_none() || hhmm(&r.close).is_none() || r.open == r.close {
                return Err("alerts.opening_hours: open and close must be different \"HH:MM\" times".into());
            }
            if !(-720..=840).contains(&r.utc_offset_minutes) {
                return Err("alerts.opening_hours.utc_offset_minutes must be -720–840".into());
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error("cannot write {path}: {detail}")]
    Write { path: PathBuf, detail: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let mut c: Config =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), detail: e.to_string() })?;
        c.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        c.validate().map_err(|detail| ConfigError::Invalid { path: path.into(), detail })?;
        Ok(c)
    }

    /// Writes the configuration as TOML to `path` (relative paths stay
    /// relative to the file's directory) after the checks `load` makes.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate().map_err(|detail| ConfigError::Invalid { path: path.into(), detail })?;
        let text =
            toml::to_string(self).map_err(|e| ConfigError::Write { path: path.into(), detail: e.to_string() })?;
        std::fs::write(path, text).map_err(|e| ConfigError::Write { path: path.into(), detail: e.to_string() })
    }

    fn validate(&self) -> Result<(), String> {
        if self.gateway_id.trim().is_empty() || self.gateway_id.len() > 255 {
            return Err("gateway_id must be 1–255 characters".into());
        }
        if self.listener.allow.is_empty() {
            return Err("listener.allow is empty: no terminal could connect".into());
        }
        let l = &self.listener;
        if l.max_connections == 0 || l.max_handshakes == 0 || l.max_connections_per_source == 0 {
            return Err(
                "listener: max_connections, max_handshakes and max_connections_per_source must be at least 1".into()
            );
        }
        if !(1..=300).contains(&l.body_timeout_seconds) {
            return Err("listener.body_timeout_seconds must be 1–300".into());
        }
        if self.listener.terminal_ca.is_empty() {
            return Err("listener.terminal_ca is empty".into());
        }
        if self.hpki.anchors.is_empty() {
            return Err("hpki.anchors is empty".into());
        }
        if self.hpki.scope.is_empty() {
            return Err("no [[hpki.scope]]: say what each trust anchor or CA may certify \
                 (certifies = \"licensed\" for the HPKI CAs, \"assistants\" for the institution CA); \
                 without one no card is accepted"
                .into());
        }
        for s in &self.hpki.scope {
            s.grant()?;
        }
        let s = &self.sessions;
        if !(1..=3600).contains(&s.idle_timeout_seconds) || s.max_lifetime_seconds < s.idle_timeout_seconds {
            return Err("sessions: idle_timeout_seconds must be 1–3600 and at most max_lifetime_seconds".into());
        }
        if !(1..=120).contains(&s.challenge_lifetime_seconds) {
            return Err("sessions.challenge_lifetime_seconds must be 1–120 (challenges live at most 2 minutes)".into());
        }
        if !(1..=86_400).contains(&self.audit.checkpoint_every_seconds) {
            return Err("audit.checkpoint_every_seconds must be 1–86400".into());
        }
        if !(60..=86_400).contains(&self.records.encounter_max_seconds) {
            return Err("records.encounter_max_seconds must be 60–86400".into());
        }
        for (kind, years) in &self.retention.years {
            if !(1..=100).contains(years) {
                return Err(format!("retention.years.{kind} must be 1–100"));
            }
        }
        for f in &self.research.keep_fields {
            // Direct identifiers never leave, whatever a list says.
            if f.trim().is_empty()
                || ["name", "name_kanji", "patient", "birth_date", "address", "phone"].contains(&f.as_str())
            {
                return Err(format!("research.keep_fields: {f:?} may not be exported (empty or a direct identifier)"));
            }
        }
        if !(60..=86_400).contains(&self.break_glass.duration_seconds) {
            return Err("break_glass.duration_seconds must be 60–86400".into());
        }
        if let Some(p) = &self.patients {
            if !(60..=86_400).contains(&p.session_idle_seconds) || p.session_max_seconds < p.session_idle_seconds {
                return Err("patients: session_idle_seconds must be 60–86400 and at most session_max_seconds".into());
            }
            if !(1..=100).contains(&p.max_failed_logins) || !(1..=86_400).contains(&p.lockout_seconds) {
                return Err("patients: max_failed_logins must be 1–100 and lockout_seconds 1–86400".into());
            }
            let l = &p.limits;
            if l.max_connections == 0 || l.max_connections_per_source == 0 || l.password_workers == 0 {
                return Err("patients.limits: max_connections, max_connections_per_source and password_workers must be at least 1".into());
            }
            if [l.handshake_timeout_seconds, l.header_timeout_seconds, l.body_timeout_seconds]
                .iter()
                .any(|t| !(1..=300).contains(t))
            {
                return Err("patients.limits: the timeouts must be 1–300 seconds".into());
            }
            if p.address == self.listener.address && p.address.port() != 0 {
                return Err("patients.address must differ from listener.address".into());
            }
        }
        if let Some(a) = &self.alerts {
            a.validate()?;
        }
        if let Some(t) = &self.timestamps {
            t.validate()?;
        }
        Ok(())
    }

    /// A path from the file, relative to the configuration's directory.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() { p.to_path_buf() } else { self.base_dir.join(p) }
    }

    pub fn store_config(&self) -> StoreConfig {
        match &self.store.postgres_url {
            Some(url) => StoreConfig::Postgres { url: url.clone() },
            None => StoreConfig::Sqlite { dir: self.path(&self.store.sqlite_dir) },
        }
    }
}
