//! The two HPKI card command variants, and how a card is recognised.
//!
//! * `Jma`: the real Japan Medical Association card. Files are selected by
//!   2-byte EF id before use; VERIFY references the PIN with P2 `88`; MSE:SET
//!   names the key by key reference `84 02 00 0C`; extended length.
//! * `Jahis`: the JAHIS HPKI card guideline. Files have short EF identifiers
//!   used directly (READ BINARY `B0 98`, VERIFY P2 `96`, MSE:SET file
//!   reference `81 02 00 17`); command chaining where there is no extended
//!   length.
//!
//! Both use the MHLW-assigned application identifiers.

use std::fmt;

/// Registered application provider id of the MHLW HPKI applications.
pub const HPKI_RID: [u8; 5] = [0xE8, 0x28, 0xBD, 0x08, 0x0F];

/// ATR historical bytes of a JMA card.
pub const JMA_HISTORICAL_BYTES: [u8; 8] = [0x00, 0x4E, 0x00, 0x00, 0xF7, 0x81, 0xD1, 0x00];

/// One of the two ISO 7816-15 applications on an HPKI card. Each has its own
/// PIN, key pair and certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Application {
    /// Authentication (login): signs gateway challenges.
    Authentication,
    /// Signature (non-repudiation): signs documents; PIN for every signature.
    Signature,
}

impl Application {
    pub const ALL: [Application; 2] = [Application::Authentication, Application::Signature];

    pub const fn aid(self) -> [u8; 15] {
        let last = match self {
            Application::Signature => 0x01,
            Application::Authentication => 0x02,
        };
        [0xE8, 0x28, 0xBD, 0x08, 0x0F, 0xA0, 0x00, 0x00, 0x03, 0x91, 0x00, 0x00, 0x00, 0x00, last]
    }

    pub const fn name(self) -> &'static str {
        match self {
            Application::Authentication => "authentication",
            Application::Signature => "signature",
        }
    }
}

impl fmt::Display for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which command set a card speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardVariant {
    Jma,
    Jahis,
}

impl CardVariant {
    pub const fn name(self) -> &'static str {
        match self {
            CardVariant::Jma => "jma",
            CardVariant::Jahis => "jahis",
        }
    }

    /// Recognises a JMA card by its ATR historical bytes; anything else is
    /// driven as the JAHIS guideline describes.
    pub fn from_atr(atr: &[u8]) -> CardVariant {
        if historical_bytes(atr).is_some_and(|h| h == JMA_HISTORICAL_BYTES) {
            CardVariant::Jma
        } else {
            CardVariant::Jahis
        }
    }
}

impl fmt::Display for CardVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CardVariant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jma" => Ok(CardVariant::Jma),
            "jahis" => Ok(CardVariant::Jahis),
            other => Err(format!("unknown card variant {other:?} (expected jma or jahis)")),
        }
    }
}

/// The elementary files of an application, as each variant addresses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardFile {
    Pin,
    PrivateKey,
    Certificate,
}

impl CardFile {
    /// The 2-byte EF id (JMA card) of this file.
    pub const fn jma_id(self) -> u16 {
        match self {
            CardFile::Pin => 0x0002,
            CardFile::PrivateKey => 0x000C,
            CardFile::Certificate => 0x0016,
        }
    }

    /// The short EF identifier (JAHIS guideline) of this file.
    pub const fn jahis_sfi(self) -> u8 {
        match self {
            CardFile::Pin => 0x16,
            CardFile::PrivateKey => 0x17,
            CardFile::Certificate => 0x18,
        }
    }
}

/// How to talk to one particular card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardProfile {
    pub variant: CardVariant,
    /// The card accepts extended-length APDUs.
    pub extended_length: bool,
}

impl CardProfile {
    /// Derives the profile from the ATR: the variant from the historical
    /// bytes, extended length from the card-capabilities data object when the
    /// card states it, else from what the variant is known to support.
    pub fn from_atr(atr: &[u8]) -> CardProfile {
        let variant = CardVariant::from_atr(atr);
        let extended_length =
            historical_bytes(atr).and_then(card_capabilities_extended_length).unwrap_or(variant == CardVariant::Jma);
        CardProfile { variant, extended_length }
    }

    /// Chunk size for READ BINARY of the certificate.
    ///
    /// With extended length one read normally covers a whole HPKI certificate
    /// (about 1.5 KB); 2 KiB stays inside what small card buffers accept.
    pub const fn read_chunk(self) -> usize {
        if self.extended_length { 2048 } else { 256 }
    }

    /// P2 of VERIFY: the reference of the application's PIN.
    pub const fn verify_p2(self) -> u8 {
        match self.variant {
            CardVariant::Jma => 0x88,
            CardVariant::Jahis => 0x80 | CardFile::Pin.jahis_sfi(),
        }
    }

