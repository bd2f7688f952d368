//! The local UI in a real browser: headless Chromium, driven over WebDriver
//! (chromedriver), opens the agent's page, types the PIN and sees the doctor
//! logged in. A screenshot goes to `target/tmp/test-output/`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::{ClientBuilder, Locator};
use hpki_e2e::{AgentOptions, AgentProcess, PIN, World, WorldOptions};
use hpki_profile::Profession;
use testbed::{CardProcess, PrivatePcscd};

const CLINIC: &str = "Kanazawa Clinic";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_chromedriver() -> Result<(Driver, u16)> {
    let path = "/usr/bin/chromedriver";
    anyhow::ensure!(
        std::path::Path::new(path).exists(),
        "chromedriver is not installed ({path}); `make test` installs chromium and chromium-driver"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting chromedriver")?;
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("chromedriver did not start on port {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((driver, port))
}

/// The clinic's card agent (Japanese UI) against `world`'s gateway, once it
/// has read the card in the first slot.
async fn start_agent(world: &World, pcscd: &PrivatePcscd, terminal: &hpki_e2e::TerminalCreds) -> Result<AgentProcess> {
    let ca = world.path("server/ca-chain.pem");
    let agent = AgentProcess::start(
        pcscd,
        AgentOptions { gateway: world.addr, gateway_ca: &ca, terminal, idle_lock_seconds: 300, language: "ja" },
    )
    .await?;
    agent.wait_card_read(&pcscd.reader(0)).await?;
    Ok(agent)
}

/// Headless Chromium under a fresh chromedriver; `extra` are more
/// command-line switches.
async fn start_browser(extra: &[String]) -> Result<(Driver, fantoccini::Client)> {
    let (driver, port) = start_chromedriver()?;
    let mut args: Vec<String> =
        ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=900,900"]
            .map(String::from)
            .to_vec();
    args.extend_from_slice(extra);
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }));
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .context("WebDriver session with headless Chromium")?;
    Ok((driver, client))
}

/// The page redraws when the agent's state changes, which makes element
/// handles stale: find the element again and retry.
async fn text_of(client: &fantoccini::Client, css: &str) -> Result<String> {
    read(client, css, None).await
}

/// A property (`value`, …) of the element at `css`, as [`text_of`].
async fn prop_of(client: &fantoccini::Client, css: &str, prop: &str) -> Result<String> {
    read(client, css, Some(prop)).await
}

async fn read(client: &fantoccini::Client, css: &str, prop: Option<&str>) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = async {
            let e = client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await?;
            match prop {
                Some(p) => Ok(e.prop(p).await?.unwrap_or_default()),
                None => e.text().await,
            }
        };
        match attempt.await {
            Ok(t) => return Ok(t),
            Err(e) if Instant::now() < deadline => {
                note_retry(&e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("reading {css}")),
        }
    }
}

fn note_retry(e: &fantoccini::error::CmdError) {
    eprintln!("retrying after: {e}");
}

/// Types `text` into the PIN field and presses the login button, finding
/// both again if the page redrew meanwhile.
async fn type_pin_and_submit(client: &fantoccini::Client, text: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = async {
            let pin = client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("input.pin")).await?;
            pin.clear().await?;
            pin.send_keys(text).await?;
            client.find(Locator::Css("button.login")).await?.click().await
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                note_retry(&e);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e).context("typing the PIN"),
        }
    }
}

