//! Shared set-up for the end-to-end tests: a test world (CA, certificates,
//! CRLs, an in-process gateway with a movable clock) and a terminal client
//! speaking mTLS. The PC/SC side comes from `testbed`.

mod agent_process;
pub mod clinic_story;
mod gateway_process;
pub mod independent;
pub mod ipsec_link;
pub mod pg_cluster;
mod software_card;
pub mod test_tsa;

/// A script of `tests/python/` run by the Python of the independent
/// validators (`scripts/install-python-tools.sh`, which `make test` runs;
/// `HPKI_PYTHON_VENV` to use another environment).
pub fn python_tool(script: &str) -> std::process::Command {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv =
        std::env::var_os("HPKI_PYTHON_VENV").map(PathBuf::from).unwrap_or_else(|| tests.join("../target/pytools"));
    let mut c = std::process::Command::new(venv.join("bin/python"));
    c.arg(tests.join("python").join(script));
    c
}

/// `program` as a command whose clock runs `days` ahead of the machine's
/// (libfaketime's `faketime`, from Debian; `make test` installs it), or
/// the plain command for 0: for tests that travel into a record's
/// retention with the real binaries and OpenSSL.
pub fn clock_ahead(program: &str, days: i64) -> std::process::Command {
    if days == 0 {
        return std::process::Command::new(program);
    }
    let mut c = std::process::Command::new("faketime");
    // Monotonic clocks stay real: tokio's timers measure with them.
    c.env("FAKETIME_DONT_FAKE_MONOTONIC", "1").arg("-f").arg(format!("{days:+}d")).arg(program);
    c
}

pub use agent_process::{AgentOptions, AgentProcess, reader_view};
pub use gateway_process::{GatewayProcess, free_port, gateway_cli, gateway_cli_ahead, gateway_cli_raw, wait_ready};
pub use software_card::SoftwareCard;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hpki_ca::{CaDir, CaRole, CardRequest, ServerRequest, TerminalRequest};
use hpki_card::{Application, CardVariant, HpkiCard, Pin, RSA_2048_BYTES, sha256};
use hpki_gateway::app::{App, Running};
use hpki_gateway::clock::OffsetClock;
use hpki_gateway::config::Config;
use hpki_gateway::gateway::Gateway;
use hpki_gateway::store::NewPerson;
use hpki_profile::Profession;
use hpki_protocol::LoginTbs;
use serde_json::{Value, json};

pub const GATEWAY_ID: &str = "gateway.test.invalid";
pub const PIN: &str = "4826";

/// A virtual card in a slot of a private pcscd, connected; the card's
/// process ends with it.
pub struct CardSlot {
    pub card: HpkiCard,
    _process: testbed::CardProcess,
}

/// Starts the card `image` in `slot` of `pcscd` and connects to it.
pub fn insert_card(pcscd: &testbed::PrivatePcscd, slot: u8, image: &Path) -> Result<CardSlot> {
    let process = testbed::CardProcess::start(pcscd, slot, image)?;
    let ctx = hpki_card::PcscContext::establish()?;
    ctx.wait_for_card(process.reader(), std::time::Duration::from_secs(5))?;
    let card = ctx.connect(process.reader())?;
    Ok(CardSlot { card, _process: process })
}

/// Options of a test world.
#[derive(Clone)]
pub struct WorldOptions {
    /// Use this PostgreSQL URL instead of SQLite.
    pub postgres: Option<String>,
    pub allow: Vec<&'static str>,
    pub max_body_bytes: usize,
    pub requests_per_second: u32,
    pub handshake_timeout_seconds: u64,
    pub max_connections: usize,
    pub max_handshakes: usize,
    pub max_connections_per_source: usize,
    pub body_timeout_seconds: u64,
    /// The patient listener's limits (`[patients.limits]`).
    pub patient_limits: hpki_gateway::config::PatientLimits,
    /// Also run the patient listener.
    pub patients: bool,
    /// The `[alerts]` table, as an operator writes it (TOML); `None`: no
    /// rule runs.
    pub alerts: Option<String>,
    /// Run a test TSA ([`test_tsa::TestTsa`]) and configure `[timestamps]`
    /// with it; `None`: records are CAdES B-B.
    pub tsa: Option<TsaOptions>,
    /// `[break_glass] duration_seconds`.
    pub break_glass_seconds: i64,
    /// `[research]`.
    pub research: hpki_gateway::config::ResearchSection,
    /// `[retention]`.
    pub retention: hpki_gateway::config::RetentionSection,
}

/// The world's test TSA and how the gateway is configured for it.
#[derive(Debug, Clone)]
pub struct TsaOptions {
    /// Issue the TSA's certificate from the world's own service CA
    /// (`true`), or from another test PKI the gateway does not trust.
    pub trusted: bool,
    /// `[timestamps] max_skew_seconds`.
    pub max_skew_seconds: i64,
    /// The TSA's certificate (from the world's service CA) expired
    /// yesterday: issued by `hpki-certs` with its clock three days back.
    pub expired: bool,
}