    /// Data of MSE:SET naming the signing key.
    pub const fn mse_key_reference(self) -> [u8; 4] {
        match self.variant {
            CardVariant::Jma => {
                let [hi, lo] = CardFile::PrivateKey.jma_id().to_be_bytes();
                [0x84, 0x02, hi, lo]
            }
            CardVariant::Jahis => [0x81, 0x02, 0x00, CardFile::PrivateKey.jahis_sfi()],
        }
    }

    /// Whether this variant selects an EF by id before using it.
    pub const fn selects_files(self) -> bool {
        matches!(self.variant, CardVariant::Jma)
    }
}

/// The historical bytes of an ATR, found by walking the interface bytes
/// (ISO 7816-3 §8.2). `None` when the ATR is too short to contain them.
pub fn historical_bytes(atr: &[u8]) -> Option<&[u8]> {
    let t0 = *atr.get(1)?;
    let k = usize::from(t0 & 0x0F);
    let mut y = t0 >> 4;
    let mut i = 2usize;
    loop {
        let present = (y & 1) + ((y >> 1) & 1) + ((y >> 2) & 1);
        let has_td = y & 0x8 != 0;
        i += usize::from(present);
        if !has_td {
            break;
        }
        let td = *atr.get(i)?;
        i += 1;
        y = td >> 4;
    }
    atr.get(i..i + k)
}

/// Reads the "extended Lc and Le fields" bit from the card-capabilities
/// compact-TLV object (tag `7x`, third software function byte, bit 7) when
/// the historical bytes are in compact-TLV form (category indicator `80`).
fn card_capabilities_extended_length(hist: &[u8]) -> Option<bool> {
    let (&category, mut rest) = hist.split_first()?;
    if category != 0x80 {
        return None;
    }
    while let Some((&tl, tail)) = rest.split_first() {
        let tag = tl >> 4;
        let len = usize::from(tl & 0x0F);
        let value = tail.get(..len)?;
        if tag == 0x7 && len >= 3 {
            return Some(value[2] & 0x40 != 0);
        }
        rest = &tail[len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const JMA_LIKE_ATR: [u8; 15] =
        [0x3B, 0x88, 0x81, 0x31, 0xFE, 0x45, 0x00, 0x4E, 0x00, 0x00, 0xF7, 0x81, 0xD1, 0x00, 0x00];

    #[test]
    fn historical_bytes_follow_interface_bytes() {
        assert_eq!(historical_bytes(&JMA_LIKE_ATR), Some(&JMA_HISTORICAL_BYTES[..]));
        // 3B 02 14 50: no interface bytes, 2 historical bytes.
        assert_eq!(historical_bytes(&[0x3B, 0x02, 0x14, 0x50]), Some(&[0x14, 0x50][..]));
        assert_eq!(historical_bytes(&[0x3B]), None);
        assert_eq!(historical_bytes(&[0x3B, 0x8F, 0x81]), None);
    }

    #[test]
    fn jma_card_is_recognised_and_gets_extended_length() {
        let p = CardProfile::from_atr(&JMA_LIKE_ATR);
        assert_eq!(p.variant, CardVariant::Jma);
        assert!(p.extended_length);
    }

    #[test]
    fn card_capabilities_decide_extended_length() {
        // Category 80, card capabilities 73 with third byte 0x40.
        let atr = [0x3B, 0x05, 0x80, 0x73, 0x00, 0x00, 0x40];
        let p = CardProfile::from_atr(&atr);
        assert_eq!(p.variant, CardVariant::Jahis);
        assert!(p.extended_length);
        let atr = [0x3B, 0x05, 0x80, 0x73, 0x00, 0x00, 0x00];
        assert!(!CardProfile::from_atr(&atr).extended_length);
    }

    #[test]
    fn command_details_per_variant() {
        let jma = CardProfile { variant: CardVariant::Jma, extended_length: true };
        let jahis = CardProfile { variant: CardVariant::Jahis, extended_length: false };
        assert_eq!(jma.verify_p2(), 0x88);
        assert_eq!(jahis.verify_p2(), 0x96);
        assert_eq!(jma.mse_key_reference(), [0x84, 0x02, 0x00, 0x0C]);
        assert_eq!(jahis.mse_key_reference(), [0x81, 0x02, 0x00, 0x17]);
        assert_eq!(
            Application::Signature.aid()[..],
            [0xE8, 0x28, 0xBD, 0x08, 0x0F, 0xA0, 0x00, 0x00, 0x03, 0x91, 0x00, 0x00, 0x00, 0x00, 0x01]
        );
    }
}
