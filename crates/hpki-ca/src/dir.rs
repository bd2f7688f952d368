//! The CA directory: one folder per CA (certificate and 0600 key), the state
//! of everything issued (`state.json`) and the issuance ledger
//! (`ledger.jsonl`). An exclusive lock on `.lock` serialises IT staff working
//! on the same directory.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use rcgen::{Issuer, KeyPair};
use serde::{Deserialize, Serialize};

use crate::error::CaError;
use crate::hierarchy::CaRole;
use crate::keys;

pub const STATE_FORMAT: &str = "hpki-ca/1";
const STATE_FILE: &str = "state.json";
pub(crate) const LEDGER_FILE: &str = "ledger.jsonl";
const LOCK_FILE: &str = ".lock";
/// Where test CRLs are said to be published (`.invalid`: never resolves).
pub const DEFAULT_CRL_BASE_URL: &str = "http://crl.hpki-test.invalid/";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct State {
    pub format: String,
    pub created: String,
    pub crl_base_url: String,
    pub cas: BTreeMap<CaRole, CaState>,
    pub issued: Vec<IssuedCert>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaState {
    pub crl_number: u64,
}

/// What a certificate was issued as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertKind {
    CardAuthentication,
    CardSignature,
    AssistantAuthentication,
    AssistantSignature,
    Terminal,
    Server,
    /// An IPsec endpoint's IKE certificate.
    VpnEndpoint,
    /// A time-stamping authority's signing certificate (RFC 3161).
    TimeStamping,
}

/// One certificate issued from this directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedCert {
    /// Serial number, upper-case hex.
    pub serial: String,
    pub ca: CaRole,
    pub kind: CertKind,
    pub subject: String,
    pub not_after: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<RevocationRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationRecord {
    pub reason: crate::crl::Reason,
    pub date: String,
}

pub struct CaDir {
    root: PathBuf,
    pub(crate) state: State,
    _lock: File,
}

