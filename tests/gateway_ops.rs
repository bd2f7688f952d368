//! Running the gateway: the operations endpoints, reloads, limits, and the
//! administration and audit commands of the real `hpki-gateway` binary.

use anyhow::Result;
use hpki_e2e::{World, WorldOptions};
use serde_json::{Value, json};

const CLINIC: &str = "Kanazawa Clinic";

/// Whether an audit entry of `action` with `reason` appears within 2 s
/// (connection-level refusals are audited after the socket is closed).
async fn audited(world: &World, action: &str, reason: &str) -> bool {
    for _ in 0..100 {
        let entries = world.gw.store.audit_page(0, 1000).await.unwrap_or_default();
        if entries.iter().any(|r| r.event.action == action && r.event.reason == reason) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// GET on the operations listener: status and body.
async fn ops_get(addr: std::net::SocketAddr, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: ops\r\nconnection: close\r\n\r\n").as_bytes()).await?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).await?;
    let status = resp.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    Ok((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_endpoints_report_liveness_readiness_and_metrics_log_5() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let ops = world.ops_addr;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let mut client = world.connect(&creds).await?;
    client.challenge().await?;
    let _ = client
        .post("/v1/auth/login", &json!({"challenge_id": "nope", "certificate": "", "signature": ""}), None)
        .await?;

    assert_eq!(ops_get(ops, "/healthz").await?, (200, "ok\n".into()));
    assert_eq!(ops_get(ops, "/readyz").await?.0, 200);
    let (status, metrics) = ops_get(ops, "/metrics").await?;
    assert_eq!(status, 200);
    assert!(metrics.contains("hpki_connections_accepted_total 1"), "{metrics}");
    assert!(metrics.contains("hpki_logins_refused_total 1"), "{metrics}");
    assert!(metrics.contains("hpki_requests_total 2"), "{metrics}");
    // Refusals by code, latency by action, TLS handshakes, audit batches.
    assert!(metrics.contains("hpki_refusals_total{code=\"unknown_challenge\"} 1"), "{metrics}");
    assert!(metrics.contains("hpki_request_duration_seconds_count{action=\"auth.challenge\"} 1"), "{metrics}");
    assert!(metrics.contains("hpki_request_duration_seconds_count{action=\"auth.login\"} 1"), "{metrics}");
    assert!(metrics.contains("hpki_tls_handshake_duration_seconds_count 1"), "{metrics}");
    assert!(metrics.contains("hpki_audit_batch_size_count"), "{metrics}");
    // A CRL past its nextUpdate makes the gateway not ready.
    world.clock.advance_secs(4 * 86_400 + 60);
    let (status, body) = ops_get(ops, "/readyz").await?;
    assert_eq!(status, 503);
    assert!(body.contains("past its nextUpdate"), "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_crl_is_refused_on_reload_and_the_old_one_stays_in_force() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let mut before = world.connect(&creds).await?;
    let in_force = world.gw.crl_next_update.load(std::sync::atomic::Ordering::Relaxed);
    assert!(in_force > world.gw.clock.now());
    std::fs::write(world.path("crl/terminal.crl"), b"not a CRL")?;
    let err = hpki_gateway::http::reload::reload(&world.gw).unwrap_err();
    assert!(err.contains("terminal.crl") && err.contains("not a CRL"), "{err}");
    assert!(world.gw.metrics.render().contains("hpki_reload_failures_total 1"));
    // Readiness still judges the CRLs in force, not the broken file.
    assert_eq!(world.gw.crl_next_update.load(std::sync::atomic::Ordering::Relaxed), in_force);
    // The running configuration is untouched: old and new connections work.
    assert_eq!(before.get("/v1/auth/whoami", None).await?.0, 401);
    let mut after = world.connect(&creds).await?;
    assert_eq!(after.get("/v1/auth/whoami", None).await?.0, 401);
    world.publish_crls()?;
    assert!(world.gw.metrics.render().contains("hpki_reloads_total 1"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_over_its_request_rate_is_slowed_down() -> Result<()> {
    let mut world = World::start(WorldOptions { requests_per_second: 3, ..WorldOptions::default() }).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let other = world.terminal(CLINIC, "desk-2")?;
    let mut client = world.connect(&creds).await?;
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(client.get("/v1/auth/whoami", None).await?.1["error"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(codes.iter().filter(|c| *c == "rate_limited").count(), 3, "{codes:?}");
    // Another terminal has its own budget.
    let mut elsewhere = world.connect(&other).await?;
    assert_eq!(elsewhere.get("/v1/auth/whoami", None).await?.1["error"], "no_session");
    // A second later the budget is back.
    world.clock.advance_secs(1);
    assert_eq!(client.get("/v1/auth/whoami", None).await?.1["error"], "no_session");
    assert!(world.gw.metrics.render().contains("hpki_rate_limited_total 3"));
    Ok(())
}

fn gateway(world: &World, args: &[&str]) -> Result<(i32, String, String)> {
    hpki_e2e::gateway_cli_raw(&world.config_path(), args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_are_audited_with_the_operator_and_bad_input_changes_nothing() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let doctor = world.card(hpki_profile::Profession::Doctor, "424242", CLINIC).await?;
    let img = virtual_card::CardImage::load(&doctor)?;
    std::fs::write(world.path("doctor.der"), &img.authentication.certificate)?;

    let (code, _, err) = gateway(&world, &["admin", "add-institution", "--name", "Noto Hospital"])?;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = gateway(&world, &["admin", "add-institution", "--name", "Noto Hospital"])?;
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = gateway(
        &world,
        &["admin", "add-person", "--id", "X-1", "--role", "surgeon", "--name", "X", "--institution", CLINIC],
    )?;
    assert_eq!(code, 2);
    assert!(err.contains("unknown role \"surgeon\""), "{err}");
    // Registering from the card certificate: already registered by the world.
    let cert = world.path("doctor.der").display().to_string();
    let (code, _, err) = gateway(&world, &["admin", "add-person", "--cert", &cert, "--institution", CLINIC])?;
    assert_eq!(code, 2);
    assert!(err.contains("MD-424242") && err.contains("already exists"), "{err}");
    let (code, _, err) = gateway(
        &world,
        &[
            "admin",
            "add-person",
            "--id",
            "Kanazawa Clinic/S-1",
            "--role",
            "assistant",
            "--name",
            "Aide",
            "--institution",
            CLINIC,
        ],
    )?;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) =
        gateway(&world, &["admin", "link", "--assistant", "Kanazawa Clinic/S-1", "--doctor", "MD-424242"])?;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = gateway(&world, &["admin", "deactivate", "--person", "MD-424242"])?;
    assert_eq!(code, 0, "{err}");
    assert!(!world.gw.store.person("MD-424242").await?.map(|p| p.active).unwrap_or(true));

    let (code, out, err) = gateway(&world, &["audit", "export", "--person", "admin:sato-it", "--json"])?;
    assert_eq!(code, 0, "{err}");
    let entries: Vec<Value> = serde_json::from_str(&out)?;
    let actions: Vec<(&str, &str)> =
        entries.iter().map(|e| (e["action"].as_str().unwrap_or(""), e["outcome"].as_str().unwrap_or(""))).collect();
    assert_eq!(
        actions,
        vec![
            ("admin.institution.add", "ok"),
            ("admin.institution.add", "refused"),
            ("admin.person.add", "refused"),
            ("admin.person.add", "refused"),
            ("admin.person.add", "ok"),
            ("admin.link", "ok"),
            ("admin.person.deactivate", "ok"),
        ]
    );
    let (code, out, _) = gateway(&world, &["audit", "verify"])?;
    assert_eq!(code, 0);
    assert!(out.starts_with("audit chain intact: 7 entries"), "{out}");
    // Each change staged its entry with it; each run's entry carries the
    // run's id and cleared what it staged (LOG-1, the audit outbox).
    assert_eq!(world.gw.store.outbox_rows().await?, []);
    assert!(entries.iter().all(|e| e["request_id"].as_str().is_some_and(|r| r.starts_with("cli-"))), "{entries:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_the_tampered_entry() -> Result<()> {
    let world = World::start(WorldOptions::default()).await?;
    for name in ["A Clinic", "B Clinic", "C Clinic"] {
        assert_eq!(gateway(&world, &["admin", "add-institution", "--name", name])?.0, 0);
    }
    // Tampering straight in the database file, protections removed first.
    let db = world.path("data/identity.db");
    let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", db.display())).await?;
    sqlx::query("DROP TRIGGER audit_no_update").execute(&mut c).await?;
    sqlx::query("UPDATE audit SET object = 'Z Clinic' WHERE seq = 2").execute(&mut c).await?;
    let (code, out, _) = gateway(&world, &["audit", "verify"])?;
    assert_eq!(code, 1);
    assert!(out.contains("entry 2: its content does not match its hash (changed)"), "{out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_sessions_are_never_resumed_so_every_connection_shows_its_certificate() -> Result<()> {
    let world = World::start(WorldOptions::default()).await?;
    let config = world.gw.tls.load_full();
    assert_eq!(config.send_tls13_tickets, 0, "no TLS 1.3 tickets");
    assert!(!config.session_storage.can_cache(), "no session cache");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_finishes_its_handshake_is_cut_off() -> Result<()> {
    use tokio::io::AsyncReadExt;
    let world = World::start(WorldOptions { handshake_timeout_seconds: 1, ..WorldOptions::default() }).await?;
    let mut silent = tokio::net::TcpStream::connect(world.addr).await?;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    // The server closes the socket once the timeout passes.
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), silent.read(&mut buf)).await??;
    assert_eq!(n, 0, "closed without a word");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "{:?}", started.elapsed());
    for _ in 0..100 {
        if world.gw.metrics.render().contains("hpki_handshake_timeouts_total 1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(world.gw.metrics.render().contains("hpki_handshake_timeouts_total 1"));
    assert!(audited(&world, "tls.handshake", "handshake_timeout").await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_refused_and_counted() -> Result<()> {
    let mut world = World::start(WorldOptions { max_connections: 2, ..WorldOptions::default() }).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let mut a = world.connect(&creds).await?;
    let mut b = world.connect(&creds).await?;
    assert_eq!(a.get("/v1/auth/whoami", None).await?.0, 401);
    assert_eq!(b.get("/v1/auth/whoami", None).await?.0, 401);
    // A third one is closed at once.
    let third = match world.connect(&creds).await {
        Err(_) => true,
        Ok(mut c) => c.get("/v1/auth/whoami", None).await.is_err(),
    };
    assert!(third, "the third connection must not be served");
    assert!(world.gw.metrics.render().contains("hpki_connections_refused_limit_total 1"));
    assert!(audited(&world, "net.connect", "connection_limit").await, "the refused connection is in the audit log");
    // When one leaves, a new one is served again.
    drop(a);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut c = world.connect(&creds).await?;
    assert_eq!(c.get("/v1/auth/whoami", None).await?.0, 401);
    Ok(())
}

/// `hpki-gateway serve` stops gracefully on SIGTERM (issue 17): it takes no
/// new connection, answers the request in flight — here one whose body is
/// still arriving when the signal comes —, has its audit entry durable, and
/// exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_request_in_flight_and_exits_zero() -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let (config, listen, ops) = world.process_config()?;
    let mut gateway = hpki_e2e::GatewayProcess::start(&config, ops)?;

    let tls_config = gateway_client::client_config(
        &world.path("server/ca-chain.pem"),
        &gateway_client::TerminalCredentials {
            certificate: creds.cert.clone(),
            key: creds.key.clone(),
            chain: creds.chain.clone(),
        },
    )?;
    let tcp = tokio::net::TcpStream::connect(listen).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost")?;
    let mut tls = tokio_rustls::TlsConnector::from(tls_config).connect(name, tcp).await?;
    tls.write_all(b"POST /v1/auth/challenge HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n").await?;
    tls.flush().await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    gateway.terminate()?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(tokio::net::TcpStream::connect(listen).await.is_err(), "no new connection after SIGTERM");
    assert!(gateway.wait_exit(std::time::Duration::from_millis(10)).is_err(), "still answering the request in flight");

    tls.write_all(b"{}").await?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default())?;
    let challenge = body["id"].as_str().unwrap_or_default().to_owned();
    assert!(!challenge.is_empty(), "{body}");

    let status = gateway.wait_exit(std::time::Duration::from_secs(25))?;
    assert!(status.success(), "exit status {status:?}");
    let audited = world.audit().await;
    assert!(
        audited
            .iter()
            .any(|r| r.event.action == "auth.challenge" && r.event.object == format!("challenge:{challenge}")),
        "the drained request is in the audit log"
    );
    Ok(())
}
