//! The tools this project did not write that tests check its standard
//! output with (rule 4): OpenSSL, and pyHanko through
//! `tests/python/check_cades.py`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

/// `openssl ARGS` in `dir`: whether it succeeded, and all it printed.
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The certificate `der` in `dir` written as PEM to `pem`.
pub fn pem_of(dir: &Path, der: &str, pem: &str) {
    let (ok, text) = openssl(dir, &["x509", "-inform", "DER", "-in", der, "-out", pem]);
    assert!(ok, "{text}");
}

/// `tests/python/check_cades.py` (pyHanko) on `p7s` over `document` with
/// `root.der` in `dir` as the only anchor; its JSON report. It also writes
/// each archive time-stamp (`ats-N.tst`) and its input (`ats-N.bin`).
pub fn cades_check(dir: &Path, document: &str, p7s: &str) -> Result<Value> {
    let out = crate::python_tool("check_cades.py")
        .args([document, p7s, "root.der", "."])
        .current_dir(dir)
        .output()
        .context("running tests/python/check_cades.py (scripts/install-python-tools.sh installs pyHanko)")?;
    anyhow::ensure!(out.status.success(), "check_cades.py: {}", String::from_utf8_lossy(&out.stderr));
    Ok(serde_json::from_slice(&out.stdout)?)
}
