//! A `virtual-card` process plugged into a [`PrivatePcscd`] slot.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hpki_card::Application;

use crate::{PrivatePcscd, bin_path};

pub struct CardProcess {
    child: Option<Child>,
    image: PathBuf,
    control: PathBuf,
    apdu_log: PathBuf,
    stderr_log: PathBuf,
    port: u16,
    reader: String,
    extra_args: Vec<String>,
}

impl CardProcess {
    /// Starts the card with `image` in `slot` and waits until it is
    /// connected to vpcd (pcscd notices it within about 0.4 s more).
    pub fn start(pcscd: &PrivatePcscd, slot: u8, image: &Path) -> anyhow::Result<CardProcess> {
        Self::start_with_args(pcscd, slot, image, &[])
    }

    /// As [`start`](Self::start), with extra `virtual-card` arguments.
    pub fn start_with_args(pcscd: &PrivatePcscd, slot: u8, image: &Path, args: &[&str]) -> anyhow::Result<CardProcess> {
        let mut card = Self::unstarted(pcscd.dir(), pcscd.vpcd_port(slot), pcscd.reader(slot), image, slot);
        card.extra_args = args.iter().map(|a| a.to_string()).collect();
        card.spawn()?;
        card.wait_status("inserted", Duration::from_secs(10))?;
        Ok(card)
    }

    /// Starts the card for vpcd `port` without waiting for the connection
    /// (pcscd may not be running yet); files go to `dir`.
    pub fn start_detached(dir: &Path, port: u16, reader: String, image: &Path) -> anyhow::Result<CardProcess> {
        let mut card = Self::unstarted(dir, port, reader, image, 0);
        card.spawn()?;
        Ok(card)
    }

    fn unstarted(dir: &Path, port: u16, reader: String, image: &Path, slot: u8) -> CardProcess {
        let name = format!("card{slot}");
        CardProcess {
            child: None,
            image: image.to_path_buf(),
            control: dir.join(format!("{name}.ctl")),
            apdu_log: dir.join(format!("{name}.apdu")),
            stderr_log: dir.join(format!("{name}.log")),
            port,
            reader,
            extra_args: Vec::new(),
        }
    }

    /// Waits until the card is connected to vpcd.
    pub fn wait_inserted(&mut self, timeout: Duration) -> anyhow::Result<()> {
        self.wait_status("inserted", timeout)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let _ = fs::remove_file(&self.control);
        let stderr = fs::OpenOptions::new().create(true).append(true).open(&self.stderr_log)?;
        let child = Command::new(bin_path("virtual-card")?)
            .arg("--image")
            .arg(&self.image)
            .args(["--vpcd-port", &self.port.to_string()])
            .arg("--control")
            .arg(&self.control)
            .arg("--apdu-log")
            .arg(&self.apdu_log)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("starting virtual-card")?;
        self.child = Some(child);
        // The control socket is the sign of life; the link may still wait.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.control("status").is_err() {
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                bail!("virtual-card exited ({status}):\n{}", fs::read_to_string(&self.stderr_log).unwrap_or_default());
            }
            anyhow::ensure!(Instant::now() < deadline, "virtual-card control socket did not appear");
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn wait_status(&mut self, want: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(s) = self.control("status")
                && s == want
            {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                bail!("virtual-card exited ({status}):\n{}", fs::read_to_string(&self.stderr_log).unwrap_or_default());
            }
            if Instant::now() > deadline {
                bail!("virtual-card not {want} after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends one control command and returns its answer line.
    pub fn control(&self, command: &str) -> anyhow::Result<String> {
        let mut s = UnixStream::connect(&self.control)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        writeln!(s, "{command}")?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        let line = line.trim().to_string();
        if let Some(e) = line.strip_prefix("error: ") {
            bail!("virtual-card refused {command:?}: {e}");
        }
        Ok(line)
    }

    pub fn reader(&self) -> &str {
        &self.reader
    }

    pub fn image(&self) -> &Path {
        &self.image
    }

    /// Takes the card out of the reader (the process keeps running).
    pub fn remove(&mut self) -> anyhow::Result<()> {
        self.control("remove")?;
        self.wait_status("removed", Duration::from_secs(5))
    }

    pub fn insert(&mut self) -> anyhow::Result<()> {
        self.control("insert")?;
        self.wait_status("inserted", Duration::from_secs(10))
    }

    /// The card is pulled out when the next APDU with `ins` arrives.
    pub fn vanish_on(&self, ins: u8) -> anyhow::Result<()> {
        self.control(&format!("vanish-on {ins:02X}")).map(drop)
    }

    /// The next APDU with `ins` is answered with exactly `raw`.
    pub fn respond_next(&self, ins: u8, raw: &[u8]) -> anyhow::Result<()> {
        let hex: String = raw.iter().map(|b| format!("{b:02X}")).collect();
        self.control(&format!("respond-next {ins:02X} {hex}")).map(drop)
    }

    /// The persisted retry counter of `app`.
    pub fn tries_left(&self, app: Application) -> anyhow::Result<u8> {
        let which = match app {
            Application::Authentication => "auth",
            Application::Signature => "sign",
        };
        Ok(self.control(&format!("tries {which}"))?.parse()?)
    }

    /// Lines of the APDU log (`CLA INS P1 P2 lc= ne= sw= len=`).
    pub fn apdu_log(&self) -> Vec<String> {
        fs::read_to_string(&self.apdu_log).unwrap_or_default().lines().map(String::from).collect()
    }

    pub fn clear_apdu_log(&self) -> anyhow::Result<()> {
        fs::write(&self.apdu_log, "").context("clearing the APDU log")
    }

    /// INS bytes of the logged APDUs.
    pub fn logged_ins(&self) -> Vec<u8> {
        self.apdu_log()
            .iter()
            .filter_map(|l| l.split_whitespace().nth(1).and_then(|i| u8::from_str_radix(i, 16).ok()))
            .collect()
    }

    /// SIGKILL, as a crash or a pulled power cord would end it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again (after [`kill`](Self::kill)) with the same
    /// image and waits until it is connected.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()?;
        self.wait_status("inserted", Duration::from_secs(10))
    }
}

impl Drop for CardProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
