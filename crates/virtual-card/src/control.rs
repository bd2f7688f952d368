//! The control socket: a line protocol on a Unix socket to remove and
//! re-insert the card, or make it misbehave, while it runs.
//!
//! | command | effect |
//! |---|---|
//! | `status` | `inserted`, `connecting` or `removed` |
//! | `remove` | the card leaves the reader |
//! | `insert` | the card enters the reader again |
//! | `vanish-on INS` | the card is pulled out when the next APDU with INS (hex) arrives, without answering |
//! | `respond-next INS HEX` | the next APDU with INS is answered with exactly HEX (may be empty) |
//! | `tries APP` | the retry counter of `auth` or `sign` |
//! | `quit` | the card leaves and the process ends |
//!
//! Every command is answered by one line: `ok`, a value, or `error: …`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::vpcd::Shared;

pub fn listen(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.file_type().is_socket()
    {
        std::fs::remove_file(path)?;
    }
    UnixListener::bind(path)
}

/// Serves control connections for ever. `image` is the card's image file:
/// `tries` reads the persisted counters from it.
pub fn serve(listener: UnixListener, shared: Arc<Shared>, image: Arc<PathBuf>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let shared = shared.clone();
        let image = image.clone();
        std::thread::spawn(move || handle(conn, &shared, &image));
    }
}

fn handle(conn: UnixStream, shared: &Shared, image: &Path) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { return };
        let reply = apply(line.trim(), shared, image).unwrap_or_else(|e| format!("error: {e}"));
        if writeln!(out, "{reply}").is_err() {
            return;
        }
        if line.trim() == "quit" {
            std::process::exit(0);
        }
    }
}

fn apply(line: &str, shared: &Shared, image: &Path) -> Result<String, String> {
    let mut words = line.split_whitespace();
    let cmd = words.next().ok_or("empty command")?;
    let ins = |w: Option<&str>| -> Result<u8, String> {
        let w = w.ok_or("missing INS (hex byte)")?;
        u8::from_str_radix(w, 16).map_err(|_| format!("{w:?} is not a hex byte"))
    };
    match cmd {
        "status" => Ok(shared
            .update(|st| match (st.inserted, st.connected) {
                (true, true) => "inserted",
                (true, false) => "connecting",
                (false, _) => "removed",
            })
            .to_string()),
        "remove" => {
            shared.update(|st| {
                st.inserted = false;
                Shared::disconnect(st);
            });
            Ok("ok".into())
        }
        "insert" => {
            shared.update(|st| st.inserted = true);
            Ok("ok".into())
        }
        "vanish-on" => {
            let ins = ins(words.next())?;
            shared.update(|st| st.vanish_on = Some(ins));
            Ok("ok".into())
        }
        "respond-next" => {
            let ins = ins(words.next())?;
            let raw = crate::atr::parse_hex(words.next().unwrap_or(""))?;
            shared.update(|st| st.respond_next.push((ins, raw)));
            Ok("ok".into())
        }
        "tries" => {
            let app = match words.next() {
                Some("auth") => hpki_card::Application::Authentication,
                Some("sign") => hpki_card::Application::Signature,
                _ => return Err("expected `tries auth` or `tries sign`".into()),
            };
            let img = crate::image::CardImage::load(image).map_err(|e| e.to_string())?;
            Ok(img.app(app).tries_left.to_string())
        }
        "quit" => {
            shared.update(|st| {
                st.quit = true;
                st.inserted = false;
                Shared::disconnect(st);
            });
            Ok("ok".into())
        }
        other => Err(format!("unknown command {other:?}")),
    }
}
