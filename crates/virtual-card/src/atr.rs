//! Answers-to-reset: the variants' defaults and the TCK check.

use hpki_card::CardVariant;
use hpki_card::profile::JMA_HISTORICAL_BYTES;

/// Interface bytes offering T=1 (IFSC 254, BWI 4 / CWI 5), shared by both
/// defaults: `3B 88 81 31 FE 45` then 8 historical bytes.
const PREFIX: [u8; 6] = [0x3B, 0x88, 0x81, 0x31, 0xFE, 0x45];
/// Historical bytes of the JAHIS-variant emulator: "HPKI-EMU".
const EMULATOR_HISTORICAL_BYTES: [u8; 8] = *b"HPKI-EMU";

/// The default ATR of a variant; the JMA one carries the historical bytes a
/// real JMA card is recognised by.
pub fn default_for(variant: CardVariant) -> Vec<u8> {
    let hist = match variant {
        CardVariant::Jma => JMA_HISTORICAL_BYTES,
        CardVariant::Jahis => EMULATOR_HISTORICAL_BYTES,
    };
    with_tck([&PREFIX[..], &hist[..]].concat())
}

/// Appends the check byte: XOR of every byte from T0 on (ISO 7816-3 §8.2.5).
pub fn with_tck(mut atr: Vec<u8>) -> Vec<u8> {
    let tck = atr.iter().skip(1).fold(0u8, |acc, b| acc ^ b);
    atr.push(tck);
    atr
}

/// Checks that an ATR is well formed: TS, the announced interface and
/// historical bytes, and a correct TCK when a protocol other than T=0 is
/// offered.
pub fn check(atr: &[u8]) -> Result<(), String> {
    if atr.len() < 2 || atr.len() > 33 {
        return Err(format!("{} bytes; an ATR has 2 to 33", atr.len()));
    }
    if atr[0] != 0x3B && atr[0] != 0x3F {
        return Err(format!("TS is {:02X}, expected 3B or 3F", atr[0]));
    }
    let t0 = atr[1];
    let k = usize::from(t0 & 0x0F);
    let mut y = t0 >> 4;
    let mut i = 2usize;
    let mut needs_tck = false;
    loop {
        i += usize::from((y & 1) + ((y >> 1) & 1) + ((y >> 2) & 1));
        if y & 0x8 == 0 {
            break;
        }
        let td = *atr.get(i).ok_or("interface bytes run past the end")?;
        if td & 0x0F != 0 {
            needs_tck = true;
        }
        i += 1;
        y = td >> 4;
    }
    let expected = i + k + usize::from(needs_tck);
    if atr.len() != expected {
        return Err(format!("{} bytes, but its interface bytes announce {expected}", atr.len()));
    }
    if needs_tck && atr[1..].iter().fold(0u8, |acc, b| acc ^ b) != 0 {
        return Err("TCK does not match".into());
    }
    Ok(())
}

/// Hex with optional spaces or colons, as people write ATRs.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
    hex::decode(clean).map_err(|e| format!("not hex: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_recognised() {
        for v in [CardVariant::Jma, CardVariant::Jahis] {
            let atr = default_for(v);
            check(&atr).expect("valid ATR");
            assert_eq!(CardVariant::from_atr(&atr), v);
        }
    }

    #[test]
    fn reference_atr_checks() {
        let atr = parse_hex("3B 88 81 31 FE 45 48 50 4B 49 2D 45 4D 55 E9").expect("hex");
        check(&atr).expect("the vpcd reference ATR is valid");
        let mut bad = atr.clone();
        bad[14] ^= 1;
        assert_eq!(check(&bad), Err("TCK does not match".into()));
        assert!(check(&atr[..13]).is_err());
        assert!(check(&[0x3B, 0x02, 0x14, 0x50]).is_ok(), "T=0 only needs no TCK");
    }
}
