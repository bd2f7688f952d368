//! NET-1 and NET-3 behind a real IPsec link: a clinic namespace and a
//! data-centre namespace joined by strongSwan IKEv2 with certificates and
//! configurations from `hpki-certs vpn issue`; the gateway process runs in
//! the data centre with its allowlist set to the clinic subnet, the card
//! agent with a virtual card in the clinic.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use hpki_e2e::ipsec_link::{self, CLINIC_OUTSIDE, CLINIC_SUBNET, DC_HOST, DC_OUTSIDE, IpsecLink};
use hpki_e2e::{AgentOptions, AgentProcess, GatewayProcess, PIN, World, WorldOptions};
use hpki_profile::Profession;
use testbed::{CardProcess, PrivatePcscd};

const CLINIC: &str = "Kanazawa Clinic";
const PORT: u16 = 8443;

/// Audit entries that show a connection reached the gateway at all.
fn reached_gateway(action: &str) -> bool {
    action == "net.connect" || action == "tls.handshake" || action.starts_with("auth.")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doctor_logs_in_over_the_ipsec_tunnel_and_nothing_reaches_the_gateway_without_it() -> Result<()> {
    let mut world = World::start(WorldOptions { allow: vec![CLINIC_SUBNET], ..Default::default() }).await?;
    let terminal = world.terminal(CLINIC, "desk-1")?;
    world.ensure_institution(CLINIC).await?;
    let image = world.card(Profession::Doctor, "D-7001", CLINIC).await?;

    let link = IpsecLink::up(world.dir.path())?;
    // The gateway listens on every address of the data centre: the tunnel's
    // inner one and the outside one a stray packet could try.
    let listen: SocketAddr = format!("0.0.0.0:{PORT}").parse()?;
    let ops: SocketAddr = "127.0.0.1:9090".parse()?;
    let config = world.process_config_at(listen, ops)?;
    let _gateway = GatewayProcess::start_in(&config, ops, Some(&link.dc_ns))?;

    let pcscd = PrivatePcscd::start()?;
    let _card = CardProcess::start(&pcscd, 0, &image)?;
    let reader = pcscd.reader(0);
    let ca = world.path("server/ca-chain.pem");
    let agent = AgentProcess::start_in(
        &pcscd,
        AgentOptions {
            gateway: format!("{DC_HOST}:{PORT}").parse()?,
            gateway_ca: &ca,
            terminal: &terminal,
            idle_lock_seconds: 300,
            language: "en",
        },
        Some(&link.clinic_ns),
    )
    .await?;
    agent.wait_card_read(&reader).await?;
    let login = |agent: &AgentProcess| {
        tokio::task::block_in_place(|| agent.cli(&["login", "--reader", &reader, "--pin-stdin"], &format!("{PIN}\n")))
    };

    // 1. Over the tunnel: the doctor logs in.
    let (code, out, err) = login(&agent)?;
    assert_eq!(code, 0, "login over the tunnel failed: {out}{err}\n{}\n{}", agent.log(), link.logs());
    assert!(out.contains("(doctor, "), "{out}");
    let entries = world.audit().await;
    let ok = entries.iter().rev().find(|e| e.event.action == "auth.login").context("login audited")?;
    assert_eq!((ok.event.outcome.as_str(), ok.event.terminal.as_str()), ("ok", "Kanazawa Clinic/desk-1"));
    // It travelled as ESP: the clinic's child SA counted the bytes.
    let sas = link.clinic_sa_counters()?;
    let bytes_out: u64 = sas
        .split_whitespace()
        .skip_while(|w| !w.starts_with("out"))
        .find_map(|w| w.parse().ok())
        .context("no byte count in swanctl --list-sas")?;
    assert!(bytes_out > 1000, "the login did not go through the SA: {sas}");
    let (code, out, err) = tokio::task::block_in_place(|| agent.cli(&["logout"], ""))?;
    assert_eq!(code, 0, "{out}{err}");

    // 2. An address outside the allowlist (the clinic router's outside
    // address, straight over the wire to the gateway's port, bypassing the
    // tunnel) is refused before TLS and audited with its address.
    let before = world.audit().await.len();
    assert!(IpsecLink::tcp_connects(&link.clinic_ns, DC_OUTSIDE, PORT, Duration::from_secs(5))?);
    let refused = wait_audit(&world, before, |e| e.event.action == "net.connect").await?;
    assert_eq!(refused.event.outcome, "refused");
    assert_eq!(refused.event.reason, "source_not_allowed");
    assert!(refused.event.object.starts_with(&format!("peer:{CLINIC_OUTSIDE}:")), "{:?}", refused.event);

    // 3. Tunnel torn down: the same login fails, and the attempt never
    // reaches the gateway: the data centre's firewall drops the clinic
    // subnet arriving outside the tunnel, and the gateway records nothing.
    link.tear_down()?;
    let dropped_before = link.dropped_outside_tunnel()?;
    let mark = world.audit().await.len();
    let (code, out, err) = login(&agent)?;
    assert_ne!(code, 0, "a login without the tunnel succeeded: {out}");
    assert!(err.contains("gateway_unreachable"), "the refusal should say the gateway was not reached: {out}{err}");
    assert!(link.dropped_outside_tunnel()? > dropped_before, "no packet was dropped at the data centre");
    let after = world.audit().await;
    let reached: Vec<_> = after[mark..].iter().filter(|e| reached_gateway(&e.event.action)).collect();
    assert!(reached.is_empty(), "the attempt reached the gateway: {reached:?}");

    // 4. The tunnel back: the doctor logs in again.
    link.swanctl("clinic", &["--initiate", "--child", ipsec_link::CHILD])?;
    link.wait_established(Duration::from_secs(15))?;
    let (code, out, err) = login(&agent)?;
    assert_eq!(code, 0, "login after the tunnel came back failed: {out}{err}");
    assert!(world.chain_verifies().await);
    Ok(())
}

/// The first audit entry after index `from` that `pred` accepts (the
/// gateway process writes it a moment after the refusal).
async fn wait_audit(
    world: &World,
    from: usize,
    pred: impl Fn(&hpki_gateway::audit::AuditRecord) -> bool,
) -> Result<hpki_gateway::audit::AuditRecord> {
    for _ in 0..100 {
        if let Some(e) = world.audit().await.into_iter().skip(from).find(|e| pred(e)) {
            return Ok(e);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("no such audit entry")
}
