//! IKE credentials and swanctl configurations for the IPsec link between a
//! clinic and the data centre (NET-1): one certificate for each endpoint from
//! the VPN CA, and a ready configuration directory for each side.
//!
//! Each side trusts the root but requires its peer's certificate to come
//! from the VPN CA (`cacerts`), so a terminal, server or card certificate of
//! the same root cannot authenticate an IKE peer. Each side also gets the VPN CA's current CRL and checks the
//! peer against it with `revocation = ifuri`: a revoked endpoint, or a CRL
//! that can no longer be trusted, stops the next IKE authentication.

use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hpki_profile::oid;
use ipnet::IpNet;
use rcgen::{DistinguishedName, DnType, KeyUsagePurpose};
use serde::Serialize;

use crate::dir::{CaDir, CertKind};
use crate::error::CaError;
use crate::hierarchy::CaRole;
use crate::issue::{LeafSpec, check_days};
use crate::keys::{self, KeyKind};
use crate::ledger::{self, LedgerEntry};

/// IKE and ESP proposals written into both sides: AES-256-GCM, SHA-256 PRF,
/// ECDH on P-256 (a suite every current IPsec router offers).
pub const IKE_PROPOSALS: &str = "aes256gcm16-prfsha256-ecp256";
pub const ESP_PROPOSALS: &str = "aes256gcm16";
/// The data centre's IKE identity unless `--dc-id` says otherwise.
pub const DEFAULT_DC_ID: &str = "dc.hpki-vpn";
/// The file name of the VPN CA in both sides' `x509ca/` and `x509crl/`.
const CA_FILE: &str = "hpki-vpn-ca";
/// The test root, which strongSwan needs to end the chain at (the peer is
/// still held to the VPN CA by `cacerts`).
const ROOT_FILE: &str = "hpki-root-ca";
/// How long the CRL given to both sides stays fresh.
const CRL_DAYS: i64 = 4;

/// One clinic site's link to the data centre.
#[derive(Debug, Clone)]
pub struct VpnRequest {
    /// Site name: lower-case letters, digits and '-' (IKE identity and file
    /// names are made from it).
    pub site: String,
    /// The clinic endpoint's outside address; `None`: any (a dynamic or
    /// NATed address, authenticated by its certificate only).
    pub clinic_addr: Option<IpAddr>,
    /// The data centre endpoint's outside address.
    pub dc_addr: IpAddr,
    /// The clinic LAN that may reach the gateway (the gateway's allowlist).
    pub clinic_subnet: IpNet,
    /// The data-centre network the gateway listens in.
    pub dc_subnet: IpNet,
    pub dc_id: String,
    /// Write a strongswan.conf that uses strongSwan's userspace ESP
    /// (`kernel-libipsec`), for kernels without ESP.
    pub userspace_esp: bool,
    pub valid_days: i64,
}

/// What `issue_vpn` wrote for one side.
#[derive(Debug, Clone, Serialize)]
pub struct VpnSide {
    /// The side's directory: `strongswan.conf` and `swanctl/`.
    pub dir: PathBuf,
    /// Its IKE identity (a dNSName in its certificate).
    pub id: String,
    pub certificate: PathBuf,
    pub serial: String,
    pub not_after: String,
    /// The connection name in its swanctl configuration.
    pub connection: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssuedVpn {
    pub out: PathBuf,
    pub clinic: VpnSide,
    pub dc: VpnSide,
}

/// The child SA's name on both sides.
pub const CHILD_NAME: &str = "hpki";

impl VpnRequest {
    fn check(&self) -> Result<(), CaError> {
        let s = &self.site;
        if s.is_empty()
            || s.len() > 32
            || s.starts_with('-')
            || !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(CaError::invalid("--site", "1–32 characters: lower-case letters, digits and '-'"));
        }
        let id_ok = |id: &str| {
            !id.is_empty()
                && id.len() <= 253
                && id
                    .split('.')
                    .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        };
        if !id_ok(&self.dc_id) {
            return Err(CaError::invalid("--dc-id", format!("{:?} is not a DNS-style name", self.dc_id)));
        }
        if self.clinic_subnet.addr().is_ipv4() != self.dc_subnet.addr().is_ipv4() {
            return Err(CaError::invalid("--clinic-subnet/--dc-subnet", "one is IPv4, the other IPv6"));
        }
        if self.clinic_subnet.contains(&self.dc_subnet.network())
            || self.dc_subnet.contains(&self.clinic_subnet.network())
        {
            return Err(CaError::invalid(
                "--clinic-subnet/--dc-subnet",
                format!("{} and {} overlap", self.clinic_subnet, self.dc_subnet),
            ));
        }
        if self.clinic_addr == Some(self.dc_addr) {
            return Err(CaError::invalid("--clinic-addr", "is the data centre's address"));
        }
        check_days(self.valid_days)
    }

