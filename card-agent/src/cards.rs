//! What the agent does with a card, through PC/SC. Every function here
//! blocks (PC/SC calls do); the agent runs them on Tokio's blocking pool.

use std::sync::Arc;

use hpki_card::{
    Application, CardError, CardIdentity, CertificateCache, PcscContext, Pin, PinStatus, RSA_2048_BYTES, sha256,
};
use hpki_profile::holder::{HolderKind, read_holder};
use serde::Serialize;

/// Who a card belongs to, as the agent shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// `licensed` (HPKI card) or `assistant` (institution staff card).
    pub kind: &'static str,
    /// The gateway's person id: the HPKI subject serialNumber, or
    /// `institution/staff id` for a staff card.
    pub person_id: Option<String>,
    pub name: Option<String>,
    pub name_kanji: Option<String>,
    /// Profession slug (`doctor`, …) of an HPKI card.
    pub profession: Option<String>,
    pub institution: Option<String>,
    pub institution_kanji: Option<String>,
    /// End of the certificate's validity (Unix s).
    pub not_after: i64,
}

/// The PIN state shown before a PIN is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PinState {
    TriesLeft { tries_left: u8 },
    Verified,
    Blocked,
}

impl From<PinStatus> for PinState {
    fn from(s: PinStatus) -> Self {
        match s {
            PinStatus::TriesLeft(n) => PinState::TriesLeft { tries_left: n },
            PinStatus::Verified => PinState::Verified,
            PinStatus::Blocked => PinState::Blocked,
        }
    }
}

/// One reader and its card, as `card-agent cards` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct CardReport {
    pub reader: String,
    pub card_present: bool,
    /// The card's ATR, hex.
    pub atr: Option<String>,
    pub holder: Option<Holder>,
    pub pin: Option<PinState>,
    /// Why the card could not be read, if it could not.
    pub error: Option<String>,
    /// Whether reading again may succeed (the card was busy or being reset).
    #[serde(skip)]
    pub transient: bool,
}

/// The holder of a certificate.
pub fn holder_of(certificate: &[u8]) -> Result<Holder, String> {
    let h = read_holder(certificate).map_err(|e| e.to_string())?;
    let kind = match h.kind {
        HolderKind::Licensed(_) => "licensed",
        HolderKind::Assistant => "assistant",
        HolderKind::Other => return Err("neither an HPKI card nor an institution staff card".into()),
    };
    let person_id = h.person_id();
    Ok(Holder {
        kind,
        person_id,
        profession: h.profession().map(|p| p.slug().to_owned()),
        name: h.name,
        name_kanji: h.name_kanji,
        institution: h.institution,
        institution_kanji: h.institution_kanji,
        not_after: h.not_after,
    })
}

/// Extra reads of a card that was reset while being read.
const READ_ATTEMPTS: usize = 5;

/// Reads the holder (certificate, cached per insertion) and the PIN state of
/// the card now in `reader`. Uses no PIN try.
pub fn inspect(ctx: &PcscContext, cache: &CertificateCache, reader: &str) -> CardReport {
    let mut report = CardReport {
        reader: reader.to_owned(),
        card_present: false,
        atr: None,
        holder: None,
        pin: None,
        error: None,
        transient: false,
    };
    let identity = match ctx.card_in(reader) {
        Ok(id) => id,
        Err(CardError::NoCard { .. }) => return report,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    report.card_present = true;
    report.atr = Some(identity.atr.iter().map(|b| format!("{b:02X}")).collect());
    let read = || {
        let mut card = ctx.connect(reader)?;
        let cert = card.certificate(Application::Authentication, cache)?;
        let pin = card.pin_status(Application::Authentication)?;
        Ok::<_, CardError>((cert, pin))
    };
    // A card just put in may still be reset by the reader (PC/SC then
    // reports a reset on first use): read again a few times.
    let mut result = read();
    for _ in 0..READ_ATTEMPTS {
        if !matches!(result, Err(CardError::CardReset)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        result = read();
    }
    match result {
        Ok((cert, pin)) => {
            report.pin = Some(pin.into());
            match holder_of(&cert) {
                Ok(h) => report.holder = Some(h),
                Err(e) => report.error = Some(format!("the certificate cannot be read: {e}")),
            }
        }
        Err(e) => {
            report.transient = matches!(e, CardError::CardReset | CardError::CardInUse | CardError::CardUnresponsive);
            report.error = Some(e.to_string());
        }
    }
    report
}

/// The PIN state of the card in `reader`, if it is still `expected`.
pub fn pin_state(ctx: &PcscContext, reader: &str, expected: &CardIdentity) -> Result<PinState, CardError> {
    let mut card = ctx.connect(reader)?;
    same_card(card.identity(), expected)?;
    Ok(card.pin_status(Application::Authentication)?.into())
}

/// The authentication certificate and the signature over `tbs` by the card in
/// `reader` — provided it is still the insertion `expected`. VERIFY and the
/// signature run in one PC/SC transaction; a wrong PIN is never retried.
pub fn sign_login(
    ctx: &PcscContext,
    cache: &CertificateCache,
    reader: &str,
    expected: &CardIdentity,
    pin: &Pin,
    tbs: &[u8],
) -> Result<(Arc<[u8]>, Vec<u8>), CardError> {
    let mut card = ctx.connect(reader)?;
    same_card(card.identity(), expected)?;
    let cert = card.certificate(Application::Authentication, cache)?;
    let signature = card.sign_sha256(Application::Authentication, pin, &sha256(tbs), RSA_2048_BYTES)?;
    Ok((cert, signature))
}

/// The signature certificate and one signature per document.
pub type Signed = (Arc<[u8]>, Vec<Vec<u8>>);

/// The certificate of the card's *signature* application (no PIN): the
/// gateway builds the CAdES signed attributes for it before anything is
/// signed.
pub fn signature_certificate(
    ctx: &PcscContext,
    cache: &CertificateCache,
    reader: &str,
    expected: &CardIdentity,
) -> Result<std::sync::Arc<[u8]>, CardError> {
    let mut card = ctx.connect(reader)?;
    same_card(card.identity(), expected)?;
    card.certificate(Application::Signature, cache)
}

/// Signs each SHA-256 digest with the card's *signature* key: the
/// signature application wants its PIN before every signature, so the PIN
/// typed once is verified again for each; the first failure stops the rest
/// (a wrong PIN is never tried twice).
pub fn sign_documents(
    ctx: &PcscContext,
    cache: &CertificateCache,
    reader: &str,
    expected: &CardIdentity,
    pin: &Pin,
    digests: &[[u8; 32]],
) -> Result<Signed, CardError> {
    let mut card = ctx.connect(reader)?;
    same_card(card.identity(), expected)?;
    let cert = card.certificate(Application::Signature, cache)?;
    let mut signatures = Vec::with_capacity(digests.len());
    for d in digests {
        signatures.push(card.sign_sha256(Application::Signature, pin, d, RSA_2048_BYTES)?);
    }
    Ok((cert, signatures))
}

fn same_card(now: &CardIdentity, expected: &CardIdentity) -> Result<(), CardError> {
    if now == expected { Ok(()) } else { Err(CardError::CardReset) }
}