async fn save_screenshot(client: &fantoccini::Client, name: &str) -> Result<()> {
    let shot = client.screenshot().await?;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-output");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(name);
    std::fs::write(&file, shot)?;
    println!("screenshot: {}", file.display());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doctor_logs_in_through_the_local_ui_in_chromium() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let terminal = world.terminal(CLINIC, "desk-1")?;
    let image = world.card(Profession::Doctor, "D-9009", CLINIC).await?;
    let pcscd = PrivatePcscd::start()?;
    let _card = CardProcess::start(&pcscd, 0, &image)?;
    let agent = start_agent(&world, &pcscd, &terminal).await?;

    let (_driver, client) = start_browser(&[]).await?;

    let result = async {
        let base = format!("http://{}/", agent.address);
        client.goto(&base).await?;
        // Japanese first: the card's holder is shown before the PIN is typed.
        client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("input.pin")).await?;
        let page = client.source().await?;
        anyhow::ensure!(page.contains("医師"), "the profession is not shown in Japanese");
        anyhow::ensure!(page.contains("残り試行回数: 5 回"), "tries left not shown");

        // A wrong PIN: the message says so and what was typed stays.
        type_pin_and_submit(&client, "9999").await?;
        let text = text_of(&client, ".message").await?;
        anyhow::ensure!(text.contains("暗証番号が違います") && text.contains("4"), "message: {text}");
        save_screenshot(&client, "card-agent-wrong-pin-ja.png").await?;
        let kept = prop_of(&client, "input.pin", "value").await?;
        anyhow::ensure!(kept == "9999", "the typed PIN was lost: {kept:?}");

        // English, then the right PIN.
        client.goto(&format!("{base}?lang=en")).await?;
        let pin = client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("input.pin")).await?;
        pin.send_keys(PIN).await?;
        client.find(Locator::Css("button.login")).await?.click().await?;
        let who =
            client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(".session .person-name")).await?;
        let name = who.text().await?;
        let role = client.find(Locator::Css(".session .person-role")).await?.text().await?;
        save_screenshot(&client, "card-agent-logged-in.png").await?;
        // Registered by the test world under its id as the name.
        anyhow::ensure!(name == "MD-D-9009", "logged-in name: {name:?}");
        anyhow::ensure!(role == "doctor", "logged-in role: {role:?}");

        // The session the browser shows is the gateway's.
        let (status, whoami) = agent.api("GET", "/api/v1/gateway/v1/auth/whoami", None).await?;
        anyhow::ensure!(status == 200 && whoami["person"]["role"] == "doctor", "whoami: {status} {whoami}");

        // A request without the page's CSRF token is refused.
        let (status, body) = agent.api("GET", "/ui/state", None).await?;
        anyhow::ensure!(status == 403 && body["error"] == "csrf", "no CSRF token: {status} {body}");
        Ok(())
    }
    .await;
    let _ = client.close().await;
    result
}

// ----- the whole workflow story in the browser -------------------------------------

/// Runs `step` until it works, for up to 15 s: the page may redraw between
/// finding an element and using it, or not show it yet.
async fn retry<T, F, Fut>(what: &str, mut step: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match step().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() < deadline => {
                eprintln!("{what}: retrying after: {e:#}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).with_context(|| what.to_owned()),
        }
    }
}

async fn fill(client: &fantoccini::Client, css: &str, text: &str) -> Result<()> {
    retry(&format!("typing into {css}"), || async {
        let e = client.find(Locator::Css(css)).await?;
        e.clear().await?;
        e.send_keys(text).await?;
        Ok(())
    })
    .await
}

async fn click(client: &fantoccini::Client, css: &str) -> Result<()> {
    retry(&format!("clicking {css}"), || async { Ok(client.find(Locator::Css(css)).await?.click().await?) }).await
}

/// The `textContent` of every element at `css`, once there are `n` of them.
async fn texts(client: &fantoccini::Client, css: &str, n: usize) -> Result<Vec<String>> {
    retry(&format!("waiting for {n} × {css}"), || async {
        let found = client.find_all(Locator::Css(css)).await?;
        anyhow::ensure!(found.len() == n, "{} found", found.len());
        let mut out = Vec::new();
        for e in found {
            out.push(e.prop("textContent").await?.unwrap_or_default());
        }
        Ok(out)
    })
    .await
}

