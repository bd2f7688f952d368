//! Feeds arbitrary card answers to every card-layer operation.
//!
//! Input layout: byte 0 picks the profile and the operation; the rest is a
//! sequence of answers, each a 2-byte big-endian length then that many bytes.

#![no_main]

use std::collections::VecDeque;

use hpki_card::{Application, CardError, CardProfile, CardVariant, Pin, Session, Transport};
use libfuzzer_sys::fuzz_target;

struct Replay(VecDeque<Vec<u8>>);

impl Transport for Replay {
    fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        Ok(self.0.pop_front().unwrap_or_default())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else { return };
    let mut answers = VecDeque::new();
    while rest.len() >= 2 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let body = &rest[2..];
        let take = n.min(body.len());
        answers.push_back(body[..take].to_vec());
        rest = &body[take..];
    }
    let profile = CardProfile {
        variant: if selector & 1 == 0 { CardVariant::Jma } else { CardVariant::Jahis },
        extended_length: selector & 2 != 0,
    };
    let app = if selector & 4 == 0 { Application::Authentication } else { Application::Signature };
    let mut transport = Replay(answers);
    let mut trace = Vec::new();
    let mut s = Session::new(&mut transport, profile, &mut trace);
    let pin = Pin::new("1234").expect("valid PIN");
    let _ = match (selector >> 3) % 5 {
        0 => s.select_application(app).map(drop),
        1 => s.read_certificate(app).map(drop),
        2 => s.pin_status(app).map(drop),
        3 => s.verify(app, &pin),
        _ => s.compute_signature(app, &[0x5A; 32], 256).map(drop),
    };
});
