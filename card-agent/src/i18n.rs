//! Japanese and English text for people: the UI's strings and the gateway's
//! refusal codes translated into what a doctor or assistant can act on.

use hpki_protocol::ErrorCode;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Ja,
    En,
}

impl Lang {
    pub fn from_tag(tag: &str) -> Option<Lang> {
        match tag.trim().to_ascii_lowercase().as_str() {
            "ja" | "jp" | "ja-jp" => Some(Lang::Ja),
            "en" | "en-us" | "en-gb" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    fn pick(self, ja: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Ja => ja,
            Lang::En => en,
        }
    }
}

/// The gateway's refusal `code`, said for a person. `None` for codes without
/// a translation (the caller shows the gateway's own message).
pub fn gateway_refusal(code: ErrorCode, lang: Lang) -> Option<&'static str> {
    let (ja, en) = match code {
        ErrorCode::AssistantWrongInstitution => (
            "このカードは別の医療機関の職員カードです。この端末の医療機関のカードでログインしてください。",
            "This staff card belongs to another institution. Use a card of this terminal's institution.",
        ),
        ErrorCode::PersonNotRegistered => (
            "このカードの持ち主はゲートウェイに登録されていません。システム管理者に連絡してください。",
            "The card holder is not registered at the gateway. Please contact IT staff.",
        ),
        ErrorCode::PersonDeactivated => (
            "この利用者は利用停止されています。システム管理者に連絡してください。",
            "This user has been deactivated. Please contact IT staff.",
        ),
        ErrorCode::RoleMismatch => (
            "カードの資格と登録されている資格が一致しません。システム管理者に連絡してください。",
            "The card's profession does not match the registration. Please contact IT staff.",
        ),
        ErrorCode::Revoked => (
            "このカードの証明書は失効しています。カードの発行元に連絡してください。",
            "This card's certificate has been revoked. Please contact the card issuer.",
        ),
        ErrorCode::Expired => ("このカードの証明書は有効期限が切れています。", "This card's certificate has expired."),
        ErrorCode::NotYetValid => {
            ("このカードの証明書はまだ有効になっていません。", "This card's certificate is not valid yet.")
        }
        ErrorCode::StaleCrl
        | ErrorCode::NoRevocationInfo
        | ErrorCode::CrlUnusable
        | ErrorCode::CrlNotYetValid
        | ErrorCode::CrlBadSignature => (
            "ゲートウェイがカードの失効情報を確認できません。システム管理者に連絡してください。",
            "The gateway cannot check the card's revocation status. Please contact IT staff.",
        ),
        ErrorCode::UnknownIssuer | ErrorCode::PolicyNotAccepted | ErrorCode::NotACardCertificate => (
            "このカードはこのシステムでは使えません(認められた発行元のHPKIカード・職員カードではありません)。",
            "This card cannot be used here (not an HPKI or staff card from an accepted issuer).",
        ),
        ErrorCode::OutsideTrustScope => (
            "このカードの証明書は、この種類のカードを発行できない認証局が発行したものです。このシステムでは使えません。",
            "This card's certificate was issued by a CA that may not issue such cards; it cannot be used here.",
        ),
        ErrorCode::ProfessionNotPermitted => (
            "この資格のカードではこのシステムを利用できません。",
            "Cards of this profession have no access to this system.",
        ),
        ErrorCode::SignatureInvalid | ErrorCode::BadSignature => (
            "カードの署名を確認できませんでした。もう一度お試しください。",
            "The card's signature could not be verified. Please try again.",
        ),
        ErrorCode::ChallengeExpired
        | ErrorCode::UnknownChallenge
        | ErrorCode::ChallengeReplayed
        | ErrorCode::ChallengeOtherTerminal => (
            "ログインの手続きが時間切れになりました。もう一度お試しください。",
            "The login took too long. Please try again.",
        ),
        ErrorCode::TerminalSuspended => (
            "この端末は利用停止されています。システム管理者に連絡してください。",
            "This terminal has been suspended. Please contact IT staff.",
        ),
        ErrorCode::RateLimited => (
            "要求が多すぎます。少し待ってからもう一度お試しください。",
            "Too many requests. Please wait a moment and try again.",
        ),
        ErrorCode::SessionIdleTimeout
        | ErrorCode::SessionExpired
        | ErrorCode::SessionEnded
        | ErrorCode::SessionUnknown
        | ErrorCode::NoSession => (
            "ログインの有効期間が終わりました。もう一度ログインしてください。",
            "The login has ended. Please log in again.",
        ),
        ErrorCode::TimestampUnavailable => (
            "時刻認証局に接続できないため、確定できませんでした。記録は変更されていません。少し待ってからもう一度お試しください。",
            "The time-stamping authority cannot be reached, so nothing was confirmed. Please try again shortly.",
        ),
        ErrorCode::TimestampInvalid
        | ErrorCode::TimestampWrongNonce
        | ErrorCode::TimestampWrongImprint
        | ErrorCode::TimestampUntrusted
        | ErrorCode::TimestampTimeSkew => (
            "時刻認証局の応答を検証できないため、確定できませんでした。システム管理者に連絡してください。",
            "The time-stamping authority's answer could not be verified, so nothing was confirmed. Please contact IT staff.",
        ),
        ErrorCode::SignedAttributesStale => (
            "署名の準備から時間が経ちすぎました。もう一度確定してください。",
            "Too much time passed since the signature was prepared. Please confirm again.",
        ),
        ErrorCode::BreakGlassNotDesignated => (
            "緊急時アクセスの権限がありません。システム管理者に連絡してください。",
            "You are not designated for emergency access. Please contact IT staff.",
        ),
        ErrorCode::BreakGlassExpired => (
            "この緊急時アクセスは終了しています。必要であればもう一度申請してください。",
            "This emergency access is over. Ask again if the emergency goes on.",
        ),
        ErrorCode::ReadOnlyMode => (
            "ゲートウェイは閲覧のみの運用中です。記録の入力・確定はできません。",
            "The gateway is read-only: nothing can be entered or confirmed now.",
        ),
        ErrorCode::BlockedMode => (
            "ゲートウェイは停止中です。緊急時アクセスのみ利用できます。",
            "The gateway is blocked: only emergency access is available.",
        ),
        ErrorCode::StoreUnavailable | ErrorCode::NoRandomness => (
            "ゲートウェイが一時的に利用できません。少し待ってからもう一度お試しください。",
            "The gateway is temporarily unavailable. Please try again shortly.",
        ),
        _ => return None,
    };
    Some(lang.pick(ja, en))
}