impl CaDir {
    /// Creates the whole test hierarchy in `dir` (which must be absent or
    /// empty).
    pub fn init(dir: &Path, crl_base_url: &str) -> Result<CaDir, CaError> {
        if dir.join(STATE_FILE).exists() {
            return Err(CaError::AlreadyExists(dir.into()));
        }
        if dir.exists() && fs::read_dir(dir).map_err(CaError::io(dir))?.next().is_some() {
            return Err(CaError::invalid("--dir", format!("{} exists and is not empty", dir.display())));
        }
        if !crl_base_url.starts_with("http://") && !crl_base_url.starts_with("https://") {
            return Err(CaError::invalid("--crl-base-url", format!("{crl_base_url:?} is not an http(s) URL")));
        }
        // Build everything in a sibling directory, then move it into place:
        // a failure leaves nothing half-made.
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(CaError::io(parent))?;
        let staging = parent.join(format!(
            ".{}.init-{}",
            dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
            std::process::id()
        ));
        if let Err(e) = Self::build(&staging, crl_base_url) {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        if dir.exists() {
            fs::remove_dir(dir).map_err(CaError::io(dir))?;
        }
        fs::rename(&staging, dir).map_err(CaError::io(dir))?;
        CaDir::open(dir)
    }

    fn build(staging: &Path, crl_base_url: &str) -> Result<(), CaError> {
        fs::create_dir_all(staging).map_err(CaError::io(staging))?;
        let root_key = create_ca(staging, CaRole::Root, None)?;
        for role in CaRole::ALL.into_iter().filter(|r| *r != CaRole::Root) {
            create_ca(staging, role, Some(&root_key))?;
        }
        let state = State {
            format: STATE_FORMAT.into(),
            created: now_rfc3339(),
            crl_base_url: crl_base_url.trim_end_matches('/').to_string() + "/",
            cas: CaRole::ALL.iter().map(|r| (*r, CaState { crl_number: 0 })).collect(),
            issued: Vec::new(),
        };
        write_state(staging, &state)?;
        File::create(staging.join(LEDGER_FILE)).map_err(CaError::io(staging.join(LEDGER_FILE)))?;
        Ok(())
    }

    /// Opens an existing CA directory, taking its lock (waits for another
    /// `hpki-certs` working on it).
    pub fn open(dir: &Path) -> Result<CaDir, CaError> {
        let state_path = dir.join(STATE_FILE);
        if !state_path.is_file() {
            return Err(CaError::NotACaDir(dir.into()));
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(CaError::io(dir.join(LOCK_FILE)))?;
        lock.lock().map_err(CaError::io(dir.join(LOCK_FILE)))?;
        let text = fs::read_to_string(&state_path).map_err(CaError::io(&state_path))?;
        let state: State = serde_json::from_str(&text)
            .map_err(|e| CaError::Corrupt { path: state_path.clone(), detail: e.to_string() })?;
        if state.format != STATE_FORMAT {
            return Err(CaError::Corrupt {
                path: state_path,
                detail: format!("format {:?}, expected {STATE_FORMAT:?}", state.format),
            });
        }
        let ca = CaDir { root: dir.into(), state, _lock: lock };
        for role in ca.roles() {
            ca.ca_cert_der(role)?;
        }
        Ok(ca)
    }

    /// The CAs this directory holds (a directory made by an older version
    /// may lack a later one until `ensure_ca` adds it).
    pub fn roles(&self) -> Vec<CaRole> {
        self.state.cas.keys().copied().collect()
    }

    /// Adds the CA `role` under the root if this directory does not hold it
    /// yet (the VPN CA came after the first directories were made).
    pub(crate) fn ensure_ca(&mut self, role: CaRole) -> Result<(), CaError> {
        if self.state.cas.contains_key(&role) {
            return Ok(());
        }
        let root_key = keys::load(&self.root.join(CaRole::Root.name()).join("key.pem"), CaRole::Root.key_kind())?;
        let dir = self.root.join(role.name());
        if dir.exists() {
            return Err(CaError::Corrupt {
                path: dir,
                detail: format!("CA {role} is not in state.json but its folder exists"),
            });
        }
        if let Err(e) = create_ca(&self.root, role, Some(&root_key)) {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.state.cas.insert(role, CaState { crl_number: 0 });
        self.save()
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn crl_url(&self, role: CaRole) -> String {
        format!("{}{}.crl", self.state.crl_base_url, role.name())
    }

    /// The DER certificate of a CA of this directory.
    pub fn ca_cert_der(&self, role: CaRole) -> Result<Vec<u8>, CaError> {
        let path = self.root.join(role.name()).join("cert.der");
        let der = fs::read(&path).map_err(CaError::io(&path))?;
        hpki_profile::holder::parse_certificate(&der)
            .map_err(|e| CaError::Corrupt { path: path.clone(), detail: e.to_string() })?;
        Ok(der)
    }

    pub(crate) fn issuer(&self, role: CaRole) -> Result<Issuer<'static, KeyPair>, CaError> {
        let key = keys::load(&self.root.join(role.name()).join("key.pem"), role.key_kind())?;
        Ok(Issuer::new(role.params(), key))
    }

    pub(crate) fn save(&self) -> Result<(), CaError> {
        write_state(&self.root, &self.state)
    }

    pub fn issued(&self) -> &[IssuedCert] {
        &self.state.issued
    }
}

/// Creates the folder of CA `role` in `base` with its certificate (signed by
/// `root_key`, or self-signed for the root) and 0600 key; returns the key.
fn create_ca(base: &Path, role: CaRole, root_key: Option<&KeyPair>) -> Result<KeyPair, CaError> {
    let dir = base.join(role.name());
    fs::create_dir(&dir).map_err(CaError::io(&dir))?;
    let (key, _) = keys::generate(role.key_kind())?;
    let mut params = role.params();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(role.validity_days());
    params.serial_number = Some(crate::issue::random_serial()?);
    let cert = match (role.parent(), root_key) {
        (None, _) => params.self_signed(&key)?,
        (Some(_), Some(rk)) => params.signed_by(&key, &Issuer::new(CaRole::Root.params(), rk))?,
        (Some(_), None) => return Err(CaError::KeyGeneration("root key missing".into())),
    };
    fs::write(dir.join("cert.pem"), cert.pem()).map_err(CaError::io(dir.join("cert.pem")))?;
    fs::write(dir.join("cert.der"), cert.der()).map_err(CaError::io(dir.join("cert.der")))?;
    keys::write_private(&dir.join("key.pem"), key.serialize_pem().as_bytes())?;
    Ok(key)
}

/// Atomic replace: temporary file, fsync, rename.
fn write_state(dir: &Path, state: &State) -> Result<(), CaError> {
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(".state.json.tmp");
    let text = serde_json::to_string_pretty(state)
        .map_err(|e| CaError::Corrupt { path: path.clone(), detail: e.to_string() })?;
    {
        use std::io::Write;
        let mut f = File::create(&tmp).map_err(CaError::io(&tmp))?;
        f.write_all(text.as_bytes()).map_err(CaError::io(&tmp))?;
        f.sync_all().map_err(CaError::io(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(CaError::io(&path))
}

pub(crate) fn now_rfc3339() -> String {
    hpki_profile::validate::rfc3339(time::OffsetDateTime::now_utc().unix_timestamp())
}