impl Default for TsaOptions {
    fn default() -> Self {
        TsaOptions { trusted: true, max_skew_seconds: 300, expired: false }
    }
}

impl Default for WorldOptions {
    fn default() -> Self {
        WorldOptions {
            postgres: None,
            allow: vec!["127.0.0.0/8"],
            max_body_bytes: 65_536,
            requests_per_second: 1000,
            handshake_timeout_seconds: 10,
            max_connections: 1024,
            max_handshakes: 256,
            max_connections_per_source: 256,
            body_timeout_seconds: 10,
            patient_limits: hpki_gateway::config::PatientLimits::default(),
            patients: false,
            break_glass_seconds: 3600,
            research: Default::default(),
            retention: Default::default(),
            alerts: None,
            tsa: None,
        }
    }
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub ca: CaDir,
    pub gw: Arc<Gateway>,
    pub clock: OffsetClock,
    pub addr: SocketAddr,
    /// The ops listener (/healthz, /readyz, /metrics).
    pub ops_addr: SocketAddr,
    /// The patient listener, when asked for.
    pub patient_addr: Option<SocketAddr>,
    /// The test TSA, when asked for.
    pub tsa: Option<test_tsa::TestTsa>,
    running: Running,
}

impl Drop for World {
    fn drop(&mut self) {
        self.running.abort();
    }
}

/// Credentials of a terminal (PEM file paths).
#[derive(Clone)]
pub struct TerminalCreds {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub chain: PathBuf,
}

/// The `[[hpki.scope]]` tables for the test hierarchy's CA files
/// (`<role>.der` beside the configuration): what each CA certifies, as
/// [`CaRole::grant`] says.
pub fn test_hierarchy_scopes() -> String {
    let mut out = String::new();
    for role in CaRole::ALL {
        let body = match role.grant() {
            hpki_profile::Grant::Licensed { .. } => "certifies = \"licensed\"",
            hpki_profile::Grant::Assistants { .. } => "certifies = \"assistants\"\nany_institution = true",
            hpki_profile::Grant::Nothing => "certifies = \"nothing\"",
        };
        out.push_str(&format!("[[hpki.scope]]\nca = \"{}.der\"\n{body}\n", role.name()));
    }
    out
}

/// Relative paths of a test configuration (beside the file).
fn p(path: &str) -> PathBuf {
    PathBuf::from(path)
}

/// The configuration of a test world's gateway, typed: the world's PKI
/// files beside it, listeners on free ports, `opts` applied.
pub fn gateway_config(opts: &WorldOptions) -> Result<Config> {
    use hpki_gateway::config::*;
    let any_port: SocketAddr = "127.0.0.1:0".parse()?;
    let alerts = match &opts.alerts {
        Some(text) => Some(toml::from_str::<AlertsSection>(text).context("[alerts]")?),
        None => None,
    };
    Ok(Config {
        gateway_id: GATEWAY_ID.into(),
        store: StoreSection { sqlite_dir: p("data"), postgres_url: opts.postgres.clone() },
        listener: ListenerSection {
            address: any_port,
            certificate: p("server/server.pem"),
            key: p("server/server.key"),
            terminal_ca: vec![p("terminal.der")],
            terminal_crls: vec![p("crl/terminal.crl")],
            allow: opts.allow.iter().map(|a| a.parse()).collect::<Result<_, _>>()?,
            handshake_timeout_seconds: opts.handshake_timeout_seconds,
            idle_timeout_seconds: 60,
            max_connections: opts.max_connections,
            max_body_bytes: opts.max_body_bytes,
            requests_per_second_per_terminal: opts.requests_per_second,
            max_handshakes: opts.max_handshakes,
            max_connections_per_source: opts.max_connections_per_source,
            body_timeout_seconds: opts.body_timeout_seconds,
            refusal_entries_per_second: 100,
        },
        hpki: HpkiSection {
            anchors: vec![p("root.der")],
            intermediates: vec![p("hpki-auth.der"), p("hpki-sign.der"), p("institution.der")],
            crls: vec![p("crl/root.crl"), p("crl/hpki-auth.crl"), p("crl/hpki-sign.crl"), p("crl/institution.crl")],
            accept_test_policies: true,
            accept_authentication_policies: Vec::new(),
            scope: test_hierarchy_scope_sections(),
        },
        sessions: SessionSection::default(),
        ops: OpsSection { address: any_port },
        records: RecordsSection::default(),
        audit: AuditSection::default(),
        patients: opts.patients.then(|| PatientSection {
            address: any_port,
            certificate: p("server/server.pem"),
            key: p("server/server.key"),
            session_idle_seconds: 900,
            session_max_seconds: 28_800,
            max_failed_logins: 5,
            lockout_seconds: 30,
            max_body_bytes: 8192,
            limits: opts.patient_limits.clone(),
        }),
        alerts,
        timestamps: None,
        break_glass: hpki_gateway::config::BreakGlassSection { duration_seconds: opts.break_glass_seconds },
        research: opts.research.clone(),
        retention: opts.retention.clone(),
        base_dir: PathBuf::new(),
    })
}