    fn clinic_id(&self) -> String {
        format!("{}.clinic.hpki-vpn", self.site)
    }
}

impl CaDir {
    /// Issues the two IKE certificates of `req`'s link and writes
    /// `out/clinic/` and `out/dc/` (each `strongswan.conf` and a `swanctl/`
    /// tree). `out` must not exist or be empty; on failure nothing is left
    /// in it.
    pub fn issue_vpn(&mut self, req: &VpnRequest, out: &Path) -> Result<IssuedVpn, CaError> {
        req.check()?;
        if out.exists() && fs::read_dir(out).map_err(CaError::io(out))?.next().is_some() {
            return Err(CaError::OutputExists(out.into()));
        }
        self.ensure_ca(CaRole::Vpn)?;
        let result = self.write_vpn(req, out);
        if result.is_err() {
            let _ = fs::remove_dir_all(out);
        }
        result
    }

    fn write_vpn(&mut self, req: &VpnRequest, out: &Path) -> Result<IssuedVpn, CaError> {
        fs::create_dir_all(out).map_err(CaError::io(out))?;
        let out = fs::canonicalize(out).map_err(CaError::io(out))?;
        let clinic_id = req.clinic_id();
        let clinic_leaf = self.vpn_leaf(&req.site, &clinic_id, req.valid_days)?;
        let dc_leaf = self.vpn_leaf("data centre", &req.dc_id, req.valid_days)?;
        let now = time::OffsetDateTime::now_utc();
        let (crl_number, crl, _) = self.render_crl(CaRole::Vpn, now, time::Duration::days(CRL_DAYS))?;
        let ca_pem = keys::pem("CERTIFICATE", &self.ca_cert_der(CaRole::Vpn)?);
        let root_pem = keys::pem("CERTIFICATE", &self.ca_cert_der(CaRole::Root)?);

        let clinic_conn = "hpki-dc".to_string();
        let dc_conn = format!("site-{}", req.site);
        let clinic_cert = format!("{}-clinic.pem", req.site);
        let dc_cert = format!("dc-for-{}.pem", req.site);
        let clinic_dir = out.join("clinic");
        let dc_dir = out.join("dc");
        let any = "%any".to_string();
        let clinic_addr = req.clinic_addr.map(|a| a.to_string()).unwrap_or(any);

        let clinic_conf = swanctl_connection(&Connection {
            comment: format!("Clinic site {:?} to the data centre (written by hpki-certs vpn issue).", req.site),
            name: &clinic_conn,
            local_addrs: &clinic_addr,
            remote_addrs: &req.dc_addr.to_string(),
            local_cert: &clinic_cert,
            local_id: &clinic_id,
            remote_id: &req.dc_id,
            local_ts: req.clinic_subnet,
            remote_ts: req.dc_subnet,
            initiator: true,
        });
        let dc_conf = swanctl_connection(&Connection {
            comment: format!("Data centre side of clinic site {:?} (written by hpki-certs vpn issue).", req.site),
            name: &dc_conn,
            local_addrs: &req.dc_addr.to_string(),
            remote_addrs: &clinic_addr,
            local_cert: &dc_cert,
            local_id: &req.dc_id,
            remote_id: &clinic_id,
            local_ts: req.dc_subnet,
            remote_ts: req.clinic_subnet,
            initiator: false,
        });

        let sides = [
            (&clinic_dir, &clinic_leaf, &clinic_cert, SideConf::Whole(clinic_conf)),
            (&dc_dir, &dc_leaf, &dc_cert, SideConf::Included { file: format!("{dc_conn}.conf"), text: dc_conf }),
        ];
        for (dir, leaf, cert_name, conf) in sides {
            let sw = dir.join("swanctl");
            for sub in ["x509", "x509ca", "x509crl", "private", "conf.d"] {
                fs::create_dir_all(sw.join(sub)).map_err(CaError::io(sw.join(sub)))?;
            }
            write(&sw.join("x509").join(cert_name), keys::pem("CERTIFICATE", &leaf.der).as_bytes())?;
            let key_name = cert_name.replace(".pem", ".key");
            keys::write_private(&sw.join("private").join(key_name), keys::pem("PRIVATE KEY", &leaf.pkcs8).as_bytes())?;
            write(&sw.join("x509ca").join(format!("{CA_FILE}.pem")), ca_pem.as_bytes())?;
            write(&sw.join("x509ca").join(format!("{ROOT_FILE}.pem")), root_pem.as_bytes())?;
            write(&sw.join("x509crl").join(format!("{CA_FILE}.crl")), &crl)?;
            match conf {
                SideConf::Whole(text) => write(&sw.join("swanctl.conf"), text.as_bytes())?,
                SideConf::Included { file, text } => {
                    write(&sw.join("conf.d").join(&file), text.as_bytes())?;
                    write(
                        &sw.join("swanctl.conf"),
                        b"# One file per clinic site in conf.d/ (hpki-certs vpn issue writes them).\ninclude conf.d/*.conf\n",
                    )?;
                }
            }
            write(&dir.join("strongswan.conf"), strongswan_conf(dir, req.userspace_esp).as_bytes())?;
        }
        // Recorded only now that everything is on disk.
        self.state.issued.push(clinic_leaf.record.clone());
        self.state.issued.push(dc_leaf.record.clone());
        if let Some(c) = self.state.cas.get_mut(&CaRole::Vpn) {
            c.crl_number = crl_number;
        }
        self.save()?;
        let side = |dir: &Path, leaf: &crate::issue::Leaf, cert: &str, id: &str, conn: &str| VpnSide {
            dir: dir.into(),
            id: id.into(),
            certificate: dir.join("swanctl").join("x509").join(cert),
            serial: leaf.record.serial.clone(),
            not_after: leaf.record.not_after.clone(),
            connection: conn.into(),
        };
        let issued = IssuedVpn {
            out: out.clone(),
            clinic: side(&clinic_dir, &clinic_leaf, &clinic_cert, &clinic_id, &clinic_conn),
            dc: side(&dc_dir, &dc_leaf, &dc_cert, &req.dc_id, &dc_conn),
        };
        ledger::append(self, LedgerEntry::vpn_issued(&req.site, &issued))?;
        Ok(issued)
    }

