//! The card layer through the real stack: the `hpki-card` client, the real
//! pcscd with the vpcd driver, and `virtual-card` processes.
//!
//! Each test starts its own pcscd (own mount namespace and vpcd ports), so
//! tests run side by side — one per process, as `cargo nextest` runs them.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;
use hpki_card::{
    Application, CardError, CardVariant, CertificateCache, PcscContext, Pin, PinStatus, RSA_2048_BYTES, ReaderEvent,
    ReaderWatcher, sha256,
};
use testbed::{CardProcess, PrivatePcscd, bin_path, pki};
use virtual_card::CardImage;

const PIN: &str = "1234";
const WAIT: Duration = Duration::from_secs(5);

/// A private pcscd this process talks to, and one card in slot 0.
struct Stack {
    card: CardProcess,
    image: CardImage,
    ctx: PcscContext,
    // Dropped last: the card process and the context go first.
    pcscd: PrivatePcscd,
}

fn stack(variant: CardVariant, retry_limit: u8) -> Result<Stack> {
    let pcscd = PrivatePcscd::start()?;
    pcscd.use_in_this_process()?;
    let image = pki::test_card(variant, "Yamada Taro", PIN, retry_limit)?;
    let path = pcscd.dir().join("card.json");
    image.save(&path)?;
    let card = CardProcess::start(&pcscd, 0, &path)?;
    let ctx = PcscContext::establish()?;
    ctx.wait_for_card(card.reader(), WAIT)?;
    Ok(Stack { card, image, ctx, pcscd })
}

