//! Command APDUs as a card receives them (ISO 7816-3 §12.1 cases 1–4, short
//! and extended).

use hpki_card::apdu::StatusWord;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received<'a> {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: &'a [u8],
    /// Ne: the maximum response length the reader expects (0 = none).
    pub ne: usize,
    pub extended: bool,
}

/// Splits a command into header, body and Ne; a length inconsistency is
/// `67 00` (wrong length), as a card answers it.
pub fn parse(apdu: &[u8]) -> Result<Received<'_>, StatusWord> {
    let [cla, ins, p1, p2, body @ ..] = apdu else {
        return Err(StatusWord::WRONG_LENGTH);
    };
    let mut r = Received { cla: *cla, ins: *ins, p1: *p1, p2: *p2, data: &[], ne: 0, extended: false };
    match body {
        [] => {}
        [le] => r.ne = if *le == 0 { 256 } else { usize::from(*le) },
        [0, rest @ ..] => {
            r.extended = true;
            match rest {
                [a, b] => r.ne = extended_ne(*a, *b),
                [a, b, tail @ ..] => {
                    let lc = usize::from(u16::from_be_bytes([*a, *b]));
                    if lc == 0 {
                        return Err(StatusWord::WRONG_LENGTH);
                    }
                    match tail.len() {
                        n if n == lc => r.data = tail,
                        n if n == lc + 2 => {
                            r.data = &tail[..lc];
                            r.ne = extended_ne(tail[lc], tail[lc + 1]);
                        }
                        _ => return Err(StatusWord::WRONG_LENGTH),
                    }
                }
                _ => return Err(StatusWord::WRONG_LENGTH),
            }
        }
        [lc, tail @ ..] => {
            let lc = usize::from(*lc);
            match tail.len() {
                n if n == lc => r.data = tail,
                n if n == lc + 1 => {
                    r.data = &tail[..lc];
                    r.ne = if tail[lc] == 0 { 256 } else { usize::from(tail[lc]) };
                }
                _ => return Err(StatusWord::WRONG_LENGTH),
            }
        }
    }
    Ok(r)
}

fn extended_ne(a: u8, b: u8) -> usize {
    match u16::from_be_bytes([a, b]) {
        0 => 65_536,
        n => usize::from(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpki_card::apdu::Command;
    use proptest::prelude::*;

    #[test]
    fn cases() {
        let r = parse(&[0, 0x20, 0, 0x88]).expect("case 1");
        assert_eq!((r.data.len(), r.ne), (0, 0));
        let r = parse(&[0, 0xB0, 0, 0, 0]).expect("case 2S");
        assert_eq!(r.ne, 256);
        let r = parse(&[0, 0xA4, 2, 0x0C, 2, 0, 0x16]).expect("case 3S");
        assert_eq!(r.data, &[0, 0x16]);
        let r = parse(&[0, 0xB0, 0, 0, 0, 0x08, 0x00]).expect("case 2E");
        assert_eq!((r.ne, r.extended), (2048, true));
        assert_eq!(parse(&[0, 0xA4, 2, 0x0C, 3, 0, 0x16]), Err(StatusWord::WRONG_LENGTH));
        assert_eq!(parse(&[0, 0xA4, 2]), Err(StatusWord::WRONG_LENGTH));
    }

    proptest! {
        /// Whatever the reader side encodes, the card side reads back.
        #[test]
        fn encode_then_parse_round_trips(
            ins in any::<u8>(), p1 in any::<u8>(), p2 in any::<u8>(),
            data in proptest::collection::vec(any::<u8>(), 0..600),
            le in proptest::option::of(1usize..=65_536),
        ) {
            let cmd = Command { cla: 0, ins, p1, p2, data: &data, le };
            let raw = cmd.encode(true).expect("fits extended");
            let r = parse(&raw).expect("parses");
            prop_assert_eq!(r.data, &data[..]);
            prop_assert_eq!(r.ne, le.unwrap_or(0));
            prop_assert_eq!((r.ins, r.p1, r.p2), (ins, p1, p2));
        }

        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&raw);
        }
    }
}