    fn vpn_leaf(&self, organisation: &str, id: &str, valid_days: i64) -> Result<crate::issue::Leaf, CaError> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "JP");
        dn.push(DnType::OrganizationName, organisation);
        dn.push(DnType::CommonName, id);
        let name = rcgen::string::Ia5String::try_from(id.to_string())
            .map_err(|_| CaError::invalid("--site", id.to_string()))?;
        self.issue_leaf(
            LeafSpec {
                ca: CaRole::Vpn,
                kind: CertKind::VpnEndpoint,
                dn,
                key_usage: KeyUsagePurpose::DigitalSignature,
                policy: oid::TERMINAL_POLICY,
                hc_role: None,
                san: None,
                sans: vec![rcgen::SanType::DnsName(name)],
                valid_days,
            },
            KeyKind::EcdsaP256,
        )
    }
}

enum SideConf {
    Whole(String),
    Included { file: String, text: String },
}

struct Connection<'a> {
    comment: String,
    name: &'a str,
    local_addrs: &'a str,
    remote_addrs: &'a str,
    local_cert: &'a str,
    local_id: &'a str,
    remote_id: &'a str,
    local_ts: IpNet,
    remote_ts: IpNet,
    /// The clinic starts the tunnel and restarts it when the peer is lost;
    /// the data centre only answers.
    initiator: bool,
}

