//! The gateway against nginx, measured in one run on this machine
//! (`bench/gateway-vs-nginx.sh`; method: shared/reference/bench-method.md).
//!
//! 1. Logins per second end to end: challenge + login over keep-alive mTLS,
//!    SQLite store, every login validated and audited; 16 terminals (as in
//!    every earlier run), then 64 (larger commit groups). The card's signature
//!    is made in software with the card's own key: this measures the gateway,
//!    not the card (the card layer has its own benchmark).
//! 2. Authenticated `GET /v1/auth/whoami` per second over keep-alive mTLS,
//!    against nginx with `ssl_verify_client on` + CRL serving a static 200,
//!    same certificates, same load tool (oha), same connection count.
//! 3. Full mTLS handshakes per second (no keep-alive, no resumption on either
//!    side), gateway against the same nginx.
//!
//! 2 and 3 also measure `tls-floor` (tests/tls_floor.rs): the gateway's own
//! TLS configuration and hyper settings answering a static 200, i.e. this
//! stack with none of the gateway's work. Its ratio to nginx says how much
//! of the gap is tokio + rustls + hyper and how much the session lookup,
//! the audit entry and the log.
//!
//! The whoami test also runs nginx writing its access log (the nearest
//! static-200 peer to a server that records every request), nginx with
//! `auth_request` to a second location answering 204 plus its access log
//! (the cheapest session-checked, logged design nginx offers), and once more
//! pinned: every server on CPU 0, oha on CPU 1 with one thread (bench-method
//! point 2), after the unpinned tests.
//!
//! Servers alternate (A B C A B C …); medians of the rounds; server CPU per
//! operation from /proc.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hpki_ca::{CaDir, CaRole, CardRequest, ServerRequest, TerminalRequest};
use hpki_card::CardVariant;
use hpki_e2e::{PIN, SoftwareCard, TerminalClient, TerminalCreds};

const GATEWAY_ID: &str = "bench.invalid";
use hpki_profile::Profession;
use serde_json::Value;

const ROUNDS: usize = 3;
const SECONDS: u64 = 8;
const CONNECTIONS: usize = 50;

struct Proc(Child);

