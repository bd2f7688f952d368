//! The emulated card's own behaviour, command by command, in memory.

use hpki_card::apdu::{Command, StatusWord};
use hpki_card::profile::CardProfile;
use hpki_card::signing::{pkcs1_v15_sha256_block, sha256};
use hpki_card::{Application, CardVariant};
use rcgen::{CertificateParams, KeyPair, PKCS_RSA_SHA256};
use rsa::pkcs8::EncodePrivateKey;
use virtual_card::{AppImage, CardImage, VirtualCard};

fn app_image() -> AppImage {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("keygen");
    let pkcs8 = key.to_pkcs8_der().expect("pkcs8").as_bytes().to_vec();
    let kp = KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.as_slice().into(), &PKCS_RSA_SHA256).expect("key");
    let cert = CertificateParams::new(Vec::<String>::new()).expect("params").self_signed(&kp).expect("cert");
    AppImage::new(cert.der().to_vec(), pkcs8, "1234", 3)
}

fn card(variant: CardVariant) -> VirtualCard {
    let app = app_image();
    VirtualCard::in_memory(CardImage::new(variant, app.clone(), app)).expect("valid image")
}

fn sw(reply: &[u8]) -> StatusWord {
    StatusWord::from_bytes(reply[reply.len() - 2], reply[reply.len() - 1])
}

fn send(card: &mut VirtualCard, cmd: Command<'_>) -> Vec<u8> {
    card.process(&cmd.encode(true).expect("encodes"))
}

fn select(card: &mut VirtualCard, app: Application) -> StatusWord {
    sw(&send(card, Command::new(0, 0xA4, 0x04, 0x0C).with_data(&app.aid())))
}

fn verify(card: &mut VirtualCard, pin: &[u8]) -> StatusWord {
    sw(&send(card, Command::new(0, 0x20, 0, 0x88).with_data(pin)))
}

fn mse(card: &mut VirtualCard) -> StatusWord {
    let p = CardProfile { variant: CardVariant::Jma, extended_length: true };
    sw(&send(card, Command::new(0, 0x22, 0x41, 0xB6).with_data(&p.mse_key_reference())))
}

fn pso(card: &mut VirtualCard, block: &[u8]) -> Vec<u8> {
    send(card, Command::new(0, 0x2A, 0x9E, 0x9A).with_data(block).with_le(65_536))
}

#[test]
fn signature_application_wants_the_pin_for_every_signature() {
    let mut c = card(CardVariant::Jma);
    let block = pkcs1_v15_sha256_block(&sha256(b"doc"), 256);
    assert_eq!(select(&mut c, Application::Signature), StatusWord::OK);
    assert_eq!(verify(&mut c, b"1234"), StatusWord::OK);
    assert_eq!(mse(&mut c), StatusWord::OK);
    let first = pso(&mut c, &block);
    assert_eq!((first.len(), sw(&first)), (258, StatusWord::OK));
    assert_eq!(sw(&pso(&mut c, &block)), StatusWord::SECURITY_STATUS_NOT_SATISFIED);
}

#[test]
fn authentication_application_keeps_the_pin_for_the_session() {
    let mut c = card(CardVariant::Jma);
    let block = pkcs1_v15_sha256_block(&sha256(b"challenge"), 256);
    select(&mut c, Application::Authentication);
    verify(&mut c, b"1234");
    mse(&mut c);
    assert_eq!(sw(&pso(&mut c, &block)), StatusWord::OK);
    assert_eq!(sw(&pso(&mut c, &block)), StatusWord::OK);
    // Leaving the application, or a reset, drops it.
    select(&mut c, Application::Signature);
    select(&mut c, Application::Authentication);
    mse(&mut c);
    assert_eq!(sw(&pso(&mut c, &block)), StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    verify(&mut c, b"1234");
    c.reset();
    select(&mut c, Application::Authentication);
    mse(&mut c);
    assert_eq!(sw(&pso(&mut c, &block)), StatusWord::SECURITY_STATUS_NOT_SATISFIED);
}

#[test]
fn signature_needs_key_selection_and_a_well_padded_block() {
    let mut c = card(CardVariant::Jma);
    select(&mut c, Application::Authentication);
    verify(&mut c, b"1234");
    let block = pkcs1_v15_sha256_block(&sha256(b"x"), 256);
    assert_eq!(sw(&pso(&mut c, &block)), StatusWord::CONDITIONS_NOT_SATISFIED, "no MSE:SET yet");
    mse(&mut c);
    let mut bad = block.clone();
    bad[1] = 0x02;
    assert_eq!(sw(&pso(&mut c, &bad)), StatusWord::WRONG_DATA);
    assert_eq!(sw(&pso(&mut c, &block[..200])), StatusWord::WRONG_LENGTH);
}

#[test]
fn pin_and_key_files_are_never_readable() {
    let mut c = card(CardVariant::Jma);
    select(&mut c, Application::Authentication);
    for fid in [[0x00, 0x02], [0x00, 0x0C]] {
        assert_eq!(sw(&send(&mut c, Command::new(0, 0xA4, 0x02, 0x0C).with_data(&fid))), StatusWord::OK);
        assert_eq!(
            sw(&send(&mut c, Command::new(0, 0xB0, 0, 0).with_le(16))),
            StatusWord::SECURITY_STATUS_NOT_SATISFIED
        );
    }
}

#[test]
fn retry_counter_query_uses_no_try_and_blocking_is_final() {
    let mut c = card(CardVariant::Jma);
    select(&mut c, Application::Authentication);
    let query = |c: &mut VirtualCard| sw(&send(c, Command::new(0, 0x20, 0, 0x88)));
    assert_eq!(query(&mut c), StatusWord(0x63C3));
    assert_eq!(query(&mut c), StatusWord(0x63C3));
    assert_eq!(verify(&mut c, b"0000"), StatusWord(0x63C2));
    assert_eq!(verify(&mut c, b"0000"), StatusWord(0x63C1));
    assert_eq!(verify(&mut c, b"0000"), StatusWord(0x63C0));
    assert_eq!(verify(&mut c, b"1234"), StatusWord::AUTH_METHOD_BLOCKED);
    assert_eq!(query(&mut c), StatusWord::AUTH_METHOD_BLOCKED);
    assert_eq!(c.image().authentication.tries_left, 0);
    assert_eq!(c.image().signature.tries_left, 3, "each application has its own PIN");
}

#[test]
fn every_command_gets_a_status_word() {
    let mut c = card(CardVariant::Jahis);
    assert_eq!(sw(&c.process(&[0x00, 0xFF, 0, 0])), StatusWord::INS_NOT_SUPPORTED);
    assert_eq!(sw(&c.process(&[0x80, 0xA4, 0, 0])), StatusWord::CLA_NOT_SUPPORTED);
    assert_eq!(sw(&c.process(&[0x00, 0xA4, 0x04])), StatusWord::WRONG_LENGTH);
    assert_eq!(sw(&c.process(&[0x00, 0xA4, 0x04, 0x00, 0x05, 1])), StatusWord::WRONG_LENGTH);
    // The JAHIS-variant card has no extended length.
    assert_eq!(sw(&c.process(&[0x00, 0xB0, 0x98, 0x00, 0x00, 0x08, 0x00])), StatusWord::WRONG_LENGTH);
    assert_eq!(sw(&c.process(&[0x10, 0xB0, 0x98, 0x00, 0x10])), StatusWord(0x6884), "chaining only for PSO");
}