/// The UI's fixed strings, sent to the page as one JSON object.
pub fn ui_strings(lang: Lang) -> serde_json::Value {
    let t = |ja: &'static str, en: &'static str| lang.pick(ja, en);
    serde_json::json!({
        "title": t("HPKIカード ログイン", "HPKI card login"),
        "insert_card": t("カードをカードリーダーに挿入してください。", "Insert your card into the card reader."),
        "no_reader": t("カードリーダーが見つかりません。", "No card reader found."),
        "reading": t("カードを読み取っています…", "Reading the card…"),
        "pin_label": t("暗証番号(PIN)", "PIN"),
        "login": t("ログイン", "Log in"),
        "logout": t("ログアウト", "Log out"),
        "logged_in": t("ログイン中", "Logged in"),
        "tries_left": t("残り試行回数: {n} 回", "Tries left: {n}"),
        "blocked": t("このカードはロックされています(暗証番号の誤りが上限に達しました)。カードの発行元に連絡してください。",
                     "This card is blocked (too many wrong PINs). Please contact the card issuer."),
        "profession": t("資格", "Profession"),
        "institution": t("医療機関", "Institution"),
        "person_id": t("ID", "ID"),
        "reader": t("カードリーダー", "Reader"),
        "select": t("このカードを使う", "Use this card"),
        "acting": t("使用中のカード", "Acting card"),
        "locked": t("画面はロックされています。暗証番号を入力して解除してください。", "The screen is locked. Enter the PIN to unlock."),
        "unlock": t("ロック解除", "Unlock"),
        "assistant": t("医療機関職員(補助者)", "Institution staff (assistant)"),
        "working": t("処理中…", "Working…"),
        "card_unreadable": t("カードを読み取れません", "The card cannot be read"),
        "language": t("English", "日本語"),
        "retry": t("もう一度", "Try again"),
        "professions": professions(lang),
        "work": work_strings(lang),
    })
}