/// [`test_hierarchy_scopes`], typed.
pub fn test_hierarchy_scope_sections() -> Vec<hpki_gateway::config::ScopeSection> {
    use hpki_gateway::config::{Certifies, ScopeSection};
    CaRole::ALL
        .into_iter()
        .map(|role| {
            let (certifies, any_institution) = match role.grant() {
                hpki_profile::Grant::Licensed { .. } => (Certifies::Licensed, false),
                hpki_profile::Grant::Assistants { .. } => (Certifies::Assistants, true),
                hpki_profile::Grant::Nothing => (Certifies::Nothing, false),
            };
            ScopeSection {
                ca: PathBuf::from(format!("{}.der", role.name())),
                certifies,
                professions: None,
                institutions: Vec::new(),
                any_institution,
            }
        })
        .collect()
}

impl World {
    pub async fn start(opts: WorldOptions) -> Result<World> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        let mut ca = CaDir::init(&root.join("ca"), hpki_ca::DEFAULT_CRL_BASE_URL)?;
        ca.issue_server(
            &ServerRequest { name: "gateway".into(), dns: vec!["localhost".into()], ips: vec![], valid_days: 30 },
            &root.join("server"),
        )?;
        ca.publish_crls(&root.join("crl"), time::Duration::days(4))?;
        for role in CaRole::ALL {
            std::fs::write(root.join(format!("{}.der", role.name())), ca.ca_cert_der(role)?)?;
        }
        let path = root.join("gateway.toml");
        let mut config = gateway_config(&opts)?;
        let tsa = match &opts.tsa {
            Some(t) => {
                let tsa = if t.expired {
                    // From a copy of the CA directory: the world holds the
                    // original's lock for its lifetime.
                    let past = root.join("ca-past");
                    let copied = std::process::Command::new("cp").arg("-a").arg(root.join("ca")).arg(&past).status()?;
                    anyhow::ensure!(copied.success(), "copying the CA directory");
                    let issued = clock_ahead(&testbed::bin_path("hpki-certs")?.display().to_string(), -3)
                        .args(["tsa", "issue", "--name", "Expired TSA", "--valid-days", "1", "--dir"])
                        .arg(&past)
                        .arg("--out")
                        .arg(root.join("tsa"))
                        .output()?;
                    anyhow::ensure!(issued.status.success(), "{}", String::from_utf8_lossy(&issued.stderr));
                    test_tsa::TestTsa::serve(&root.join("tsa")).await?
                } else if t.trusted {
                    test_tsa::TestTsa::start(&mut ca, &root.join("tsa")).await?
                } else {
                    let mut other = CaDir::init(&root.join("other-ca"), hpki_ca::DEFAULT_CRL_BASE_URL)?;
                    test_tsa::TestTsa::start(&mut other, &root.join("tsa")).await?
                };
                config.timestamps = Some(hpki_gateway::config::TimestampsSection {
                    url: tsa.url.clone(),
                    anchors: vec![p("root.der")],
                    intermediates: vec![p("service.der")],
                    crls: vec![p("crl/root.crl"), p("crl/service.crl")],
                    timeout_ms: 5000,
                    policy: None,
                    max_skew_seconds: t.max_skew_seconds,
                });
                Some(tsa)
            }
            None => None,
        };
        // Written as the operator's file would be, and loaded as `serve`
        // loads it (relative paths, checks).
        config.save(&path)?;
        let config = Config::load(&path)?;
        let clock = OffsetClock::default();
        // The real start-up, as `hpki-gateway serve` runs it.
        let running = App::start(config, Arc::new(clock.clone())).await?;
        let (gw, addr, ops_addr, patient_addr) =
            (running.gw.clone(), running.institution_address, running.ops_address, running.patient_address);
        Ok(World { dir, ca, gw, clock, addr, ops_addr, patient_addr, tsa, running })
    }

    /// Checkpoints the audit head now, as the gateway's timer does.
    pub async fn checkpoint(&self) {
        self.running.checkpoint().await;
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("gateway.toml")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn terminal(&mut self, institution: &str, name: &str) -> Result<TerminalCreds> {
        let out = self.path(&format!("terminal-{institution}-{name}").replace(' ', "_"));
        self.ca.issue_terminal(
            &TerminalRequest { institution: institution.into(), name: name.into(), valid_days: 30 },
            &out,
        )?;
        Ok(TerminalCreds {
            cert: out.join("terminal.pem"),
            key: out.join("terminal.key"),
            chain: out.join("ca-chain.pem"),
        })
    }

    /// A licensed professional's card image, and the person registered.
    pub async fn card(&mut self, profession: Profession, license: &str, institution: &str) -> Result<PathBuf> {
        Ok(self.person_card(profession, license, institution).await?.0)
    }

    /// A licensed professional's card image and person id, registered.
    pub async fn person_card(
        &mut self,
        profession: Profession,
        license: &str,
        institution: &str,
    ) -> Result<(PathBuf, String)> {
        let out = self.path(&format!("card-{license}.json"));
        let issued = self.ca.issue_card(&card_request(profession, license, Some(institution)), &out)?;
        self.ensure_institution(institution).await?;
        let role = hpki_gateway::domain::roles::Role::of_profession(profession).context("no role")?;
        self.register(&issued.person_id, role.name(), institution).await?;
        Ok((out, issued.person_id))
    }

    /// Links an assistant to a doctor (FLOW-1), as `admin link` does.
    pub async fn link(&self, assistant: &str, doctor: &str) -> Result<()> {
        self.gw.store.link_assistant(assistant, doctor, 0).await?;
        Ok(())
    }

    /// An assistant's card image (registered at `institution`).
    pub async fn assistant_card(&mut self, institution: &str, staff_id: &str) -> Result<PathBuf> {
        let out = self.path(&format!("assistant-{staff_id}.json"));
        self.ca.issue_assistant_card(
            &hpki_ca::AssistantRequest {
                institution: institution.into(),
                institution_kanji: None,
                name: "Test Assistant".into(),
                name_kanji: None,
                staff_id: staff_id.into(),
                pin: PIN.into(),
                variant: CardVariant::Jahis,
                retry_limit: 5,
                valid_days: 30,
            },
            &out,
        )?;
        self.ensure_institution(institution).await?;
        self.register(&format!("{institution}/{staff_id}"), "assistant", institution).await?;
        Ok(out)
    }

    pub async fn ensure_institution(&self, name: &str) -> Result<()> {
        if !self.gw.store.institution_exists(name).await? {
            self.gw.store.add_institution(name, None, 0).await?;
        }
        Ok(())
    }

    pub async fn register(&self, id: &str, role: &str, institution: &str) -> Result<()> {
        let p = NewPerson {
            id: id.into(),
            role: role.into(),
            name: id.into(),
            name_kanji: None,
            institution: institution.into(),
        };
        self.gw.store.add_person(&p, 0).await?;
        Ok(())
    }

    /// Publishes fresh CRLs and reloads the gateway (as SIGHUP would).
    pub fn publish_crls(&mut self) -> Result<()> {
        self.ca.publish_crls(&self.path("crl"), time::Duration::days(4))?;
        hpki_gateway::http::reload::reload(&self.gw).map_err(anyhow::Error::msg)
    }

    /// The staged audit rows left once the audit writer's cleaner has
    /// caught up (it deletes the rows of chained entries after answering,
    /// off the requests' path): waits up to 5 s for the outbox to empty.
    pub async fn outbox_once_cleaned(&self) -> Result<Vec<hpki_gateway::audit::outbox::Staged>> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let rows = self.gw.store.outbox_rows().await?;
            if rows.is_empty() || std::time::Instant::now() > deadline {
                return Ok(rows);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The whole audit log.
    pub async fn audit(&self) -> Vec<hpki_gateway::audit::AuditRecord> {
        self.gw.store.audit_page(0, 1_000_000).await.expect("audit log readable")
    }

    /// The newest audit entry of `action` (waiting a little: a refused
    /// handshake is audited after the client has seen the refusal).
    pub async fn last_audit(&self, action: &str) -> hpki_gateway::audit::AuditRecord {
        for _ in 0..100 {
            if let Some(r) = self.audit().await.into_iter().rev().find(|r| r.event.action == action) {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no audit entry for {action}");
    }

    /// Whether the audit hash chain verifies from the first entry.
    pub async fn chain_verifies(&self) -> bool {
        let mut v = hpki_gateway::audit::ChainVerifier::default();
        self.audit().await.iter().all(|r| v.check(r).is_ok())
    }

    /// A configuration for an `hpki-gateway serve` process on this world's
    /// PKI, store and record keys, listening on fresh fixed ports (so that a
    /// restarted process is found again): the file, the institution
    /// listener's address and the ops address.
    pub fn process_config(&self) -> Result<(PathBuf, SocketAddr, SocketAddr)> {
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let ops: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        Ok((self.process_config_at(listen, ops)?, listen, ops))
    }

    /// As `process_config`, listening on the given addresses.
    pub fn process_config_at(&self, listen: SocketAddr, ops: SocketAddr) -> Result<PathBuf> {
        let mut config = Config::load(&self.config_path())?;
        config.listener.address = listen;
        config.ops.address = ops;
        let path = self.path("gateway-process.toml");
        config.save(&path)?;
        Ok(path)
    }

    /// Enrols `patient` for the patient listener with `hpki-gateway admin
    /// patient enroll` (consent to `consent`'s records), as IT staff would;
    /// the initial password it prints.
    pub fn enroll_patient(&self, patient: &str, consent: &str) -> Result<String> {
        let text = gateway_cli(
            &self.config_path(),
            &["admin", "patient", "enroll", "--patient", patient, "--consent", consent, "--operator", "desk-clerk"],
        )?;
        let line =
            text.lines().find_map(|l| l.strip_prefix("initial password: ")).context("no initial password printed")?;
        Ok(line.trim().to_owned())
    }

    /// A new patient, registered and enrolled for the patient listener
    /// with consent to `institution`: (id, initial password).
    pub async fn enrolled_patient(&self, institution: &str) -> Result<(String, String)> {
        self.ensure_institution(institution).await?;
        let req = hpki_protocol::workflow::NewPatient {
            name: "Mori Aki".into(),
            name_kanji: None,
            birth_date: "1980-05-05".into(),
        };
        let row = hpki_gateway::routes::patients::new_patient_row(
            &ring::rand::SystemRandom::new(),
            self.gw.clock.now(),
            &req,
        )
        .map_err(|e| anyhow::anyhow!(e.message))?;
        // As the admin command does it: the change with its staged entry,
        // then the entry, then the staged row cleared.
        use hpki_gateway::audit::{Action, AuditEvent, Outcome, outbox::Staging};
        let request_id = format!("test-{}", row.id);
        let staging = Staging {
            request_id: request_id.clone(),
            terminal: "-".into(),
            institution: "-".into(),
            action: Action::AdminPatientAdd,
        };
        let object = format!("patient:{}", row.id);
        let at = self.gw.clock.now_ms();
        self.gw.store.add_patient(&row, "test", 0, &staging.stage("admin:test", object.as_str(), at)).await?;
        let entry = AuditEvent {
            actor: "admin:test".into(),
            object,
            request_id: request_id.clone(),
            ..AuditEvent::new(Action::AdminPatientAdd, Outcome::Ok)
        };
        self.gw.store.append_audit(&entry, at).await?;
        self.gw.store.clear_outbox(&[request_id.as_str()]).await?;
        let initial = self.enroll_patient(&row.id, institution)?;
        Ok((row.id, initial))
    }

    pub async fn connect(&self, creds: &TerminalCreds) -> Result<TerminalClient> {
        TerminalClient::connect(self.addr, &self.path("server/ca-chain.pem"), creds).await
    }
}

/// A private pcscd that this test process's PC/SC calls go to (one per
/// process: libpcsclite keeps the socket it first used).
/// SHA-256 of `bytes`, in lower-case hex (as the audit log names
/// manifests).
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha256(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn private_pcscd() -> Result<testbed::PrivatePcscd> {
    let p = testbed::PrivatePcscd::start()?;
    p.use_in_this_process()?;
    Ok(p)
}

/// A 30-day JMA-variant test card request with the test PIN.
pub fn card_request(profession: Profession, license: &str, institution: Option<&str>) -> CardRequest {
    CardRequest {
        profession,
        name: format!("Test {}", profession.slug()),
        name_kanji: None,
        institution: institution.map(str::to_owned),
        institution_kanji: None,
        license_no: license.into(),
        verified_by: "e2e".into(),
        pin: PIN.into(),
        variant: CardVariant::Jma,
        retry_limit: 5,
        valid_days: 30,
    }
}

/// A clinic terminal's HTTPS connection to the gateway (the agent's own
/// client, with JSON bodies for the tests).
pub struct TerminalClient {
    conn: gateway_client::Connection,
    pub channel_binding: [u8; 32],
}

impl TerminalClient {
    pub async fn connect(addr: SocketAddr, server_ca: &Path, creds: &TerminalCreds) -> Result<TerminalClient> {
        let creds = gateway_client::TerminalCredentials {
            certificate: creds.cert.clone(),
            key: creds.key.clone(),
            chain: creds.chain.clone(),
        };
        let config = gateway_client::client_config(server_ca, &creds)?;
        let gateway = gateway_client::GatewayAddress { address: addr.to_string(), server_name: "localhost".into() };
        let conn = gateway_client::Connection::open(&gateway, config).await?;
        let channel_binding = *conn.channel_binding();
        Ok(TerminalClient { conn, channel_binding })
    }

    /// Sends a request and returns the status and the JSON body (`Null` when
    /// empty).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        bearer: Option<&str>,
    ) -> Result<(u16, Value)> {
        let answer = self.conn.send(method, path, body, bearer).await?;
        let value = if answer.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&answer.body).context("JSON body")?
        };
        Ok((answer.status, value))
    }

    pub async fn post(&mut self, path: &str, body: &Value, bearer: Option<&str>) -> Result<(u16, Value)> {
        self.request("POST", path, serde_json::to_vec(body)?, bearer).await
    }

    pub async fn put(&mut self, path: &str, body: &Value, bearer: Option<&str>) -> Result<(u16, Value)> {
        self.request("PUT", path, serde_json::to_vec(body)?, bearer).await
    }

    pub async fn get(&mut self, path: &str, bearer: Option<&str>) -> Result<(u16, Value)> {
        self.request("GET", path, Vec::new(), bearer).await
    }

    pub async fn challenge(&mut self) -> Result<Value> {
        let (status, c) = self.post("/v1/auth/challenge", &json!({}), None).await?;
        anyhow::ensure!(status == 200, "challenge refused: {c}");
        Ok(c)
    }
}

/// The login body for `challenge`, signed by `card` for `channel_binding`.
pub fn signed_login(card: &mut HpkiCard, challenge: &Value, channel_binding: &[u8; 32]) -> Result<Value> {
    let id = challenge["id"].as_str().context("id")?;
    let nonce: [u8; 32] = B64
        .decode(challenge["nonce"].as_str().context("nonce")?)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("nonce length"))?;
    let gateway_id = challenge["gateway_id"].as_str().context("gateway id")?;
    let tbs = LoginTbs { gateway_id, challenge_id: id, nonce: &nonce, channel_binding }.to_bytes()?;
    let cert = card.read_certificate(Application::Authentication)?;
    let signature = card.sign_sha256(Application::Authentication, &Pin::new(PIN)?, &sha256(&tbs), RSA_2048_BYTES)?;
    Ok(json!({ "challenge_id": id, "certificate": B64.encode(cert), "signature": B64.encode(signature) }))
}

