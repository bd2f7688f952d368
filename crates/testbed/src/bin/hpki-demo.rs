//! `hpki-demo`: the product's main job on the embedded defaults, end to end,
//! on this machine — a private pcscd, a virtual HPKI card, and the card layer
//! reading the card, checking the PIN and signing a challenge.

use std::time::Duration;

use anyhow::{Context, Result};
use hpki_card::{
    Application, CardVariant, CertificateCache, PcscContext, Pin, PinStatus, RSA_2048_BYTES,
    ReaderEvent, ReaderWatcher, sha256,
};
use ring::rand::{SecureRandom, SystemRandom};
use testbed::{CardProcess, PrivatePcscd, pki};

const DEMO_PIN: &str = "1234";

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_writer(std::io::stderr)
        .init();
    println!(
        "HPKI gateway demo — card layer on this machine (real pcscd + vpcd, virtual HPKI card)"
    );

    step(1, "Starting a private pcscd with a vpcd reader");
    let pcscd = PrivatePcscd::start().context("starting pcscd")?;
    pcscd.use_in_this_process()?;
    println!("    pcscd socket: {}", pcscd.socket().display());
    println!(
        "    vpcd ports:   {} ({}), {} ({})",
        pcscd.vpcd_port(0),
        pcscd.reader(0),
        pcscd.vpcd_port(1),
        pcscd.reader(1)
    );

    step(
        2,
        "Issuing a throwaway test card (RSA-2048 keys, JMA card variant)",
    );
    let image = pki::test_card(CardVariant::Jma, "Yamada Taro (demo doctor)", DEMO_PIN, 5)?;
    let path = pcscd.dir().join("demo-card.json");
    image.save(&path)?;
    println!("    card image: {}   PIN: {DEMO_PIN}", path.display());

    let watcher = ReaderWatcher::start()?;
    step(3, "Inserting the virtual card");
    let card_process = CardProcess::start(&pcscd, 0, &path)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match watcher.next_timeout(left).transpose()? {
            Some(ReaderEvent::CardInserted(id)) => {
                println!(
                    "    PC/SC event: card inserted in {:?}, ATR {}",
                    id.reader,
                    hex(&id.atr)
                );
                break;
            }
            Some(_) => {}
            None => anyhow::bail!("the card was not seen by pcscd within 5 s"),
        }
    }

    let ctx = PcscContext::establish()?;
    let mut card = ctx.connect(card_process.reader())?;
    println!(
        "    card profile: {} variant, extended length: {}",
        card.profile().variant,
        card.profile().extended_length
    );

    step(4, "Reading the authentication certificate through PC/SC");
    let cache = CertificateCache::default();
    let cert = card.certificate(Application::Authentication, &cache)?;
    println!(
        "    {} bytes in {} APDUs: {}",
        cert.len(),
        card.last_apdus().len(),
        subject(&cert)?
    );
    card.certificate(Application::Authentication, &cache)?;
    println!(
        "    read again: served from the cache, {} APDUs",
        card.last_apdus().len()
    );

    step(5, "Checking the PIN retry counter (uses no try)");
    match card.pin_status(Application::Authentication)? {
        PinStatus::TriesLeft(n) => println!("    {n} tries left"),
        other => anyhow::bail!("unexpected PIN state {other:?}"),
    }

    step(6, "A wrong PIN first, as people type it");
    match card.verify_pin(Application::Authentication, &Pin::new("9999")?) {
        Err(e) => println!("    refused: {e}"),
        Ok(()) => anyhow::bail!("a wrong PIN was accepted"),
    }

    step(
        7,
        "Verifying the right PIN and signing a random 32-byte challenge",
    );
    let mut challenge = [0u8; 32];
    SystemRandom::new()
        .fill(&mut challenge)
        .map_err(|_| anyhow::anyhow!("no system randomness"))?;
    let signature = card.sign_sha256(
        Application::Authentication,
        &Pin::new(DEMO_PIN)?,
        &sha256(&challenge),
        RSA_2048_BYTES,
    )?;
    println!("    challenge {}", hex(&challenge));
    println!(
        "    signature {}… ({} bytes, {} APDUs)",
        &hex(&signature)[..32],
        signature.len(),
        card.last_apdus().len()
    );
    println!(
        "    tries left after the right PIN: {}",
        card_process.tries_left(Application::Authentication)?
    );

    step(
        8,
        "Checking the signature with ring against the certificate's public key",
    );
    pki::verify_with_certificate(&cert, &challenge, &signature)?;
    println!("    signature verified (RSA PKCS#1 v1.5, SHA-256)");
    let mut tampered = challenge;
    tampered[0] ^= 1;
    anyhow::ensure!(
        pki::verify_with_certificate(&cert, &tampered, &signature).is_err(),
        "a tampered challenge verified"
    );
    println!("    and a changed challenge does not verify");

    drop(card);
    drop(card_process);
    watcher.stop();
    println!("\nDemo complete: card read, PIN verified, challenge signed and checked.");
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn subject(der: &[u8]) -> Result<String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).context("the card's certificate is not X.509")?;
    Ok(cert.subject().to_string())
}
