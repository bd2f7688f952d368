//! Two network namespaces, a clinic and a data centre, joined by a real
//! strongSwan IKEv2 tunnel whose certificates and swanctl configurations come
//! from `hpki-certs vpn issue` (see `../shared/reference/ipsec-netns/`).
//!
//! This machine's kernel has no ESP, so charon runs strongSwan's userspace
//! ESP (`kernel-libipsec`, TUN device `ipsec0`); the data centre drops the
//! clinic subnet unless it arrives through that device, as a firewall
//! behind a VPN concentrator would.
//!
//! The namespaces are private to one link (their names carry the process id
//! and a counter), so the fixed addresses below never meet anybody else's.
//! Dropping the link stops both charons and deletes both namespaces, however
//! the test ends; namespaces left by a test process that died are removed
//! by the next link.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use testbed::bin_path;

// Debian packages: see TEST_DEB_PACKAGES in the Makefile (`make test` installs them).
const PREFIX: &str = "hpki-vpn-";

/// Outside (transport) addresses of the two endpoints, on the veth pair.
pub const CLINIC_OUTSIDE: &str = "10.99.0.1";
pub const DC_OUTSIDE: &str = "10.99.0.2";
/// The clinic LAN (terminals) and the data-centre network (the gateway).
pub const CLINIC_SUBNET: &str = "10.99.1.0/24";
pub const DC_SUBNET: &str = "10.99.2.0/24";
/// The terminal's address in the clinic LAN and the gateway's in the DC.
pub const CLINIC_HOST: &str = "10.99.1.1";
pub const DC_HOST: &str = "10.99.2.1";
/// The child SA's name in the written configurations.
pub const CHILD: &str = "hpki";

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct IpsecLink {
    pub clinic_ns: String,
    pub dc_ns: String,
    /// What `hpki-certs vpn issue` wrote: `clinic/` and `dc/`.
    pub conf: PathBuf,
    charons: Vec<Child>,
}