/// `POST /v1/drafts/{draft}/signed-attributes` for the certificate of
/// `card`'s signature application, at `version` (or the draft's current
/// version, read from `signing-bytes`): what the agent asks before the card
/// signs. The answer's status and body.
pub async fn signed_attributes(
    client: &mut TerminalClient,
    card: &mut HpkiCard,
    draft: &str,
    version: Option<i64>,
    token: &str,
) -> Result<(u16, Value)> {
    let version = match version {
        Some(v) => v,
        None => {
            let (status, s) = client.get(&format!("/v1/drafts/{draft}/signing-bytes"), Some(token)).await?;
            if status != 200 {
                return Ok((status, s));
            }
            s["version"].as_i64().context("version")?
        }
    };
    let cert = card.read_certificate(Application::Signature)?;
    let body = json!({ "version": version, "certificate": B64.encode(cert) });
    client.post(&format!("/v1/drafts/{draft}/signed-attributes"), &body, Some(token)).await
}

/// The card's signature over the signed attributes of a
/// `signed-attributes` answer, made with its signature application after
/// the agent's checks (a V2 confirm document; messageDigest of exactly its
/// bytes; this certificate): `(certificate, signed attributes, signature)`,
/// base64.
pub fn sign_document(card: &mut HpkiCard, signing: &Value) -> Result<(String, String, String)> {
    let bytes = B64.decode(signing["document"].as_str().context("document")?)?;
    let doc = hpki_protocol::ConfirmDocument::from_canonical(&bytes)?;
    anyhow::ensure!(doc.domain == hpki_protocol::CONFIRM_DOMAIN, "a {} document", doc.domain);
    let attrs_b64 = signing["signed_attributes"].as_str().context("signed_attributes")?;
    let attrs = hpki_cades::SignedAttributes::parse(&B64.decode(attrs_b64)?)?;
    let cert = card.read_certificate(Application::Signature)?;
    attrs.check(&bytes, &cert)?;
    let signature = card.sign_sha256(Application::Signature, &Pin::new(PIN)?, &attrs.digest(), RSA_2048_BYTES)?;
    Ok((B64.encode(cert), attrs_b64.to_owned(), B64.encode(signature)))
}

