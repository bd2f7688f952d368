//! The HPKI command sequences, over any [`Transport`].
//!
//! A `Session` lives for one PC/SC transaction: what it sends in between
//! cannot be interleaved with another program's commands. Every status word
//! is interpreted in the context of the command that was sent, and anything
//! unexpected becomes a typed error — a card's answer is outside input.

use zeroize::Zeroizing;

use crate::apdu::{Command, Response, SHORT_LC_MAX, SHORT_LE_MAX, StatusWord};
use crate::error::{CardCommand, CardError};
use crate::pin::Pin;
use crate::profile::{Application, CardFile, CardProfile, CardVariant};
use crate::signing::{MAX_KEY_BYTES, MIN_KEY_BYTES, pkcs1_v15_sha256_block};

/// Sends command APDUs and returns the raw response (data + SW1 SW2).
pub trait Transport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, CardError>;
}

/// Largest certificate the card layer accepts.
pub const MAX_CERTIFICATE_LEN: usize = 16 * 1024;
/// Bound on GET RESPONSE rounds, so a card answering `61 xx` for ever cannot
/// hang the caller.
const MAX_GET_RESPONSE_ROUNDS: usize = 64;
/// Bound on READ BINARY rounds (a certificate at 256-byte chunks needs 64).
const MAX_READ_ROUNDS: usize = MAX_CERTIFICATE_LEN / SHORT_LE_MAX + 1;

/// What the card says about a PIN before one is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinStatus {
    /// Not verified yet; this many wrong PINs are left.
    TriesLeft(u8),
    /// Already verified in this card session.
    Verified,
    Blocked,
}

pub struct Session<'t, T: Transport + ?Sized> {
    transport: &'t mut T,
    profile: CardProfile,
    /// INS byte of every APDU sent, in order; read by tests and benchmarks.
    trace: &'t mut Vec<u8>,
}

impl<'t, T: Transport + ?Sized> Session<'t, T> {
    pub fn new(transport: &'t mut T, profile: CardProfile, trace: &'t mut Vec<u8>) -> Self {
        Session { transport, profile, trace }
    }

    /// Sends one command, following `61 xx` (GET RESPONSE) and `6C xx`
    /// (resend with the right Le) as ISO 7816-4 asks.
    fn exchange(&mut self, command: CardCommand, apdu: &Command<'_>) -> Result<Response, CardError> {
        // Zeroising buffer: a VERIFY APDU carries the PIN.
        let mut raw = Zeroizing::new(Vec::new());
        apdu.encode_into(self.profile.extended_length, &mut raw)
            .map_err(|source| CardError::Encode { command, source })?;
        let mut response = self.send(command, &raw)?;

        if let Some(le) = wrong_le(response.sw) {
            let retry = Command { le: Some(le), ..apdu.clone() };
            retry
                .encode_into(self.profile.extended_length, &mut raw)
                .map_err(|source| CardError::Encode { command, source })?;
            response = self.send(command, &raw)?;
            if wrong_le(response.sw).is_some() {
                return Err(CardError::malformed(command, "the card asked twice for a different Le"));
            }
        }

        let mut data = std::mem::take(&mut response.data);
        let mut rounds = 0;
        while response.sw.sw1() == 0x61 {
            rounds += 1;
            if rounds > MAX_GET_RESPONSE_ROUNDS || data.len() > MAX_CERTIFICATE_LEN {
                return Err(CardError::malformed(command, "the card keeps announcing more response data"));
            }
            let remaining = match response.sw.sw2() {
                0 => SHORT_LE_MAX,
                n => usize::from(n),
            };
            let get = Command::new(0x00, 0xC0, 0x00, 0x00).with_le(remaining);
            let encoded =
                get.encode(false).map_err(|source| CardError::Encode { command: CardCommand::GetResponse, source })?;
            response = self.send(CardCommand::GetResponse, &encoded)?;
            data.append(&mut response.data);
        }
        Ok(Response { data, sw: response.sw })
    }

