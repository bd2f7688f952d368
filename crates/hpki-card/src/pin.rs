//! The card PIN ("HPKI key password"): validated before it reaches a card,
//! zeroised when dropped, never printed.

use std::fmt;

use zeroize::Zeroizing;

/// Shortest and longest PIN the HPKI card guideline allows.
pub const PIN_MIN_LEN: usize = 4;
pub const PIN_MAX_LEN: usize = 16;

/// A PIN whose bytes are wiped from memory when it is dropped.
pub struct Pin(Zeroizing<Vec<u8>>);

/// Why a PIN was refused before anything was sent to the card (so no try was
/// used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinFormatError {
    #[error("the PIN is too short: at least {PIN_MIN_LEN} characters")]
    TooShort,
    #[error("the PIN is too long: at most {PIN_MAX_LEN} characters")]
    TooLong,
    #[error("the PIN may contain only printable ASCII characters")]
    NotPrintableAscii,
}

impl Pin {
    /// Checks and copies a PIN. The caller still owns (and should zeroise)
    /// `text`; prefer [`Pin::from_zeroizing`] where the text is owned.
    pub fn new(text: &str) -> Result<Pin, PinFormatError> {
        let bytes = text.as_bytes();
        if !bytes.iter().all(|b| (0x20..0x7F).contains(b)) {
            return Err(PinFormatError::NotPrintableAscii);
        }
        if bytes.len() < PIN_MIN_LEN {
            return Err(PinFormatError::TooShort);
        }
        if bytes.len() > PIN_MAX_LEN {
            return Err(PinFormatError::TooLong);
        }
        Ok(Pin(Zeroizing::new(bytes.to_vec())))
    }

    /// Takes an owned PIN text; it is wiped whatever the outcome.
    pub fn from_zeroizing(text: Zeroizing<String>) -> Result<Pin, PinFormatError> {
        Pin::new(text.trim_end_matches(['\r', '\n']))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_rules() {
        assert!(Pin::new("1234").is_ok());
        assert!(Pin::new("abcdEFGH1234!#$%").is_ok());
        assert_eq!(Pin::new("123").err(), Some(PinFormatError::TooShort));
        assert_eq!(Pin::new("12345678901234567").err(), Some(PinFormatError::TooLong));
        assert_eq!(Pin::new("12\n34").err(), Some(PinFormatError::NotPrintableAscii));
        assert_eq!(Pin::new("１２３４").err(), Some(PinFormatError::NotPrintableAscii));
    }

    #[test]
    fn pin_is_never_printed() {
        let pin = Pin::new("9876").expect("valid");
        assert_eq!(format!("{pin:?}"), "Pin(<redacted>)");
    }

    #[test]
    fn trailing_newline_from_stdin_is_dropped() {
        let pin = Pin::from_zeroizing(Zeroizing::new("1234\n".to_string())).expect("valid");
        assert_eq!(pin.as_bytes(), b"1234");
    }
}
