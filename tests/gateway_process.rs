//! A real `hpki-gateway serve` process, for what an in-process gateway
//! cannot show: the demo, and being killed with SIGKILL and started again.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use testbed::{bin_command, bin_path};

/// A free loopback port (bound, then released for the process to take).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `hpki-gateway --config … serve`, killed when dropped however the test
/// ends.
pub struct GatewayProcess {
    child: Child,
    pub ops: SocketAddr,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GatewayProcess {
    /// Starts the gateway on `config` (whose `[ops]` address is `ops`) and
    /// waits until `/readyz` answers 200.
    pub fn start(config: &Path, ops: SocketAddr) -> Result<GatewayProcess> {
        Self::start_in(config, ops, None)
    }

    /// As `start`, inside the network namespace `netns` when given (its
    /// `/readyz` is then asked from inside that namespace).
    pub fn start_in(config: &Path, ops: SocketAddr, netns: Option<&str>) -> Result<GatewayProcess> {
        let child = bin_command("hpki-gateway", netns)?
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .context("starting hpki-gateway serve")?;
        let process = GatewayProcess { child, ops };
        match netns {
            Some(ns) => wait_ready_in(ns, ops)?,
            None => wait_ready(ops)?,
        }
        Ok(process)
    }

    /// Sends SIGTERM (what systemd sends to stop a service).
    pub fn terminate(&mut self) -> Result<()> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("kill -TERM")?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        Ok(())
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Result<ExitStatus> {
        let until = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            anyhow::ensure!(std::time::Instant::now() < until, "the gateway did not exit within {limit:?}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown code runs, nothing is flushed by the process.
    pub fn kill_nine(&mut self) -> Result<ExitStatus> {
        self.child.kill().context("SIGKILL to the gateway")?;
        Ok(self.child.wait()?)
    }
}

/// `hpki-gateway --config CONFIG ARGS…` as IT staff member `sato-it` runs
/// it: its exit code, standard output and standard error.
pub fn gateway_cli_raw(config: &Path, args: &[&str]) -> Result<(i32, String, String)> {
    gateway_cli_ahead(config, 0, args)
}

/// [`gateway_cli_raw`] with the command's clock `days` ahead
/// ([`crate::clock_ahead`]), as an operator's timer would run it then.
pub fn gateway_cli_ahead(config: &Path, days: i64, args: &[&str]) -> Result<(i32, String, String)> {
    let out = crate::clock_ahead(&bin_path("hpki-gateway")?.display().to_string(), days)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("HPKI_OPERATOR", "sato-it")
        .env("RUST_LOG", "warn")
        .output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// As `gateway_cli_raw`: its standard output, or an error with everything
/// it printed.
pub fn gateway_cli(config: &Path, args: &[&str]) -> Result<String> {
    let (code, out, err) = gateway_cli_raw(config, args)?;
    if code != 0 {
        bail!("hpki-gateway {args:?}: {out}{err}");
    }
    Ok(out)
}

/// Waits until `GET /readyz` on the ops address answers 200 (15 s at most).
pub fn wait_ready(ops: SocketAddr) -> Result<()> {
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

/// `wait_ready` from inside network namespace `netns` (bash's /dev/tcp).
fn wait_ready_in(netns: &str, ops: SocketAddr) -> Result<()> {
    let script = format!(
        "exec 3<>/dev/tcp/{}/{} && printf 'GET /readyz HTTP/1.1\\r\\nhost: ops\\r\\nconnection: close\\r\\n\\r\\n' >&3 && head -c 12 <&3",
        ops.ip(),
        ops.port()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let out = Command::new("ip").args(["netns", "exec", netns, "bash", "-c", &script]).output()?;
        if String::from_utf8_lossy(&out.stdout).starts_with("HTTP/1.1 200") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the gateway did not become ready on {ops} in {netns}")
}