/// The workflow screens' strings (`crate::ui_workflow`).
fn work_strings(lang: Lang) -> serde_json::Value {
    const STRINGS: &[(&str, &str, &str)] = &[
        ("encounter", "受診(診療中の患者)", "Encounter"),
        ("patient_id", "患者ID", "Patient ID"),
        ("open_encounter", "受診を開始", "Open encounter"),
        ("encounter_opened", "受診を開始しました。", "The encounter is open."),
        ("open_until", "有効期限", "open until"),
        ("close_encounter", "受診を終了", "Close encounter"),
        ("encounter_closed", "受診を終了しました。", "The encounter is closed."),
        ("new_patient", "新しい患者を登録", "Register a new patient"),
        ("patient_name", "氏名(ローマ字)", "Name"),
        ("patient_name_kanji", "氏名(漢字)", "Name in kanji"),
        ("birth_date", "生年月日", "Date of birth"),
        ("register_patient", "登録", "Register"),
        ("patient_registered", "患者を登録しました: {id}", "Patient registered: {id}"),
        ("new_draft", "記録の下書き", "New draft"),
        ("doctor", "確定する医師", "Doctor"),
        (
            "no_doctors",
            "紐付けられた医師がいません。システム管理者に連絡してください。",
            "You are not linked to any doctor. Please contact IT staff.",
        ),
        ("content", "記載内容", "Content"),
        ("save_draft", "下書きを保存して医師に回す", "Save and send to the doctor"),
        ("content_empty", "記載内容を入力してください。", "Enter the content."),
        ("draft_saved", "下書きを保存しました: {id}", "Draft saved: {id}"),
        ("my_drafts", "確定待ちの下書き", "My drafts awaiting confirmation"),
        ("none", "ありません。", "None."),
        ("version", "版", "version"),
        ("edit", "修正", "Edit"),
        ("save_edit", "修正を保存", "Save the change"),
        ("cancel", "取消", "Cancel"),
        ("draft_edited", "修正を保存しました(第{v}版)。", "Change saved (version {v})."),
        ("queue", "確定待ち", "Awaiting your confirmation"),
        ("queue_empty", "確定待ちの記録はありません。", "Nothing awaits your confirmation."),
        ("author", "入力者", "written by"),
        ("review_one", "内容を確認", "Review"),
        ("review_picked", "選択したものをまとめて確認", "Review the selected drafts"),
        ("pick_some", "確認する下書きを選択してください。", "Select the drafts to review."),
        ("refresh", "更新", "Refresh"),
        ("review", "署名する内容の確認", "Review what you sign"),
        (
            "review_explain",
            "以下がカードで電子署名されるデータそのものです。内容を確認し、署名用の暗証番号を入力してください。",
            "Below are exactly the bytes your card will sign. Check them, then enter your signature PIN.",
        ),
        ("draft", "下書き", "Draft"),
        ("signature_pin", "署名用暗証番号(PIN)", "Signature PIN"),
        ("sign_confirm", "電子署名して確定({n}件)", "Sign and confirm ({n})"),
        ("back", "一覧に戻る", "Back to the queue"),
        ("confirmed", "確定しました。記録", "Confirmed. Record"),
        ("all_confirmed", "すべて確定しました。", "All confirmed."),
        ("some_failed", "{n}件は確定できませんでした。", "{n} could not be confirmed."),
        ("corrections", "患者からの訂正の申し出", "Patients' correction requests"),
        ("record", "記録", "record"),
        ("correction_answer", "回答(訂正内容、または訂正しない理由)", "Answer (the correction, or why not)"),
        ("correction_accept", "訂正する", "Correct it"),
        ("correction_reject", "訂正しない", "Do not correct"),
        ("correction_answer_empty", "回答を入力してください。", "Enter the answer."),
        ("correction_accepted", "訂正記録を作成しました: {id}", "Correcting record written: {id}"),
        ("correction_rejected", "訂正しない旨を回答しました。", "Answered: not corrected."),
        ("break_glass", "緊急時アクセス(ブレークグラス)", "Emergency access (break-glass)"),
        ("break_glass_ask", "緊急時アクセスを申請する", "Ask for emergency access"),
        (
            "break_glass_explain",
            "救急など、受診の登録や患者の同意を待てない場合に限り、1人の患者の全医療機関の記録を一定時間閲覧できます。すべての操作は記録され、監査担当者が確認します。",
            "Only when an emergency cannot wait for an encounter or the patient's consent: one patient's records from every institution, for a limited time. Everything is logged and reviewed by an auditor.",
        ),
        ("break_glass_reason", "理由", "Reason"),
        ("reason_emergency_treatment", "救急診療", "Emergency treatment"),
        ("reason_disaster", "災害", "Disaster"),
        ("reason_other", "その他(内容に記載)", "Other (say what below)"),
        ("break_glass_detail", "状況(必須)", "What the emergency is (required)"),
        ("break_glass_start", "緊急時アクセスを開始", "Start emergency access"),
        ("break_glass_started", "緊急時アクセスを開始しました: {patient}", "Emergency access started: {patient}"),
        (
            "break_glass_banner",
            "緊急時アクセス中: 患者 {patient}({until} まで)。すべての閲覧が記録されています。",
            "Emergency access in force: patient {patient} (until {until}). Every read is logged.",
        ),
        ("break_glass_until", "有効期限", "until"),
        ("break_glass_open", "記録を表示", "Show records"),
        ("break_glass_end", "緊急時アクセスを終了", "End emergency access"),
        ("break_glass_ended", "緊急時アクセスを終了しました。", "Emergency access ended."),
        (
            "mode_read_only",
            "ゲートウェイは閲覧のみの運用中です({reason})。記録の入力・確定はできません。",
            "The gateway is read-only ({reason}): records can be read, nothing can be entered or confirmed.",
        ),
        (
            "mode_blocked",
            "ゲートウェイは停止中です({reason})。緊急時アクセスのみ利用できます。",
            "The gateway is blocked ({reason}): only emergency access is available.",
        ),
        (
            "bad_document",
            "ゲートウェイから受け取った署名対象データが正しくありません。署名は行いません。",
            "The gateway's document to sign is not valid; nothing is signed.",
        ),
    ];
    let map = STRINGS.iter().map(|(key, ja, en)| ((*key).to_owned(), lang.pick(ja, en).into())).collect();
    serde_json::Value::Object(map)
}

