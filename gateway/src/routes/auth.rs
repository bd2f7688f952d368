//! The login endpoints: `POST /v1/auth/challenge`, `POST /v1/auth/login`,
//! `GET /v1/auth/whoami`, `POST /v1/auth/logout` (`docs/protocol.md`). A login
//! is checked in the order of the BRIEF; the CRLs its validation used are kept
//! with the session it opens.

use axum::body::Bytes;

use crate::audit::outbox::Staging;
use crate::domain::roles::Role;
use crate::gateway::{ConnInfo, Gateway};
use crate::routes::workflow::json;
use crate::routes::{ApiError, Ctx, Handled, Public, random, staging};
use crate::store::login_writer::{LoginWrite, OpenSession};
use crate::store::{ChallengeRow, PersonRow};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use hpki_profile::{HolderKind, Purpose};
use hpki_protocol::ErrorCode;
use hpki_protocol::wire::{Challenge, LoginRequest, LoginResponse, Person, WhoAmI};
use hpki_protocol::{LoginTbs, NONCE_LEN};
use ring::digest::{SHA256, digest};

/// `POST /v1/auth/challenge`.
pub async fn challenge(p: Public) -> Handled {
    let (gw, conn) = (&p.gw, &p.conn);
    let result = async {
        let now = gw.clock.now();
        let nonce: [u8; NONCE_LEN] = random(gw)?;
        let id = B64URL.encode(random::<16>(gw)?);
        let expires_at = now + gw.config.sessions.challenge_lifetime_seconds;
        let write = LoginWrite::Challenge {
            id: id.clone(),
            nonce: nonce.to_vec(),
            terminal: conn.terminal.key().to_owned(),
            now,
            expires_at,
        };
        gw.logins.write(write).await.map_err(writer_failed)?;
        Ok::<_, ApiError>(Challenge {
            id,
            nonce: B64.encode(nonce),
            expires_at: hpki_profile::validate::rfc3339(expires_at),
            gateway_id: gw.config.gateway_id.clone(),
        })
    }
    .await;
    match result {
        Ok(c) => Handled::about(format!("challenge:{}", c.id), json(200, &c)),
        Err(r) => Handled::about("-", Err(r)),
    }
}

/// `POST /v1/auth/login`, checked in the order of the BRIEF.
pub async fn login(p: Public, body: Bytes) -> Handled {
    let req: LoginRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let e = ApiError::new(ErrorCode::MalformedJson, format!("the login request is not valid: {e}"));
            return Handled::about("-", Err(e));
        }
    };
    let object = format!("challenge:{}", req.challenge_id);
    let st = match staging(&p.staging) {
        Ok(st) => st,
        Err(e) => return Handled::about(object, Err(e)),
    };
    match login_checked(&p.gw, &p.conn, &req, st).await {
        Ok((resp, person)) => Handled { actor: Some(person), object, answer: json(200, &resp) },
        Err((r, actor)) => Handled { actor, object, answer: Err(r) },
    }
}

pub(crate) type LoginResult = Result<(LoginResponse, String), (ApiError, Option<String>)>;

pub(crate) async fn login_checked(gw: &Gateway, conn: &ConnInfo, req: &LoginRequest, st: &Staging) -> LoginResult {
    let now = gw.clock.now();
    // 1. The challenge: known, unused, unexpired, this terminal's.
    let challenge = match gw.store.challenge(&req.challenge_id).await {
        Ok(Some((_, true))) => return Err((replayed(), None)),
        Ok(Some((c, false))) => c,
        Ok(None) => {
            return Err((ApiError::new(ErrorCode::UnknownChallenge, "no such challenge; ask for a new one"), None));
        }
        Err(e) => return Err((e.into(), None)),
    };
    let checked = checked_with(gw, conn, req, &challenge, now, st).await;
    if checked.is_err() {
        // A refused login spends its challenge as an accepted one does.
        if let Err(e) = gw.store.take_challenge(&req.challenge_id, now).await
            && !matches!(e, crate::store::StoreError::Conflict(_))
        {
            tracing::error!(error = %e, "cannot mark a refused login's challenge used");
        }
    }
    checked
}

/// SHA-256 of `data`, as the 32 bytes it always is.
fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

