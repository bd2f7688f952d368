//! `hpki-demo`: the product's main job on the embedded defaults, end to end,
//! on this machine — a test CA issues a doctor's card, a private pcscd runs it
//! as a virtual card, the card layer reads it, checks the PIN and signs a
//! challenge, and the certificate is validated along the HPKI profile.

use std::time::Duration;

use anyhow::{Context, Result};
use hpki_ca::{CaDir, CaRole, CardRequest};
use hpki_card::{
    Application, CardVariant, CertificateCache, PcscContext, Pin, PinStatus, RSA_2048_BYTES, ReaderEvent,
    ReaderWatcher, sha256,
};
use hpki_profile::{AcceptedPolicies, Profession, Purpose, Revocation, Validator, ValidatorConfig};
use ring::rand::{SecureRandom, SystemRandom};
use testbed::{CardProcess, PrivatePcscd, pki};

const DEMO_PIN: &str = "4826";

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

fn main() -> Result<()> {
    tracing_subscriber::fmt().with_env_filter("warn").with_writer(std::io::stderr).init();
    println!("HPKI gateway demo — card layer on this machine (real pcscd + vpcd, virtual HPKI card)");

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

    step(2, "IT staff: a test CA hierarchy, a doctor's test HPKI card, fresh CRLs");
    let ca_dir = pcscd.dir().join("ca");
    let mut ca = CaDir::init(&ca_dir, hpki_ca::DEFAULT_CRL_BASE_URL)?;
    let path = pcscd.dir().join("demo-doctor.json");
    let issued = ca.issue_card(
        &CardRequest {
            profession: Profession::Doctor,
            name: "Yamada Taro".into(),
            name_kanji: Some("山田太郎".into()),
            institution: Some("Kanazawa Clinic".into()),
            institution_kanji: Some("金沢診療所".into()),
            license_no: "123456".into(),
            verified_by: "Sato (IT desk)".into(),
            pin: DEMO_PIN.into(),
            variant: CardVariant::Jma,
            retry_limit: 5,
            valid_days: hpki_ca::DEFAULT_CARD_DAYS,
        },
        &path,
    )?;
    let crl_dir = pcscd.dir().join("crl");
    let crls = ca.publish_crls(&crl_dir, time::Duration::days(4))?;
    println!("    CA directory {} (root, hpki-auth, hpki-sign, institution, terminal)", ca_dir.display());
    println!("    card image   {}   holder {}   PIN {DEMO_PIN}", path.display(), issued.holder);
    println!("    {} CRLs in {}", crls.len(), crl_dir.display());

    let watcher = ReaderWatcher::start()?;
    step(3, "Inserting the virtual card");
    let card_process = CardProcess::start(&pcscd, 0, &path)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match watcher.next_timeout(left).transpose()? {
            Some(ReaderEvent::CardInserted(id)) => {
                println!("    PC/SC event: card inserted in {:?}, ATR {}", id.reader, hex(&id.atr));
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
    println!("    {} bytes in {} APDUs: {}", cert.len(), card.last_apdus().len(), subject(&cert)?);
    card.certificate(Application::Authentication, &cache)?;
    println!("    read again: served from the cache, {} APDUs", card.last_apdus().len());

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

    step(7, "Verifying the right PIN and signing a random 32-byte challenge");
    let mut challenge = [0u8; 32];
    SystemRandom::new().fill(&mut challenge).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    let signature =
        card.sign_sha256(Application::Authentication, &Pin::new(DEMO_PIN)?, &sha256(&challenge), RSA_2048_BYTES)?;
    println!("    challenge {}", hex(&challenge));
    println!(
        "    signature {}… ({} bytes, {} APDUs)",
        &hex(&signature)[..32],
        signature.len(),
        card.last_apdus().len()
    );
    println!("    tries left after the right PIN: {}", card_process.tries_left(Application::Authentication)?);

    step(8, "Validating the card's certificate along the HPKI profile");
    let validator = Validator::new(ValidatorConfig {
        anchors: vec![ca.ca_cert_der(CaRole::Root)?],
        intermediates: vec![ca.ca_cert_der(CaRole::HpkiAuth)?],
        crls: CaRole::ALL
            .iter()
            .map(|r| std::fs::read(crl_dir.join(format!("{}.crl", r.name()))))
            .collect::<Result<_, _>>()?,
        policies: AcceptedPolicies::hpki().with_test_policies(),
        revocation: Revocation::Required,
    })?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let valid = validator.validate(&cert, &[], Purpose::Authentication, now)?;
    let profession = valid.holder.profession().context("no profession")?;
    for (i, c) in valid.chain.iter().enumerate() {
        println!("    chain[{i}] {c}");
    }
    println!("    not revoked per {} CRLs; key usage digitalSignature; test HPKI policy", valid.revocation.len());
    println!(
        "    holder {} / {}, profession {} ({}), person id {}",
        valid.holder.name.as_deref().unwrap_or("?"),
        valid.holder.name_kanji.as_deref().unwrap_or("?"),
        profession.slug(),
        profession.japanese(),
        valid.holder.serial_number.as_deref().unwrap_or("?")
    );

    step(9, "Checking the challenge signature with ring against the certificate's public key");
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
    println!("\nDemo complete: card issued, read through PC/SC, PIN verified, challenge signed and checked,");
    println!("certificate validated (chain, CRLs, key usage, policy) and the profession read from hcRole.");
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn subject(der: &[u8]) -> Result<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).context("the card's certificate is not X.509")?;
    Ok(cert.subject().to_string())
}
