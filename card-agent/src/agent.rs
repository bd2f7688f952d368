//! The agent's state and what people do with it: cards come and go, a card
//! logs in with its PIN, logs out, the screen locks when nobody touches it.
//!
//! One rule carries AUTH-8: a gateway session lives exactly as long as the
//! card insertion it was made with. The session token exists only in this
//! process, inside the slot of that insertion; when the card leaves, the slot
//! and its token go, and the gateway is told at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use gateway_client::{Answer, Connection, GatewayAddress, GatewayError};
use hpki_card::{CardError, CardIdentity, CertificateCache, PcscContext, Pin, ReaderEvent, ReaderWatcher};
use hpki_protocol::LoginTbs;
use hpki_protocol::wire::{LoginRequest, Person};
use serde::Serialize;
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::cards::{self, Holder, PinState};
use crate::config::Config;
use crate::error::AgentError;

/// A gateway session held for one card insertion.
struct GatewaySession {
    token: Zeroizing<String>,
    person: Person,
    expires_at: String,
}

struct CardSlot {
    identity: CardIdentity,
    holder: Option<Holder>,
    error: Option<String>,
    pin: Option<PinState>,
    session: Option<GatewaySession>,
}

#[derive(Default)]
struct State {
    readers: BTreeMap<String, Option<CardSlot>>,
    /// The reader whose card acts (the user picks it when there are two).
    active: Option<String>,
    locked: bool,
    /// Whether the card watcher is running; without it removals cannot be
    /// seen, so no session may exist.
    watching: bool,
}

/// What the UI and the local API show.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub readers: Vec<ReaderView>,
    pub active_reader: Option<String>,
    pub locked: bool,
    pub watching: bool,
    pub idle_lock_seconds: u64,
    /// Bumped on every change (for long polling).
    pub version: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReaderView {
    pub reader: String,
    pub card: Option<CardView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CardView {
    pub holder: Option<Holder>,
    pub pin: Option<PinState>,
    pub error: Option<String>,
    /// Who is logged in with this card, if anybody.
    pub session: Option<SessionView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub person: Person,
    pub expires_at: String,
}

pub struct Agent {
    config: Config,
    gateway: GatewayAddress,
    tls: Arc<rustls::ClientConfig>,
    ctx: Mutex<Option<PcscContext>>,
    cache: Arc<CertificateCache>,
    state: Mutex<State>,
    last_input: Mutex<Instant>,
    version: watch::Sender<u64>,
    /// One login at a time: a login spans a card transaction and two gateway
    /// round trips, and must not interleave with another on the same card.
    login_lock: tokio::sync::Mutex<()>,
    /// The connection for logouts and proxied requests (logins use a fresh
    /// one each: the signature binds to the connection).
    conn: tokio::sync::Mutex<Option<Connection>>,
}

/// A draft version as the person reviewed it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reviewed {
    pub draft: String,
    pub version: i64,
    /// SHA-256 (hex) of the document bytes shown to the person.
    pub sha256: String,
}

