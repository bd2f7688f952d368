//! A private pcscd with a vpcd reader, for one test or demo.
//!
//! The daemon always binds `/run/pcscd/pcscd.comm`, so it runs in a mount
//! namespace of its own where `/run/pcscd` is a directory of ours; clients
//! reach it through `PCSCLITE_CSOCK_NAME`. vpcd listens on its own ports
//! (`CHANNELID` and `CHANNELID + 1`, one per slot).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::ports;

/// vpcd offers two slots per configured reader.
pub const SLOTS: u8 = 2;
const FRIENDLY_NAME: &str = "Virtual PCD";
const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";

pub struct PrivatePcscd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    base_port: Option<u16>,
}

impl PrivatePcscd {
    /// A pcscd with one vpcd reader (two slots) on free ports.
    pub fn start() -> anyhow::Result<PrivatePcscd> {
        Self::launch(Some(ports::free_port_block(u16::from(SLOTS))?))
    }

    /// A pcscd whose vpcd listens on `base_port` and `base_port + 1` — for a
    /// card that was started first and waits for pcscd.
    pub fn start_on_port(base_port: u16) -> anyhow::Result<PrivatePcscd> {
        Self::launch(Some(base_port))
    }

    /// A pcscd with no reader configured at all.
    pub fn start_without_readers() -> anyhow::Result<PrivatePcscd> {
        Self::launch(None)
    }

    /// A free block of vpcd ports, for [`start_on_port`](Self::start_on_port).
    pub fn free_ports() -> anyhow::Result<u16> {
        ports::free_port_block(u16::from(SLOTS))
    }

    fn launch(base_port: Option<u16>) -> anyhow::Result<PrivatePcscd> {
        for (what, path) in [("pcscd", "/usr/sbin/pcscd"), ("the vpcd driver (vsmartcard-vpcd)", VPCD_DRIVER)] {
            anyhow::ensure!(Path::new(path).exists(), "{what} is not installed ({path}); `make test` installs it");
        }
        let dir = tempfile::Builder::new().prefix("hpki-pcscd-").tempdir().context("temporary directory")?;
        fs::create_dir_all(dir.path().join("run"))?;
        fs::create_dir_all(dir.path().join("conf"))?;
        // The bind-mount target must exist in the parent namespace.
        fs::create_dir_all("/run/pcscd").context("creating /run/pcscd")?;
        if let Some(port) = base_port {
            fs::write(
                dir.path().join("conf").join("vpcd"),
                format!(
                    "FRIENDLYNAME \"{FRIENDLY_NAME}\"\nDEVICENAME   /dev/null:0x{port:04X}\nLIBPATH      {VPCD_DRIVER}\nCHANNELID    0x{port:04X}\n"
                ),
            )?;
        }
        let mut pcscd = PrivatePcscd { dir, child: None, base_port };
        pcscd.spawn()?;
        Ok(pcscd)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let run = self.dir.path().join("run");
        let conf = self.dir.path().join("conf");
        let log = fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("pcscd.log"))?;
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount --bind \"$1\" /run/pcscd && exec pcscd --foreground --config \"$2\"")
            .arg("sh")
            .arg(&run)
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting pcscd under unshare (needs root)")?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(15))
    }

    /// Stops pcscd and starts it again on the same socket and ports.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.spawn()
    }

    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let vpcd_up = self.base_port.is_none_or(|p| (0..u16::from(SLOTS)).all(|s| ports::is_listening(p + s)));
            if self.socket().exists() && vpcd_up {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                bail!("pcscd exited ({status}) during start-up:\n{}", self.log());
            }
            if Instant::now() > deadline {
                bail!("pcscd not ready after {timeout:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The client socket, for `PCSCLITE_CSOCK_NAME`.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run").join("pcscd.comm")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The vpcd port of `slot` (0 when this pcscd has no reader).
    pub fn vpcd_port(&self, slot: u8) -> u16 {
        self.base_port.map_or(0, |p| p + u16::from(slot))
    }

    /// The PC/SC name of the reader of `slot`.
    pub fn reader(&self, slot: u8) -> String {
        format!("{FRIENDLY_NAME} 00 {slot:02}")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("pcscd.log")).unwrap_or_default()
    }

    /// Points this process's PC/SC client library at this pcscd.
    ///
    /// libpcsclite reads the variable once, at the first PC/SC call, so this
    /// must come before any; a process can only ever use one pcscd.
    pub fn use_in_this_process(&self) -> anyhow::Result<()> {
        let socket = self.socket();
        if let Some(current) = std::env::var_os("PCSCLITE_CSOCK_NAME")
            && Path::new(&current) != socket
        {
            bail!(
                "this process already uses the pcscd at {current:?}; run each test in its own process (cargo nextest)"
            );
        }
        // SAFETY: `set_var` is unsound only when another thread reads or
        // writes the environment at the same time. Callers (tests, the demo)
        // call this first thing, before they start any thread; the only other
        // thread a test process has is libtest's, which is blocked waiting for
        // the test's result and does not touch the environment.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("PCSCLITE_CSOCK_NAME", &socket);
        }
        Ok(())
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivatePcscd {
    fn drop(&mut self) {
        self.stop();
    }
}
