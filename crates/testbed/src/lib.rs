//! The real stack, started for a test or a demo and torn down after it.
//!
//! * [`PrivatePcscd`]: a pcscd of its own, in its own mount namespace, with a
//!   vpcd reader on free ports — side by side with a system pcscd and with
//!   other tests.
//! * [`CardProcess`]: a `virtual-card` process in one of its slots, with its
//!   control socket (remove, insert, faults) and APDU log.
//! * [`pki`]: throwaway RSA-2048 card certificates for card-layer tests.
//!
//! libpcsclite reads `PCSCLITE_CSOCK_NAME` once per process, so a process
//! talks to one pcscd: tests run one per process (`cargo nextest`).

mod bins;
mod card_process;
mod pcscd;
pub mod pki;
mod ports;

pub use bins::{bin_command, bin_path};
pub use card_process::CardProcess;
pub use pcscd::PrivatePcscd;