fn replayed() -> ApiError {
    ApiError::new(ErrorCode::ChallengeReplayed, "this challenge was already used; ask for a new one")
}

fn writer_failed(e: String) -> ApiError {
    tracing::error!(error = %e, "login writer");
    crate::routes::store_unavailable()
}

/// Steps 1 (the challenge's own checks) to 6 of a login whose challenge
/// was found unused.
async fn checked_with(
    gw: &Gateway,
    conn: &ConnInfo,
    req: &LoginRequest,
    challenge: &ChallengeRow,
    now: i64,
    st: &Staging,
) -> LoginResult {
    let anon = |r: ApiError| (r, None);
    if now >= challenge.expires_at {
        return Err(anon(ApiError::new(ErrorCode::ChallengeExpired, "the challenge expired; ask for a new one")));
    }
    if challenge.terminal != conn.terminal.key() {
        return Err(anon(ApiError::new(
            ErrorCode::ChallengeOtherTerminal,
            "the challenge was issued to another terminal",
        )));
    }
    let nonce: [u8; NONCE_LEN] = challenge
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| anon(ApiError::new(ErrorCode::CorruptChallenge, "stored challenge is corrupt")))?;

    // 2. The signature, over this gateway, this challenge, this connection.
    let cert = B64
        .decode(&req.certificate)
        .map_err(|_| anon(ApiError::new(ErrorCode::MalformedCertificate, "certificate is not base64")))?;
    let signature = B64
        .decode(&req.signature)
        .map_err(|_| anon(ApiError::new(ErrorCode::MalformedSignature, "signature is not base64")))?;
    let intermediates = req
        .intermediates
        .iter()
        .map(|i| B64.decode(i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| anon(ApiError::new(ErrorCode::MalformedCertificate, "an intermediate is not base64")))?;
    let tbs = LoginTbs {
        gateway_id: &gw.config.gateway_id,
        challenge_id: &req.challenge_id,
        nonce: &nonce,
        channel_binding: &conn.channel_binding,
    }
    .to_bytes()
    .map_err(|e| anon(ApiError::new(ErrorCode::MalformedRequest, e.to_string())))?;
    verify_card_signature(
        &cert,
        &tbs,
        &signature,
        "the card's signature does not cover this gateway, this challenge and this TLS connection",
    )
    .map_err(anon)?;

    // 3. The certificate, along the HPKI profile.
    let validated = gw
        .validator
        .load()
        .validate(&cert, &intermediates, Purpose::Authentication, now)
        .map_err(|r| anon(ApiError::certificate(&r, "the card's certificate was refused")))?;
    let holder = &validated.holder;

    // 4. Profession, or the assistant's institution.
    let (role, person_id) = match &holder.kind {
        HolderKind::Licensed(p) => {
            let role = Role::of_profession(*p).ok_or_else(|| {
                anon(ApiError::new(
                    ErrorCode::ProfessionNotPermitted,
                    format!("{} cards have no access to this system", p.slug()),
                ))
            })?;
            let id = holder
                .person_id()
                .ok_or_else(|| anon(ApiError::new(ErrorCode::NoPersonId, "the certificate has no serialNumber")))?;
            (role, id)
        }
        HolderKind::Assistant => {
            let inst = holder.institution.clone().unwrap_or_default();
            if inst != conn.terminal.institution {
                return Err(anon(ApiError::new(
                    ErrorCode::AssistantWrongInstitution,
                    format!("this assistant card belongs to {inst:?}, the terminal to {:?}", conn.terminal.institution),
                )));
            }
            let id = holder
                .person_id()
                .ok_or_else(|| anon(ApiError::new(ErrorCode::NoPersonId, "the certificate has no serialNumber")))?;
            (Role::Assistant, id)
        }
        HolderKind::Other => {
            return Err(anon(ApiError::new(
                ErrorCode::NotACardCertificate,
                "this is neither an HPKI nor an assistant card",
            )));
        }
    };

    // 5. Registered and active, in the role the card shows.
    let who = Some(person_id.clone());
    let person = gw.store.person(&person_id).await.map_err(|e| (e.into(), who.clone()))?;
    let person = person.ok_or_else(|| {
        (
            ApiError::new(ErrorCode::PersonNotRegistered, format!("{person_id} is not registered at this gateway")),
            who.clone(),
        )
    })?;
    if !person.active {
        return Err((ApiError::new(ErrorCode::PersonDeactivated, format!("{person_id} is deactivated")), who));
    }
    if person.role != role.name() {
        return Err((
            ApiError::new(
                ErrorCode::RoleMismatch,
                format!("{person_id} is registered as {} but the card says {role}", person.role),
            ),
            who,
        ));
    }

    // 6. The session, bound to this terminal and this card.
    let token: [u8; 32] = random(gw).map_err(|r| (r, who.clone()))?;
    let token_text = B64URL.encode(token);
    let expires_at = now + gw.config.sessions.max_lifetime_seconds;
    let card = sha256(&cert);
    let token_hash = sha256(token_text.as_bytes());
    // The challenge is taken and the session opened in one transaction:
    // of two logins racing with one challenge, one wins.
    let session = OpenSession {
        challenge_id: req.challenge_id.clone(),
        token_hash,
        person_id: person_id.clone(),
        terminal: conn.terminal.key().to_owned(),
        card_cert: card,
        card_cert_der: cert.to_vec(),
        revocation: revocation_evidence(&validated),
        now,
        expires_at,
        staged: st.stage(&person_id, format!("challenge:{}", req.challenge_id), gw.clock.now_ms()),
    };
    match gw.logins.write(LoginWrite::Session(Box::new(session))).await {
        Ok(true) => {}
        Ok(false) => return Err((replayed(), who)),
        Err(e) => return Err((writer_failed(e), who)),
    }
    let resp = LoginResponse {
        session: token_text,
        person: person_json(&person),
        idle_timeout_seconds: gw.config.sessions.idle_timeout_seconds as u64,
        expires_at: hpki_profile::validate::rfc3339(expires_at),
    };
    Ok((resp, person_id))
}

