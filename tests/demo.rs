//! `hpki-demo` (`make demo`): the product's main job on the embedded
//! defaults, end to end on this machine. IT staff create a test CA, a
//! doctor's card, the gateway's and a terminal's credentials; the gateway
//! runs on SQLite; a private pcscd runs the card as a virtual card; the
//! clinic terminal's `card-agent` reads it, checks the PIN and signs the
//! gateway's channel-bound challenge; the doctor is logged in, pulling the
//! card logs out, and the audit log shows it all. On a terminal, the demo
//! then keeps running so a person can log in through the agent's local UI.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hpki_ca::{CaDir, CaRole, CardRequest, ServerRequest, TerminalRequest};
use std::io::IsTerminal;

use hpki_card::CardVariant;
use hpki_e2e::{AgentOptions, AgentProcess, PIN, TerminalCreds, reader_view};
use hpki_profile::Profession;
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
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

    step(4, "The clinic terminal: card-agent with the terminal certificate, and the doctor's card");
    let creds = TerminalCreds {
        cert: dir.join("terminal/terminal.pem"),
        key: dir.join("terminal/terminal.key"),
        chain: dir.join("terminal/ca-chain.pem"),
    };
    let server_ca = dir.join("server/ca-chain.pem");
    let agent = AgentProcess::start(
        &pcscd,
        AgentOptions {
            gateway: listen,
            gateway_ca: &server_ca,
            terminal: &creds,
            idle_lock_seconds: 300,
            language: "ja",
        },
    )
    .await
    .context("starting card-agent")?;
    println!("    card-agent: local UI http://{}/ (loopback only), config {}", agent.address, agent.config.display());
    let mut card_process = CardProcess::start(&pcscd, 0, &card_path)?;
    let reader = card_process.reader().to_owned();
    let status = agent.wait_card_read(&reader).await?;
    let card = &reader_view(&status, &reader).context("reader")?["card"];
    println!(
        "    the agent shows {} / {} — {}, PIN {} tries left",
        card["holder"]["name"].as_str().unwrap_or("?"),
        card["holder"]["name_kanji"].as_str().unwrap_or("?"),
        card["holder"]["profession"].as_str().unwrap_or("?"),
        card["pin"]["tries_left"]
    );

    step(5, "Login: challenge, card signature over gateway + challenge + TLS channel binding, verification");
    let (_, _, err) =
        tokio::task::block_in_place(|| agent.cli(&["login", "--reader", &reader, "--pin-stdin"], "9999\n"))?;
    println!("    card-agent login with a mistyped PIN: {}", err.trim());
    let (code, out, err) =
        tokio::task::block_in_place(|| agent.cli(&["login", "--reader", &reader, "--pin-stdin"], &format!("{PIN}\n")))?;
    if code != 0 {
        bail!("login refused: {err}\n{}", agent.log());
    }
    println!("    card-agent login with the right PIN: {}", out.trim());
    let (_, me) = agent.api("GET", "/api/v1/gateway/v1/auth/whoami", None).await?;
    println!(
        "    whoami at the gateway (through the agent's local API): {} {} on terminal {}",
        me["person"]["id"], me["person"]["role"], me["terminal"]
    );

    step(6, "The card is removed: the agent ends the gateway session at once");
    let pulled = Instant::now();
    tokio::task::block_in_place(|| card_process.control("remove"))?;
    agent.wait_for(Duration::from_secs(5), |s| reader_view(s, &reader).is_some_and(|r| r["card"].is_null())).await?;
    let (_, after) = agent.api("GET", "/api/v1/gateway/v1/auth/whoami", None).await?;
    println!(
        "    card pulled; {} ms later the agent is back at the start screen: {}",
        pulled.elapsed().as_millis(),
        after["error"]
    );
    tokio::task::block_in_place(|| card_process.insert())?;
    agent.wait_card_read(&reader).await?;

    step(7, "The audit log");
    println!("    {}", gateway(&config, &["audit", "verify"])?);
    for line in gateway(&config, &["audit", "export", "--person", &issued.person_id])?.lines() {
        println!("    {line}");
    }

    println!("\nDemo complete: the doctor's card was read through PC/SC, the PIN verified, the gateway's");
    println!("channel-bound challenge signed, the certificate validated along the HPKI profile, the doctor");
    println!("logged in over mutual TLS, and every step is in the hash-chained audit log.");
    if std::io::stdin().is_terminal() {
        println!("\nNow try it yourself: open http://{}/ in a browser on this machine.", agent.address);
        println!("The card of {} is in reader {reader:?}; its PIN is {PIN}.", issued.holder);
        println!("Type `remove` or `insert` (then Enter) to pull or put back the card, `quit` or Ctrl-C to stop.");
        loop {
            let line = tokio::select! {
                l = tokio::task::spawn_blocking(|| {
                    let mut l = String::new();
                    std::io::stdin().read_line(&mut l).map(|n| (n, l))
                }) => l??,
                _ = tokio::signal::ctrl_c() => break,
            };
            match line {
                (0, _) => break,
                (_, l) => match l.trim() {
                    "remove" => tokio::task::block_in_place(|| card_process.remove())?,
                    "insert" => tokio::task::block_in_place(|| card_process.insert())?,
                    "quit" => break,
                    "" => {}
                    other => println!("unknown command {other:?}: remove, insert or quit"),
                },
            }
        }
    }
    Ok(())
}
