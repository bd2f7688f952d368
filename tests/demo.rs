//! `hpki-demo` (`make demo`): the product's main job on the embedded
//! defaults, end to end on this machine. IT staff create a test CA, a
//! doctor's card, the gateway's and a terminal's credentials; the gateway
//! runs on SQLite; a private pcscd runs the card as a virtual card; the
//! clinic terminal's `card-agent` reads it, checks the PIN and signs the
//! gateway's channel-bound challenge; the doctor is logged in, pulling the
//! card logs out; the assistant drafts, the doctor confirms, the record is
//! time-stamped by a test TSA and checked with OpenSSL outside the gateway,
//! the patient reads it, and the audit log shows it all. On a terminal, the demo
//! then keeps running so a person can log in through the agent's local UI.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hpki_ca::{CaDir, CaRole, CardRequest, ServerRequest, TerminalRequest};
use std::io::IsTerminal;

use hpki_card::CardVariant;
use hpki_e2e::independent::{openssl, pem_of};
use hpki_e2e::test_tsa::TestTsa;
use hpki_e2e::{AgentOptions, AgentProcess, GatewayProcess, PIN, TerminalCreds, free_port, gateway_cli, reader_view};
use hpki_profile::Profession;
use testbed::{CardProcess, PrivatePcscd};