/// The body of `POST /v1/drafts/{id}/confirm` for a `signed-attributes`
/// answer.
pub fn signed_confirm(card: &mut HpkiCard, signing: &Value) -> Result<Value> {
    let (certificate, signed_attributes, signature) = sign_document(card, signing)?;
    Ok(json!({
        "version": signing["version"],
        "certificate": certificate,
        "signed_attributes": signed_attributes,
        "signature": signature,
    }))
}

/// Logs `card` in and returns the session token.
pub async fn session(client: &mut TerminalClient, card: &mut HpkiCard) -> Result<String> {
    let (status, body) = login(client, card).await?;
    anyhow::ensure!(status == 200, "login refused: {body}");
    Ok(body["session"].as_str().context("session")?.to_owned())
}

/// Challenge, card signature, login: the status and body of the login.
pub async fn login(client: &mut TerminalClient, card: &mut HpkiCard) -> Result<(u16, Value)> {
    let c = client.challenge().await?;
    let body = signed_login(card, &c, &client.channel_binding)?;
    client.post("/v1/auth/login", &body, None).await
}

/// A patient's browser-less HTTPS client for the patient listener (server
/// TLS only, one connection per request).
pub struct PatientClient {
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    pub token: Option<String>,
}

impl PatientClient {
    pub fn new(world: &World) -> Result<PatientClient> {
        let addr = world.patient_addr.context("the world has no patient listener")?;
        PatientClient::to(addr, &world.path("server/ca-chain.pem"))
    }

