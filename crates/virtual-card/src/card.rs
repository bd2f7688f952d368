//! The card itself: applications, files, PIN counters, security state and
//! signatures, answering one command APDU at a time.
//!
//! Every command gets an answer with a status word — an unknown one gets an
//! error status, never silence (a missing answer would hang the reader).

use std::path::PathBuf;

use hpki_card::apdu::StatusWord;
use hpki_card::profile::{CardFile, CardProfile};
use hpki_card::signing::SHA256_DIGEST_INFO_PREFIX;
use hpki_card::{Application, CardVariant};
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, rand_core::OsRng};

use crate::command::{self, Received};
use crate::image::{CardImage, ImageError};

const SW_MEMORY_FAILURE: StatusWord = StatusWord(0x6581);
const SW_CHAINING_NOT_SUPPORTED: StatusWord = StatusWord(0x6884);
const SW_NO_CURRENT_EF: StatusWord = StatusWord(0x6986);
const SW_INCORRECT_P1P2: StatusWord = StatusWord(0x6A86);

/// Where a card's retry counters are kept.
enum Store {
    /// Written back to the image file before the card answers.
    File(PathBuf),
    /// Kept in memory only (unit tests).
    Memory,
}

pub struct VirtualCard {
    image: CardImage,
    store: Store,
    keys: [RsaPrivateKey; 2],
    profile: CardProfile,
    selected: Option<Application>,
    current_ef: Option<CardFile>,
    /// PIN verified, per application, since the last reset or selection.
    verified: [bool; 2],
    /// MSE:SET named the key of the selected application.
    key_ready: bool,
    /// Command-chaining buffer of PSO.
    chain: Vec<u8>,
}

fn idx(app: Application) -> usize {
    match app {
        Application::Authentication => 0,
        Application::Signature => 1,
    }
}

/// Response data with its status word (`90 00`, or a warning such as
/// `62 82` that still carries data), or an error status word alone.
type Answer = Result<(Vec<u8>, StatusWord), StatusWord>;

fn ok(data: Vec<u8>) -> Answer {
    Ok((data, StatusWord::OK))
}

impl VirtualCard {
    /// A card whose counters are written back to `path`.
    pub fn from_file(path: PathBuf) -> Result<VirtualCard, ImageError> {
        let image = CardImage::load(&path)?;
        Self::build(image, Store::File(path))
    }

    /// A card whose counters live in memory only.
    pub fn in_memory(image: CardImage) -> Result<VirtualCard, ImageError> {
        image.validate()?;
        Self::build(image, Store::Memory)
    }

    fn build(image: CardImage, store: Store) -> Result<VirtualCard, ImageError> {
        let key = |app| image.app(app).private_key().map_err(ImageError::Invalid);
        let keys = [key(Application::Authentication)?, key(Application::Signature)?];
        let profile = CardProfile {
            variant: image.variant,
            // The emulated JMA card has extended length; the JAHIS variant
            // shows command chaining instead.
            extended_length: image.variant == CardVariant::Jma,
        };
        Ok(VirtualCard {
            image,
            store,
            keys,
            profile,
            selected: None,
            current_ef: None,
            verified: [false; 2],
            key_ready: false,
            chain: Vec::new(),
        })
    }

    pub fn atr(&self) -> Vec<u8> {
        self.image.atr()
    }

    pub fn image(&self) -> &CardImage {
        &self.image
    }

    /// Power off or reset: all security state is lost.
    pub fn reset(&mut self) {
        self.selected = None;
        self.current_ef = None;
        self.verified = [false; 2];
        self.key_ready = false;
        self.chain.clear();
    }