const INSTITUTION: &str = "Kanazawa Clinic";

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
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
    let assistant_path = dir.join("assistant.json");
    ca.issue_assistant_card(
        &hpki_ca::AssistantRequest {
            institution: INSTITUTION.into(),
            institution_kanji: Some("金沢診療所".into()),
            name: "Suzuki Hana".into(),
            name_kanji: Some("鈴木花".into()),
            staff_id: "S-0042".into(),
            pin: PIN.into(),
            variant: CardVariant::Jahis,
            retry_limit: 5,
            valid_days: 365,
        },
        &assistant_path,
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
    let assistant_image = virtual_card::CardImage::load(&assistant_path)?;
    std::fs::write(dir.join("assistant-auth.der"), &assistant_image.authentication.certificate)?;
    println!("    assistant card {} for Suzuki Hana (staff S-0042), PIN {PIN}", assistant_path.display());
    println!("    card {} for {} (person id {}), PIN {PIN}", card_path.display(), issued.holder, issued.person_id);
    println!(
        "    gateway certificate {}, terminal certificate {}",
        dir.join("server").display(),
        dir.join("terminal").display()
    );
    // A time-stamping authority for the records' signatures (DATA-4): here
    // OpenSSL's `ts -reply` behind HTTP, its certificate from the service CA.
    let tsa = TestTsa::start(&mut ca, &dir.join("tsa")).await?;
    println!("    test TSA (openssl ts -reply) at {}, certificate {}", tsa.url, dir.join("tsa/tsa.pem").display());
    drop(ca);

    step(3, "The gateway on SQLite: configuration, schema, an institution, the doctor registered");
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let ops: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let patients: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let config = dir.join("gateway.toml");
    let scopes = hpki_e2e::test_hierarchy_scopes();
    std::fs::write(
        &config,
        format!(
            "gateway_id = \"gateway.demo.invalid\"\n[store]\nsqlite_dir = \"data\"\n\
             [listener]\naddress = \"{listen}\"\ncertificate = \"server/server.pem\"\nkey = \"server/server.key\"\n\
             terminal_ca = [\"terminal.der\"]\nterminal_crls = [\"crl/terminal.crl\"]\nallow = [\"127.0.0.0/8\"]\n\
             [hpki]\nanchors = [\"root.der\"]\nintermediates = [\"hpki-auth.der\", \"hpki-sign.der\", \"institution.der\"]\n\
             crls = [\"crl/root.crl\", \"crl/hpki-auth.crl\", \"crl/hpki-sign.crl\", \"crl/institution.crl\"]\n\
             accept_test_policies = true\n\
             {scopes}\
             [ops]\naddress = \"{ops}\"\n\
             [patients]\naddress = \"{patients}\"\ncertificate = \"server/server.pem\"\nkey = \"server/server.key\"\n\
             [timestamps]\nurl = \"{tsa_url}\"\nanchors = [\"root.der\"]\nintermediates = [\"service.der\"]\n\
             crls = [\"crl/root.crl\", \"crl/service.crl\"]\n",
            tsa_url = tsa.url
        ),
    )?;
    println!("    {}", gateway_cli(&config, &["migrate"])?);
    println!(
        "    {}",
        gateway_cli(&config, &["admin", "add-institution", "--name", INSTITUTION, "--name-kanji", "金沢診療所"])?
    );
    let cert_arg = dir.join("doctor-auth.der").display().to_string();
    println!(
        "    {}",
        gateway_cli(&config, &["admin", "add-person", "--cert", &cert_arg, "--institution", INSTITUTION])?
    );
    let assistant_arg = dir.join("assistant-auth.der").display().to_string();
    println!(
        "    {}",
        gateway_cli(&config, &["admin", "add-person", "--cert", &assistant_arg, "--institution", INSTITUTION])?
    );
    let assistant_id = format!("{INSTITUTION}/S-0042");
    println!(
        "    {}",
        gateway_cli(&config, &["admin", "link", "--assistant", &assistant_id, "--doctor", &issued.person_id])?
    );
    let _gateway = GatewayProcess::start(&config, ops)?;
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

    step(7, "Assistant input: the assistant's card logs in, opens the patient's encounter, drafts for the doctor");
    let mut assistant_card = CardProcess::start(&pcscd, 1, &assistant_path)?;
    let a_reader = assistant_card.reader().to_owned();
    agent.wait_card_read(&a_reader).await?;
    let (code, out, err) = tokio::task::block_in_place(|| {
        agent.cli(&["login", "--reader", &a_reader, "--pin-stdin"], &format!("{PIN}\n"))
    })?;
    if code != 0 {
        bail!("assistant login refused: {err}");
    }
    println!("    {}", out.trim());
    let (_, patient) = agent
        .api(
            "POST",
            "/api/v1/gateway/v1/patients",
            Some(serde_json::json!({"name": "Tanaka Kazuko", "name_kanji": "田中和子", "birth_date": "1948-03-15"})),
        )
        .await?;
    let pid = patient["id"].as_str().context("patient id")?.to_owned();
    let (_, enc) =
        agent.api("POST", "/api/v1/gateway/v1/encounters", Some(serde_json::json!({"patient": pid}))).await?;
    println!("    patient {pid} (田中和子) registered; encounter {} open until {}", enc["id"], enc["expires_at"]);
    let content =
        serde_json::json!({"type": "prescription", "drug": "アムロジピン 5mg", "dose": "1日1回 朝食後", "days": 28});
    let (_, draft) = agent
        .api(
            "POST",
            "/api/v1/gateway/v1/drafts",
            Some(serde_json::json!({"encounter": enc["id"], "doctor": issued.person_id, "content": content})),
        )
        .await?;
    let draft_id = draft["id"].as_str().context("draft id")?.to_owned();
    println!(
        "    draft {draft_id} v{} for {} — not a record until the doctor confirms",
        draft["version"], issued.person_id
    );
    tokio::task::block_in_place(|| assistant_card.remove())?;

    step(8, "Doctor confirm: the queue, exactly the bytes to sign, the signature PIN, the record");
    let (code, _, err) =
        tokio::task::block_in_place(|| agent.cli(&["login", "--reader", &reader, "--pin-stdin"], &format!("{PIN}\n")))?;
    if code != 0 {
        bail!("doctor login refused: {err}");
    }
    let (_, out, _) = tokio::task::block_in_place(|| agent.cli(&["queue"], ""))?;
    println!("    card-agent queue: {}", out.trim());
    let (code, out, err) = tokio::task::block_in_place(|| {
        agent.cli(&["confirm", "--draft", &draft_id, "--pin-stdin"], &format!("{PIN}\n"))
    })?;
    if code != 0 {
        bail!("confirm refused: {err}\n{}", agent.log());
    }
    for line in out.lines() {
        println!("    {line}");
    }

    step(9, "The patient: consent and enrolment at the desk, then sign-in over TLS (no card)");
    let enrolled = gateway_cli(&config, &["admin", "patient", "enroll", "--patient", &pid, "--consent", INSTITUTION])?;
    let initial = enrolled
        .lines()
        .find_map(|l| l.strip_prefix("initial password: "))
        .context("initial password")?
        .trim()
        .to_owned();
    println!("    hpki-gateway admin patient enroll: ID {pid}, initial password {initial}");
    let mut portal = hpki_e2e::PatientClient::to(patients, &server_ca)?;
    let (_, s) =
        portal.request("POST", "/p/v1/login", Some(&serde_json::json!({"id": pid, "password": initial}))).await?;
    portal.token = s["session"].as_str().map(str::to_owned);
    let (_, refused) = portal.request("GET", "/p/v1/records", None).await?;
    println!("    first sign-in: must change password = {}; records: {}", s["must_change_password"], refused["error"]);
    let chosen = "haru-no-kanazawa-2026";
    let (status, _) =
        portal.request("POST", "/p/v1/password", Some(&serde_json::json!({"current": initial, "new": chosen}))).await?;
    println!("    new password set ({status}); the records the patient sees:");
    let (_, mine) = portal.request("GET", "/p/v1/records", None).await?;
    for r in mine["records"].as_array().into_iter().flatten() {
        println!("    - {} {} confirmed by {}: {}", r["institution"], r["kind"], r["signer"], r["content"]);
    }
    println!("    (the same page for people: https://{patients}/)");

    step(10, "The signed record, checked outside the gateway with OpenSSL");
    let record_id = mine["records"][0]["id"].as_str().context("the patient's record")?.to_owned();
    let out = dir.join("export");
    let out_arg = out.display().to_string();
    println!("    {}", gateway_cli(&config, &["records", "export", "--record", &record_id, "--out", &out_arg])?);
    std::fs::copy(dir.join("root.der"), out.join("root.der"))?;
    pem_of(&out, "root.der", "root.pem");
    let cms = ["cms", "-verify", "-binary", "-inform", "DER", "-in", "signature.p7s", "-content", "document.json"];
    let trust = ["-CAfile", "root.pem", "-purpose", "any", "-crl_check_all", "-out", "/dev/null"];
    println!("    $ openssl {} {}", cms.join(" "), trust.join(" "));
    let (good, text) = openssl(&out, &[&cms[..], &trust[..]].concat());
    anyhow::ensure!(good, "openssl cms -verify: {text}");
    println!("      {}  (the CRLs checked are only those the container carries)", text.trim());
    let opened =
        hpki_cades::open(&std::fs::read(out.join("signature.p7s"))?, &std::fs::read(out.join("document.json"))?)?;
    std::fs::write(out.join("signature-time-stamp.tst"), &opened.timestamps[0].der)?;
    std::fs::write(out.join("signature-value.bin"), &opened.signature)?;
    std::fs::copy(dir.join("service.der"), out.join("service.der"))?;
    pem_of(&out, "service.der", "service.pem");
    let ts = ["ts", "-verify", "-token_in", "-in", "signature-time-stamp.tst", "-data", "signature-value.bin"];
    let ts_trust = ["-CAfile", "root.pem", "-untrusted", "service.pem"];
    println!("    $ openssl {} {}", ts.join(" "), ts_trust.join(" "));
    let (good, text) = openssl(&out, &[&ts[..], &ts_trust[..]].concat());
    anyhow::ensure!(good, "openssl ts -verify: {text}");
    anyhow::ensure!(text.contains("Verification: OK"), "openssl ts -verify: {text}");
    println!(
        "      Verification: OK  (the signature time-stamp is over this signature value, by a TSA under the root)"
    );
    let verdict: serde_json::Value =
        serde_json::from_str(&gateway_cli(&config, &["records", "verify", "--dir", &out_arg])?)?;
    let when = |v: &serde_json::Value| v.as_i64().map_or_else(|| "-".into(), hpki_profile::validate::rfc3339);
    println!(
        "    hpki-gateway records verify: CAdES {}, signer {}, time-stamped {}, archive time-stamps {}, renew before {}",
        verdict["level"].as_str().unwrap_or("?"),
        verdict["signer_chain"][0].as_str().unwrap_or("?"),
        when(&verdict["time_stamped_at"]),
        verdict["archive_time_stamps"].as_array().map_or(0, Vec::len),
        when(&verdict["renew_before"])
    );

    step(11, "Break-glass (FLOW-7): a designated doctor's emergency access, its alert, and the auditor's review");
    println!("    {}", gateway_cli(&config, &["admin", "break-glass", "grant", "--person", &issued.person_id])?);
    let ask = serde_json::json!({"patient": pid, "reason": "emergency_treatment", "detail": "意識障害で救急搬送"});
    let (status, access) = agent.api("POST", "/api/v1/gateway/v1/break-glass", Some(ask)).await?;
    anyhow::ensure!(status == 201, "break-glass refused: {access}");
    let access_id = access["id"].as_str().context("access id")?.to_owned();
    println!("    access {access_id} to {pid} until {} (reason {})", access["expires_at"], access["reason"]);
    let (_, seen) = agent.api("GET", &format!("/api/v1/gateway/v1/break-glass/{access_id}/records"), None).await?;
    println!(
        "    {} record(s) read under it, from every institution, without an encounter or consent",
        seen["records"].as_array().map_or(0, Vec::len)
    );
    agent.api("POST", &format!("/api/v1/gateway/v1/break-glass/{access_id}/end"), Some(serde_json::json!({}))).await?;
    let month =
        hpki_gateway::ops::report::month_of(hpki_gateway::clock::Clock::now_ms(&hpki_gateway::clock::SystemClock));
    let report: serde_json::Value =
        serde_json::from_str(&gateway_cli(&config, &["report", "monthly", "--month", &month])?)?;
    let row = report["break_glass_review"]
        .as_array()
        .and_then(|r| r.iter().find(|a| a["id"] == access_id.as_str()).cloned())
        .context("the access in the monthly review")?;
    println!(
        "    monthly report {month}, break-glass review: {} by {}, {} read(s), {}; alerts: {}",
        row["id"],
        row["person"],
        row["reads"],
        row["end"],
        report["alerts"].as_array().map_or(0, Vec::len)
    );
    gateway_cli(
        &config,
        &[
            "admin",
            "break-glass",
            "review",
            "--id",
            &access_id,
            "--note",
            "救急搬送、適正",
            "--operator",
            "auditor-ito",
        ],
    )?;
    println!("    hpki-gateway admin break-glass review --id {access_id} --note 救急搬送、適正: recorded");

    step(12, "The patient downloads everything held about them as a FHIR R4 Bundle (FLOW-9)");
    let (status, bundle) = portal.request("GET", "/p/v1/disclosure/fhir", None).await?;
    anyhow::ensure!(status == 200, "disclosure refused: {bundle}");
    let file = dir.join("disclosure.fhir.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&bundle)?)?;
    let mut kinds = std::collections::BTreeMap::new();
    for e in bundle["entry"].as_array().into_iter().flatten() {
        *kinds.entry(e["resource"]["resourceType"].as_str().unwrap_or("?").to_owned()).or_insert(0) += 1;
    }
    println!("    GET /p/v1/disclosure/fhir → {} ({kinds:?})", file.display());
    let emergency = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["resource"]["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT")
        .count();
    println!("    the access log in it shows {emergency} break-glass entries, by institution and role");

    step(13, "The audit log");
    println!("    {}", gateway_cli(&config, &["audit", "verify"])?);
    for line in gateway_cli(&config, &["audit", "export", "--person", &issued.person_id])?.lines() {
        println!("    {line}");
    }

    println!("\nDemo complete: cards read through PC/SC, PINs verified, channel-bound logins over mutual TLS,");
    println!("the assistant's draft confirmed with the doctor's signature key over RFC 8785 bytes as a CAdES");
    println!("signature with RFC 3161 time-stamps that OpenSSL verifies, the record sealed with AES-256-GCM,");
    println!("the patient reading it after replacing the initial password, one break-glass access alerted and");
    println!("reviewed, the patient's disclosure as a FHIR R4 Bundle, and every step in the hash-chained audit log.");
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