/// Waits until the element at `css` says something containing `needle`.
async fn wait_text(client: &fantoccini::Client, css: &str, needle: &str) -> Result<String> {
    retry(&format!("waiting for {needle:?} in {css}"), || async {
        let t = client.find(Locator::Css(css)).await?.prop("textContent").await?.unwrap_or_default();
        anyhow::ensure!(t.contains(needle), "it says {t:?}");
        Ok(t)
    })
    .await
}

/// Chromium trusts the patient listener's certificate by the SHA-256 of its
/// public key (`--ignore-certificate-errors-spki-list`): only that key, not
/// every certificate error.
fn spki_pin(cert_pem: &std::path::Path) -> Result<String> {
    use base64::Engine;
    let pem = std::fs::read(cert_pem)?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).context("server certificate PEM")?;
    let cert = pem.parse_x509().context("server certificate")?;
    let hash = ring::digest::digest(&ring::digest::SHA256, cert.tbs_certificate.subject_pki.raw);
    Ok(base64::engine::general_purpose::STANDARD.encode(hash.as_ref()))
}

/// FLOW-1..4 through the screens: the assistant logs in with the staff card,
/// registers the patient, opens the encounter, writes two drafts for the
/// linked doctor and edits one; the doctor's card replaces it in the
/// reader, the doctor reviews both documents — the page shows exactly the
/// gateway's bytes — and confirms both with one signature-PIN entry; the
/// patient, enrolled by IT staff, signs in on the patient page, replaces the
/// initial password, reads both records, asks for a correction of one and
/// opens the disclosure of everything held about them; the doctor answers
/// the correction request at the terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_story_in_chromium_assistant_drafts_doctor_signs_patient_reads() -> Result<()> {
    use base64::Engine;
    let mut world = World::start(WorldOptions { patients: true, ..Default::default() }).await?;
    let terminal = world.terminal(CLINIC, "desk-2")?;
    let assistant_image = world.assistant_card(CLINIC, "S-0042").await?;
    let (doctor_image, doctor) = world.person_card(Profession::Doctor, "D-9010", CLINIC).await?;
    world.link(&format!("{CLINIC}/S-0042"), &doctor).await?;
    let patient_port = world.patient_addr.context("patient listener")?.port();
    let pin = spki_pin(&world.path("server/server.pem"))?;

    let pcscd = PrivatePcscd::start()?;
    let assistant_card = CardProcess::start(&pcscd, 0, &assistant_image)?;
    let agent = start_agent(&world, &pcscd, &terminal).await?;
    let (_driver, client) = start_browser(&[format!("--ignore-certificate-errors-spki-list={pin}")]).await?;

    let result = async {
        client.goto(&format!("http://{}/", agent.address)).await?;

        // The assistant.
        type_pin_and_submit(&client, PIN).await?;
        wait_text(&client, ".session .person-role", "医療機関職員").await?;
        click(&client, "#new-patient summary").await?;
        fill(&client, "#patient-name", "Yamada Taro").await?;
        fill(&client, "#patient-name-kanji", "山田 太郎").await?;
        fill(&client, "#patient-birth-date", "1960-04-01").await?;
        click(&client, "#register-patient-button").await?;
        wait_text(&client, ".work-message.ok", "患者を登録しました").await?;
        let patient = prop_of(&client, "#patient-id", "value").await?;
        anyhow::ensure!(patient.starts_with('P'), "patient id {patient:?}");
        click(&client, "#open-encounter-button").await?;
        wait_text(&client, ".encounter-patient", &patient).await?;
        // The doctor list holds the linked doctor.
        let choice = prop_of(&client, "#draft-doctor", "value").await?;
        anyhow::ensure!(choice == doctor, "doctor chosen: {choice:?}");
        fill(&client, "#draft-text", "BP 128/82. Cough for three days.").await?;
        click(&client, "#save-draft").await?;
        texts(&client, "#my-drafts .draft", 1).await?;
        fill(&client, "#draft-text", "処方: 安静、水分補給。").await?;
        click(&client, "#save-draft").await?;
        texts(&client, "#my-drafts .draft", 2).await?;
        // Edit the first one written (drafts of the same second have no
        // fixed order on screen, so find it by its text): version 2.
        retry("clicking edit on the first draft", || async {
            let xpath = "//div[contains(@class,'draft')][div[@class='draft-text' and contains(., 'Cough')]]//button[contains(@class,'edit')]";
            Ok(client.find(Locator::XPath(xpath)).await?.click().await?)
        })
        .await?;
        fill(&client, "textarea.edit-text", "BP 128/82. Cough for three days, no fever.").await?;
        click(&client, "button.save-edit").await?;
        wait_text(&client, ".work-message.ok", "第2版").await?;
        let versions = texts(&client, "#my-drafts .draft .version", 2).await?;
        anyhow::ensure!(versions.iter().any(|v| v == "2"), "versions {versions:?}");
        save_screenshot(&client, "workflow-assistant.png").await?;
        click(&client, "button.logout").await?;
        retry("the assistant's screens are gone", || async {
            let left = client.find_all(Locator::Css("#work section")).await?.len();
            anyhow::ensure!(left == 0, "{left} sections left");
            Ok(())
        })
        .await?;
        Ok::<_, anyhow::Error>(patient)
    }
    .await;
    let patient = match result {
        Ok(p) => p,
        Err(e) => {
            let _ = save_screenshot(&client, "workflow-failure.png").await;
            let _ = client.close().await;
            return Err(e);
        }
    };

    // The doctor's card takes the assistant's place in the reader.
    drop(assistant_card);
    let _doctor_card = CardProcess::start(&pcscd, 0, &doctor_image)?;
    agent.wait_card_read(&pcscd.reader(0)).await?;

    let result = async {
        // The page shows the new card before its PIN is asked for.
        wait_text(&client, "#app .profession", "医師").await?;
        type_pin_and_submit(&client, PIN).await?;
        wait_text(&client, ".session .person-role", "医師").await?;
        texts(&client, "#queue .queued", 2).await?;
        for i in 1..=2 {
            click(&client, &format!("#queue .queued:nth-of-type({i}) input.pick")).await?;
        }
        click(&client, "#review-picked").await?;
        let shown = texts(&client, "#review pre.document", 2).await?;
        // What the page shows is exactly what the gateway will verify.
        for (i, text) in shown.iter().enumerate() {
            let draft = client
                .find(Locator::Css(&format!("#review .doc:nth-of-type({}) ", i + 1)))
                .await?
                .attr("data-id")
                .await?
                .context("data-id")?;
            let (status, signing) =
                agent.api("GET", &format!("/api/v1/gateway/v1/drafts/{draft}/signing-bytes"), None).await?;
            anyhow::ensure!(status == 200, "signing bytes: {status} {signing}");
            let bytes =
                base64::engine::general_purpose::STANDARD.decode(signing["document"].as_str().context("doc")?)?;
            anyhow::ensure!(text.as_bytes() == bytes, "shown {text:?} is not the document");
            anyhow::ensure!(text.contains("HPKI-GATEWAY-CONFIRM-V2"), "no domain in {text}");
        }
        anyhow::ensure!(shown.iter().any(|t| t.contains("no fever")), "the edited version is not shown");
        anyhow::ensure!(shown.iter().any(|t| t.contains("水分補給")), "the second draft is not shown");
        save_screenshot(&client, "workflow-doctor-review.png").await?;
        fill(&client, "#signature-pin", PIN).await?;
        click(&client, "#sign-and-confirm").await?;
        let records = texts(&client, "#results .result .record-id", 2).await?;
        save_screenshot(&client, "workflow-doctor-confirmed.png").await?;
        for r in &records {
            let row = world.gw.store.record(r).await?.context("record stored")?;
            anyhow::ensure!(row.signer.as_deref() == Some(doctor.as_str()), "signer {:?}", row.signer);
            anyhow::ensure!(row.author == format!("{CLINIC}/S-0042"), "author {:?}", row.author);
        }
        let batch = world.last_audit("draft.confirm_batch").await;
        anyhow::ensure!(batch.event.outcome == "ok", "batch audit: {:?}", batch.event);

        // The patient, enrolled by IT staff.
        let initial = world.enroll_patient(&patient, CLINIC)?;
        client.goto(&format!("https://localhost:{patient_port}/")).await?;
        fill(&client, "#pid", &patient).await?;
        fill(&client, "#pw", &initial).await?;
        click(&client, "#login button[type=submit]").await?;
        fill(&client, "#cur", &initial).await?;
        fill(&client, "#new", "kiku-no-hana-2026").await?;
        click(&client, "#change button[type=submit]").await?;
        let seen = texts(&client, "#list .record", 2).await?;
        save_screenshot(&client, "workflow-patient.png").await?;
        anyhow::ensure!(seen.iter().any(|t| t.contains("no fever")), "patient sees {seen:?}");
        anyhow::ensure!(seen.iter().any(|t| t.contains("水分補給")), "patient sees {seen:?}");
        // FLOW-9 on the page: a correction request against the first
        // record, then the disclosure — who entered and confirmed each
        // record, and who accessed them (institution and role).
        click(&client, "#list .record:first-child details.correction-form summary").await?;
        fill(&client, "#list .record:first-child textarea.correction-text", "咳は3日ではなく5日前からです").await?;
        click(&client, "#list .record:first-child button.send-correction").await?;
        wait_text(&client, "#rights-message", "cor_").await?;
        click(&client, "#show-disclosure").await?;
        let entered = texts(&client, "#disclosure-records .disclosed .entered-by", 2).await?;
        anyhow::ensure!(entered.iter().all(|t| t.contains("assistant")), "entered by {entered:?}");
        let confirmed = texts(&client, "#disclosure-records .disclosed .confirmed-by", 2).await?;
        anyhow::ensure!(
            confirmed.iter().all(|t| t.contains(&doctor) && t.contains("doctor")),
            "confirmed by {confirmed:?}"
        );
        wait_text(&client, "#access-log tbody", CLINIC).await?;
        wait_text(&client, "#corrections .correction", "pending").await?;
        save_screenshot(&client, "workflow-disclosure.png").await?;
        anyhow::ensure!(world.last_audit("patient.disclosure").await.event.outcome == "ok", "disclosure audited");
        // The doctor, back at the terminal, answers it with a correcting
        // record.
        client.goto(&format!("http://{}/", agent.address)).await?;
        wait_text(&client, ".session .person-role", "医師").await?;
        wait_text(&client, "#corrections-panel .correction", "咳は3日ではなく5日前からです").await?;
        fill(&client, "#corrections-panel textarea.correction-answer", "咳は5日前から。訂正します。").await?;
        click(&client, "#corrections-panel button.correction-accept").await?;
        wait_text(&client, ".work-message.ok", "訂正記録を作成しました").await?;
        save_screenshot(&client, "workflow-correction-answered.png").await?;
        let resolved = world.last_audit("correction.resolve").await;
        anyhow::ensure!(
            resolved.event.outcome == "ok" && resolved.event.object.contains("correction_record:"),
            "{:?}",
            resolved.event
        );
        anyhow::ensure!(world.chain_verifies().await, "audit chain");
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = save_screenshot(&client, "workflow-failure.png").await;
    }
    let _ = client.close().await;
    result
}