    /// Answers one command APDU with data + SW1 SW2.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        let result = command::parse(apdu).and_then(|cmd| self.dispatch(&cmd));
        match result {
            Ok((mut data, sw)) => {
                data.extend_from_slice(&sw.to_bytes());
                data
            }
            Err(sw) => sw.to_bytes().to_vec(),
        }
    }

    fn dispatch(&mut self, cmd: &Received<'_>) -> Answer {
        if cmd.extended && !self.profile.extended_length {
            return Err(StatusWord::WRONG_LENGTH);
        }
        let chained = cmd.cla & 0x10 != 0;
        if cmd.cla & !0x10 != 0x00 {
            return Err(StatusWord::CLA_NOT_SUPPORTED);
        }
        if chained && cmd.ins != 0x2A {
            return Err(SW_CHAINING_NOT_SUPPORTED);
        }
        if cmd.ins != 0x2A {
            // Chaining is only valid with consecutive PSO commands.
            self.chain.clear();
        }
        match cmd.ins {
            0xA4 => self.select(cmd),
            0xB0 => self.read_binary(cmd),
            0x20 => self.verify(cmd),
            0x22 => self.manage_security_environment(cmd),
            0x2A => self.perform_security_operation(cmd, chained),
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }

    fn select(&mut self, cmd: &Received<'_>) -> Answer {
        match cmd.p1 {
            0x04 => {
                let app = Application::ALL
                    .into_iter()
                    .find(|a| a.aid()[..] == *cmd.data)
                    .ok_or(StatusWord::FILE_NOT_FOUND)?;
                if self.selected != Some(app) {
                    // Leaving an application drops its security state.
                    self.verified = [false; 2];
                }
                self.selected = Some(app);
                self.current_ef = None;
                self.key_ready = false;
                match cmd.p2 {
                    0x0C => ok(Vec::new()),
                    // FCI: 6F { 84 AID }.
                    0x00 if cmd.ne > 0 => {
                        let aid = app.aid();
                        let mut fci = vec![0x6F, (aid.len() + 2) as u8, 0x84, aid.len() as u8];
                        fci.extend_from_slice(&aid);
                        ok(fci)
                    }
                    0x00 => ok(Vec::new()),
                    _ => Err(SW_INCORRECT_P1P2),
                }
            }
            0x02 => {
                self.selected.ok_or(StatusWord::FILE_NOT_FOUND)?;
                let [hi, lo] = cmd.data else {
                    return Err(StatusWord::WRONG_DATA);
                };
                let fid = u16::from_be_bytes([*hi, *lo]);
                let file = [CardFile::Pin, CardFile::PrivateKey, CardFile::Certificate]
                    .into_iter()
                    .find(|f| match self.profile.variant {
                        CardVariant::Jma => f.jma_id() == fid,
                        CardVariant::Jahis => u16::from(f.jahis_sfi()) == fid,
                    })
                    .ok_or(StatusWord::FILE_NOT_FOUND)?;
                self.current_ef = Some(file);
                ok(Vec::new())
            }
            _ => Err(SW_INCORRECT_P1P2),
        }
    }

    fn read_binary(&mut self, cmd: &Received<'_>) -> Answer {
        let app = self.selected.ok_or(SW_NO_CURRENT_EF)?;
        let offset = if cmd.p1 & 0x80 != 0 {
            // Short EF identifier in P1, offset in P2 (JAHIS variant).
            if self.profile.variant != CardVariant::Jahis || cmd.p1 & 0x60 != 0 {
                return Err(SW_INCORRECT_P1P2);
            }
            let sfi = cmd.p1 & 0x1F;
            let file = [CardFile::Pin, CardFile::PrivateKey, CardFile::Certificate]
                .into_iter()
                .find(|f| f.jahis_sfi() == sfi)
                .ok_or(StatusWord::FILE_NOT_FOUND)?;
            self.current_ef = Some(file);
            usize::from(cmd.p2)
        } else {
            usize::from(u16::from_be_bytes([cmd.p1, cmd.p2]))
        };
        match self.current_ef.ok_or(SW_NO_CURRENT_EF)? {
            CardFile::Certificate => {}
            // PIN and key files are never readable.
            CardFile::Pin | CardFile::PrivateKey => {
                return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
            }
        }
        let content = &self.image.app(app).certificate;
        if offset >= content.len() {
            return Err(StatusWord::WRONG_P1P2);
        }
        let available = content.len() - offset;
        let ne = if cmd.ne == 0 { 256 } else { cmd.ne };
        if ne > available {
            // ISO 7816-4: end of file reached before Ne bytes.
            return Ok((content[offset..].to_vec(), StatusWord::END_OF_FILE));
        }
        ok(content[offset..offset + ne].to_vec())
    }

    fn verify(&mut self, cmd: &Received<'_>) -> Answer {
        let app = self.selected.ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        if cmd.p1 != 0x00 || cmd.p2 != self.profile.verify_p2() {
            return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        let i = idx(app);
        let state = self.image.app(app);
        if state.tries_left == 0 {
            self.verified[i] = false;
            return Err(StatusWord::AUTH_METHOD_BLOCKED);
        }
        if cmd.data.is_empty() {
            // Retry counter query: uses no try.
            return if self.verified[i] { ok(Vec::new()) } else { Err(retries(state.tries_left)) };
        }
        if constant_time_eq(cmd.data, state.pin.as_bytes()) {
            let limit = state.retry_limit;
            self.set_tries_left(app, limit)?;
            self.verified[i] = true;
            ok(Vec::new())
        } else {
            self.verified[i] = false;
            let left = state.tries_left - 1;
            // Persisted before answering: killing the card now cannot give a
            // try back.
            self.set_tries_left(app, left)?;
            Err(retries(left))
        }
    }

    fn set_tries_left(&mut self, app: Application, n: u8) -> Result<(), StatusWord> {
        if self.image.app(app).tries_left == n {
            return Ok(());
        }
        self.image.app_mut(app).tries_left = n;
        match &self.store {
            Store::Memory => Ok(()),
            Store::File(path) => self.image.save(path).map_err(|e| {
                tracing::error!(error = %e, "cannot persist the retry counter");
                SW_MEMORY_FAILURE
            }),
        }
    }

    fn manage_security_environment(&mut self, cmd: &Received<'_>) -> Answer {
        self.selected.ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
        if cmd.p1 != 0x41 || cmd.p2 != 0xB6 {
            return Err(SW_INCORRECT_P1P2);
        }
        if cmd.data != self.profile.mse_key_reference() {
            self.key_ready = false;
            return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        self.key_ready = true;
        ok(Vec::new())
    }

    fn perform_security_operation(&mut self, cmd: &Received<'_>, chained: bool) -> Answer {
        if cmd.p1 != 0x9E || cmd.p2 != 0x9A {
            self.chain.clear();
            return Err(SW_INCORRECT_P1P2);
        }
        let Some(app) = self.selected.filter(|_| self.key_ready) else {
            self.chain.clear();
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        };
        let i = idx(app);
        if !self.verified[i] {
            self.chain.clear();
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        let key = &self.keys[i];
        if self.chain.len() + cmd.data.len() > key.size() {
            self.chain.clear();
            return Err(StatusWord::WRONG_LENGTH);
        }
        self.chain.extend_from_slice(cmd.data);
        if chained {
            return ok(Vec::new());
        }
        let block = std::mem::take(&mut self.chain);
        if block.len() != key.size() {
            return Err(StatusWord::WRONG_LENGTH);
        }
        let t = pkcs1_type1_payload(&block).ok_or(StatusWord::WRONG_DATA)?;
        // Re-padding T yields exactly `block`; rsa applies blinding.
        let signature =
            key.sign_with_rng(&mut OsRng, Pkcs1v15Sign::new_unprefixed(), t).map_err(|_| StatusWord::WRONG_DATA)?;
        if app == Application::Signature {
            // The signature application wants the PIN for every signature.
            self.verified[i] = false;
        }
        ok(signature)
    }
}

fn retries(n: u8) -> StatusWord {
    StatusWord::from_bytes(0x63, 0xC0 | (n & 0x0F))
}

/// The DigestInfo inside `00 01 FF…FF 00 T`, if the block is padded so.
fn pkcs1_type1_payload(block: &[u8]) -> Option<&[u8]> {
    let rest = block.strip_prefix(&[0x00, 0x01])?;
    let ff = rest.iter().take_while(|b| **b == 0xFF).count();
    if ff < 8 {
        return None;
    }
    let t = rest[ff..].strip_prefix(&[0x00])?;
    // HPKI signs SHA-256 DigestInfos; anything else is refused.
    (t.len() == SHA256_DIGEST_INFO_PREFIX.len() + 32 && t.starts_with(&SHA256_DIGEST_INFO_PREFIX)).then_some(t)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
