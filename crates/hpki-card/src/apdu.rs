//! ISO/IEC 7816-4 command and response APDUs: encoding and parsing only.
//!
//! Nothing here talks to a card; `session` decides what to send and what a
//! status word means for the command that was sent.

use std::fmt;

/// Largest response data a short APDU can ask for (Le = `00`).
pub const SHORT_LE_MAX: usize = 256;
/// Largest response data an extended APDU can ask for (Le = `00 00`).
pub const EXTENDED_LE_MAX: usize = 65_536;
/// Largest command data field of a short APDU.
pub const SHORT_LC_MAX: usize = 255;
/// Largest command data field of an extended APDU.
pub const EXTENDED_LC_MAX: usize = 65_535;

/// A command APDU, before encoding.
#[derive(Clone, PartialEq, Eq)]
pub struct Command<'a> {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: &'a [u8],
    /// Expected response length in bytes (`None`: no response data expected).
    pub le: Option<usize>,
}

// The data field may hold a PIN, so it is never printed.
impl fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Command({:02X} {:02X} {:02X} {:02X}, {} data bytes, le {:?})",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.le
        )
    }
}

/// Why a command could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("command data of {0} bytes does not fit a short APDU and the card has no extended length")]
    DataTooLongForShort(usize),
    #[error("command data of {0} bytes exceeds the extended-length limit of 65535")]
    DataTooLong(usize),
    #[error("expected length {0} does not fit a short APDU and the card has no extended length")]
    LeTooLongForShort(usize),
    #[error("expected length {0} is outside 1..=65536")]
    LeOutOfRange(usize),
}

impl<'a> Command<'a> {
    pub const fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Command { cla, ins, p1, p2, data: &[], le: None }
    }

    pub const fn with_data(mut self, data: &'a [u8]) -> Self {
        self.data = data;
        self
    }

    pub const fn with_le(mut self, le: usize) -> Self {
        self.le = Some(le);
        self
    }

    /// Encodes into `out` (cleared first). Short form is used whenever it
    /// fits; extended form only when needed and `extended_allowed`.
    ///
    /// Writing into a caller's buffer lets the caller keep a PIN-bearing APDU
    /// in a zeroising buffer.
    pub fn encode_into(&self, extended_allowed: bool, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let lc = self.data.len();
        if lc > EXTENDED_LC_MAX {
            return Err(EncodeError::DataTooLong(lc));
        }
        if let Some(le) = self.le
            && !(1..=EXTENDED_LE_MAX).contains(&le)
        {
            return Err(EncodeError::LeOutOfRange(le));
        }
        let needs_extended = lc > SHORT_LC_MAX || self.le.is_some_and(|le| le > SHORT_LE_MAX);
        if needs_extended && !extended_allowed {
            return Err(if lc > SHORT_LC_MAX {
                EncodeError::DataTooLongForShort(lc)
            } else {
                EncodeError::LeTooLongForShort(self.le.unwrap_or_default())
            });
        }

        out.clear();
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if needs_extended {
            // Extended form: one 00 byte marks it, then 2-byte Lc and/or Le.
            out.push(0x00);
            if lc > 0 {
                out.extend_from_slice(&(lc as u16).to_be_bytes());
                out.extend_from_slice(self.data);
            }
            if let Some(le) = self.le {
                // 65536 is encoded as 00 00.
                out.extend_from_slice(&((le % EXTENDED_LE_MAX) as u16).to_be_bytes());
            }
        } else {
            if lc > 0 {
                out.push(lc as u8);
                out.extend_from_slice(self.data);
            }
            if let Some(le) = self.le {
                // 256 is encoded as 00.
                out.push((le % SHORT_LE_MAX) as u8);
            }
        }
        Ok(())
    }

    pub fn encode(&self, extended_allowed: bool) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(7 + self.data.len() + 2);
        self.encode_into(extended_allowed, &mut out)?;
        Ok(out)
    }
}