/// FLOW-7 through the screens: with the gateway read-only (set by IT staff
/// with the CLI), a designated emergency doctor sees the mode banner, asks
/// for break-glass access without a reason (refused, said on screen), then
/// with one, sees the banner of the access and the patient's record from
/// another institution (no encounter, no consent), and ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_and_the_mode_banner_in_chromium() -> Result<()> {
    use serde_json::json;
    const OTHER: &str = "Noto Hospital";
    let mut world = World::start(WorldOptions::default()).await?;
    let er_terminal = world.terminal(CLINIC, "er-2")?;
    let ward = world.terminal(OTHER, "ward-2")?;
    let (noto_image, _) = world.person_card(Profession::Doctor, "D-7101", OTHER).await?;
    let (er_image, er_doctor) = world.person_card(Profession::Doctor, "D-7102", CLINIC).await?;
    let pcscd = hpki_e2e::private_pcscd()?;
    // Noto Hospital's note on the patient, written with the Noto doctor's
    // card; the card leaves the reader before the agent starts.
    let patient = {
        let mut noto = hpki_e2e::insert_card(&pcscd, 1, &noto_image)?;
        let mut c = world.connect(&ward).await?;
        let n = hpki_e2e::session(&mut c, &mut noto.card).await?;
        let (_, p) =
            c.post("/v1/patients", &json!({"name": "Kita Jiro", "birth_date": "1941-02-03"}), Some(&n)).await?;
        let patient = p["id"].as_str().context("patient id")?.to_owned();
        let (_, enc) = c.post("/v1/encounters", &json!({"patient": patient}), Some(&n)).await?;
        let note = json!({"encounter": enc["id"], "content": {"text": "ペニシリンで発疹の既往"}});
        let (status, body) = c.post("/v1/notes", &note, Some(&n)).await?;
        anyhow::ensure!(status == 201, "note: {status} {body}");
        patient
    };
    let config = world.config_path();
    hpki_e2e::gateway_cli(&config, &["admin", "break-glass", "grant", "--person", &er_doctor])?;
    hpki_e2e::gateway_cli(&config, &["admin", "mode", "read-only", "--reason", "定期保守"])?;
    let _er_card = CardProcess::start(&pcscd, 0, &er_image)?;
    let agent = start_agent(&world, &pcscd, &er_terminal).await?;
    let (_driver, client) = start_browser(&[]).await?;

    let result = async {
        client.goto(&format!("http://{}/", agent.address)).await?;
        type_pin_and_submit(&client, PIN).await?;
        wait_text(&client, ".session .person-role", "医師").await?;
        wait_text(&client, "#mode-banner", "定期保守").await?;
        click(&client, "#break-glass-ask summary").await?;
        fill(&client, "#bg-patient", &patient).await?;
        fill(&client, "#bg-detail", "意識障害で救急搬送、既往歴の確認が必要").await?;
        click(&client, "#break-glass-start").await?;
        wait_text(&client, ".work-message.error", "break_glass_reason_required").await?;
        retry("choosing the reason", || async {
            Ok(client.find(Locator::Css("#bg-reason")).await?.select_by_value("emergency_treatment").await?)
        })
        .await?;
        click(&client, "#break-glass-start").await?;
        wait_text(&client, ".break-glass-banner", &patient).await?;
        let seen = texts(&client, "#break-glass-records .bg-record", 1).await?;
        anyhow::ensure!(seen[0].contains("ペニシリン") && seen[0].contains(OTHER), "shown {seen:?}");
        save_screenshot(&client, "break-glass.png").await?;
        let read = world.last_audit("break_glass.read").await;
        anyhow::ensure!(read.event.outcome == "ok" && read.event.object.contains(&patient), "{:?}", read.event);
        click(&client, "#break-glass-end").await?;
        wait_text(&client, ".work-message.ok", "終了しました").await?;
        retry("the access banner is gone", || async {
            let left = client.find_all(Locator::Css(".break-glass-banner")).await?.len();
            anyhow::ensure!(left == 0, "{left} banners left");
            Ok(())
        })
        .await?;
        anyhow::ensure!(world.last_audit("break_glass.end").await.event.outcome == "ok", "end audited");
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = save_screenshot(&client, "break-glass-failure.png").await;
    }
    let _ = client.close().await;
    result
}