    /// A client for the patient listener at `addr`, trusting `server_ca`.
    pub fn to(addr: SocketAddr, server_ca: &Path) -> Result<PatientClient> {
        let mut roots = rustls::RootCertStore::empty();
        for c in hpki_gateway::credentials::certificates(server_ca)? {
            roots.add(c)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(PatientClient { addr, config: Arc::new(config), token: None })
    }

    /// Sends a request; `(status, JSON body or the text as a string)`.
    pub async fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        use http_body_util::BodyExt;
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        let name = rustls_pki_types::ServerName::try_from("localhost")?;
        let tls = tokio_rustls::TlsConnector::from(self.config.clone()).connect(name, tcp).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        let mut req = hyper::Request::builder().method(method).uri(path).header("host", "localhost");
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let bytes = body.map(serde_json::to_vec).transpose()?.unwrap_or_default();
        let resp = sender.send_request(req.body(http_body_util::Full::new(bytes::Bytes::from(bytes)))?).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        Ok((status, value))
    }
}

/// One kept-alive connection of a [`PatientClient`] (for many requests;
/// opened again when the server closes it).
pub struct PatientConnection {
    client: PatientClient,
    sender: Option<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>>,
}

impl PatientClient {
    pub async fn keep_alive(&self) -> Result<PatientConnection> {
        let client = PatientClient { addr: self.addr, config: self.config.clone(), token: self.token.clone() };
        Ok(PatientConnection { client, sender: None })
    }
}