/// A draft id as the gateway makes them: 1–64 of `A–Z a–z 0–9 _ -`.
fn is_draft_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Reads of a card that was busy or being reset (about 6 s in all).
const READ_RETRIES: u32 = 20;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Agent {
    pub fn new(config: Config) -> Result<Arc<Agent>, AgentError> {
        let tls = gateway_client::client_config(&config.gateway.ca, &config.terminal_credentials())?;
        Ok(Arc::new(Agent {
            gateway: config.gateway_address(),
            config,
            tls,
            ctx: Mutex::new(None),
            cache: Arc::new(CertificateCache::with_capacity(16)),
            state: Mutex::new(State::default()),
            last_input: Mutex::new(Instant::now()),
            version: watch::channel(0).0,
            login_lock: tokio::sync::Mutex::new(()),
            conn: tokio::sync::Mutex::new(None),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Waits until the state changes from `since` or `timeout` passes.
    pub async fn wait_change(&self, since: u64, timeout: Duration) {
        let mut rx = self.version.subscribe();
        if *rx.borrow_and_update() != since {
            return;
        }
        let _ = tokio::time::timeout(timeout, rx.changed()).await;
    }

    /// Somebody used the UI or the API: the idle clock starts again.
    pub fn touch(&self) {
        *lock(&self.last_input) = Instant::now();
    }

    pub fn status(&self) -> Status {
        let st = lock(&self.state);
        Status {
            readers: st
                .readers
                .iter()
                .map(|(reader, slot)| ReaderView {
                    reader: reader.clone(),
                    card: slot.as_ref().map(|c| CardView {
                        holder: c.holder.clone(),
                        pin: c.pin,
                        error: c.error.clone(),
                        session: c
                            .session
                            .as_ref()
                            .map(|s| SessionView { person: s.person.clone(), expires_at: s.expires_at.clone() }),
                    }),
                })
                .collect(),
            active_reader: st.active.clone(),
            locked: st.locked,
            watching: st.watching,
            idle_lock_seconds: self.config.ui.idle_lock_seconds,
            version: *self.version.borrow(),
        }
    }

    fn pcsc(&self) -> Result<PcscContext, AgentError> {
        let mut ctx = lock(&self.ctx);
        if let Some(c) = ctx.as_ref() {
            return Ok(c.clone());
        }
        let c = PcscContext::establish()?;
        *ctx = Some(c.clone());
        Ok(c)
    }

    /// Runs a PC/SC operation on the blocking pool.
    async fn on_card<T: Send + 'static>(
        &self,
        op: impl FnOnce(&PcscContext, &CertificateCache) -> Result<T, CardError> + Send + 'static,
    ) -> Result<T, AgentError> {
        let ctx = self.pcsc()?;
        let cache = self.cache.clone();
        let result = tokio::task::spawn_blocking(move || op(&ctx, &cache))
            .await
            .map_err(|e| AgentError::BadRequest(format!("card task failed: {e}")))?;
        if matches!(result, Err(CardError::NoService)) {
            *lock(&self.ctx) = None;
        }
        Ok(result?)
    }

    async fn timed<T>(&self, f: impl Future<Output = Result<T, GatewayError>>) -> Result<T, AgentError> {
        let secs = self.config.gateway.timeout_seconds;
        match tokio::time::timeout(Duration::from_secs(secs), f).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(AgentError::GatewayTimeout(secs)),
        }
    }

    // ----- cards coming and going -------------------------------------------------

    /// Watches the readers until the process ends. If the PC/SC service
    /// fails, every session is ended (removals could no longer be seen) and
    /// watching starts again.
    pub fn spawn_watcher(self: &Arc<Self>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<Result<ReaderEvent, CardError>>>();
        std::thread::Builder::new()
            .name("card-watcher".into())
            .spawn(move || {
                loop {
                    match ReaderWatcher::start() {
                        Ok(w) => {
                            if tx.send(None).is_err() {
                                return;
                            }
                            while let Ok(ev) = w.receiver().recv() {
                                let failed = ev.is_err();
                                if tx.send(Some(ev)).is_err() {
                                    return;
                                }
                                if failed {
                                    break;
                                }
                            }
                        }
                        Err(e) => {
                            if tx.send(Some(Err(e))).is_err() {
                                return;
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the card watcher thread"));
        let agent = self.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                match ev {
                    None => {
                        lock(&agent.state).watching = true;
                        agent.changed();
                    }
                    Some(Ok(ev)) => agent.on_event(ev).await,
                    Some(Err(e)) => agent.watcher_failed(e).await,
                }
            }
        });
    }

    async fn on_event(self: &Arc<Self>, ev: ReaderEvent) {
        match ev {
            ReaderEvent::ReaderAdded { reader } => {
                if self.config.watches(&reader) {
                    tracing::info!(%reader, "reader connected");
                    lock(&self.state).readers.entry(reader).or_insert(None);
                    self.changed();
                }
            }
            ReaderEvent::ReaderRemoved { reader } => {
                self.card_gone(&reader).await;
                lock(&self.state).readers.remove(&reader);
                self.changed();
            }
            ReaderEvent::CardInserted(identity) => {
                let reader = identity.reader.clone();
                if !self.config.watches(&reader) {
                    return;
                }
                tracing::info!(%reader, "card inserted");
                lock(&self.state).readers.insert(
                    reader.clone(),
                    Some(CardSlot { identity: identity.clone(), holder: None, error: None, pin: None, session: None }),
                );
                self.changed();
                let agent = self.clone();
                tokio::spawn(async move { agent.read_card(identity).await });
            }
            ReaderEvent::CardRemoved { reader } => self.card_gone(&reader).await,
        }
    }

    /// Reads who the card belongs to and its PIN state, and files it under
    /// the insertion it was read from.
    async fn read_card(&self, identity: CardIdentity) {
        for attempt in 0..READ_RETRIES {
            let reader = identity.reader.clone();
            let report = match self.on_card(move |ctx, cache| Ok(cards::inspect(ctx, cache, &reader))).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the card");
                    return;
                }
            };
            let transient = report.transient;
            {
                let mut st = lock(&self.state);
                let Some(Some(slot)) = st.readers.get_mut(&identity.reader) else { return };
                if slot.identity != identity {
                    return;
                }
                slot.holder = report.holder;
                slot.pin = report.pin;
                slot.error = report.error;
            }
            self.changed();
            if !transient {
                return;
            }
            tracing::info!(reader = %identity.reader, attempt, "card busy or being reset; reading it again");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The card left `reader`: its session ends here and at the gateway.
    async fn card_gone(&self, reader: &str) {
        let session = {
            let mut st = lock(&self.state);
            let slot = st.readers.get_mut(reader).and_then(Option::take);
            if st.active.as_deref() == Some(reader) {
                st.active = st
                    .readers
                    .iter()
                    .find(|(_, s)| s.as_ref().is_some_and(|c| c.session.is_some()))
                    .map(|(r, _)| r.clone());
            }
            if st.active.is_none() {
                st.locked = false;
            }
            slot.and_then(|s| s.session)
        };
        self.cache.forget_reader(reader);
        self.changed();
        tracing::info!(%reader, "card removed");
        if let Some(s) = session {
            self.end_at_gateway(s, "card removed").await;
        }
    }

    async fn watcher_failed(&self, e: CardError) {
        tracing::error!(error = %e, "the card watcher stopped; ending every session until it runs again");
        *lock(&self.ctx) = None;
        let sessions: Vec<GatewaySession> = {
            let mut st = lock(&self.state);
            st.watching = false;
            st.active = None;
            st.locked = false;
            std::mem::take(&mut st.readers).into_values().flatten().filter_map(|s| s.session).collect()
        };
        self.changed();
        for s in sessions {
            self.end_at_gateway(s, "card watcher stopped").await;
        }
    }

    async fn end_at_gateway(&self, s: GatewaySession, why: &str) {
        match self.timed(self.shared_send("POST", "/v1/auth/logout", Vec::new(), &s.token)).await {
            Ok(a) if (200..300).contains(&a.status) => {
                tracing::info!(person = %s.person.id, why, "gateway session ended")
            }
            Ok(a) => tracing::warn!(person = %s.person.id, status = a.status, why, "the gateway refused the logout"),
            // The token is gone from this process; the gateway's idle timeout
            // ends the session.
            Err(e) => {
                tracing::warn!(person = %s.person.id, error = %e, why, "cannot tell the gateway; its idle timeout ends the session")
            }
        }
    }

    // ----- login, logout, lock ---------------------------------------------------

    /// Logs the card in `reader` in with `pin`. While the screen is locked,
    /// only the acting card may log in again, which unlocks it.
    #[tracing::instrument(name = "card_login", skip(self, pin))]
    pub async fn login(&self, reader: &str, pin: Pin) -> Result<Person, AgentError> {
        let _one = self.login_lock.lock().await;
        let identity = {
            let st = lock(&self.state);
            if st.locked && st.active.as_deref() != Some(reader) {
                return Err(AgentError::Locked);
            }
            match st.readers.get(reader) {
                None => return Err(AgentError::UnknownReader(reader.to_owned())),
                Some(None) => return Err(AgentError::NoCard(reader.to_owned())),
                Some(Some(slot)) => slot.identity.clone(),
            }
        };
        // A blocked card never reaches the gateway.
        let (r, id) = (reader.to_owned(), identity.clone());
        let pin_state = self.on_card(move |ctx, _| cards::pin_state(ctx, &r, &id)).await?;
        self.set_pin(&identity, pin_state);
        if pin_state == PinState::Blocked {
            return Err(AgentError::CardBlocked);
        }

        let mut conn = self.timed(Connection::open(&self.gateway, self.tls.clone())).await?;
        let challenge = self.timed(conn.challenge()).await?;
        let nonce: [u8; hpki_protocol::NONCE_LEN] =
            B64.decode(&challenge.nonce)
                .ok()
                .and_then(|n| n.try_into().ok())
                .ok_or_else(|| GatewayError::Protocol("the challenge nonce is not 32 bytes of base64".into()))?;
        let tbs = LoginTbs {
            gateway_id: &challenge.gateway_id,
            challenge_id: &challenge.id,
            nonce: &nonce,
            channel_binding: conn.channel_binding(),
        }
        .to_bytes()
        .map_err(|e| GatewayError::Protocol(format!("cannot build the value to sign: {e}")))?;

        let (r, id) = (reader.to_owned(), identity.clone());
        // The PIN moves into the card task and is wiped when it ends.
        let signed = self.on_card(move |ctx, cache| cards::sign_login(ctx, cache, &r, &id, &pin, &tbs)).await;
        let (cert, signature) = match signed {
            Ok(s) => s,
            Err(e) => {
                match &e {
                    AgentError::WrongPin { tries_left } => {
                        self.set_pin(&identity, PinState::TriesLeft { tries_left: *tries_left })
                    }
                    AgentError::CardBlocked => self.set_pin(&identity, PinState::Blocked),
                    _ => {}
                }
                return Err(e);
            }
        };
        let request = LoginRequest {
            challenge_id: challenge.id.clone(),
            certificate: B64.encode(&cert),
            intermediates: Vec::new(),
            signature: B64.encode(&signature),
        };
        let resp = self.timed(conn.login(&request)).await?;
        let person = resp.person.clone();
        let session =
            GatewaySession { token: Zeroizing::new(resp.session), person: resp.person, expires_at: resp.expires_at };

        // File the session under the insertion it was made with — unless the
        // card left meanwhile, in which case it ends at once.
        let replaced = {
            let mut st = lock(&self.state);
            match st.readers.get_mut(reader) {
                Some(Some(slot)) if slot.identity == identity => {
                    let old = slot.session.replace(session);
                    st.active = Some(reader.to_owned());
                    st.locked = false;
                    Ok(old)
                }
                _ => Err(session),
            }
        };
        self.touch();
        self.changed();
        match replaced {
            Ok(old) => {
                tracing::info!(%reader, person = %person.id, role = %person.role, "logged in");
                if let Some(old) = old {
                    self.end_at_gateway(old, "replaced by a new login").await;
                }
                self.refresh_pin(identity).await;
                Ok(person)
            }
            Err(orphan) => {
                self.end_at_gateway(orphan, "card removed during login").await;
                Err(AgentError::Card(CardError::CardRemoved))
            }
        }
    }

    fn set_pin(&self, identity: &CardIdentity, pin: PinState) {
        let mut st = lock(&self.state);
        if let Some(Some(slot)) = st.readers.get_mut(&identity.reader)
            && slot.identity == *identity
        {
            slot.pin = Some(pin);
        }
        drop(st);
        self.changed();
    }

    async fn refresh_pin(&self, identity: CardIdentity) {
        let id = identity.clone();
        if let Ok(p) = self.on_card(move |ctx, _| cards::pin_state(ctx, &id.reader, &id)).await {
            self.set_pin(&identity, p);
        }
    }

    /// Ends the session of the card in `reader` (the acting card if `None`).
    pub async fn logout(&self, reader: Option<&str>) -> Result<(), AgentError> {
        let session = {
            let mut st = lock(&self.state);
            let reader = reader
                .map(str::to_owned)
                .or_else(|| st.active.clone())
                .ok_or_else(|| AgentError::NotLoggedIn("-".into()))?;
            let slot = match st.readers.get_mut(&reader) {
                None => return Err(AgentError::UnknownReader(reader)),
                Some(slot) => slot,
            };
            let session =
                slot.as_mut().and_then(|s| s.session.take()).ok_or_else(|| AgentError::NotLoggedIn(reader.clone()))?;
            if st.active.as_deref() == Some(&reader) {
                st.locked = false;
                st.active = None;
            }
            session
        };
        self.changed();
        self.end_at_gateway(session, "logout").await;
        Ok(())
    }

    /// Makes the card in `reader` the acting one.
    pub fn select(&self, reader: &str) -> Result<(), AgentError> {
        let mut st = lock(&self.state);
        if st.locked {
            return Err(AgentError::Locked);
        }
        match st.readers.get(reader) {
            None => return Err(AgentError::UnknownReader(reader.to_owned())),
            Some(None) => return Err(AgentError::NoCard(reader.to_owned())),
            Some(Some(_)) => st.active = Some(reader.to_owned()),
        }
        drop(st);
        self.changed();
        Ok(())
    }

    /// Locks the screen when a session exists and nobody has touched the UI
    /// or the API for the configured time. Runs until the process ends.
    pub fn spawn_idle_lock(self: &Arc<Self>) {
        let agent = self.clone();
        let limit = Duration::from_secs(self.config.ui.idle_lock_seconds);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let idle = lock(&agent.last_input).elapsed();
                if idle < limit {
                    continue;
                }
                let mut st = lock(&agent.state);
                let has_session = st.readers.values().flatten().any(|s| s.session.is_some());
                if has_session && !st.locked {
                    st.locked = true;
                    drop(st);
                    tracing::info!(idle_seconds = idle.as_secs(), "screen locked");
                    agent.changed();
                }
            }
        });
    }

    // ----- the gateway on behalf of the acting card --------------------------------

    async fn shared_send(&self, method: &str, path: &str, body: Vec<u8>, token: &str) -> Result<Answer, GatewayError> {
        let mut guard = self.conn.lock().await;
        for _ in 0..2 {
            if !guard.as_ref().is_some_and(Connection::is_open) {
                *guard = Some(Connection::open(&self.gateway, self.tls.clone()).await?);
            }
            let Some(conn) = guard.as_mut() else { continue };
            match conn.send(method, path, body.clone(), Some(token)).await {
                // Closed before anything was sent: once more on a new one.
                Err(GatewayError::Closed) => *guard = None,
                other => return other,
            }
        }
        Err(GatewayError::Closed)
    }

    /// Confirms reviewed draft versions with the acting card's signature key
    /// (FLOW-2). For each: the gateway's bytes are fetched again and must be
    /// a confirm document of that draft and version, for this person, with
    /// the SHA-256 the person reviewed — otherwise nothing is signed. Then
    /// one PIN entry, a signature each, and the confirm (batch when several).
    #[tracing::instrument(name = "card_confirm", skip(self, items, pin), fields(drafts = items.len()))]
    pub async fn confirm(&self, items: &[Reviewed], pin: Pin) -> Result<Answer, AgentError> {
        if items.is_empty() || items.len() > 100 {
            return Err(AgentError::BadRequest("confirm 1–100 drafts at a time".into()));
        }
        // The id goes into the gateway paths below: only what the gateway
        // hands out (a prefix and base64url), so that no id can reach
        // another path or break the request (found by tests/api_fuzz.rs).
        if let Some(bad) = items.iter().find(|i| !is_draft_id(&i.draft)) {
            return Err(AgentError::BadRequest(format!("{:?} is not a draft id", bad.draft)));
        }
        let _one = self.login_lock.lock().await;
        let (reader, identity, person) = {
            let st = lock(&self.state);
            if st.locked {
                return Err(AgentError::Locked);
            }
            let reader = st.active.clone().ok_or_else(|| AgentError::NotLoggedIn("-".into()))?;
            let slot =
                st.readers.get(&reader).and_then(|s| s.as_ref()).ok_or_else(|| AgentError::NoCard(reader.clone()))?;
            let person = slot
                .session
                .as_ref()
                .map(|s| s.person.id.clone())
                .ok_or_else(|| AgentError::NotLoggedIn(reader.clone()))?;
            (reader, slot.identity.clone(), person)
        };
        // The signature certificate first (no PIN): the gateway builds the
        // CAdES signed attributes for it.
        let (r, id) = (reader.clone(), identity.clone());
        let signer_cert = self.on_card(move |ctx, cache| cards::signature_certificate(ctx, cache, &r, &id)).await?;
        let mut digests = Vec::with_capacity(items.len());
        let mut attributes = Vec::with_capacity(items.len());
        for item in items {
            let path = format!("/v1/drafts/{}/signed-attributes", item.draft);
            let req = hpki_protocol::workflow::SignedAttributesRequest {
                version: item.version,
                certificate: B64.encode(&signer_cert),
            };
            let body = serde_json::to_vec(&req).map_err(|e| AgentError::BadRequest(e.to_string()))?;
            let answer = self.proxy("POST", &path, body).await?;
            if answer.status != 200 {
                return Err(gateway_client::refusal(&answer).into());
            }
            let signing: hpki_protocol::workflow::SignedAttributesAnswer = serde_json::from_slice(&answer.body)
                .map_err(|e| AgentError::BadDocument(format!("unreadable answer: {e}")))?;
            let bytes = B64.decode(&signing.document).map_err(|_| AgentError::BadDocument("not base64".into()))?;
            let doc = hpki_protocol::ConfirmDocument::from_canonical(&bytes)
                .map_err(|e| AgentError::BadDocument(e.to_string()))?;
            if doc.domain != hpki_protocol::CONFIRM_DOMAIN {
                return Err(AgentError::BadDocument(format!(
                    "it is a {} document, not {}",
                    doc.domain,
                    hpki_protocol::CONFIRM_DOMAIN
                )));
            }
            if doc.draft != item.draft || doc.version != item.version || doc.signer != person {
                return Err(AgentError::BadDocument(format!(
                    "it names draft {} version {} for {}",
                    doc.draft, doc.version, doc.signer
                )));
            }
            let digest = hpki_card::sha256(&bytes);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            if !hex.eq_ignore_ascii_case(item.sha256.trim()) {
                return Err(AgentError::ContentChanged(item.draft.clone()));
            }
            // What the card will sign: attributes whose messageDigest is the
            // SHA-256 of exactly the bytes the doctor reviewed, for this
            // card's certificate — nothing else is signed.
            let der = B64
                .decode(&signing.signed_attributes)
                .map_err(|_| AgentError::BadDocument("signed attributes not base64".into()))?;
            let attrs = hpki_cades::SignedAttributes::parse(&der)
                .map_err(|e| AgentError::BadDocument(format!("signed attributes: {e}")))?;
            attrs
                .check(&bytes, &signer_cert)
                .map_err(|e| AgentError::BadDocument(format!("signed attributes: {e}")))?;
            digests.push(attrs.digest());
            attributes.push(signing.signed_attributes);
        }
        let (r, id) = (reader.clone(), identity.clone());
        let (cert, signatures) = self
            .on_card(move |ctx, cache| cards::sign_documents(ctx, cache, &r, &id, &pin, &digests))
            .await
            .inspect_err(|e| tracing::warn!(%reader, error = %e, "the card did not sign"))?;
        self.touch();
        if cert != signer_cert {
            return Err(AgentError::CardChanged(reader.clone()));
        }
        let (path, body) = if let [item] = items {
            let req = hpki_protocol::workflow::ConfirmRequest {
                version: item.version,
                certificate: B64.encode(&cert),
                intermediates: Vec::new(),
                signed_attributes: Some(attributes[0].clone()),
                signature: B64.encode(&signatures[0]),
            };
            (format!("/v1/drafts/{}/confirm", item.draft), serde_json::to_vec(&req))
        } else {
            let req = hpki_protocol::workflow::ConfirmBatch {
                certificate: B64.encode(&cert),
                intermediates: Vec::new(),
                items: items
                    .iter()
                    .zip(&signatures)
                    .zip(&attributes)
                    .map(|((i, s), a)| hpki_protocol::workflow::BatchItem {
                        draft: i.draft.clone(),
                        version: i.version,
                        signed_attributes: Some(a.clone()),
                        signature: B64.encode(s),
                    })
                    .collect(),
            };
            ("/v1/confirm-batch".to_owned(), serde_json::to_vec(&req))
        };
        let body = body.map_err(|e| AgentError::BadRequest(e.to_string()))?;
        let answer = self.proxy("POST", &path, body).await?;
        if !(200..300).contains(&answer.status) {
            return Err(gateway_client::refusal(&answer).into());
        }
        tracing::info!(%reader, person = %person, "confirmed with the signature card");
        Ok(answer)
    }

    /// Sends a request to the gateway with the acting card's session.
    pub async fn proxy(&self, method: &str, path_and_query: &str, body: Vec<u8>) -> Result<Answer, AgentError> {
        let (token, reader) = {
            let st = lock(&self.state);
            if st.locked {
                return Err(AgentError::Locked);
            }
            let reader = st.active.clone().ok_or_else(|| AgentError::NotLoggedIn("-".into()))?;
            let token = st
                .readers
                .get(&reader)
                .and_then(|s| s.as_ref())
                .and_then(|s| s.session.as_ref())
                .map(|s| s.token.clone())
                .ok_or_else(|| AgentError::NotLoggedIn(reader.clone()))?;
            (token, reader)
        };
        let answer = self.timed(self.shared_send(method, path_and_query, body, &token)).await?;
        if answer.status == 401 {
            // The gateway ended the session (idle, maximum, deactivated):
            // forget it so the screen asks for the PIN again.
            let mut st = lock(&self.state);
            if let Some(Some(slot)) = st.readers.get_mut(&reader)
                && slot.session.as_ref().is_some_and(|s| s.token == token)
            {
                slot.session = None;
                drop(st);
                self.changed();
            }
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::is_draft_id;

    #[test]
    fn only_gateway_made_draft_ids_reach_a_gateway_path() {
        for ok in ["drf_AbC-09_x", "d", &"a".repeat(64)] {
            assert!(is_draft_id(ok), "{ok}");
        }
        // Found by the API fuzzing: a space broke the request (502), and
        // `/`, `?`, `#`, `..` would have aimed the doctor's session at
        // another gateway path.
        for bad in ["", "drf _x", "x/../../auth/logout", "x?version=9", "x#y", "..", "drf_é", &"a".repeat(65)] {
            assert!(!is_draft_id(bad), "{bad:?}");
        }
    }
}
