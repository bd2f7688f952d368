//! An optional log of the APDUs a card answered: headers, lengths and status
//! words only — never data, which may hold a PIN or a signature.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use hpki_card::apdu::StatusWord;

use crate::command;

pub struct ApduLog {
    file: Option<File>,
}

impl ApduLog {
    pub fn disabled() -> ApduLog {
        ApduLog { file: None }
    }

    pub fn open(path: &Path) -> io::Result<ApduLog> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(ApduLog { file: Some(file) })
    }

    /// One line per APDU: `CLA INS P1 P2 lc=N ne=N sw=XXXX len=N`.
    pub fn record(&mut self, apdu: &[u8], reply: &[u8]) {
        let Some(file) = &mut self.file else { return };
        let sw = match reply {
            [.., a, b] => format!("{:04X}", StatusWord::from_bytes(*a, *b).0),
            _ => "none".into(),
        };
        let line = match command::parse(apdu) {
            Ok(c) => format!(
                "{:02X} {:02X} {:02X} {:02X} lc={} ne={} sw={sw} len={}\n",
                c.cla,
                c.ins,
                c.p1,
                c.p2,
                c.data.len(),
                c.ne,
                reply.len().saturating_sub(2)
            ),
            Err(_) => format!("malformed len={} sw={sw}\n", apdu.len()),
        };
        // The log is a test aid: losing a line must not stop the card.
        let _ = file.write_all(line.as_bytes());
    }
}