impl Drop for IpsecLink {
    fn drop(&mut self) {
        for c in &mut self.charons {
            // SIGTERM lets charon remove its routes and TUN device; the
            // namespaces go anyway.
            let _ = Command::new("kill").arg(c.id().to_string()).status();
        }
        for c in &mut self.charons {
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.clinic_ns, &self.dc_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `cmd`, failing with what it printed.
fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("{cmd:?} failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(text)
}

fn ip(args: &[&str]) -> Result<String> {
    run(Command::new("ip").args(args))
}

/// Deletes namespaces of earlier test processes that no longer run.
fn remove_stale_namespaces() {
    let Ok(list) = ip(&["netns", "list"]) else { return };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let pid = rest.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

impl IpsecLink {
    /// Builds both namespaces, makes a test PKI in `work/vpn-pki` and issues
    /// the link's credentials with `hpki-certs vpn issue` into `work/vpn`,
    /// starts one charon per namespace and waits until the clinic's child
    /// SA is installed.
    pub fn up(work: &Path) -> Result<IpsecLink> {
        remove_stale_namespaces();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let mut link = IpsecLink {
            clinic_ns: format!("{PREFIX}c-{pid}-{n}"),
            dc_ns: format!("{PREFIX}d-{pid}-{n}"),
            conf: work.join("vpn"),
            charons: Vec::new(),
        };
        let (c, d) = (link.clinic_ns.clone(), link.dc_ns.clone());
        ip(&["netns", "add", &c])?;
        ip(&["netns", "add", &d])?;
        // The veth pair is made inside the namespaces: the host's own
        // interfaces and routes are never touched.
        ip(&["-n", &c, "link", "add", "v-clinic", "type", "veth", "peer", "name", "v-dc", "netns", &d])?;
        ip(&["-n", &c, "addr", "add", &format!("{CLINIC_OUTSIDE}/24"), "dev", "v-clinic"])?;
        ip(&["-n", &d, "addr", "add", &format!("{DC_OUTSIDE}/24"), "dev", "v-dc"])?;
        ip(&["-n", &c, "addr", "add", &format!("{CLINIC_HOST}/32"), "dev", "lo"])?;
        ip(&["-n", &d, "addr", "add", &format!("{DC_HOST}/32"), "dev", "lo"])?;
        for (ns, dev) in [(&c, "v-clinic"), (&d, "v-dc")] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        // Without the tunnel, packets between the two LANs still have a
        // plaintext way over the veth (charon's table 220 wins while an SA
        // is up): what a misrouted or spoofed packet would take. The data
        // centre's firewall is what stops them.
        ip(&["-n", &c, "route", "add", DC_SUBNET, "via", DC_OUTSIDE, "src", CLINIC_HOST])?;
        ip(&["-n", &d, "route", "add", CLINIC_SUBNET, "via", CLINIC_OUTSIDE, "src", DC_HOST])?;
        let rules = link.conf.with_file_name("dc-firewall.nft");
        std::fs::write(
            &rules,
            format!(
                "table inet hpki_vpn {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    \
                 ip saddr {CLINIC_SUBNET} iifname != \"ipsec0\" counter drop\n  }}\n}}\n"
            ),
        )?;
        ip(&["netns", "exec", &d, "nft", "-f", &rules.display().to_string()])?;

        let ca_dir = work.join("vpn-pki");
        run(Command::new(bin_path("hpki-certs")?).args(["ca", "init", "--dir", &ca_dir.display().to_string()]))?;
        run(Command::new(bin_path("hpki-certs")?).args([
            "vpn",
            "issue",
            "--dir",
            &ca_dir.display().to_string(),
            "--site",
            "kanazawa",
            "--out",
            &link.conf.display().to_string(),
            "--clinic-addr",
            CLINIC_OUTSIDE,
            "--dc-addr",
            DC_OUTSIDE,
            "--clinic-subnet",
            CLINIC_SUBNET,
            "--dc-subnet",
            DC_SUBNET,
            "--userspace-esp",
        ]))?;

        // The data centre answers; the clinic starts the tunnel itself when
        // its configuration is loaded (start_action = start).
        for (ns, side) in [(d.clone(), "dc"), (c.clone(), "clinic")] {
            let dir = link.conf.join(side);
            let vici = dir.join("charon.vici");
            let _ = std::fs::remove_file(&vici);
            let log = std::fs::File::create(dir.join("stdout.log"))?;
            let child = Command::new("ip")
                .args(["netns", "exec", &ns, "/usr/sbin/charon-systemd"])
                .env("STRONGSWAN_CONF", dir.join("strongswan.conf"))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting charon-systemd")?;
            link.charons.push(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !vici.exists() {
                ensure!(Instant::now() < deadline, "charon in {ns} did not open {}", vici.display());
                std::thread::sleep(Duration::from_millis(20));
            }
            link.swanctl(side, &["--load-all"])?;
        }
        link.wait_established(Duration::from_secs(15))?;
        Ok(link)
    }

    /// `swanctl ARGS` against the charon of `side` ("clinic" or "dc").
    pub fn swanctl(&self, side: &str, args: &[&str]) -> Result<String> {
        let dir = self.conf.join(side);
        run(Command::new("swanctl")
            .args(args)
            .env("STRONGSWAN_CONF", dir.join("strongswan.conf"))
            .env("SWANCTL_DIR", dir.join("swanctl")))
    }

    /// Whether the clinic's child SA is installed.
    pub fn established(&self) -> Result<bool> {
        let sas = self.swanctl("clinic", &["--list-sas"])?;
        Ok(sas.contains("INSTALLED"))
    }

    pub fn wait_established(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.established()? {
            if Instant::now() > deadline {
                bail!("the IPsec tunnel did not come up\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Tears the tunnel down from the clinic's side (as a cut line or a
    /// stopped VPN router would leave it) and waits until it is gone.
    pub fn tear_down(&self) -> Result<()> {
        self.swanctl("clinic", &["--terminate", "--ike", "hpki-dc"])?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.established()? {
            ensure!(Instant::now() < deadline, "the tunnel did not go down");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Packets from the clinic LAN that the data centre dropped because
    /// they did not come through the tunnel.
    pub fn dropped_outside_tunnel(&self) -> Result<u64> {
        let text = ip(&["netns", "exec", &self.dc_ns, "nft", "list", "table", "inet", "hpki_vpn"])?;
        let packets = text
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .context("no counter in the data centre's firewall")?;
        Ok(packets.parse()?)
    }

    /// ESP packets charon counted on the clinic's side (in and out).
    pub fn clinic_sa_counters(&self) -> Result<String> {
        self.swanctl("clinic", &["--list-sas"])
    }

    /// Both charons' logs, for failure messages.
    pub fn logs(&self) -> String {
        ["clinic", "dc"]
            .iter()
            .map(|s| {
                let log = std::fs::read_to_string(self.conf.join(s).join("charon.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                format!("--- {s} charon.log (last lines)\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Opens a TCP connection inside `ns` to `addr:port` and reports whether
    /// it was accepted (bash's /dev/tcp: nothing to install); waits at most
    /// `timeout`.
    pub fn tcp_connects(ns: &str, addr: &str, port: u16, timeout: Duration) -> Result<bool> {
        let script = format!("exec 3<>/dev/tcp/{addr}/{port}");
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "timeout", &format!("{}", timeout.as_secs().max(1)), "bash", "-c", &script])
            .output()?;
        Ok(out.status.success())
    }
}
