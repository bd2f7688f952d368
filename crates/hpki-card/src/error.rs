//! Every way a card operation can fail, each with a message a person can act
//! on.

use std::fmt;

use crate::apdu::{EncodeError, StatusWord};
use crate::pin::PinFormatError;
use crate::profile::Application;

/// The command whose answer was not what the card layer expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardCommand {
    SelectApplication,
    SelectFile,
    ReadBinary,
    PinStatus,
    Verify,
    ManageSecurityEnvironment,
    ComputeSignature,
    GetResponse,
}

impl fmt::Display for CardCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CardCommand::SelectApplication => "SELECT (application)",
            CardCommand::SelectFile => "SELECT (file)",
            CardCommand::ReadBinary => "READ BINARY",
            CardCommand::PinStatus => "VERIFY (retry counter)",
            CardCommand::Verify => "VERIFY",
            CardCommand::ManageSecurityEnvironment => "MSE:SET",
            CardCommand::ComputeSignature => "PSO: COMPUTE DIGITAL SIGNATURE",
            CardCommand::GetResponse => "GET RESPONSE",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("the smart-card service (pcscd) is not running or not reachable")]
    NoService,
    #[error("no smart-card reader is connected")]
    NoReader,
    #[error("reader {0:?} is not connected")]
    UnknownReader(String),
    #[error("no card in reader {reader:?}")]
    NoCard { reader: String },
    #[error("the card was removed")]
    CardRemoved,
    #[error("the card was reset or re-inserted during the operation; start it again")]
    CardReset,
    #[error("the card is in exclusive use by another program")]
    CardInUse,
    #[error("the card does not answer (mute card or unsupported protocol)")]
    CardUnresponsive,
    #[error("the card has no HPKI {0} application (is it an HPKI or institution card?)")]
    ApplicationNotFound(Application),
    #[error("the {app} application has no file {file:04X}")]
    FileNotFound { app: Application, file: u16 },
    #[error("wrong PIN for the {app} application: {tries_left} tries left before it is blocked")]
    WrongPin { app: Application, tries_left: u8 },
    #[error("the {app} PIN is blocked; the card issuer must unblock it")]
    PinBlocked { app: Application },
    #[error("PIN not sent to the card: {0}")]
    InvalidPin(#[from] PinFormatError),
    #[error("the card refused {command}: the PIN has not been verified (security status not satisfied)")]
    SecurityStatusNotSatisfied { command: CardCommand },
    #[error("the card answered {command} with {sw}")]
    UnexpectedStatus { command: CardCommand, sw: StatusWord },
    #[error("malformed answer to {command}: {detail}")]
    MalformedResponse { command: CardCommand, detail: String },
    #[error("cannot encode {command}: {source}")]
    Encode { command: CardCommand, source: EncodeError },
    #[error("an RSA key of {0} bits is not supported for card signatures")]
    UnsupportedKeySize(usize),
    #[error("PC/SC error: {0}")]
    Pcsc(pcsc::Error),
}

impl CardError {
    /// Maps a PC/SC error, in the context of a reader when there is one.
    pub fn from_pcsc(err: pcsc::Error, reader: Option<&str>) -> CardError {
        use pcsc::Error as E;
        match err {
            E::NoService | E::ServiceStopped => CardError::NoService,
            E::NoReadersAvailable => CardError::NoReader,
            E::UnknownReader | E::ReaderUnavailable => match reader {
                Some(r) => CardError::UnknownReader(r.to_owned()),
                None => CardError::NoReader,
            },
            E::NoSmartcard => match reader {
                Some(r) => CardError::NoCard { reader: r.to_owned() },
                None => CardError::CardRemoved,
            },
            E::RemovedCard => CardError::CardRemoved,
            // A transaction that vanished under us: the card was reset or
            // removed and re-inserted meanwhile.
            E::ResetCard | E::NotTransacted => CardError::CardReset,
            E::SharingViolation => CardError::CardInUse,
            E::UnresponsiveCard | E::UnpoweredCard | E::UnsupportedCard | E::ProtoMismatch => {
                CardError::CardUnresponsive
            }
            other => CardError::Pcsc(other),
        }
    }

    pub(crate) fn malformed(command: CardCommand, detail: impl Into<String>) -> CardError {
        CardError::MalformedResponse { command, detail: detail.into() }
    }
}