/// Waits until pcscd has seen the card leave `reader`, as it always does
/// when a person pulls a card (pcscd polls vpcd only every ~0.4 s).
fn wait_until_absent(ctx: &PcscContext, reader: &str) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    while ctx.reader_statuses()?.iter().any(|r| r.reader == reader && r.card.is_some()) {
        anyhow::ensure!(Instant::now() < deadline, "pcscd did not notice the removal");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn pin(text: &str) -> Pin {
    Pin::new(text).expect("test PINs are well formed")
}

fn certificate_is_read_through_pcscd(variant: CardVariant) -> Result<()> {
    let s = stack(variant, 5)?;
    let mut card = s.ctx.connect(s.card.reader())?;
    assert_eq!(card.profile().variant, variant, "variant recognised from the ATR");
    for app in Application::ALL {
        assert_eq!(card.read_certificate(app)?, s.image.app(app).certificate, "{app} certificate");
    }
    Ok(())
}

#[test]
fn certificate_is_read_through_pcscd_jma() -> Result<()> {
    certificate_is_read_through_pcscd(CardVariant::Jma)
}

#[test]
fn certificate_is_read_through_pcscd_jahis() -> Result<()> {
    certificate_is_read_through_pcscd(CardVariant::Jahis)
}

#[test]
fn jma_card_reads_the_certificate_in_one_extended_read_binary() -> Result<()> {
    let s = stack(CardVariant::Jma, 5)?;
    let mut card = s.ctx.connect(s.card.reader())?;
    s.card.clear_apdu_log()?;
    card.read_certificate(Application::Authentication)?;
    // SELECT application, SELECT EF, one READ BINARY.
    assert_eq!(s.card.logged_ins(), vec![0xA4, 0xA4, 0xB0]);
    Ok(())
}

#[test]
fn jahis_card_reads_the_certificate_by_short_ef_in_short_chunks() -> Result<()> {
    let s = stack(CardVariant::Jahis, 5)?;
    let mut card = s.ctx.connect(s.card.reader())?;
    s.card.clear_apdu_log()?;
    card.read_certificate(Application::Authentication)?;
    let log = s.card.apdu_log();
    assert!(log[1].starts_with("00 B0 98 00"), "first read by SFI 18: {log:?}");
    let expected_reads = s.image.authentication.certificate.len().div_ceil(256);
    assert_eq!(s.card.logged_ins().iter().filter(|&&i| i == 0xB0).count(), expected_reads);
    Ok(())
}

#[test]
fn second_certificate_read_is_served_from_cache_without_read_binary() -> Result<()> {
    let s = stack(CardVariant::Jma, 5)?;
    let cache = CertificateCache::default();
    let mut card = s.ctx.connect(s.card.reader())?;
    let first = card.certificate(Application::Authentication, &cache)?;
    assert!(s.card.logged_ins().contains(&0xB0), "the first read reads the card");

    s.card.clear_apdu_log()?;
    // A new connection to the same inserted card, as a second login makes.
    let mut again = s.ctx.connect(s.card.reader())?;
    let second = again.certificate(Application::Authentication, &cache)?;
    assert_eq!(first, second);
    assert_eq!(s.card.logged_ins(), Vec::<u8>::new(), "the card saw no APDU at all");
    assert!(again.last_apdus().is_empty());
    Ok(())
}

#[test]
fn reinserted_card_is_a_new_identity_so_the_cache_reads_again() -> Result<()> {
    let mut s = stack(CardVariant::Jma, 5)?;
    let cache = CertificateCache::default();
    let mut card = s.ctx.connect(s.card.reader())?;
    card.certificate(Application::Authentication, &cache)?;
    let before = card.identity().clone();

    s.card.remove()?;
    wait_until_absent(&s.ctx, s.card.reader())?;
    s.card.insert()?;
    s.ctx.wait_for_card(s.card.reader(), WAIT)?;
    s.card.clear_apdu_log()?;
    let mut card = s.ctx.connect(s.card.reader())?;
    assert_ne!(card.identity(), &before, "a new insertion has a new identity");
    card.certificate(Application::Authentication, &cache)?;
    assert!(s.card.logged_ins().contains(&0xB0), "the certificate was read from the card again");
    Ok(())
}

fn correct_pin_signature_verifies_with_ring(variant: CardVariant, expected_ins: &[u8]) -> Result<()> {
    let s = stack(variant, 5)?;
    let mut card = s.ctx.connect(s.card.reader())?;
    for app in Application::ALL {
        let challenge = format!("gateway challenge for {app}");
        s.card.clear_apdu_log()?;
        let signature = card.sign_sha256(app, &pin(PIN), &sha256(challenge.as_bytes()), RSA_2048_BYTES)?;
        pki::verify_with_certificate(&s.image.app(app).certificate, challenge.as_bytes(), &signature)?;
        assert_eq!(card.last_apdus(), expected_ins, "{app}: APDUs sent by the client");
        assert_eq!(s.card.logged_ins(), expected_ins, "{app}: APDUs the card answered");
        // A signature by the other application's key must not verify.
        let other = if app == Application::Signature { Application::Authentication } else { Application::Signature };
        assert!(
            pki::verify_with_certificate(&s.image.app(other).certificate, challenge.as_bytes(), &signature).is_err()
        );
    }
    Ok(())
}

#[test]
fn correct_pin_signature_verifies_with_ring_jma() -> Result<()> {
    // SELECT app, SELECT EF PIN, VERIFY, SELECT EF key, MSE:SET, PSO.
    correct_pin_signature_verifies_with_ring(CardVariant::Jma, &[0xA4, 0xA4, 0x20, 0xA4, 0x22, 0x2A])
}

#[test]
fn correct_pin_signature_verifies_with_ring_jahis() -> Result<()> {
    // SELECT app, VERIFY, MSE:SET, PSO chained in two parts.
    correct_pin_signature_verifies_with_ring(CardVariant::Jahis, &[0xA4, 0x20, 0x22, 0x2A, 0x2A])
}

#[test]
fn pin_status_reads_the_tries_left_without_using_one() -> Result<()> {
    let s = stack(CardVariant::Jma, 5)?;
    let mut card = s.ctx.connect(s.card.reader())?;
    for _ in 0..3 {
        assert_eq!(card.pin_status(Application::Authentication)?, PinStatus::TriesLeft(5));
    }
    assert_eq!(s.card.tries_left(Application::Authentication)?, 5);
    Ok(())
}

#[test]
fn wrong_pin_says_tries_left_and_costs_exactly_one_try() -> Result<()> {
    let s = stack(CardVariant::Jma, 5)?;
    let mut card = s.ctx.connect(s.card.reader())?;
    let err = card.sign_sha256(Application::Authentication, &pin("0000"), &sha256(b"x"), RSA_2048_BYTES).unwrap_err();
    assert_eq!(err, CardError::WrongPin { app: Application::Authentication, tries_left: 4 });
    assert!(err.to_string().contains("4 tries left"), "message: {err}");
    assert_eq!(card.last_apdus().iter().filter(|&&i| i == 0x20).count(), 1, "the PIN was sent once, not retried");
    assert!(!card.last_apdus().contains(&0x2A), "no signature was attempted");
    assert_eq!(card.pin_status(Application::Authentication)?, PinStatus::TriesLeft(4));
    assert_eq!(s.card.tries_left(Application::Authentication)?, 4, "persisted in the image");
    assert_eq!(s.card.tries_left(Application::Signature)?, 5, "the other application's PIN is untouched");
    Ok(())
}

#[test]
fn correct_pin_after_a_wrong_one_restores_the_counter() -> Result<()> {
    let s = stack(CardVariant::Jahis, 5)?;
    let mut card = s.ctx.connect(s.card.reader())?;
    assert!(matches!(
        card.verify_pin(Application::Signature, &pin("9999")),
        Err(CardError::WrongPin { tries_left: 4, .. })
    ));
    card.verify_pin(Application::Signature, &pin(PIN))?;
    assert_eq!(s.card.tries_left(Application::Signature)?, 5);
    Ok(())
}

#[test]
fn nth_wrong_pin_blocks_the_card_and_a_restart_does_not_unblock_it() -> Result<()> {
    let mut s = stack(CardVariant::Jma, 3)?;
    let app = Application::Authentication;
    let mut card = s.ctx.connect(s.card.reader())?;
    assert_eq!(card.verify_pin(app, &pin("1111")), Err(CardError::WrongPin { app, tries_left: 2 }));
    assert_eq!(card.verify_pin(app, &pin("2222")), Err(CardError::WrongPin { app, tries_left: 1 }));
    assert_eq!(card.verify_pin(app, &pin("3333")), Err(CardError::PinBlocked { app }));
    assert_eq!(card.verify_pin(app, &pin(PIN)), Err(CardError::PinBlocked { app }), "even the right PIN");
    assert_eq!(card.pin_status(app)?, PinStatus::Blocked);

    s.card.kill();
    wait_until_absent(&s.ctx, s.card.reader())?;
    s.card.start_again()?;
    s.ctx.wait_for_card(s.card.reader(), WAIT)?;
    let mut card = s.ctx.connect(s.card.reader())?;
    assert_eq!(card.pin_status(app)?, PinStatus::Blocked, "still blocked after a restart");
    let err = card.sign_sha256(app, &pin(PIN), &sha256(b"x"), RSA_2048_BYTES).unwrap_err();
    assert_eq!(err, CardError::PinBlocked { app });
    assert!(err.to_string().contains("blocked"));
    assert_eq!(s.card.tries_left(app)?, 0);
    Ok(())
}

#[test]
fn malformed_pin_is_refused_before_it_reaches_the_card() -> Result<()> {
    let s = stack(CardVariant::Jma, 5)?;
    assert!(Pin::new("12").is_err());
    assert!(Pin::new("12345678901234567").is_err());
    // Nothing was sent, so nothing was spent.
    assert_eq!(s.card.logged_ins(), Vec::<u8>::new());
    assert_eq!(s.card.tries_left(Application::Authentication)?, 5);
    Ok(())
}

#[test]
fn card_pulled_out_during_the_signature_gives_card_removed() -> Result<()> {
    let s = stack(CardVariant::Jma, 5)?;
    let mut card = s.ctx.connect(s.card.reader())?;
    s.card.vanish_on(0x2A)?;
    let err = card.sign_sha256(Application::Authentication, &pin(PIN), &sha256(b"x"), RSA_2048_BYTES).unwrap_err();
    assert_eq!(err, CardError::CardRemoved);
    assert_eq!(err.to_string(), "the card was removed");
    // The handle stays unusable, with the same clear error.
    assert_eq!(card.read_certificate(Application::Authentication), Err(CardError::CardRemoved));
    Ok(())
}

#[test]
fn removed_card_gives_card_removed_then_no_card() -> Result<()> {
    let mut s = stack(CardVariant::Jma, 5)?;
    let mut card = s.ctx.connect(s.card.reader())?;
    card.read_certificate(Application::Authentication)?;
    s.card.remove()?;
    wait_until_absent(&s.ctx, s.card.reader())?;
    assert_eq!(card.read_certificate(Application::Authentication), Err(CardError::CardRemoved));
    let reader = s.card.reader().to_string();
    assert_eq!(s.ctx.connect(&reader).err(), Some(CardError::NoCard { reader }));
    Ok(())
}

#[test]
fn no_pcscd_gives_a_clear_no_service_error() -> Result<()> {
    let mut pcscd = PrivatePcscd::start_without_readers()?;
    pcscd.use_in_this_process()?;
    // The socket path stays configured, with no daemon behind it.
    pcscd.stop();
    let err = PcscContext::establish().err().expect("no service");
    assert_eq!(err, CardError::NoService);
    assert!(err.to_string().contains("pcscd"), "message: {err}");
    Ok(())
}

#[test]
fn no_reader_gives_a_clear_no_reader_error() -> Result<()> {
    let pcscd = PrivatePcscd::start_without_readers()?;
    pcscd.use_in_this_process()?;
    let ctx = PcscContext::establish()?;
    assert_eq!(ctx.readers()?, Vec::<String>::new());
    let err = ctx.connect("Virtual PCD 00 00").err().expect("no reader");
    assert_eq!(err, CardError::NoReader);
    assert_eq!(err.to_string(), "no smart-card reader is connected");
    Ok(())
}

#[test]
fn empty_or_unknown_reader_gives_a_clear_error() -> Result<()> {
    let pcscd = PrivatePcscd::start()?;
    pcscd.use_in_this_process()?;
    let ctx = PcscContext::establish()?;
    let reader = pcscd.reader(1);
    assert_eq!(ctx.connect(&reader).err(), Some(CardError::NoCard { reader: reader.clone() }));
    assert_eq!(ctx.connect("No Such Reader").err(), Some(CardError::UnknownReader("No Such Reader".into())));
    Ok(())
}

/// What a misbehaving card answers, and the typed error it must produce.
fn misbehaving(
    ins: u8,
    raw: &[u8],
    op: impl FnOnce(&mut hpki_card::HpkiCard) -> Result<(), CardError>,
) -> Result<CardError> {
    let s = stack(CardVariant::Jma, 5)?;
    let mut card = s.ctx.connect(s.card.reader())?;
    s.card.respond_next(ins, raw)?;
    let err = op(&mut card).expect_err("a misbehaving card must give an error");
    // The card is still usable afterwards (nothing got stuck).
    card.read_certificate(Application::Authentication)?;
    Ok(err)
}

#[test]
fn misbehaving_card_one_byte_response_is_a_typed_error() -> Result<()> {
    let err = misbehaving(0xB0, &[0x90], |c| c.read_certificate(Application::Authentication).map(drop))?;
    assert!(
        matches!(err, CardError::MalformedResponse { .. } | CardError::CardUnresponsive | CardError::Pcsc(_)),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn misbehaving_card_garbage_status_word_is_a_typed_error() -> Result<()> {
    let err = misbehaving(0x20, &[0x12, 0x34], |c| c.verify_pin(Application::Authentication, &pin(PIN)))?;
    assert_eq!(err.to_string(), "the card answered VERIFY with SW 1234 (not an ISO 7816-4 status word)");
    Ok(())
}

#[test]
fn misbehaving_card_short_signature_is_a_typed_error() -> Result<()> {
    let mut short = vec![0xAA; 100];
    short.extend_from_slice(&[0x90, 0x00]);
    let err = misbehaving(0x2A, &short, |c| {
        c.sign_sha256(Application::Authentication, &pin(PIN), &sha256(b"x"), RSA_2048_BYTES).map(drop)
    })?;
    assert_eq!(
        err.to_string(),
        "malformed answer to PSO: COMPUTE DIGITAL SIGNATURE: signature of 100 bytes, expected 256"
    );
    Ok(())
}

#[test]
fn misbehaving_card_non_certificate_file_is_a_typed_error() -> Result<()> {
    let err = misbehaving(0xB0, &[0x04, 0x03, 0x01, 0x02, 0x03, 0x90, 0x00], |c| {
        c.read_certificate(Application::Authentication).map(drop)
    })?;
    assert!(matches!(err, CardError::MalformedResponse { .. }), "{err:?}");
    assert!(err.to_string().contains("does not start with a DER SEQUENCE"), "{err}");
    Ok(())
}

#[test]
fn misbehaving_card_truncated_certificate_is_a_typed_error() -> Result<()> {
    // A DER header announcing 1000 bytes, 10 bytes of content, end of file.
    let mut raw = vec![0x30, 0x82, 0x03, 0xE8];
    raw.extend_from_slice(&[0u8; 10]);
    raw.extend_from_slice(&[0x62, 0x82]);
    let err = misbehaving(0xB0, &raw, |c| c.read_certificate(Application::Authentication).map(drop))?;
    assert!(err.to_string().contains("end of file after 14 bytes"), "{err}");
    Ok(())
}

#[test]
fn watcher_reports_insert_and_remove_and_stops_promptly() -> Result<()> {
    let mut s = stack(CardVariant::Jma, 5)?;
    let watcher = ReaderWatcher::start()?;
    let mut initial = Vec::new();
    while let Some(ev) = watcher.next_timeout(Duration::from_millis(300)) {
        initial.push(ev?);
    }
    let reader = s.card.reader().to_string();
    let other = s.pcscd.reader(1);
    assert!(initial.contains(&ReaderEvent::ReaderAdded { reader: reader.clone() }), "{initial:?}");
    assert!(initial.contains(&ReaderEvent::ReaderAdded { reader: other }), "{initial:?}");
    let inserted = initial.iter().find_map(|e| match e {
        ReaderEvent::CardInserted(id) => Some(id.clone()),
        _ => None,
    });
    assert_eq!(inserted.as_ref().map(|i| i.reader.as_str()), Some(reader.as_str()));

    s.card.remove()?;
    assert_eq!(watcher.next_timeout(WAIT).transpose()?, Some(ReaderEvent::CardRemoved { reader: reader.clone() }));
    s.card.insert()?;
    match watcher.next_timeout(WAIT).transpose()? {
        Some(ReaderEvent::CardInserted(id)) => {
            assert_eq!(id.reader, reader);
            assert_ne!(Some(id), inserted, "the new insertion has its own identity");
        }
        other => panic!("expected CardInserted, got {other:?}"),
    }

    let start = Instant::now();
    watcher.stop();
    assert!(start.elapsed() < Duration::from_secs(2), "stop took {:?}", start.elapsed());
    Ok(())
}

#[test]
fn card_started_before_pcscd_waits_and_reconnects_after_a_pcscd_restart() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let image = pki::test_card(CardVariant::Jma, "Early Card", PIN, 5)?;
    let path = dir.join("card.json");
    image.save(&path)?;
    let port = PrivatePcscd::free_ports()?;
    let mut card = CardProcess::start_detached(dir, port, "Virtual PCD 00 00".into(), &path)?;
    assert_eq!(card.control("status")?, "connecting", "no pcscd yet");

    let mut pcscd = PrivatePcscd::start_on_port(port)?;
    pcscd.use_in_this_process()?;
    card.wait_inserted(WAIT)?;
    let ctx = PcscContext::establish()?;
    ctx.wait_for_card(card.reader(), WAIT)?;
    drop(ctx);

    pcscd.restart()?;
    card.wait_inserted(Duration::from_secs(10))?;
    let ctx = PcscContext::establish()?;
    ctx.wait_for_card(card.reader(), WAIT)?;
    let mut c = ctx.connect(card.reader())?;
    assert_eq!(c.read_certificate(Application::Authentication)?, image.authentication.certificate);
    Ok(())
}

#[test]
fn virtual_card_refuses_a_corrupt_image_and_leaves_it_unchanged() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let bin = bin_path("virtual-card")?;
    let cases: [(&str, &str); 3] =
        [("not json", "is not valid"), (r#"{"format":"hpki-virtual-card/9"}"#, "is not valid"), ("", "is not valid")];
    for (i, (content, expected)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.json"));
        std::fs::write(&path, content)?;
        let out = Command::new(&bin).arg("--image").arg(&path).args(["--vpcd-port", "1"]).output()?;
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{content:?}: {stderr}");
        assert_eq!(std::fs::read_to_string(&path)?, *content, "image untouched");
    }

    // A well-formed image whose counters contradict each other.
    let mut image = pki::test_card(CardVariant::Jma, "Bad Counter", PIN, 3)?;
    image.authentication.tries_left = 7;
    let path = dir.join("counter.json");
    image.save(&path)?;
    let out = Command::new(&bin).arg("--image").arg(&path).output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tries_left 7 exceeds retry_limit 3"));

    // A wrong ATR check byte.
    let mut image = pki::test_card(CardVariant::Jma, "Bad ATR", PIN, 3)?;
    let mut atr = image.atr();
    if let Some(last) = atr.last_mut() {
        *last ^= 0xFF;
    }
    image.atr = Some(atr);
    let path = dir.join("atr.json");
    image.save(&path)?;
    let out = Command::new(&bin).arg("--image").arg(&path).output()?;
    assert!(String::from_utf8_lossy(&out.stderr).contains("TCK does not match"));
    Ok(())
}
