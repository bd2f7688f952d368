use std::path::PathBuf;
use std::process::Command;

/// Path of a workspace binary (`virtual-card`, …) next to the running test
/// or benchmark, or in `$HPKI_BIN_DIR`.
pub fn bin_path(name: &str) -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("HPKI_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            // target/<profile>/deps/<test> or target/<profile>/<bin>
            let exe = std::env::current_exe()?;
            let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
            if dir.ends_with("deps") {
                dir.pop();
            }
            dir
        }
    };
    let path = dir.join(name);
    anyhow::ensure!(
        path.is_file(),
        "{} not found; build the binaries first (cargo build --workspace --bins, or make test)",
        path.display()
    );
    Ok(path)
}

/// The workspace binary `name` as a command to finish building, run inside
/// network namespace `netns` (`ip netns exec`) when one is given.
pub fn bin_command(name: &str, netns: Option<&str>) -> anyhow::Result<Command> {
    Ok(match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(bin_path(name)?);
            c
        }
        None => Command::new(bin_path(name)?),
    })
}
