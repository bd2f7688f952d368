//! Property tests: whatever a card answers, the client returns a value or a
//! typed error — never a panic, never a hang, never a "success" built from
//! inconsistent data.
//!
//! The transport here replays scripted answers instead of reaching pcscd:
//! these tests are about the parser, and generating thousands of hostile
//! answers is only practical in-process. The real stack is covered in
//! `tests/card_layer.rs`.

use std::collections::VecDeque;

use hpki_card::apdu::StatusWord;
use hpki_card::{Application, CardError, CardProfile, CardVariant, Pin, PinStatus, Session, Transport};
use proptest::prelude::*;

/// Answers each APDU with the next scripted response; runs dry as a card
/// that stopped answering would (an empty answer).
struct Scripted {
    answers: VecDeque<Vec<u8>>,
    sent: usize,
}

impl Transport for Scripted {
    fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, CardError> {
        self.sent += 1;
        assert!(self.sent < 10_000, "the client must not loop for ever");
        Ok(self.answers.pop_front().unwrap_or_default())
    }
}

fn profiles() -> impl Strategy<Value = CardProfile> {
    (prop_oneof![Just(CardVariant::Jma), Just(CardVariant::Jahis)], any::<bool>())
        .prop_map(|(variant, extended_length)| CardProfile { variant, extended_length })
}

/// Answers that are mostly plausible (so parsing gets deep) and sometimes
/// garbage.
fn answer() -> impl Strategy<Value = Vec<u8>> {
    let sw = prop_oneof![
        Just(vec![0x90, 0x00]),
        Just(vec![0x62, 0x82]),
        Just(vec![0x6A, 0x82]),
        Just(vec![0x69, 0x82]),
        Just(vec![0x69, 0x83]),
        (0u8..16).prop_map(|n| vec![0x63, 0xC0 | n]),
        any::<u8>().prop_map(|n| vec![0x61, n]),
        any::<u8>().prop_map(|n| vec![0x6C, n]),
        any::<[u8; 2]>().prop_map(|b| b.to_vec()),
    ];
    let data = prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 0..300),
        // A DER header with an arbitrary length, then some bytes.
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(len, rest)| {
            let mut v = vec![0x30, 0x82];
            v.extend_from_slice(&len.to_be_bytes());
            v.extend(rest);
            v
        }),
    ];
    prop_oneof![
        8 => (data, sw).prop_map(|(mut d, sw)| { d.extend(sw); d }),
        1 => proptest::collection::vec(any::<u8>(), 0..2),
    ]
}

fn run<R>(profile: CardProfile, answers: Vec<Vec<u8>>, op: impl FnOnce(&mut Session<'_, Scripted>) -> R) -> R {
    let mut t = Scripted { answers: answers.into(), sent: 0 };
    let mut trace = Vec::new();
    let mut s = Session::new(&mut t, profile, &mut trace);
    op(&mut s)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn certificate_reading_never_panics(profile in profiles(), answers in proptest::collection::vec(answer(), 0..80)) {
        let result = run(profile, answers, |s| s.read_certificate(Application::Authentication));
        if let Ok(cert) = result {
            // Success means a complete DER SEQUENCE of the length it states.
            prop_assert_eq!(cert[0], 0x30);
            let total = hpki_card::session::der_total_length(&cert).expect("valid header");
            prop_assert_eq!(total, Some(cert.len()));
        }
    }

    #[test]
    fn pin_handling_never_panics_and_maps_every_answer(profile in profiles(), answers in proptest::collection::vec(answer(), 0..6)) {
        let pin = Pin::new("1234").expect("valid");
        match run(profile, answers, |s| s.verify(Application::Signature, &pin)) {
            Ok(()) | Err(CardError::WrongPin { .. } | CardError::PinBlocked { .. } | CardError::FileNotFound { .. }
                | CardError::UnexpectedStatus { .. } | CardError::SecurityStatusNotSatisfied { .. }
                | CardError::MalformedResponse { .. } | CardError::Encode { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error kind {:?}", other),
        }
    }

    #[test]
    fn signing_returns_exactly_a_modulus_sized_signature(profile in profiles(), answers in proptest::collection::vec(answer(), 0..12)) {
        if let Ok(sig) = run(profile, answers, |s| s.compute_signature(Application::Authentication, &[7; 32], 256)) {
            prop_assert_eq!(sig.len(), 256);
        }
    }

    #[test]
    fn retry_counter_query_is_total(sw1 in any::<u8>(), sw2 in any::<u8>()) {
        let profile = CardProfile { variant: CardVariant::Jahis, extended_length: false };
        let r = run(profile, vec![vec![sw1, sw2]], |s| s.pin_status(Application::Authentication));
        let sw = StatusWord::from_bytes(sw1, sw2);
        match r {
            Ok(PinStatus::TriesLeft(n)) => prop_assert_eq!(sw.retries_left(), Some(n)),
            Ok(PinStatus::Blocked) => prop_assert!(matches!(sw.0, 0x6983 | 0x6984 | 0x63C0)),
            Ok(PinStatus::Verified) => prop_assert_eq!(sw, StatusWord::OK),
            Err(_) => {}
        }
    }
}

#[test]
fn endless_more_data_is_cut_off() {
    // A card that answers 61 FF for ever.
    let answers = vec![vec![0x61, 0xFF]; 9_000];
    let profile = CardProfile { variant: CardVariant::Jma, extended_length: true };
    let err = run(profile, answers, |s| s.read_certificate(Application::Authentication)).unwrap_err();
    assert!(matches!(err, CardError::MalformedResponse { .. }), "{err:?}");
}

#[test]
fn get_response_assembles_a_certificate() {
    // SELECT EF ok; READ BINARY answered in two parts via 61 xx.
    let cert: Vec<u8> = [&[0x30, 0x06][..], &[1, 2, 3, 4, 5, 6]].concat();
    let answers =
        vec![vec![0x90, 0x00], [&cert[..3], &[0x61, 0x05][..]].concat(), [&cert[3..], &[0x90, 0x00][..]].concat()];
    let profile = CardProfile { variant: CardVariant::Jma, extended_length: false };
    assert_eq!(run(profile, answers, |s| s.read_certificate(Application::Authentication)), Ok(cert));
}

#[test]
fn wrong_le_is_resent_once() {
    let cert = vec![0x30, 0x01, 0xAA];
    let answers = vec![vec![0x90, 0x00], vec![0x6C, 0x03], [&cert[..], &[0x90, 0x00]].concat()];
    let profile = CardProfile { variant: CardVariant::Jma, extended_length: false };
    assert_eq!(run(profile, answers, |s| s.read_certificate(Application::Authentication)), Ok(cert));
}