fn professions(lang: Lang) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for p in hpki_profile::Profession::ALL {
        map.insert(p.slug().to_owned(), profession_name(p.slug(), lang).into());
    }
    map.insert("assistant".into(), lang.pick("医療機関職員(補助者)", "institution staff (assistant)").into());
    serde_json::Value::Object(map)
}

/// Profession name for a person.
pub fn profession_name(slug: &str, lang: Lang) -> String {
    match lang {
        Lang::Ja => hpki_profile::Profession::ALL
            .iter()
            .find(|p| p.slug() == slug)
            .map(|p| p.japanese().to_owned())
            .unwrap_or_else(|| if slug == "assistant" { "医療機関職員".into() } else { slug.into() }),
        Lang::En => slug.replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_both_languages() {
        // Whatever can refuse a card login is said in both languages.
        let login = ErrorCode::ALL.iter().filter(|c| matches!(c.status(), 401 | 403 | 429 | 503));
        let mut said = 0;
        for code in login.copied() {
            let (Some(ja), Some(en)) = (gateway_refusal(code, Lang::Ja), gateway_refusal(code, Lang::En)) else {
                continue;
            };
            assert_ne!(ja, en);
            assert!(!ja.is_ascii(), "{code}: Japanese text expected");
            said += 1;
        }
        for code in [
            ErrorCode::AssistantWrongInstitution,
            ErrorCode::PersonDeactivated,
            ErrorCode::Revoked,
            ErrorCode::StaleCrl,
            ErrorCode::RateLimited,
            ErrorCode::OutsideTrustScope,
        ] {
            assert!(gateway_refusal(code, Lang::Ja).is_some(), "{code}");
        }
        assert!(said >= 30, "{said}");
        assert_eq!(gateway_refusal(ErrorCode::WeakPassword, Lang::Ja), None);
    }

    #[test]
    fn ui_strings_have_the_same_keys() {
        let ja = ui_strings(Lang::Ja);
        let en = ui_strings(Lang::En);
        let keys = |v: &serde_json::Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
        assert_eq!(keys(&ja), keys(&en));
        assert_eq!(keys(&ja["work"]), keys(&en["work"]));
    }

    #[test]
    fn profession_names() {
        assert_eq!(profession_name("doctor", Lang::Ja), "医師");
        assert_eq!(profession_name("doctor", Lang::En), "doctor");
        assert_eq!(Lang::from_tag("EN"), Some(Lang::En));
        assert_eq!(Lang::from_tag("fr"), None);
    }
}
