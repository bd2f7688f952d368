//! What can go wrong for a person at the terminal, with a stable code for
//! programs and a sentence in Japanese or English for people.

use gateway_client::GatewayError;
use hpki_card::{CardError, PinFormatError};
use hpki_protocol::ErrorCode;

use crate::i18n::{self, Lang};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("no reader named {0:?} is watched by this agent")]
    UnknownReader(String),
    #[error("no card in reader {0:?}")]
    NoCard(String),
    #[error("the card in {0:?} changed during the operation")]
    CardChanged(String),
    #[error("the PIN is blocked on this card")]
    CardBlocked,
    #[error("wrong PIN: {tries_left} tries left")]
    WrongPin { tries_left: u8 },
    #[error("{0}")]
    PinFormat(#[from] PinFormatError),
    #[error("the card cannot be used: {0}")]
    Card(CardError),
    #[error("the card's certificate cannot be read: {0}")]
    NotACard(String),
    #[error("{0}")]
    Gateway(#[from] GatewayError),
    #[error("the gateway did not answer within {0} s")]
    GatewayTimeout(u64),
    #[error("nobody is logged in with the card in {0:?}")]
    NotLoggedIn(String),
    #[error("the screen is locked; unlock it with the PIN")]
    Locked,
    #[error("{0}")]
    BadRequest(String),
    #[error("draft {0} changed after it was reviewed; review it again")]
    ContentChanged(String),
    #[error("the gateway sent bytes that are not the confirm document of this draft ({0}); nothing was signed")]
    BadDocument(String),
}

impl From<CardError> for AgentError {
    fn from(e: CardError) -> Self {
        match e {
            CardError::WrongPin { tries_left, .. } => AgentError::WrongPin { tries_left },
            CardError::PinBlocked { .. } => AgentError::CardBlocked,
            CardError::InvalidPin(f) => AgentError::PinFormat(f),
            CardError::NoCard { reader } => AgentError::NoCard(reader),
            other => AgentError::Card(other),
        }
    }
}

impl AgentError {
    /// Stable code for programs (the local API's `error`).
    pub fn code(&self) -> String {
        match self {
            AgentError::UnknownReader(_) => "unknown_reader".into(),
            AgentError::NoCard(_) => "no_card".into(),
            AgentError::CardChanged(_) => "card_changed".into(),
            AgentError::CardBlocked => "card_blocked".into(),
            AgentError::WrongPin { .. } => "wrong_pin".into(),
            AgentError::PinFormat(_) => "pin_format".into(),
            AgentError::Card(CardError::CardRemoved) => "card_removed".into(),
            AgentError::Card(_) => "card_error".into(),
            AgentError::NotACard(_) => "card_unreadable".into(),
            AgentError::Gateway(GatewayError::Refused { code, .. }) => format!("gateway_refused:{code}"),
            AgentError::Gateway(e) if e.is_transport() => "gateway_unreachable".into(),
            AgentError::Gateway(_) => "gateway_error".into(),
            AgentError::GatewayTimeout(_) => "gateway_unreachable".into(),
            AgentError::NotLoggedIn(_) => "not_logged_in".into(),
            AgentError::Locked => "locked".into(),
            AgentError::BadRequest(_) => "bad_request".into(),
            AgentError::ContentChanged(_) => "content_changed".into(),
            AgentError::BadDocument(_) => "bad_document".into(),
        }
    }

    /// HTTP status for the local API.
    pub fn http_status(&self) -> u16 {
        match self {
            AgentError::UnknownReader(_) => 404,
            AgentError::NoCard(_) | AgentError::CardChanged(_) => 409,
            AgentError::CardBlocked => 423,
            AgentError::WrongPin { .. } => 401,
            AgentError::PinFormat(_) | AgentError::BadRequest(_) => 400,
            AgentError::Card(_) | AgentError::NotACard(_) => 422,
            AgentError::Gateway(GatewayError::Refused { status, .. }) => *status,
            AgentError::Gateway(_) | AgentError::GatewayTimeout(_) => 502,
            AgentError::NotLoggedIn(_) => 401,
            AgentError::Locked => 423,
            AgentError::ContentChanged(_) => 409,
            AgentError::BadDocument(_) => 502,
        }
    }

    /// The sentence for a person.
    pub fn message(&self, lang: Lang) -> String {
        let ja = lang == Lang::Ja;
        match self {
            AgentError::WrongPin { tries_left } => {
                if ja {
                    format!("暗証番号が違います。残り {tries_left} 回間違えるとカードがロックされます。")
                } else {
                    format!("Wrong PIN. {tries_left} more wrong PINs will block the card.")
                }
            }
            AgentError::CardBlocked => i18n::ui_strings(lang)["blocked"].as_str().unwrap_or_default().to_owned(),
            AgentError::PinFormat(e) => {
                if ja {
                    "暗証番号は4〜16文字の半角英数字・記号です。".to_owned()
                } else {
                    format!("The PIN was not sent to the card: {e}.")
                }
            }
            AgentError::NoCard(_) if ja => "カードが挿入されていません。".into(),
            AgentError::CardChanged(_) if ja => "操作中にカードが入れ替わりました。もう一度お試しください。".into(),
            AgentError::Card(CardError::CardRemoved) if ja => "操作中にカードが抜かれました。".into(),
            AgentError::Card(e) if ja => format!("カードを使用できません: {e}"),
            AgentError::NotACard(_) if ja => {
                "このカードの証明書を読み取れません。HPKIカードまたは職員カードか確認してください。".into()
            }
            AgentError::Gateway(GatewayError::Refused { code, message, .. }) => {
                match ErrorCode::from_wire(code).and_then(|c| i18n::gateway_refusal(c, lang)) {
                    Some(text) => text.to_owned(),
                    None if ja => format!("ゲートウェイに拒否されました: {message}"),
                    None => format!("The gateway refused: {message}"),
                }
            }
            AgentError::Gateway(e) if e.is_transport() => {
                if ja {
                    "ゲートウェイに接続できません。ネットワーク(VPN)を確認して、もう一度お試しください。".into()
                } else {
                    format!("Cannot reach the gateway ({e}). Check the network (VPN) and try again.")
                }
            }
            AgentError::GatewayTimeout(s) => {
                if ja {
                    format!("ゲートウェイが {s} 秒以内に応答しません。もう一度お試しください。")
                } else {
                    format!("The gateway did not answer within {s} s. Please try again.")
                }
            }
            AgentError::Gateway(e) if ja => format!("ゲートウェイとの通信に失敗しました: {e}"),
            AgentError::NotLoggedIn(_) if ja => "ログインしていません。".into(),
            AgentError::Locked if ja => "画面はロックされています。暗証番号を入力して解除してください。".into(),
            AgentError::UnknownReader(r) if ja => format!("カードリーダー {r:?} は使用できません。"),
            AgentError::BadRequest(m) if ja => format!("要求が正しくありません: {m}"),
            AgentError::ContentChanged(_) if ja => {
                "確認した後で内容が変更されました。署名していません。もう一度内容を確認してください。".into()
            }
            AgentError::BadDocument(_) if ja => {
                "ゲートウェイから届いた署名対象がこの下書きの確定文書ではありません。署名していません。".into()
            }
            other => {
                let mut s = other.to_string();
                if let Some(first) = s.get(..1) {
                    s = first.to_uppercase() + &s[1..];
                }
                s + "."
            }
        }
    }
}