    fn send(&mut self, command: CardCommand, raw: &[u8]) -> Result<Response, CardError> {
        self.trace.push(raw[1]);
        let bytes = self.transport.transmit(raw)?;
        Response::parse(&bytes).map_err(|e| CardError::malformed(command, e.to_string()))
    }

    pub fn select_application(&mut self, app: Application) -> Result<(), CardError> {
        let aid = app.aid();
        let apdu = match self.profile.variant {
            // P2 0C: no FCI wanted.
            CardVariant::Jma => Command::new(0x00, 0xA4, 0x04, 0x0C).with_data(&aid),
            CardVariant::Jahis => Command::new(0x00, 0xA4, 0x04, 0x00).with_data(&aid).with_le(SHORT_LE_MAX),
        };
        let r = self.exchange(CardCommand::SelectApplication, &apdu)?;
        match r.sw {
            StatusWord::OK => Ok(()),
            StatusWord::FILE_NOT_FOUND => Err(CardError::ApplicationNotFound(app)),
            sw => Err(unexpected(CardCommand::SelectApplication, sw)),
        }
    }

    /// SELECT EF by id (JMA variant only; JAHIS addresses files by SFI).
    fn select_file(&mut self, app: Application, file: CardFile) -> Result<(), CardError> {
        if !self.profile.selects_files() {
            return Ok(());
        }
        let id = file.jma_id().to_be_bytes();
        let apdu = Command::new(0x00, 0xA4, 0x02, 0x0C).with_data(&id);
        let r = self.exchange(CardCommand::SelectFile, &apdu)?;
        match r.sw {
            StatusWord::OK => Ok(()),
            StatusWord::FILE_NOT_FOUND => Err(CardError::FileNotFound { app, file: file.jma_id() }),
            sw => Err(unexpected(CardCommand::SelectFile, sw)),
        }
    }

    /// Reads the end-entity certificate (DER) of the selected application,
    /// in chunks until the length in its DER header is covered.
    pub fn read_certificate(&mut self, app: Application) -> Result<Vec<u8>, CardError> {
        const CMD: CardCommand = CardCommand::ReadBinary;
        self.select_file(app, CardFile::Certificate)?;
        let chunk = self.profile.read_chunk();
        let mut cert: Vec<u8> = Vec::new();
        let mut total: Option<usize> = None;
        for round in 0..MAX_READ_ROUNDS {
            let want = match total {
                Some(t) => chunk.min(t - cert.len()),
                None => chunk,
            };
            let apdu = if round == 0 && !self.profile.selects_files() {
                // JAHIS: READ BINARY by short EF identifier from offset 0.
                Command::new(0x00, 0xB0, 0x80 | CardFile::Certificate.jahis_sfi(), 0x00).with_le(want)
            } else {
                let [p1, p2] = u16::try_from(cert.len())
                    .ok()
                    .filter(|off| *off <= 0x7FFF)
                    .ok_or_else(|| CardError::malformed(CMD, "certificate offset beyond 32767"))?
                    .to_be_bytes();
                Command::new(0x00, 0xB0, p1, p2).with_le(want)
            };
            let r = self.exchange(CMD, &apdu)?;
            let end_of_file = match r.sw {
                StatusWord::OK => false,
                StatusWord::END_OF_FILE => true,
                StatusWord::FILE_NOT_FOUND => {
                    return Err(CardError::FileNotFound { app, file: CardFile::Certificate.jma_id() });
                }
                StatusWord::WRONG_P1P2 => {
                    return Err(CardError::malformed(
                        CMD,
                        format!("the certificate file ends after {} bytes, before its DER length", cert.len()),
                    ));
                }
                sw => return Err(unexpected(CMD, sw)),
            };
            if r.data.is_empty() {
                return Err(CardError::malformed(CMD, format!("no data at offset {}", cert.len())));
            }
            if r.data.len() > want {
                return Err(CardError::malformed(
                    CMD,
                    format!("{} bytes returned where at most {want} were asked", r.data.len()),
                ));
            }
            cert.extend_from_slice(&r.data);
            if total.is_none() {
                total = der_total_length(&cert).map_err(|d| CardError::malformed(CMD, d))?;
            }
            if let Some(t) = total
                && cert.len() >= t
            {
                cert.truncate(t);
                return Ok(cert);
            }
            if end_of_file {
                return Err(CardError::malformed(
                    CMD,
                    format!("end of file after {} bytes, before the certificate's DER length", cert.len()),
                ));
            }
        }
        Err(CardError::malformed(CMD, "too many READ BINARY rounds"))
    }

