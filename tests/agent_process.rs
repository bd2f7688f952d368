//! A real `card-agent` process for the end-to-end tests: its configuration
//! points at a test world's gateway and a private pcscd.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use testbed::{PrivatePcscd, bin_command};

use crate::TerminalCreds;

/// Settings of one agent.
pub struct AgentOptions<'a> {
    pub gateway: SocketAddr,
    pub gateway_ca: &'a Path,
    pub terminal: &'a TerminalCreds,
    pub idle_lock_seconds: u64,
    pub language: &'a str,
}

pub struct AgentProcess {
    child: Child,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub address: SocketAddr,
    token: String,
    socket: PathBuf,
    /// The network namespace the agent runs in (its local API is only
    /// reachable there: status and commands go through its command line).
    netns: Option<String>,
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl AgentProcess {
    /// Starts `card-agent --config …` against `pcscd` and waits until it
    /// serves and watches the readers.
    pub async fn start(pcscd: &PrivatePcscd, opts: AgentOptions<'_>) -> Result<AgentProcess> {
        Self::start_in(pcscd, opts, None).await
    }

    /// As `start`, inside the network namespace `netns` when given (pcscd's
    /// socket is a file, so the cards stay reachable from there).
    pub async fn start_in(pcscd: &PrivatePcscd, opts: AgentOptions<'_>, netns: Option<&str>) -> Result<AgentProcess> {
        let dir = tempfile::Builder::new().prefix("card-agent-").tempdir()?;
        let config = dir.path().join("agent.toml");
        let port = free_port()?;
        std::fs::write(
            &config,
            format!(
                "[gateway]\naddress = \"{}\"\nserver_name = \"localhost\"\nca = {:?}\ntimeout_seconds = 5\n\
                 [terminal]\ncertificate = {:?}\nkey = {:?}\nchain = {:?}\n\
                 [ui]\naddress = \"127.0.0.1:{port}\"\nidle_lock_seconds = {}\nlanguage = {:?}\n",
                opts.gateway,
                opts.gateway_ca,
                opts.terminal.cert,
                opts.terminal.key,
                opts.terminal.chain,
                opts.idle_lock_seconds,
                opts.language,
            ),
        )?;
        let log = std::fs::File::create(dir.path().join("agent.log"))?;
        let mut child = bin_command("card-agent", netns)?
            .arg("--config")
            .arg(&config)
            .env("PCSCLITE_CSOCK_NAME", pcscd.socket())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting card-agent")?;
        let stdout = child.stdout.take().context("agent stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let mut agent = AgentProcess {
            child,
            config,
            address: format!("127.0.0.1:{port}").parse()?,
            token: String::new(),
            socket: pcscd.socket(),
            netns: netns.map(str::to_owned),
            dir,
        };
        if !line.contains("listening on") {
            bail!("card-agent did not start: {line:?}\n{}", agent.log());
        }
        agent.token = std::fs::read_to_string(agent.dir.path().join("api-token"))?.trim().to_owned();
        agent.wait_for(Duration::from_secs(10), |s| s["watching"] == true).await?;
        Ok(agent)
    }

    /// The installation's API token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Sends `request` as it is and returns the whole answer.
    pub fn raw(&self, request: &str) -> Result<String> {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(self.address)?;
        s.write_all(request.as_bytes())?;
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        Ok(answer)
    }

    /// Stops the agent process (its files stay until it is dropped).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The agent's log (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// One call to the local API with the installation token.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        self.api_lang(method, path, body, "en").await
    }

    pub async fn api_lang(&self, method: &str, path: &str, body: Option<Value>, lang: &str) -> Result<(u16, Value)> {
        if let Some(ns) = &self.netns {
            bail!("the agent's API is inside network namespace {ns}; use its command line");
        }
        let body = body.map(|b| serde_json::to_vec(&b)).transpose()?;
        Ok(card_agent::local_client::call(self.address, &self.token, method, path, body, lang).await?)
    }

    pub async fn status(&self) -> Result<Value> {
        if self.netns.is_some() {
            let (code, out, err) = tokio::task::block_in_place(|| self.cli(&["status", "--json"], ""))?;
            anyhow::ensure!(code == 0, "status: {out}{err}");
            return Ok(serde_json::from_str(&out)?);
        }
        let (code, s) = self.api("GET", "/api/v1/status", None).await?;
        anyhow::ensure!(code == 200, "status: {code} {s}");
        Ok(s)
    }

    /// Polls the status until `ok` holds.
    pub async fn wait_for(&self, timeout: Duration, ok: impl Fn(&Value) -> bool) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.status().await;
            if let Ok(s) = &s
                && ok(s)
            {
                return Ok(s.clone());
            }
            if Instant::now() > deadline {
                bail!("agent state not reached: {s:?}\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the card in `reader` has been read (holder and PIN
    /// state shown).
    pub async fn wait_card_read(&self, reader: &str) -> Result<Value> {
        self.wait_for(Duration::from_secs(10), |s| {
            reader_view(s, reader).is_some_and(|r| !r["card"]["holder"].is_null() && !r["card"]["pin"].is_null())
        })
        .await
    }

    /// Runs the `card-agent` command line with this agent's configuration.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Result<(i32, String, String)> {
        let mut child = bin_command("card-agent", self.netns.as_deref())?
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("PCSCLITE_CSOCK_NAME", &self.socket)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child.stdin.take().context("stdin")?.write_all(stdin.as_bytes())?;
        let out = child.wait_with_output()?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

/// The status entry of `reader`.
pub fn reader_view<'a>(status: &'a Value, reader: &str) -> Option<&'a Value> {
    status["readers"].as_array()?.iter().find(|r| r["reader"] == reader)
}