impl PatientConnection {
    async fn open(&self) -> Result<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>> {
        let tcp = tokio::net::TcpStream::connect(self.client.addr).await?;
        let name = rustls_pki_types::ServerName::try_from("localhost")?;
        let tls = tokio_rustls::TlsConnector::from(self.client.config.clone()).connect(name, tcp).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        Ok(sender)
    }

    /// Sends raw `body`; `(status, JSON body or the text as a string)`.
    pub async fn send(&mut self, method: &str, path: &str, body: Vec<u8>) -> Result<(u16, Value)> {
        use http_body_util::BodyExt;
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.open().await?,
        };
        sender.ready().await?;
        let mut req = hyper::Request::builder().method(method).uri(path).header("host", "localhost");
        if let Some(t) = &self.client.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = sender.send_request(req.body(http_body_util::Full::new(bytes::Bytes::from(body)))?).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        self.sender = Some(sender);
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        Ok((status, value))
    }
}

/// A fresh database on the machine's PostgreSQL server (`HPKI_TEST_PG_URL`
/// overrides the server), dropped by `drop_db`.
pub struct PgDatabase {
    pub url: String,
    name: String,
    base: String,
}

impl PgDatabase {
    pub async fn create() -> Result<PgDatabase> {
        use sqlx::{Connection, Executor};
        let base = std::env::var("HPKI_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let mut b = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
            .map_err(|_| anyhow::anyhow!("random"))?;
        let name = format!("hpki_e2e_{}_{}", std::process::id(), u64::from_be_bytes(b) % 1_000_000_000);
        let mut admin =
            sqlx::PgConnection::connect(&format!("{base}/postgres")).await.context("PostgreSQL reachable")?;
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await?;
        Ok(PgDatabase { url: format!("{base}/{name}"), name, base })
    }

    pub async fn drop_db(self) {
        use sqlx::{Connection, Executor};
        if let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{}/postgres", self.base)).await {
            let _ =
                admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))).await;
        }
    }
}

