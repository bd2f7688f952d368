//! Card-layer latency through the real pcscd, vpcd and the virtual card.
//!
//! Prints the APDU round trip (median, p99) with the latency fix and with a
//! naive socket in the same run, and the APDU count and wall time of a login
//! signature with the certificate cached and of a first login.
//!
//! Run with `make bench-card` (release build of the card and this program).

use std::ffi::CString;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hpki_card::{Application, CardVariant, CertificateCache, PcscContext, Pin, RSA_2048_BYTES, sha256};
use testbed::{CardProcess, PrivatePcscd, pki};

const PIN: &str = "1234";

struct Stats {
    median: Duration,
    p99: Duration,
    n: usize,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    let at = |q: f64| samples[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
    Stats { median: at(0.5), p99: at(0.99), n }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Round trips of SELECT (authentication application), a cheap APDU with no
/// response data, through PC/SC.
fn round_trips(reader: &str, n: usize) -> Result<Stats> {
    let ctx = pcsc::Context::establish(pcsc::Scope::User)?;
    let card = ctx.connect(&CString::new(reader)?, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)?;
    let apdu = hpki_card::apdu::Command::new(0, 0xA4, 0x04, 0x0C)
        .with_data(&Application::Authentication.aid())
        .encode(false)?;
    let mut buf = [0u8; 258];
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n + 20 {
        let t = Instant::now();
        let r = card.transmit(&apdu, &mut buf)?;
        samples.push(t.elapsed());
        anyhow::ensure!(r == [0x90, 0x00], "unexpected answer {r:02X?}");
    }
    Ok(stats(samples.split_off(20)))
}

fn main() -> Result<()> {
    let pcscd = PrivatePcscd::start()?;
    pcscd.use_in_this_process()?;
    let image = pki::test_card(CardVariant::Jma, "Bench Doctor", PIN, 15)?;
    let path = pcscd.dir().join("bench.json");
    image.save(&path)?;
    let tuned = CardProcess::start(&pcscd, 0, &path)?;
    let naive_path = pcscd.dir().join("naive.json");
    image.save(&naive_path)?;
    let naive = CardProcess::start_with_args(&pcscd, 1, &naive_path, &["--naive-socket"])?;
    let ctx = PcscContext::establish()?;
    ctx.wait_for_card(tuned.reader(), Duration::from_secs(5))?;
    ctx.wait_for_card(naive.reader(), Duration::from_secs(5))?;

    println!("card layer through pcscd + vpcd + virtual-card (JMA variant, RSA-2048)");
    let rt = round_trips(tuned.reader(), 2000)?;
    let rt_naive = round_trips(naive.reader(), 50)?;
    println!("APDU round trip, latency fix      : median {}  p99 {}  (n={})", ms(rt.median), ms(rt.p99), rt.n);
    println!(
        "APDU round trip, naive socket     : median {}  p99 {}  (n={})  -> fix is {:.0}x faster",
        ms(rt_naive.median),
        ms(rt_naive.p99),
        rt_naive.n,
        rt_naive.median.as_secs_f64() / rt.median.as_secs_f64()
    );

    let pin = Pin::new(PIN)?;
    let cache = CertificateCache::default();
    let mut card = ctx.connect(tuned.reader())?;
    card.certificate(Application::Authentication, &cache)?;

    // Login with the certificate cached: certificate from the cache, then
    // VERIFY + signature in one transaction.
    let mut samples = Vec::new();
    let mut apdus = 0;
    for i in 0..220 {
        let challenge = sha256(format!("challenge {i}").as_bytes());
        let t = Instant::now();
        let cert = card.certificate(Application::Authentication, &cache)?;
        let mut count = card.last_apdus().len();
        let sig = card.sign_sha256(Application::Authentication, &pin, &challenge, RSA_2048_BYTES)?;
        count += card.last_apdus().len();
        samples.push(t.elapsed());
        anyhow::ensure!(sig.len() == 256 && cert.len() > 100);
        apdus = count;
    }
    let cached = stats(samples.split_off(20));
    println!(
        "login signature, cert cached      : {apdus} APDUs  median {}  p99 {}  (n={})  [goal: <= 6 APDUs, median < 5 ms]",
        ms(cached.median),
        ms(cached.p99),
        cached.n
    );

    // First login: connect, read the certificate from the card, sign.
    let mut samples = Vec::new();
    let mut apdus = 0;
    for i in 0..110 {
        let challenge = sha256(format!("first {i}").as_bytes());
        let fresh = CertificateCache::default();
        let t = Instant::now();
        let mut c = ctx.connect(tuned.reader())?;
        c.certificate(Application::Authentication, &fresh).context("read certificate")?;
        let mut count = c.last_apdus().len();
        c.sign_sha256(Application::Authentication, &pin, &challenge, RSA_2048_BYTES)?;
        count += c.last_apdus().len();
        samples.push(t.elapsed());
        apdus = count;
    }
    let first = stats(samples.split_off(10));
    println!(
        "first login (connect, read, sign) : {apdus} APDUs  median {}  p99 {}  (n={})",
        ms(first.median),
        ms(first.p99),
        first.n
    );
    Ok(())
}