/// The CRLs a validation used, as kept with a session or a record (JSON).
pub fn revocation_evidence(validated: &hpki_profile::Validated) -> String {
    let list: Vec<hpki_protocol::workflow::RevocationEvidence> = validated
        .revocation
        .iter()
        .map(|e| hpki_protocol::workflow::RevocationEvidence {
            issuer: e.issuer.clone(),
            crl_number: e.crl_number.clone(),
            this_update: hpki_profile::validate::rfc3339(e.this_update),
            scope: Some(e.scope.clone()),
        })
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

/// A card's PKCS#1 v1.5 SHA-256 signature over `message` with the key of
/// `cert` (RSA, as HPKI cards have): `malformed_certificate`, or
/// `signature_invalid` with `invalid` as the message.
pub fn verify_card_signature(cert: &[u8], message: &[u8], signature: &[u8], invalid: &str) -> Result<(), ApiError> {
    let spki = hpki_profile::holder::parse_certificate(cert)
        .map(|c| c.public_key().subject_public_key.data.to_vec())
        .map_err(|e| ApiError::new(ErrorCode::MalformedCertificate, e.to_string()))?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &spki)
        .verify(message, signature)
        .map_err(|_| ApiError::new(ErrorCode::SignatureInvalid, invalid))
}

pub(crate) fn person_json(p: &PersonRow) -> Person {
    Person {
        id: p.id.clone(),
        name: p.name.clone(),
        name_kanji: p.name_kanji.clone(),
        role: p.role.clone(),
        profession: (p.role != "assistant").then(|| p.role.clone()),
        institution: p.institution.clone(),
    }
}

/// `GET /v1/auth/whoami`.
pub async fn whoami(c: Ctx) -> Handled {
    let w = WhoAmI {
        person: person_json(&c.a.person),
        terminal: c.conn.terminal.key().to_owned(),
        session_expires_at: hpki_profile::validate::rfc3339(c.a.session.expires_at),
        idle_expires_at: hpki_profile::validate::rfc3339(
            c.a.session.last_seen + c.gw.config.sessions.idle_timeout_seconds,
        ),
    };
    Handled::about("session", json(200, &w))
}

/// `POST /v1/auth/logout` (the agent also calls it when the card is removed).
pub async fn logout(c: Ctx) -> Handled {
    let ended = match c.stage("session") {
        Ok(staged) => c.gw.store.log_out(&c.a.token_hash, c.gw.clock.now(), &staged).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    Handled::about("session", ended.map(|_| (204, Vec::new())))
}