/// Asserts that `answer` is a refusal with `code` and a message, and that
/// the last `action` entry of the audit log is that refusal.
pub async fn refused(world: &World, answer: (u16, Value), action: &str, code: &str) {
    let (status, body) = answer;
    assert!(status >= 400, "expected {code}, got {status}: {body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    let a = world.last_audit(action).await;
    assert_eq!((a.event.outcome.as_str(), a.event.reason.as_str()), ("refused", code), "{a:?}");
}

/// Asserts that `answer` is a success; its body.
pub fn ok(answer: (u16, Value)) -> Value {
    let (status, body) = answer;
    assert!((200..300).contains(&status), "expected success, got {status}: {body}");
    body
}

/// Runs `story` on a world started with `opts` on a fresh PostgreSQL
/// database, then closes the store and drops the database, whatever the
/// story's outcome.
pub async fn on_postgres(opts: WorldOptions, story: impl AsyncFnOnce(&mut World) -> Result<()>) -> Result<()> {
    let db = PgDatabase::create().await?;
    let result = async {
        let mut world = World::start(WorldOptions { postgres: Some(db.url.clone()), ..opts }).await?;
        let r = story(&mut world).await;
        world.gw.store.close().await;
        r
    }
    .await;
    db.drop_db().await;
    result
}

/// [`python_tool`] `script` with `args`: what it printed, as JSON; an
/// error with everything it said when it exits non-zero.
pub fn python_json(script: &str, args: &[&std::ffi::OsStr]) -> Result<Value> {
    let out = python_tool(script).args(args).output().with_context(|| format!("running {script}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{script} refused: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The CAs of the test hierarchy that may not certify a licensed
/// professional: whoever holds one of their keys is the forger the trust
/// scopes stop.
pub const NON_HPKI_CAS: [CaRole; 5] =
    [CaRole::Root, CaRole::Institution, CaRole::Terminal, CaRole::Service, CaRole::Vpn];

/// A copy of the card image at `image` whose two certificates claim exactly
/// what the originals claim — subject, subjectAltName, key usage,
/// certificate policies and hcRole copied byte for byte, for the same keys —
/// but are signed by `signer`, another CA of the test hierarchy in
/// `ca_dir`. Written to `out`; returns the signer's certificate (DER), the
/// intermediate the forger presents.
pub fn forge_card(ca_dir: &Path, image: &Path, signer: CaRole, out: &Path) -> Result<Vec<u8>> {
    let mut card = virtual_card::CardImage::load(image)?;
    let key = hpki_ca::keys::load(&ca_dir.join(signer.name()).join("key.pem"), signer.key_kind())?;
    let issuer = rcgen::Issuer::new(signer.params(), key);
    for app in [&mut card.authentication, &mut card.signature] {
        app.certificate = forged_certificate(&app.certificate, &app.private_key, &issuer)?;
    }
    card.save(out)?;
    // Read, not opened as a CaDir: whoever runs the test may hold the
    // directory (and its lock) open.
    let pem = std::fs::read(ca_dir.join(signer.name()).join("cert.pem"))?;
    hpki_ca::certificate_from_bytes(&pem).map_err(anyhow::Error::msg)
}

fn forged_certificate(real: &[u8], pkcs8: &[u8], issuer: &rcgen::Issuer<'_, rcgen::KeyPair>) -> Result<Vec<u8>> {
    const COPIED: [&str; 4] = ["2.5.29.15", "2.5.29.17", "2.5.29.32", "2.5.29.9"];
    let holder = hpki_profile::read_holder(real)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CountryName, "JP");
    if let Some(o) = &holder.institution {
        dn.push(rcgen::DnType::OrganizationName, o.as_str());
    }
    dn.push(rcgen::DnType::CommonName, holder.name.as_deref().unwrap_or("Forged"));
    if let Some(sn) = &holder.serial_number {
        dn.push(rcgen::DnType::CustomDnType(vec![2, 5, 4, 5]), sn.as_str());
    }
    resigned(real, &rcgen::KeyPair::try_from(pkcs8)?, issuer, dn, &COPIED)
}

/// `real` with subject `dn`, the extensions named in `copied` byte for
/// byte, for the same key, signed by `issuer`.
fn resigned(
    real: &[u8],
    subject_key: &rcgen::KeyPair,
    issuer: &rcgen::Issuer<'_, rcgen::KeyPair>,
    dn: rcgen::DistinguishedName,
    copied: &[&str],
) -> Result<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(real)?;
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = dn;
    for ext in cert.extensions() {
        let id = ext.oid.to_id_string();
        if copied.contains(&id.as_str()) {
            let arcs: Vec<u64> = ext.oid.iter().context("extension OID")?.collect();
            let mut copy = rcgen::CustomExtension::from_oid_content(&arcs, ext.value.to_vec());
            copy.set_criticality(ext.critical);
            p.custom_extensions.push(copy);
        }
    }
    p.use_authority_key_identifier_extension = true;
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    serial[0] &= 0x7f;
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    Ok(p.signed_by(subject_key, issuer)?.der().to_vec())
}

/// Terminal credentials like `creds` (same key, same extensions) but with
/// subject O=`institution`, CN=`name`, signed by the terminal CA of
/// `ca_dir` — names `hpki-certs` would refuse to issue.
pub fn terminal_with_subject(
    ca_dir: &Path,
    creds: &TerminalCreds,
    institution: &str,
    name: &str,
    out: &Path,
) -> Result<TerminalCreds> {
    let signer = CaRole::Terminal;
    let ca_key = hpki_ca::keys::load(&ca_dir.join(signer.name()).join("key.pem"), signer.key_kind())?;
    let issuer = rcgen::Issuer::new(signer.params(), ca_key);
    let real = hpki_ca::certificate_from_bytes(&std::fs::read(&creds.cert)?).map_err(anyhow::Error::msg)?;
    let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(&creds.key)?)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CountryName, "JP");
    dn.push(rcgen::DnType::OrganizationName, institution);
    dn.push(rcgen::DnType::CommonName, name);
    let der = resigned(&real, &key, &issuer, dn, &["2.5.29.15", "2.5.29.37", "2.5.29.32", "2.5.29.31"])?;
    std::fs::create_dir_all(out)?;
    let cert = out.join("terminal.pem");
    std::fs::write(&cert, hpki_ca::keys::pem("CERTIFICATE", &der))?;
    Ok(TerminalCreds { cert, ..creds.clone() })
}
