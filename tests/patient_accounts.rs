//! Patient accounts on the patient listener under attack (issue 18, 3 and
//! 4): a password change ends the patient's other sessions; the lockout is
//! decided atomically, so concurrent guesses cannot get past it, and it
//! holds for a password change too.

use anyhow::{Context, Result};
use hpki_e2e::{PatientClient, World, WorldOptions};
use serde_json::{Value, json};

const CLINIC: &str = "Kanazawa Clinic";

/// A registered, enrolled patient: (id, initial password).
async fn enrolled(world: &World) -> Result<(String, String)> {
    world.enrolled_patient(CLINIC).await
}

/// A world whose sign-in throttles and password queue stand aside, so that
/// what these tests see is the lockout's own doing (the throttles and the
/// pool have theirs in `hostile_load.rs`).
async fn lockout_world() -> Result<World> {
    let patient_limits = hpki_gateway::config::PatientLimits {
        logins_per_minute_per_source: 10_000,
        logins_per_minute_per_id: 10_000,
        login_burst: 1_000,
        password_queue: 100,
        max_connections_per_source: 100,
        ..Default::default()
    };
    World::start(WorldOptions { patients: true, patient_limits, ..Default::default() }).await
}

fn login(id: &str, pw: &str) -> Value {
    json!({"id": id, "password": pw})
}

async fn signed_in(world: &World, id: &str, pw: &str) -> Result<PatientClient> {
    let mut p = PatientClient::new(world)?;
    let (status, body) = p.request("POST", "/p/v1/login", Some(&login(id, pw))).await?;
    anyhow::ensure!(status == 200, "login: {status} {body}");
    p.token = Some(body["session"].as_str().context("session")?.to_owned());
    Ok(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_ends_the_patients_other_sessions() -> Result<()> {
    let world = World::start(WorldOptions { patients: true, ..Default::default() }).await?;
    let (id, initial) = enrolled(&world).await?;
    // Two sessions from the letter with the initial password: the patient's
    // own, and one somebody else opened with the same letter.
    let mine = signed_in(&world, &id, &initial).await?;
    let theirs = signed_in(&world, &id, &initial).await?;
    let change = json!({"current": initial, "new": "kanazawa-spring-2026"});
    assert_eq!(mine.request("POST", "/p/v1/password", Some(&change)).await?.0, 204);
    let (status, body) = theirs.request("GET", "/p/v1/records", None).await?;
    assert_eq!((status, body["error"].as_str()), (401, Some("session_ended")), "{body}");
    // The session that changed it goes on.
    let (status, body) = mine.request("GET", "/p/v1/records", None).await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_wrong_guesses_try_at_most_the_limit() -> Result<()> {
    let world = lockout_world().await?;
    let (id, initial) = enrolled(&world).await?;
    let guesses: Vec<_> = (0..50)
        .map(|i| {
            let p = PatientClient::new(&world);
            let id = id.clone();
            tokio::spawn(async move {
                p?.request("POST", "/p/v1/login", Some(&login(&id, &format!("wrong-guess-{i:02}")))).await
            })
        })
        .collect();
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for g in guesses {
        let (_, body) = g.await??;
        *codes.entry(body["error"].as_str().unwrap_or("-").to_owned()).or_default() += 1;
    }
    // The limit is 5: the fifth guess locks, every later one is refused
    // untried.
    let tried = world.gw.store.account(&id).await?.context("account")?.failed_attempts;
    assert_eq!(tried, 5, "guesses tried: {tried}; answers {codes:?}");
    assert_eq!(codes.get("invalid_credentials"), Some(&4), "{codes:?}");
    assert_eq!(codes.get("account_locked"), Some(&46), "{codes:?}");
    // The right password waits for the lock too.
    let (status, body) =
        PatientClient::new(&world)?.request("POST", "/p/v1/login", Some(&login(&id, &initial))).await?;
    assert_eq!((status, body["error"].as_str()), (423, Some("account_locked")), "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lockout_holds_for_a_password_change() -> Result<()> {
    let world = lockout_world().await?;
    let (id, initial) = enrolled(&world).await?;
    let session = signed_in(&world, &id, &initial).await?;
    // A session in hand guesses the current password.
    let mut answers = Vec::new();
    for i in 0..7 {
        let change = json!({"current": format!("wrong-guess-{i}"), "new": "kanazawa-spring-2026"});
        let (_, body) = session.request("POST", "/p/v1/password", Some(&change)).await?;
        answers.push(body["error"].as_str().unwrap_or("-").to_owned());
    }
    assert_eq!(
        answers,
        ["invalid_credentials", "invalid_credentials", "invalid_credentials", "invalid_credentials"]
            .into_iter()
            .chain(["account_locked"; 3])
            .collect::<Vec<_>>()
    );
    assert_eq!(world.gw.store.account(&id).await?.context("account")?.failed_attempts, 5);
    // Even the right one, until the lock ends.
    let change = json!({"current": initial, "new": "kanazawa-spring-2026"});
    let (_, body) = session.request("POST", "/p/v1/password", Some(&change)).await?;
    assert_eq!(body["error"], "account_locked");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_are_throttled_per_id_before_anything_is_looked_up() -> Result<()> {
    let world = World::start(WorldOptions { patients: true, ..Default::default() }).await?;
    let (id, initial) = enrolled(&world).await?;
    // The default burst is ten a patient ID; the eleventh is turned away
    // before the store or argon2 is asked, and is no guess.
    let mut answers = Vec::new();
    for i in 0..11 {
        let body = if i < 10 { login(&id, &initial) } else { login(&id, "wrong-guess") };
        let (status, body) = PatientClient::new(&world)?.request("POST", "/p/v1/login", Some(&body)).await?;
        answers.push((status, body["error"].as_str().unwrap_or("-").to_owned()));
    }
    assert_eq!(answers[..10].iter().filter(|(s, _)| *s == 200).count(), 10, "{answers:?}");
    assert_eq!(answers[10], (429, "rate_limited".to_owned()));
    assert_eq!(world.gw.store.account(&id).await?.context("account")?.failed_attempts, 0, "no guess was tried");
    Ok(())
}