    /// Asks the retry counter without using a try (VERIFY with no data).
    pub fn pin_status(&mut self, app: Application) -> Result<PinStatus, CardError> {
        self.select_file(app, CardFile::Pin)?;
        let apdu = Command::new(0x00, 0x20, 0x00, self.profile.verify_p2());
        let r = self.exchange(CardCommand::PinStatus, &apdu)?;
        match r.sw {
            StatusWord::OK => Ok(PinStatus::Verified),
            StatusWord::AUTH_METHOD_BLOCKED | StatusWord::REFERENCE_DATA_NOT_USABLE => Ok(PinStatus::Blocked),
            sw => match sw.retries_left() {
                Some(0) => Ok(PinStatus::Blocked),
                Some(n) => Ok(PinStatus::TriesLeft(n)),
                None => Err(unexpected(CardCommand::PinStatus, sw)),
            },
        }
    }

    /// One VERIFY with the PIN the person typed. Never repeated here: a
    /// wrong PIN costs a try, and only the person may decide to spend another.
    pub fn verify(&mut self, app: Application, pin: &Pin) -> Result<(), CardError> {
        self.select_file(app, CardFile::Pin)?;
        let apdu = Command::new(0x00, 0x20, 0x00, self.profile.verify_p2()).with_data(pin.as_bytes());
        let r = self.exchange(CardCommand::Verify, &apdu)?;
        match r.sw {
            StatusWord::OK => Ok(()),
            StatusWord::AUTH_METHOD_BLOCKED | StatusWord::REFERENCE_DATA_NOT_USABLE => {
                Err(CardError::PinBlocked { app })
            }
            sw => match sw.retries_left() {
                Some(0) => Err(CardError::PinBlocked { app }),
                Some(tries_left) => Err(CardError::WrongPin { app, tries_left }),
                None => Err(unexpected(CardCommand::Verify, sw)),
            },
        }
    }

    /// MSE:SET then PSO: COMPUTE DIGITAL SIGNATURE over a SHA-256 digest,
    /// padded off-card (PKCS#1 v1.5). The PIN must have been verified in
    /// this session.
    pub fn compute_signature(
        &mut self,
        app: Application,
        digest: &[u8; 32],
        key_bytes: usize,
    ) -> Result<Vec<u8>, CardError> {
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key_bytes) {
            return Err(CardError::UnsupportedKeySize(key_bytes * 8));
        }
        self.select_file(app, CardFile::PrivateKey)?;
        let key_ref = self.profile.mse_key_reference();
        let mse = Command::new(0x00, 0x22, 0x41, 0xB6).with_data(&key_ref);
        let r = self.exchange(CardCommand::ManageSecurityEnvironment, &mse)?;
        match r.sw {
            StatusWord::OK => {}
            StatusWord::SECURITY_STATUS_NOT_SATISFIED => {
                return Err(CardError::SecurityStatusNotSatisfied { command: CardCommand::ManageSecurityEnvironment });
            }
            sw => return Err(unexpected(CardCommand::ManageSecurityEnvironment, sw)),
        }

