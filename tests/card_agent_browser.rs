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
    let ca = world.path("server/ca-chain.pem");
    let agent = AgentProcess::start(
        &pcscd,
        AgentOptions {
            gateway: world.addr,
            gateway_ca: &ca,
            terminal: &terminal,
            idle_lock_seconds: 300,
            language: "ja",
        },
    )
    .await?;
    agent.wait_card_read(&pcscd.reader(0)).await?;

    let (_driver, port) = start_chromedriver()?;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": "/usr/bin/chromium",
                            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=900,700"] }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .context("WebDriver session with headless Chromium")?;

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
