//! A connected HPKI card, reached through the PC/SC service.

use std::ffi::CString;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::CertificateCache;
use crate::error::CardError;
use crate::pin::Pin;
use crate::profile::{Application, CardProfile};
use crate::session::{PinStatus, Session, Transport};

/// Modulus size of the RSA-2048 keys on HPKI cards, in bytes.
pub const RSA_2048_BYTES: usize = 256;

/// Connection to the PC/SC service (pcscd).
#[derive(Clone)]
pub struct PcscContext {
    ctx: pcsc::Context,
}

/// A reader and what is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderStatus {
    pub reader: String,
    pub card: Option<CardIdentity>,
}

/// One insertion of one card: the reader, the card's ATR and the reader's
/// insertion/removal counter at the time.
///
/// The counter changes whenever a card leaves or enters the reader, so an
/// identity can never be confused with another card inserted later — even one
/// with the same ATR (all cards of a type share it). Certificates are cached
/// under it, which costs no APDU to look up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CardIdentity {
    pub reader: String,
    pub atr: Vec<u8>,
    pub insertion: u32,
}

impl PcscContext {
    pub fn establish() -> Result<PcscContext, CardError> {
        let ctx = pcsc::Context::establish(pcsc::Scope::User).map_err(|e| CardError::from_pcsc(e, None))?;
        Ok(PcscContext { ctx })
    }

    pub(crate) fn raw(&self) -> &pcsc::Context {
        &self.ctx
    }

    /// Reader names; an empty list when no reader is connected.
    pub fn readers(&self) -> Result<Vec<String>, CardError> {
        match self.ctx.list_readers_owned() {
            Ok(names) => Ok(names.iter().map(|n| n.to_string_lossy().into_owned()).collect()),
            Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
            Err(e) => Err(CardError::from_pcsc(e, None)),
        }
    }

    /// Every reader with the card in it, if any.
    pub fn reader_statuses(&self) -> Result<Vec<ReaderStatus>, CardError> {
        let names = self.readers()?;
        let mut states = names
            .iter()
            .map(|n| Ok(pcsc::ReaderState::new(c_name(n)?, pcsc::State::UNAWARE)))
            .collect::<Result<Vec<_>, CardError>>()?;
        if states.is_empty() {
            return Ok(Vec::new());
        }
        self.ctx.get_status_change(Duration::ZERO, &mut states).map_err(|e| CardError::from_pcsc(e, None))?;
        Ok(names
            .into_iter()
            .zip(states.iter())
            .map(|(reader, st)| {
                let card = st.event_state().contains(pcsc::State::PRESENT).then(|| CardIdentity {
                    reader: reader.clone(),
                    atr: st.atr().to_vec(),
                    insertion: st.event_count(),
                });
                ReaderStatus { reader, card }
            })
            .collect())
    }

    /// The card now in `reader`.
    pub fn card_in(&self, reader: &str) -> Result<CardIdentity, CardError> {
        let statuses = self.reader_statuses()?;
        if statuses.is_empty() {
            return Err(CardError::NoReader);
        }
        let status = statuses
            .into_iter()
            .find(|s| s.reader == reader)
            .ok_or_else(|| CardError::UnknownReader(reader.to_owned()))?;
        status.card.ok_or_else(|| CardError::NoCard { reader: reader.to_owned() })
    }

    /// Connects (shared) to the card in `reader`; the profile comes from its
    /// ATR.
    pub fn connect(&self, reader: &str) -> Result<HpkiCard, CardError> {
        let identity = self.card_in(reader)?;
        self.connect_as(reader, CardProfile::from_atr(&identity.atr))
    }

    /// Connects with a profile chosen by the caller (configuration override).
    pub fn connect_as(&self, reader: &str, profile: CardProfile) -> Result<HpkiCard, CardError> {
        let name = c_name(reader)?;
        let card = self
            .ctx
            .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
            .map_err(|e| CardError::from_pcsc(e, Some(reader)))?;
        // Read the identity after connecting: had the card been swapped in
        // between, this handle would answer RemovedCard on first use.
        let identity = self.card_in(reader)?;
        Ok(HpkiCard { card, identity, profile, trace: Vec::new(), rx: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED] })
    }

    /// Waits until `reader` holds a card or `timeout` passes.
    pub fn wait_for_card(&self, reader: &str, timeout: Duration) -> Result<CardIdentity, CardError> {
        let deadline = std::time::Instant::now() + timeout;
        let mut state = [pcsc::ReaderState::new(c_name(reader)?, pcsc::State::UNAWARE)];
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.ctx.get_status_change(left, &mut state) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => {
                    return Err(CardError::NoCard { reader: reader.to_owned() });
                }
                Err(e) => return Err(CardError::from_pcsc(e, Some(reader))),
            }
            let st = &mut state[0];
            if st.event_state().contains(pcsc::State::PRESENT) && !st.event_state().contains(pcsc::State::MUTE) {
                return Ok(CardIdentity {
                    reader: reader.to_owned(),
                    atr: st.atr().to_vec(),
                    insertion: st.event_count(),
                });
            }
            if st.event_state().intersects(pcsc::State::UNKNOWN | pcsc::State::UNAVAILABLE) {
                return Err(CardError::UnknownReader(reader.to_owned()));
            }
            st.sync_current_state();
        }
    }
}

fn c_name(reader: &str) -> Result<CString, CardError> {
    CString::new(reader).map_err(|_| CardError::UnknownReader(reader.to_owned()))
}