/// The two trailing status bytes of every response.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    pub const OK: StatusWord = StatusWord(0x9000);
    /// End of file reached before Le bytes were read (data is still valid).
    pub const END_OF_FILE: StatusWord = StatusWord(0x6282);
    pub const WRONG_LENGTH: StatusWord = StatusWord(0x6700);
    pub const SECURITY_STATUS_NOT_SATISFIED: StatusWord = StatusWord(0x6982);
    pub const AUTH_METHOD_BLOCKED: StatusWord = StatusWord(0x6983);
    pub const REFERENCE_DATA_NOT_USABLE: StatusWord = StatusWord(0x6984);
    pub const CONDITIONS_NOT_SATISFIED: StatusWord = StatusWord(0x6985);
    pub const WRONG_DATA: StatusWord = StatusWord(0x6A80);
    pub const FILE_NOT_FOUND: StatusWord = StatusWord(0x6A82);
    pub const REFERENCED_DATA_NOT_FOUND: StatusWord = StatusWord(0x6A88);
    pub const WRONG_P1P2: StatusWord = StatusWord(0x6B00);
    pub const INS_NOT_SUPPORTED: StatusWord = StatusWord(0x6D00);
    pub const CLA_NOT_SUPPORTED: StatusWord = StatusWord(0x6E00);

    pub const fn from_bytes(sw1: u8, sw2: u8) -> Self {
        StatusWord(((sw1 as u16) << 8) | sw2 as u16)
    }
    pub const fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }
    pub const fn sw2(self) -> u8 {
        self.0 as u8
    }
    pub const fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }

    /// `63 Cx`: verification failed, x tries left.
    pub const fn retries_left(self) -> Option<u8> {
        if self.sw1() == 0x63 && self.sw2() & 0xF0 == 0xC0 { Some(self.sw2() & 0x0F) } else { None }
    }

    /// A short description of what ISO 7816-4 says the status word means.
    pub fn meaning(self) -> &'static str {
        match (self.sw1(), self.sw2()) {
            (0x90, 0x00) => "success",
            (0x61, _) => "more response data available",
            (0x62, 0x82) => "end of file reached before Le bytes",
            (0x62, _) | (0x63, 0x00) => "warning, state of non-volatile memory unchanged",
            (0x63, x) if x & 0xF0 == 0xC0 => "verification failed",
            (0x64, _) => "execution error, state unchanged",
            (0x65, _) => "execution error, memory changed",
            (0x67, 0x00) => "wrong length",
            (0x68, _) => "function in CLA not supported",
            (0x69, 0x82) => "security status not satisfied",
            (0x69, 0x83) => "authentication method blocked",
            (0x69, 0x84) => "reference data not usable",
            (0x69, 0x85) => "conditions of use not satisfied",
            (0x69, 0x86) => "command not allowed (no current EF)",
            (0x69, _) => "command not allowed",
            (0x6A, 0x80) => "incorrect data field",
            (0x6A, 0x81) => "function not supported",
            (0x6A, 0x82) => "file or application not found",
            (0x6A, 0x86) => "incorrect P1-P2",
            (0x6A, 0x88) => "referenced data not found",
            (0x6A, _) => "wrong parameters",
            (0x6B, 0x00) => "wrong parameters (offset outside the EF)",
            (0x6C, _) => "wrong Le",
            (0x6D, 0x00) => "instruction not supported",
            (0x6E, 0x00) => "class not supported",
            (0x6F, _) => "no precise diagnosis",
            _ => "not an ISO 7816-4 status word",
        }
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SW {:04X} ({})", self.0, self.meaning())
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusWord({:04X})", self.0)
    }
}

/// A response APDU: data followed by the status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: StatusWord,
}

/// A response shorter than the two status bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("response of {0} bytes has no status word")]
pub struct TruncatedResponse(pub usize);

impl Response {
    pub fn parse(raw: &[u8]) -> Result<Response, TruncatedResponse> {
        match raw {
            [data @ .., sw1, sw2] => Ok(Response { data: data.to_vec(), sw: StatusWord::from_bytes(*sw1, *sw2) }),
            _ => Err(TruncatedResponse(raw.len())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_case_encodings() {
        let c1 = Command::new(0x00, 0x20, 0x00, 0x88);
        assert_eq!(c1.encode(false), Ok(vec![0x00, 0x20, 0x00, 0x88]));
        let c2 = Command::new(0x00, 0xB0, 0x00, 0x00).with_le(256);
        assert_eq!(c2.encode(false), Ok(vec![0x00, 0xB0, 0x00, 0x00, 0x00]));
        let c3 = Command::new(0x00, 0xA4, 0x02, 0x0C).with_data(&[0x00, 0x16]);
        assert_eq!(c3.encode(true), Ok(vec![0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x16]));
        let c4 = Command::new(0x00, 0xA4, 0x04, 0x00).with_data(&[0xE8]).with_le(256);
        assert_eq!(c4.encode(false), Ok(vec![0x00, 0xA4, 0x04, 0x00, 0x01, 0xE8, 0x00]));
    }

    #[test]
    fn extended_encoding_of_a_signature_block() {
        let block = [0xAB; 256];
        let c = Command::new(0x00, 0x2A, 0x9E, 0x9A).with_data(&block).with_le(65_536);
        let enc = c.encode(true).expect("fits extended");
        assert_eq!(&enc[..7], &[0x00, 0x2A, 0x9E, 0x9A, 0x00, 0x01, 0x00]);
        assert_eq!(&enc[enc.len() - 2..], &[0x00, 0x00]);
        assert_eq!(enc.len(), 7 + 256 + 2);
        assert_eq!(c.encode(false), Err(EncodeError::DataTooLongForShort(256)));
    }

    #[test]
    fn extended_le_only() {
        let c = Command::new(0x00, 0xB0, 0x00, 0x00).with_le(2048);
        assert_eq!(c.encode(true), Ok(vec![0x00, 0xB0, 0x00, 0x00, 0x00, 0x08, 0x00]));
        assert_eq!(c.encode(false), Err(EncodeError::LeTooLongForShort(2048)));
        assert_eq!(Command::new(0, 0, 0, 0).with_le(0).encode(true), Err(EncodeError::LeOutOfRange(0)));
    }

    #[test]
    fn response_parsing() {
        assert_eq!(Response::parse(&[1, 2, 0x90, 0x00]), Ok(Response { data: vec![1, 2], sw: StatusWord::OK }));
        assert_eq!(Response::parse(&[0x90]), Err(TruncatedResponse(1)));
        assert_eq!(Response::parse(&[]), Err(TruncatedResponse(0)));
    }

    #[test]
    fn retries_left_only_for_63cx() {
        assert_eq!(StatusWord(0x63C3).retries_left(), Some(3));
        assert_eq!(StatusWord(0x63C0).retries_left(), Some(0));
        assert_eq!(StatusWord(0x6300).retries_left(), None);
        assert_eq!(StatusWord(0x9000).retries_left(), None);
    }
}