fn swanctl_connection(c: &Connection<'_>) -> String {
    let mut s = String::new();
    let (start, dpd) = if c.initiator { ("start", "restart") } else { ("none", "clear") };
    // `mobike = no`: the endpoints have fixed roles and addresses; address
    // updates would only confuse the data centre's allowlist.
    let _ = write!(
        s,
        "# {comment}\n\
         connections {{\n\
         \x20 {name} {{\n\
         \x20   version = 2\n\
         \x20   mobike = no\n\
         \x20   local_addrs = {la}\n\
         \x20   remote_addrs = {ra}\n\
         \x20   proposals = {IKE_PROPOSALS}\n\
         \x20   dpd_delay = 30s\n\
         \x20   local {{\n\
         \x20     auth = pubkey\n\
         \x20     certs = {cert}\n\
         \x20     id = {lid}\n\
         \x20   }}\n\
         \x20   remote {{\n\
         \x20     auth = pubkey\n\
         \x20     id = {rid}\n\
         \x20     cacerts = {CA_FILE}.pem\n\
         \x20     revocation = ifuri\n\
         \x20   }}\n\
         \x20   children {{\n\
         \x20     {CHILD_NAME} {{\n\
         \x20       mode = tunnel\n\
         \x20       local_ts = {lts}\n\
         \x20       remote_ts = {rts}\n\
         \x20       esp_proposals = {ESP_PROPOSALS}\n\
         \x20       start_action = {start}\n\
         \x20       dpd_action = {dpd}\n\
         \x20     }}\n\
         \x20   }}\n\
         \x20 }}\n\
         }}\n",
        comment = c.comment,
        name = c.name,
        la = c.local_addrs,
        ra = c.remote_addrs,
        cert = c.local_cert,
        lid = c.local_id,
        rid = c.remote_id,
        lts = c.local_ts,
        rts = c.remote_ts,
    );
    s
}

/// A strongswan.conf for running this side from its directory (the vici
/// socket and the log live there). On a host whose strongSwan is set up by
/// the distribution, copy `swanctl/` to `/etc/swanctl/` and keep the
/// system's strongswan.conf (adding `kernel-libipsec` only on a kernel
/// without ESP).
fn strongswan_conf(dir: &Path, userspace_esp: bool) -> String {
    let d = dir.display();
    let (libipsec, note) = if userspace_esp {
        (
            " kernel-libipsec",
            "  # kernel-libipsec (userspace ESP on a TUN device, ipsec0) must come before kernel-netlink.\n",
        )
    } else {
        ("", "")
    };
    format!(
        "# Written by hpki-certs vpn issue. Used by charon-systemd and swanctl through\n\
         # STRONGSWAN_CONF={d}/strongswan.conf (swanctl also needs SWANCTL_DIR={d}/swanctl).\n\
         charon-systemd {{\n\
         {note}\
         \x20 load = random nonce openssl kdf pem pkcs1 pkcs8 x509 revocation constraints pubkey{libipsec} kernel-netlink socket-default vici\n\
         \x20 plugins {{\n\
         \x20   vici {{\n\
         \x20     socket = unix://{d}/charon.vici\n\
         \x20   }}\n\
         \x20 }}\n\
         \x20 journal {{\n\
         \x20   default = -1\n\
         \x20 }}\n\
         \x20 filelog {{\n\
         \x20   main {{\n\
         \x20     path = {d}/charon.log\n\
         \x20     time_format = %F %T\n\
         \x20     default = 1\n\
         \x20     ike = 2\n\
         \x20     flush_line = yes\n\
         \x20   }}\n\
         \x20 }}\n\
         }}\n\
         swanctl {{\n\
         \x20 socket = unix://{d}/charon.vici\n\
         \x20 load = random nonce openssl pem pkcs1 pkcs8 x509 pubkey\n\
         }}\n"
    )
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
    fs::write(path, bytes).map_err(CaError::io(path))
}