/// A card connected in shared mode. Each operation runs in one PC/SC
/// transaction, so no other program's commands come between a VERIFY and the
/// signature it unlocks.
pub struct HpkiCard {
    card: pcsc::Card,
    identity: CardIdentity,
    profile: CardProfile,
    trace: Vec<u8>,
    rx: Vec<u8>,
}

struct PcscTransport<'a> {
    card: &'a pcsc::Card,
    rx: &'a mut [u8],
}

/// How long to ask pcscd whether a card that gave no answer is still there:
/// pcscd polls some readers (vpcd among them) only every ~0.4 s.
const NO_ANSWER_DIAGNOSIS: Duration = Duration::from_millis(1500);

impl Transport for PcscTransport<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        let r = self.card.transmit(apdu, self.rx).map_err(|e| CardError::from_pcsc(e, None))?;
        let out = r.to_vec();
        // The receive buffer may hold a signature or response to a VERIFY;
        // wipe what was written.
        let n = out.len();
        zeroize::Zeroize::zeroize(&mut self.rx[..n]);
        if out.len() < 2 {
            self.diagnose_no_answer()?;
        }
        Ok(out)
    }
}

impl PcscTransport<'_> {
    /// A reader that lost the card mid-command may hand back an empty
    /// answer (vpcd does) before pcscd marks the card absent. Tell a removed
    /// card from a mute one by asking pcscd for a while.
    fn diagnose_no_answer(&self) -> Result<(), CardError> {
        let deadline = std::time::Instant::now() + NO_ANSWER_DIAGNOSIS;
        while std::time::Instant::now() < deadline {
            match self.card.status2_owned() {
                Ok(st) if st.status().contains(pcsc::Status::ABSENT) => {
                    return Err(CardError::CardRemoved);
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(CardError::from_pcsc(e, None)),
            }
        }
        // Still present: the card itself answered wrongly.
        Ok(())
    }
}

impl HpkiCard {
    pub fn identity(&self) -> &CardIdentity {
        &self.identity
    }

    pub fn profile(&self) -> CardProfile {
        self.profile
    }

    /// INS bytes of the APDUs sent by the last operation, in order.
    pub fn last_apdus(&self) -> &[u8] {
        &self.trace
    }

    fn run<R>(
        &mut self,
        op: impl FnOnce(&mut Session<'_, PcscTransport<'_>>) -> Result<R, CardError>,
    ) -> Result<R, CardError> {
        let HpkiCard { card, profile, trace, rx, .. } = self;
        trace.clear();
        let tx = match card.transaction2() {
            Ok(tx) => tx,
            // Another program reset the card: take the card again (our own
            // security state is gone with the reset, so nothing is skipped)
            // and fail this operation with a clear error rather than guess.
            Err((card, pcsc::Error::ResetCard)) => {
                card.reconnect(pcsc::ShareMode::Shared, pcsc::Protocols::ANY, pcsc::Disposition::LeaveCard)
                    .map_err(|e| CardError::from_pcsc(e, None))?;
                return Err(CardError::CardReset);
            }
            Err((_, e)) => return Err(CardError::from_pcsc(e, None)),
        };
        let mut transport = PcscTransport { card: &tx, rx };
        let mut session = Session::new(&mut transport, *profile, trace);
        let result = op(&mut session);
        // Ending the transaction fails when the card is gone; the
        // operation's own error says more.
        match tx.end(pcsc::Disposition::LeaveCard) {
            Err((_, e)) if result.is_ok() => Err(CardError::from_pcsc(e, None)),
            _ => result,
        }
    }

    /// Reads the certificate of `app` from the card (no cache).
    pub fn read_certificate(&mut self, app: Application) -> Result<Vec<u8>, CardError> {
        self.run(|s| {
            s.select_application(app)?;
            s.read_certificate(app)
        })
    }

    /// The certificate of `app`: from `cache` when this card insertion has
    /// been read before (no APDU is sent), else read and cached.
    pub fn certificate(&mut self, app: Application, cache: &CertificateCache) -> Result<Arc<[u8]>, CardError> {
        // A status request (no APDU) makes sure this handle still refers to
        // the card the identity was taken from.
        self.card.status2_owned().map_err(|e| CardError::from_pcsc(e, None))?;
        if let Some(cert) = cache.get(&self.identity, app) {
            self.trace.clear();
            return Ok(cert);
        }
        let cert: Arc<[u8]> = self.read_certificate(app)?.into();
        cache.insert(self.identity.clone(), app, cert.clone());
        Ok(cert)
    }

    /// The PIN state of `app`, without using a try.
    pub fn pin_status(&mut self, app: Application) -> Result<PinStatus, CardError> {
        self.run(|s| {
            s.select_application(app)?;
            s.pin_status(app)
        })
    }

    /// Verifies the PIN once.
    pub fn verify_pin(&mut self, app: Application, pin: &Pin) -> Result<(), CardError> {
        self.run(|s| {
            s.select_application(app)?;
            s.verify(app, pin)
        })
    }

    /// Verifies `pin` and signs the SHA-256 `digest` with the key of `app`,
    /// in one transaction. `key_bytes` is the modulus size (256 for the
    /// RSA-2048 keys of HPKI cards).
    pub fn sign_sha256(
        &mut self,
        app: Application,
        pin: &Pin,
        digest: &[u8; 32],
        key_bytes: usize,
    ) -> Result<Vec<u8>, CardError> {
        self.run(|s| {
            s.select_application(app)?;
            s.verify(app, pin)?;
            s.compute_signature(app, digest, key_bytes)
        })
    }
}
