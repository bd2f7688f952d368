//! Which PINs `hpki-certs` refuses to put on a card.

use hpki_card::Pin;

use crate::error::CaError;

/// PINs people pick first; refused whatever the card's rules allow.
const COMMON: &[&str] = &["1212", "1122", "2580", "0852", "1004", "2000", "6969", "1313", "4444", "password", "pass"];

/// Checks a PIN for a new card: the card's format rules (4–16 printable
/// ASCII), then guessability. `personal` are identifiers printed on the
/// holder's documents (licence number, staff id) that a PIN must not contain.
pub fn check(pin: &str, personal: &[&str]) -> Result<(), CaError> {
    Pin::new(pin).map_err(|e| CaError::WeakPin(e.to_string()))?;
    let b = pin.as_bytes();
    if b.iter().all(|c| *c == b[0]) {
        return Err(CaError::WeakPin("all characters are the same".into()));
    }
    let steps: Vec<i16> = b.windows(2).map(|w| i16::from(w[1]) - i16::from(w[0])).collect();
    if b.iter().all(u8::is_ascii_digit) && (steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == -1)) {
        return Err(CaError::WeakPin("the digits are a sequence".into()));
    }
    if COMMON.iter().any(|c| c.eq_ignore_ascii_case(pin)) {
        return Err(CaError::WeakPin("it is one of the most common PINs".into()));
    }
    for p in personal.iter().filter(|p| p.len() >= 4) {
        if pin.contains(*p) || p.contains(pin) {
            return Err(CaError::WeakPin("it contains (or is part of) the holder's licence number or staff id".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_pins_are_refused_with_the_reason() {
        let reason = |pin: &str| check(pin, &["123456"]).err().map(|e| e.to_string());
        assert_eq!(reason("4826"), None);
        assert_eq!(reason("Kx9!q2"), None);
        assert!(reason("123").is_some_and(|r| r.contains("too short")));
        assert!(reason("7777").is_some_and(|r| r.contains("same")));
        assert!(reason("1234").is_some_and(|r| r.contains("sequence")));
        assert!(reason("9876").is_some_and(|r| r.contains("sequence")));
        assert!(reason("2580").is_some_and(|r| r.contains("common")));
        assert!(reason("3456").is_some_and(|r| r.contains("sequence")));
        assert!(reason("x123456").is_some_and(|r| r.contains("licence")));
        assert!(reason("2345").is_some_and(|r| r.contains("sequence")));
        assert!(reason("5612").is_none());
    }
}