        let block = pkcs1_v15_sha256_block(digest, key_bytes);
        let r = if self.profile.extended_length {
            let pso = Command::new(0x00, 0x2A, 0x9E, 0x9A).with_data(&block).with_le(crate::apdu::EXTENDED_LE_MAX);
            self.exchange(CardCommand::ComputeSignature, &pso)?
        } else {
            self.chained_signature(&block, key_bytes)?
        };
        match r.sw {
            StatusWord::OK => {}
            StatusWord::SECURITY_STATUS_NOT_SATISFIED => {
                return Err(CardError::SecurityStatusNotSatisfied { command: CardCommand::ComputeSignature });
            }
            sw => return Err(unexpected(CardCommand::ComputeSignature, sw)),
        }
        if r.data.len() != key_bytes {
            return Err(CardError::malformed(
                CardCommand::ComputeSignature,
                format!("signature of {} bytes, expected {key_bytes}", r.data.len()),
            ));
        }
        Ok(r.data)
    }

    /// PSO with command chaining (CLA bit 5) for cards without extended length.
    fn chained_signature(&mut self, block: &[u8], key_bytes: usize) -> Result<Response, CardError> {
        const CMD: CardCommand = CardCommand::ComputeSignature;
        let chunks: Vec<&[u8]> = block.chunks(SHORT_LC_MAX).collect();
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.iter().enumerate() {
            if i < last {
                let r = self.exchange(CMD, &Command::new(0x10, 0x2A, 0x9E, 0x9A).with_data(chunk))?;
                if r.sw != StatusWord::OK {
                    return Ok(r);
                }
            } else {
                let le = key_bytes.min(SHORT_LE_MAX);
                return self.exchange(CMD, &Command::new(0x00, 0x2A, 0x9E, 0x9A).with_data(chunk).with_le(le));
            }
        }
        Err(CardError::malformed(CMD, "empty signature block"))
    }
}

fn unexpected(command: CardCommand, sw: StatusWord) -> CardError {
    if sw == StatusWord::SECURITY_STATUS_NOT_SATISFIED {
        CardError::SecurityStatusNotSatisfied { command }
    } else {
        CardError::UnexpectedStatus { command, sw }
    }
}

/// `6C xx`: the card wants Le = xx.
fn wrong_le(sw: StatusWord) -> Option<usize> {
    (sw.sw1() == 0x6C).then(|| match sw.sw2() {
        0 => SHORT_LE_MAX,
        n => usize::from(n),
    })
}

/// Total length (header + content) of the DER SEQUENCE that starts `bytes`,
/// or `None` when more bytes are needed to know it.
pub fn der_total_length(bytes: &[u8]) -> Result<Option<usize>, String> {
    let Some(&tag) = bytes.first() else {
        return Ok(None);
    };
    if tag != 0x30 {
        return Err(format!("the certificate file does not start with a DER SEQUENCE (first byte {tag:02X})"));
    }
    let Some(&first) = bytes.get(1) else {
        return Ok(None);
    };
    let (header, len) = match first {
        0..=0x7F => (2, usize::from(first)),
        0x81..=0x83 => {
            let n = usize::from(first & 0x7F);
            let Some(len_bytes) = bytes.get(2..2 + n) else {
                return Ok(None);
            };
            if len_bytes[0] == 0 {
                return Err("non-minimal DER length in the certificate header".into());
            }
            (2 + n, len_bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)))
        }
        _ => {
            return Err(format!("unsupported DER length byte {first:02X} in the certificate header"));
        }
    };
    let total = header + len;
    if total > MAX_CERTIFICATE_LEN {
        return Err(format!("the certificate claims {total} bytes, more than the {MAX_CERTIFICATE_LEN} accepted"));
    }
    Ok(Some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        assert_eq!(der_total_length(&[]), Ok(None));
        assert_eq!(der_total_length(&[0x30]), Ok(None));
        assert_eq!(der_total_length(&[0x30, 0x05]), Ok(Some(7)));
        assert_eq!(der_total_length(&[0x30, 0x82, 0x05]), Ok(None));
        assert_eq!(der_total_length(&[0x30, 0x82, 0x05, 0xD0]), Ok(Some(4 + 0x5D0)));
        assert!(der_total_length(&[0x31, 0x05]).is_err());
        assert!(der_total_length(&[0x30, 0x84, 1, 2, 3, 4]).is_err());
        assert!(der_total_length(&[0x30, 0x83, 0x01, 0x00, 0x00]).is_err());
        assert!(der_total_length(&[0x30, 0x82, 0x00, 0x10]).is_err());
    }
}
