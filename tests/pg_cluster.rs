//! A private PostgreSQL cluster for the backup test: its own data
//! directory, port and socket directory, WAL archiving into its own archive,
//! stopped and removed when dropped. The machine's shared server is not
//! touched (its pg_hba has no replication line, and a test must not change
//! it). Runs the server binaries as the `postgres` user when the test runs
//! as root (initdb refuses root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

static SEQ: AtomicU32 = AtomicU32::new(0);

pub struct PgCluster {
    /// Holds data/, wal-archive/ and the socket; removed on drop.
    pub root: PathBuf,
    pub port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

/// The newest installed server's binaries (Debian's layout).
fn bin_dir() -> Result<PathBuf> {
    let base = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(base)
        .with_context(|| format!("{}: no PostgreSQL server installed (`make test` installs it)", base.display()))?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b).context("no PostgreSQL server with initdb under /usr/lib/postgresql")
}

fn running_as_root() -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata("/proc/self")?.uid() == 0)
}

impl PgCluster {
    /// initdb + start, with `wal_level = replica`, WAL archiving and a
    /// replication line for 127.0.0.1 (initdb's trust default has one).
    pub fn start() -> Result<PgCluster> {
        let bin = bin_dir()?;
        let as_postgres = running_as_root()?;
        // Under /tmp: every parent directory must be open to the postgres
        // user, which the project's target/ need not be.
        let root = std::env::temp_dir().join(format!(
            "hpki-pg-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("wal-archive"))?;
        let port = crate::free_port()?;
        let cluster = PgCluster { root, port, bin, as_postgres };
        if as_postgres {
            cluster.chown_postgres(&cluster.root)?;
        }
        cluster.run("initdb", &["-D", &cluster.data_s(), "-U", "postgres", "--auth=trust", "-E", "UTF8"])?;
        let archive = cluster.archive().display().to_string();
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n\
             wal_level = replica\narchive_mode = on\n\
             archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f.part && mv {archive}/%f.part {archive}/%f'\nfsync = off\n",
            root = cluster.root.display(),
        );
        append(&cluster.data().join("postgresql.conf"), &conf)?;
        cluster.pg_ctl_start()?;
        Ok(cluster)
    }

    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn data_s(&self) -> String {
        self.data().display().to_string()
    }

    pub fn archive(&self) -> PathBuf {
        self.root.join("wal-archive")
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn chown_postgres(&self, path: &Path) -> Result<()> {
        let out = Command::new("chown").args(["-R", "postgres:postgres"]).arg(path).output()?;
        ensure!(out.status.success(), "chown postgres {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

    /// One of the server's programs, as the postgres user when root.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<Output> {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).current_dir(&self.root).output().with_context(|| format!("running {program}"))?;
        ensure!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(out)
    }

    fn pg_ctl_start(&self) -> Result<()> {
        let log = self.root.join("server.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data_s(), "-l", &log, "-w", "-t", "60", "start"]).map(|_| ())
    }

    /// A statement through psql on the cluster's socket; its output.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String> {
        let out = Command::new("psql")
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-d", db])
            .args(["-p", &self.port.to_string(), "-c", sql])
            .output()
            .context("running psql")?;
        ensure!(out.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `pg_basebackup` (plain format, WAL streamed along) into
    /// `root/NAME`, which it creates; the directory's path.
    pub fn base_backup(&self, name: &str) -> Result<PathBuf> {
        let dir = self.root.join(name);
        let (dir_s, port) = (dir.display().to_string(), self.port.to_string());
        self.run(
            "pg_basebackup",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-D", &dir_s, "-Fp", "-Xs", "-c", "fast"],
        )?;
        Ok(dir)
    }

    /// Switches to a new WAL segment and waits until the finished one is
    /// in the archive (what `archive_timeout` does on a quiet server).
    pub fn archive_current_wal(&self) -> Result<()> {
        let segment = self.psql("postgres", "SELECT pg_walfile_name(pg_switch_wal())")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.archive().join(&segment).exists() {
            if Instant::now() > deadline {
                bail!("WAL segment {segment} did not reach the archive");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// The disaster: the server dies and its data directory is gone.
    pub fn crash_and_lose_data(&self) -> Result<()> {
        self.run("pg_ctl", &["-D", &self.data_s(), "-m", "immediate", "stop"])?;
        std::fs::remove_dir_all(self.data()).context("removing the data directory")
    }

    /// The documented restore: the base backup into an empty data
    /// directory, `restore_command` reading the WAL archive,
    /// `recovery.signal`, start; waits until recovery has replayed the
    /// archive and the server accepts writes.
    pub fn restore(&self, base: &Path) -> Result<()> {
        ensure!(!self.data().exists(), "the data directory must be gone before a restore");
        let out = Command::new("cp").arg("-a").arg(base).arg(self.data()).output()?;
        ensure!(out.status.success(), "copying the base backup: {}", String::from_utf8_lossy(&out.stderr));
        let archive = self.archive().display().to_string();
        append(&self.data().join("postgresql.conf"), &format!("\nrestore_command = 'cp {archive}/%f %p'\n"))?;
        std::fs::write(self.data().join("recovery.signal"), "")?;
        if self.as_postgres {
            self.chown_postgres(&self.data())?;
        }
        self.pg_ctl_start()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.psql("postgres", "SELECT pg_is_in_recovery()") {
                Ok(r) if r == "f" => return Ok(()),
                _ if Instant::now() > deadline => bail!("the restored server did not finish recovery"),
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// The server's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
    }
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).with_context(|| path.display().to_string())?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            let _ = self.run("pg_ctl", &["-D", &self.data_s(), "-m", "immediate", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
