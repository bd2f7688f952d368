//! `hpki-demo` (`make demo`): the product's main job on the embedded
//! defaults, end to end on this machine. IT staff create a test CA, a
//! doctor's card, the gateway's and a terminal's credentials; the gateway
//! runs on SQLite; a private pcscd runs the card as a virtual card; the card
//! layer reads it, checks the PIN and signs the gateway's channel-bound
//! challenge; the doctor is logged in, and the audit log shows it.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hpki_ca::{CaDir, CaRole, CardRequest, ServerRequest, TerminalRequest};
use hpki_card::{Application, CardVariant, CertificateCache, PcscContext, Pin, PinStatus, ReaderEvent, ReaderWatcher};
use hpki_e2e::{PIN, TerminalClient, TerminalCreds, signed_login};
use hpki_profile::Profession;
use serde_json::json;
use testbed::{CardProcess, PrivatePcscd, bin_path};

const INSTITUTION: &str = "Kanazawa Clinic";

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

/// Kills the gateway when the demo ends, however it ends.
struct GatewayProcess(Child);

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn gateway(config: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin_path("hpki-gateway")?)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("HPKI_OPERATOR", "sato-it")
        .env("RUST_LOG", "warn")
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
    if !out.status.success() {
        bail!("hpki-gateway {args:?}: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    Ok(text)
}

fn wait_healthy(ops: SocketAddr) -> Result<()> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(ops) {
            let _ = s.write_all(b"GET /readyz HTTP/1.1\r\nhost: ops\r\nconnection: close\r\n\r\n");
            let mut resp = String::new();
            let _ = s.read_to_string(&mut resp);
            if resp.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the gateway did not become ready on {ops}")
}

#[tokio::main]
async fn main() -> Result<()> {
    println!("HPKI gateway demo — everything real on this machine: pcscd + vpcd, a virtual HPKI card, mTLS, SQLite");

    step(1, "A private pcscd with a vpcd reader");
    let pcscd = PrivatePcscd::start().context("starting pcscd")?;
    pcscd.use_in_this_process()?;
    let dir = pcscd.dir().to_path_buf();
    println!("    socket {}   reader {:?} on port {}", pcscd.socket().display(), pcscd.reader(0), pcscd.vpcd_port(0));

    step(2, "IT staff: test CA hierarchy, a doctor's HPKI card, gateway and terminal credentials, CRLs");
    let mut ca = CaDir::init(&dir.join("ca"), hpki_ca::DEFAULT_CRL_BASE_URL)?;
    let card_path = dir.join("doctor.json");
    let issued = ca.issue_card(
        &CardRequest {
            profession: Profession::Doctor,
            name: "Yamada Taro".into(),
            name_kanji: Some("山田太郎".into()),
            institution: Some(INSTITUTION.into()),
            institution_kanji: Some("金沢診療所".into()),
            license_no: "123456".into(),
            verified_by: "Sato (IT desk)".into(),
            pin: PIN.into(),
            variant: CardVariant::Jma,
            retry_limit: 5,
            valid_days: hpki_ca::DEFAULT_CARD_DAYS,
        },
        &card_path,
    )?;
    ca.issue_server(
        &ServerRequest { name: "gateway".into(), dns: vec!["localhost".into()], ips: vec![], valid_days: 30 },
        &dir.join("server"),
    )?;
    ca.issue_terminal(
        &TerminalRequest { institution: INSTITUTION.into(), name: "desk-1".into(), valid_days: 30 },
        &dir.join("terminal"),
    )?;
    ca.publish_crls(&dir.join("crl"), time::Duration::days(4))?;
    for role in CaRole::ALL {
        std::fs::write(dir.join(format!("{}.der", role.name())), ca.ca_cert_der(role)?)?;
    }
    let image = virtual_card::CardImage::load(&card_path)?;
    std::fs::write(dir.join("doctor-auth.der"), &image.authentication.certificate)?;
    println!("    card {} for {} (person id {}), PIN {PIN}", card_path.display(), issued.holder, issued.person_id);
    println!(
        "    gateway certificate {}, terminal certificate {}",
        dir.join("server").display(),
        dir.join("terminal").display()
    );
    drop(ca);

    step(3, "The gateway on SQLite: configuration, schema, an institution, the doctor registered");
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let ops: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "gateway_id = \"gateway.demo.invalid\"\n[store]\nsqlite_dir = \"data\"\n\
             [listener]\naddress = \"{listen}\"\ncertificate = \"server/server.pem\"\nkey = \"server/server.key\"\n\
             terminal_ca = [\"terminal.der\"]\nterminal_crls = [\"crl/terminal.crl\"]\nallow = [\"127.0.0.0/8\"]\n\
             [hpki]\nanchors = [\"root.der\"]\nintermediates = [\"hpki-auth.der\", \"institution.der\"]\n\
             crls = [\"crl/root.crl\", \"crl/hpki-auth.crl\", \"crl/institution.crl\"]\naccept_test_policies = true\n\
             [ops]\naddress = \"{ops}\"\n"
        ),
    )?;
    println!("    {}", gateway(&config, &["migrate"])?);
    println!(
        "    {}",
        gateway(&config, &["admin", "add-institution", "--name", INSTITUTION, "--name-kanji", "金沢診療所"])?
    );
    let cert_arg = dir.join("doctor-auth.der").display().to_string();
    println!("    {}", gateway(&config, &["admin", "add-person", "--cert", &cert_arg, "--institution", INSTITUTION])?);
    let child = Command::new(bin_path("hpki-gateway")?)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .context("starting hpki-gateway serve")?;
    let _gateway = GatewayProcess(child);
    wait_healthy(ops)?;
    println!("    hpki-gateway serve: institution listener https://{listen} (mTLS), ops http://{ops}/readyz → ready");

    step(4, "The doctor inserts the card");
    let watcher = ReaderWatcher::start()?;
    let card_process = CardProcess::start(&pcscd, 0, &card_path)?;
    loop {
        match watcher.next_timeout(Duration::from_secs(5)).transpose()? {
            Some(ReaderEvent::CardInserted(id)) => {
                println!("    PC/SC: card inserted in {:?}", id.reader);
                break;
            }
            Some(_) => {}
            None => bail!("the card was not seen within 5 s"),
        }
    }
    let ctx = PcscContext::establish()?;
    let mut card = ctx.connect(card_process.reader())?;
    let cache = CertificateCache::default();
    let cert = card.certificate(Application::Authentication, &cache)?;
    let holder = hpki_profile::read_holder(&cert)?;
    println!(
        "    card holder {} / {} — {} ({})",
        holder.name.as_deref().unwrap_or("?"),
        holder.name_kanji.as_deref().unwrap_or("?"),
        holder.profession().map(|p| p.slug()).unwrap_or("?"),
        holder.profession().map(|p| p.japanese()).unwrap_or("?")
    );
    if let PinStatus::TriesLeft(n) = card.pin_status(Application::Authentication)? {
        println!("    PIN: {n} tries left");
    }
    match card.verify_pin(Application::Authentication, &Pin::new("9999")?) {
        Err(e) => println!("    a mistyped PIN: {e}"),
        Ok(()) => bail!("a wrong PIN was accepted"),
    }

    step(5, "Login: challenge, card signature over gateway + challenge + TLS channel binding, verification");
    let creds = TerminalCreds {
        cert: dir.join("terminal/terminal.pem"),
        key: dir.join("terminal/terminal.key"),
        chain: dir.join("terminal/ca-chain.pem"),
    };
    let mut client = TerminalClient::connect(listen, &dir.join("server/ca-chain.pem"), &creds).await?;
    println!("    terminal {INSTITUTION}/desk-1 connected over mutual TLS 1.3");
    let challenge = client.challenge().await?;
    println!(
        "    challenge {} (expires {})",
        challenge["id"].as_str().unwrap_or("?"),
        challenge["expires_at"].as_str().unwrap_or("?")
    );
    let body = signed_login(&mut card, &challenge, &client.channel_binding)?;
    println!("    the card signed with the right PIN ({} APDUs for the signature)", card.last_apdus().len());
    let (status, login) = client.post("/v1/auth/login", &body, None).await?;
    if status != 200 {
        bail!("login refused: {login}");
    }
    let token = login["session"].as_str().unwrap_or_default().to_owned();
    println!(
        "    logged in: {} ({}) at {}",
        login["person"]["name"], login["person"]["role"], login["person"]["institution"]
    );
    let (_, me) = client.get("/v1/auth/whoami", Some(&token)).await?;
    println!(
        "    whoami: {} {} on terminal {}; idle lock at {}",
        me["person"]["id"], me["person"]["role"], me["terminal"], me["idle_expires_at"]
    );
    let (status, replay) = client.post("/v1/auth/login", &body, None).await?;
    println!("    the same signed login replayed: {status} {}", replay["error"]);

    step(6, "The card is removed: the agent ends the session");
    drop(card);
    drop(card_process);
    let (status, _) = client.post("/v1/auth/logout", &json!({}), Some(&token)).await?;
    let (_, after) = client.get("/v1/auth/whoami", Some(&token)).await?;
    println!("    logout {status}; whoami afterwards: {}", after["error"]);
    watcher.stop();

    step(7, "The audit log");
    println!("    {}", gateway(&config, &["audit", "verify"])?);
    for line in gateway(&config, &["audit", "export", "--person", &issued.person_id])?.lines() {
        println!("    {line}");
    }

    println!("\nDemo complete: the doctor's card was read through PC/SC, the PIN verified, the gateway's");
    println!("channel-bound challenge signed, the certificate validated along the HPKI profile, the doctor");
    println!("logged in over mutual TLS, and every step is in the hash-chained audit log.");
    Ok(())
}