impl Drop for Proc {
    /// SIGTERM first: nginx's master then stops its workers (a SIGKILLed
    /// master leaves them running, holding the port and the bench's output
    /// pipe); SIGKILL if it has not ended within 5 s.
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// utime + stime of a process and its threads, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// nginx master and workers.
fn nginx_cpu(master: u32) -> f64 {
    nginx_pids(master).into_iter().map(cpu_seconds).sum()
}

/// Moves every thread of these processes onto CPU 0.
fn pin_to_cpu0(pids: &[u32]) -> Result<()> {
    for pid in pids {
        let out = Command::new("taskset").args(["-a", "-p", "-c", "0", &pid.to_string()]).output()?;
        anyhow::ensure!(out.status.success(), "taskset {pid}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// nginx's master and its workers.
fn nginx_pids(master: u32) -> Vec<u32> {
    let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children")).unwrap_or_default();
    std::iter::once(master).chain(children.split_whitespace().filter_map(|p| p.parse().ok())).collect()
}

/// `clients` terminals logging in one after the other for SECONDS each:
/// logins per second and the gateway's CPU seconds per login.
async fn login_load(
    clients: usize,
    soft: &Arc<SoftwareCard>,
    addr: std::net::SocketAddr,
    server_ca: &std::path::Path,
    creds: &TerminalCreds,
    gw_pid: u32,
) -> Result<(f64, f64)> {
    let logins = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_seconds(gw_pid);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(SECONDS);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (soft, logins, refused, creds, server_ca) =
            (soft.clone(), logins.clone(), refused.clone(), creds.clone(), server_ca.to_path_buf());
        tasks.push(tokio::spawn(async move {
            let mut client = TerminalClient::connect(addr, &server_ca, &creds).await?;
            while Instant::now() < deadline {
                let (status, _) = soft.login(&mut client, GATEWAY_ID).await?;
                if status == 200 {
                    logins.fetch_add(1, Ordering::Relaxed)
                } else {
                    refused.fetch_add(1, Ordering::Relaxed)
                };
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = logins.load(Ordering::Relaxed);
    anyhow::ensure!(refused.load(Ordering::Relaxed) == 0, "some logins were refused");
    Ok((n as f64 / elapsed, (cpu_seconds(gw_pid) - cpu0) / n.max(1) as f64))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn oha_path() -> Result<PathBuf> {
    let home = std::env::var("HOME").unwrap_or_default();
    [
        PathBuf::from(format!("{home}/.cargo/bin/oha")),
        PathBuf::from("/usr/local/bin/oha"),
        PathBuf::from("/usr/bin/oha"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .context("oha not found (cargo install oha --locked; bench/gateway-vs-nginx.sh does it)")
}

/// A server under load: name, URL, and the CPU seconds of its processes.
/// Name, URL, CPU seconds so far, bearer token.
type Server = (&'static str, String, Box<dyn Fn() -> f64>, String);

struct OhaResult {
    rps: f64,
    ok: u64,
    total: u64,
}

/// One oha run; `pinned`: oha on CPU 1 with one worker thread (the servers
/// are then on CPU 0).
fn oha(url: &str, creds: &TerminalCreds, token: Option<&str>, keepalive: bool, pinned: bool) -> Result<OhaResult> {
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "1"]).arg(oha_path()?).args(["--worker-threads", "1"]);
        c
    } else {
        Command::new(oha_path()?)
    };
    cmd.args([
        "--no-tui",
        "--output-format",
        "json",
        "-z",
        &format!("{SECONDS}s"),
        "-c",
        &CONNECTIONS.to_string(),
        "--insecure",
    ])
    .arg("--cert")
    .arg(&creds.cert)
    .arg("--key")
    .arg(&creds.key);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if !keepalive {
        cmd.arg("--disable-keepalive");
    }
    let out = cmd.arg(url).output().context("running oha")?;
    if !out.status.success() {
        bail!("oha failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("oha JSON")?;
    let codes = &v["statusCodeDistribution"];
    let ok = codes["200"].as_u64().unwrap_or(0);
    let total = codes.as_object().map(|m| m.values().filter_map(Value::as_u64).sum()).unwrap_or(0);
    Ok(OhaResult { rps: v["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0), ok, total })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn wait_port(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on {port}")
}

#[tokio::main]
async fn main() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut ca = CaDir::init(&dir.join("ca"), hpki_ca::DEFAULT_CRL_BASE_URL)?;
    ca.issue_server(
        &ServerRequest {
            name: "bench".into(),
            dns: vec!["localhost".into()],
            ips: vec!["127.0.0.1".parse()?],
            valid_days: 5,
        },
        &dir.join("server"),
    )?;
    ca.issue_terminal(
        &TerminalRequest { institution: "Bench Clinic".into(), name: "desk".into(), valid_days: 5 },
        &dir.join("terminal"),
    )?;
    let image_path = dir.join("doctor.json");
    let card = ca.issue_card(
        &CardRequest {
            profession: Profession::Doctor,
            name: "Bench Doctor".into(),
            name_kanji: None,
            institution: Some("Bench Clinic".into()),
            institution_kanji: None,
            license_no: "777777".into(),
            verified_by: "bench".into(),
            pin: PIN.into(),
            variant: CardVariant::Jma,
            retry_limit: 5,
            valid_days: 5,
        },
        &image_path,
    )?;
    ca.publish_crls(&dir.join("crl"), time::Duration::days(4))?;
    for role in CaRole::ALL {
        std::fs::write(dir.join(format!("{}.der", role.name())), ca.ca_cert_der(role)?)?;
        std::fs::write(
            dir.join(format!("{}.pem", role.name())),
            hpki_ca::keys::pem("CERTIFICATE", &ca.ca_cert_der(role)?),
        )?;
    }
    drop(ca);
    let creds = TerminalCreds {
        cert: dir.join("terminal/terminal.pem"),
        key: dir.join("terminal/terminal.key"),
        chain: dir.join("terminal/ca-chain.pem"),
    };
    // oha presents one certificate: put the terminal CA after the leaf.
    let chain_pem = std::fs::read_to_string(&creds.cert)? + &std::fs::read_to_string(dir.join("terminal.pem"))?;
    std::fs::write(dir.join("terminal/with-chain.pem"), chain_pem)?;
    let oha_creds = TerminalCreds { cert: dir.join("terminal/with-chain.pem"), ..creds.clone() };

    // The gateway (release build), SQLite, request logs off like nginx's.
    let gw_port = free_port()?;
    let ops_port = free_port()?;
    let config = dir.join("gateway.toml");
    let config_text = |store: &str, port: u16, ops: u16| {
        format!(
            "gateway_id = \"{GATEWAY_ID}\"\n[store]\n{store}\n\
             [listener]\naddress = \"127.0.0.1:{port}\"\ncertificate = \"server/server.pem\"\nkey = \"server/server.key\"\n\
             terminal_ca = [\"terminal.der\"]\nterminal_crls = [\"crl/terminal.crl\"]\nallow = [\"127.0.0.0/8\"]\n\
             max_connections = 4096\nrequests_per_second_per_terminal = 10000000\n\
             [hpki]\nanchors = [\"root.der\"]\nintermediates = [\"hpki-auth.der\"]\ncrls = [\"crl/root.crl\", \"crl/hpki-auth.crl\"]\naccept_test_policies = true\n\
             {scopes}\
             [ops]\naddress = \"127.0.0.1:{ops}\"\n",
            scopes = hpki_e2e::test_hierarchy_scopes(),
        )
    };
    std::fs::write(&config, config_text("sqlite_dir = \"data\"", gw_port, ops_port))?;
    // The same gateway on PostgreSQL (the machine's server, a database of
    // its own), for whoami.
    let pg = hpki_e2e::PgDatabase::create().await.context("PostgreSQL (scripts/ensure-postgres.sh)")?;
    let pg_port = free_port()?;
    let pg_config = dir.join("gateway-pg.toml");
    std::fs::write(&pg_config, config_text(&format!("postgres_url = {:?}", pg.url), pg_port, free_port()?))?;
    let gateway_bin = testbed::bin_path("hpki-gateway")?;
    let run = |config: &std::path::Path, args: &[&str]| -> Result<()> {
        let o =
            Command::new(&gateway_bin).arg("--config").arg(config).args(args).env("HPKI_OPERATOR", "bench").output()?;
        if !o.status.success() {
            bail!("{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        }
        Ok(())
    };
    let serve = |config: &std::path::Path| -> Result<Proc> {
        for args in [
            &["migrate"][..],
            &["admin", "add-institution", "--name", "Bench Clinic"],
            &[
                "admin",
                "add-person",
                "--id",
                &card.person_id,
                "--role",
                "doctor",
                "--name",
                "Bench Doctor",
                "--institution",
                "Bench Clinic",
            ],
        ] {
            run(config, args)?;
        }
        Ok(Proc(
            Command::new(&gateway_bin)
                .arg("--config")
                .arg(config)
                .arg("serve")
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .spawn()?,
        ))
    };
    let gw = serve(&config)?;
    wait_port(gw_port)?;
    let gw_pg = serve(&pg_config)?;
    wait_port(pg_port)?;

    // nginx with the same certificates.
    let ng_port = free_port()?;
    // The same server once more, writing nginx's access log (a line per
    // request, unbuffered): the nearest nginx comes to "every request is
    // recorded" (the gateway's audit entry is more: committed and chained).
    let ng_log_port = free_port()?;
    // And the cheapest session-checked, logged design nginx offers: every
    // request first asks a second location (`auth_request`, a subrequest,
    // answered 204 here — a real deployment would ask a session service)
    // and is written to the access log.
    let ng_auth_port = free_port()?;
    std::fs::create_dir_all(dir.join("nginx/logs"))?;
    let server_chain =
        std::fs::read_to_string(dir.join("server/server.pem"))? + &std::fs::read_to_string(dir.join("service.pem"))?;
    std::fs::write(dir.join("nginx/server-chain.pem"), server_chain)?;
    // OpenSSL builds the chain to a self-signed root and, checking CRLs,
    // wants one for every CA in it: terminal CA + root, and both CRLs.
    let crl_pem = hpki_ca::keys::pem("X509 CRL", &std::fs::read(dir.join("crl/terminal.crl"))?)
        + &hpki_ca::keys::pem("X509 CRL", &std::fs::read(dir.join("crl/root.crl"))?);
    std::fs::write(dir.join("nginx/terminal.crl.pem"), crl_pem)?;
    let client_cas =
        std::fs::read_to_string(dir.join("terminal.pem"))? + &std::fs::read_to_string(dir.join("root.pem"))?;
    std::fs::write(dir.join("nginx/client-cas.pem"), client_cas)?;
    let d = dir.display();
    std::fs::write(
        dir.join("nginx/nginx.conf"),
        format!(
            "worker_processes 2;\npid {d}/nginx/nginx.pid;\nerror_log {d}/nginx/logs/error.log warn;\ndaemon off;\n\
             events {{ worker_connections 4096; }}\n\
             http {{ access_log off;\n  server {{\n    listen 127.0.0.1:{ng_port} ssl;\n    ssl_protocols TLSv1.3;\n    ssl_ecdh_curve X25519;\n\
             ssl_certificate {d}/nginx/server-chain.pem;\n    ssl_certificate_key {d}/server/server.key;\n\
             ssl_verify_client on;\n    ssl_verify_depth 2;\n    ssl_client_certificate {d}/nginx/client-cas.pem;\n    ssl_crl {d}/nginx/terminal.crl.pem;\n\
             ssl_session_cache off;\n    ssl_session_tickets off;\n    keepalive_requests 1000000;\n\
             location / {{ default_type application/json; return 200 '{{\"ok\":true}}'; }}\n  }}\n\
             server {{\n    listen 127.0.0.1:{ng_log_port} ssl;\n    access_log {d}/nginx/logs/access.log;\n    ssl_protocols TLSv1.3;\n    ssl_ecdh_curve X25519;\n\
             ssl_certificate {d}/nginx/server-chain.pem;\n    ssl_certificate_key {d}/server/server.key;\n\
             ssl_verify_client on;\n    ssl_verify_depth 2;\n    ssl_client_certificate {d}/nginx/client-cas.pem;\n    ssl_crl {d}/nginx/terminal.crl.pem;\n\
             ssl_session_cache off;\n    ssl_session_tickets off;\n    keepalive_requests 1000000;\n\
             location / {{ default_type application/json; return 200 '{{\"ok\":true}}'; }}\n  }}\n\
             server {{\n    listen 127.0.0.1:{ng_auth_port} ssl;\n    access_log {d}/nginx/logs/access-auth.log;\n    ssl_protocols TLSv1.3;\n    ssl_ecdh_curve X25519;\n\
             ssl_certificate {d}/nginx/server-chain.pem;\n    ssl_certificate_key {d}/server/server.key;\n\
             ssl_verify_client on;\n    ssl_verify_depth 2;\n    ssl_client_certificate {d}/nginx/client-cas.pem;\n    ssl_crl {d}/nginx/terminal.crl.pem;\n\
             ssl_session_cache off;\n    ssl_session_tickets off;\n    keepalive_requests 1000000;\n\
             location = /session-check {{ internal; return 204; }}\n\
             location / {{ auth_request /session-check; default_type application/json; return 200 '{{\"ok\":true}}'; }}\n  }}\n}}\n"
        ),
    )?;
    let nginx = Proc(
        Command::new("nginx")
            .args(["-p", &format!("{d}/nginx"), "-c", &format!("{d}/nginx/nginx.conf")])
            .stdin(Stdio::null())
            .spawn()
            .context("starting nginx (apt-get install nginx-light)")?,
    );
    wait_port(ng_port)?;
    wait_port(ng_log_port)?;
    wait_port(ng_auth_port)?;
    // The floor: same TLS configuration, static 200, its own port.
    let floor_port = free_port()?;
    let floor_config = dir.join("floor.toml");
    std::fs::write(&floor_config, config_text("sqlite_dir = \"data\"", floor_port, free_port()?))?;
    let floor = Proc(
        Command::new(testbed::bin_path("tls-floor")?)
            .arg("--config")
            .arg(&floor_config)
            .stdin(Stdio::null())
            .spawn()
            .context("starting tls-floor (cargo build --release -p hpki-e2e --bin tls-floor)")?,
    );
    wait_port(floor_port)?;
    let gw_pid = gw.0.id();
    let ng_pid = nginx.0.id();
    let floor_pid = floor.0.id();

    // 1. Logins per second.
    let soft = Arc::new(SoftwareCard::load(&image_path)?);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{gw_port}").parse()?;
    let server_ca = dir.join("server/ca-chain.pem");
    // 16 clients as in every earlier run; 64 to show what larger commit
    // groups do to the rate and the CPU per login.
    let mut logins_lines = Vec::new();
    for clients in [16, 64] {
        let (rate, cpu) = login_load(clients, &soft, addr, &server_ca, &creds, gw_pid).await?;
        let line = format!(
            "logins end to end (challenge + login, keep-alive mTLS, SQLite, {clients} clients): {rate:.0} logins/s, gateway CPU {:.0} µs per login",
            cpu * 1e6
        );
        // At once too (stderr), for a quick look without the whoami rounds.
        eprintln!("{line}");
        logins_lines.push(line);
    }

    // One session for whoami.
    let mut client = TerminalClient::connect(addr, &server_ca, &creds).await?;
    let (_, body) = soft.login(&mut client, GATEWAY_ID).await?;
    let token = body["session"].as_str().context("session")?.to_owned();
    let pg_addr: std::net::SocketAddr = format!("127.0.0.1:{pg_port}").parse()?;
    let mut pg_client = TerminalClient::connect(pg_addr, &server_ca, &creds).await?;
    let (_, body) = soft.login(&mut pg_client, GATEWAY_ID).await?;
    let pg_token = body["session"].as_str().context("session on PostgreSQL")?.to_owned();
    let pg_pid = gw_pg.0.id();

    let url = |port: u16| format!("https://localhost:{port}/v1/auth/whoami");
    let t = || token.clone();
    let servers: [Server; 6] = [
        ("gateway", url(gw_port), Box::new(move || cpu_seconds(gw_pid)), t()),
        ("nginx", url(ng_port), Box::new(move || nginx_cpu(ng_pid)), t()),
        ("nginx + access log", url(ng_log_port), Box::new(move || nginx_cpu(ng_pid)), t()),
        ("nginx auth_request", url(ng_auth_port), Box::new(move || nginx_cpu(ng_pid)), t()),
        ("tls-floor", url(floor_port), Box::new(move || cpu_seconds(floor_pid)), t()),
        ("gateway, PostgreSQL", url(pg_port), Box::new(move || cpu_seconds(pg_pid)), pg_token.clone()),
    ];
    // (label, keep-alive, pinned, which servers)
    let tests: [(&str, bool, bool, &[usize]); 3] = [
        ("whoami, keep-alive", true, false, &[0, 1, 2, 3, 4, 5]),
        ("full mTLS handshakes", false, false, &[0, 1, 4]),
        ("whoami, keep-alive, server on CPU 0 and oha on CPU 1", true, true, &[0, 1, 2, 3, 4]),
    ];

    let mut results = Vec::new();
    for (label, keepalive, pinned, which) in tests {
        if pinned {
            let mut pids = vec![gw_pid, floor_pid];
            pids.extend(nginx_pids(ng_pid));
            pin_to_cpu0(&pids)?;
        }
        // Per server: requests/s and CPU seconds per request, one per round.
        let mut rps = vec![Vec::new(); which.len()];
        let mut cpu = vec![Vec::new(); which.len()];
        for _ in 0..ROUNDS {
            for (k, &i) in which.iter().enumerate() {
                let (name, url, cpu_of, token) = &servers[i];
                let c0 = cpu_of();
                let r = oha(url, &oha_creds, Some(token), keepalive, pinned)?;
                anyhow::ensure!(
                    r.ok == r.total && r.total > 0,
                    "{name}: {} of {} requests answered 200",
                    r.ok,
                    r.total
                );
                cpu[k].push((cpu_of() - c0) / r.total as f64);
                rps[k].push(r.rps);
            }
        }
        let rows: Vec<(&str, f64, f64)> = which
            .iter()
            .zip(rps.into_iter().zip(cpu))
            .map(|(&i, (r, c))| (servers[i].0, median(r), median(c)))
            .collect();
        results.push((label, rows));
    }

    println!(
        "gateway vs nginx 1.22 (ssl_verify_client on + CRL, TLS 1.3, X25519, no resumption, static 200; also with its access log) nginx auth_request to a 204 location + access log, and tls-floor (the gateway's TLS + hyper, static 200); the gateway also on PostgreSQL (whoami); oha, {CONNECTIONS} connections, {SECONDS} s x {ROUNDS} rounds alternating, medians; unpinned, all share this machine's 2 cores with oha"
    );
    for line in &logins_lines {
        println!("{line}");
    }
    for (label, rows) in results {
        println!("{label}:");
        let peer = |n: &str| rows.iter().find(|r| r.0 == n).map(|r| r.1);
        let nginx = peer("nginx").unwrap_or(f64::NAN);
        let auth = peer("nginx auth_request");
        for (name, rps, cpu) in &rows {
            let to_auth = auth.map(|a| format!("  ratio to auth_request {:.2}", rps / a)).unwrap_or_default();
            println!(
                "  {name:<20} {rps:>8.0}/s  {:>7.1} µs CPU each  ratio to nginx {:.2}{to_auth}",
                cpu * 1e6,
                rps / nginx
            );
        }
    }
    drop(floor);
    drop(nginx);
    drop(gw);
    drop(gw_pg);
    pg.drop_db().await;
    Ok(())
}
