//! The store on both backends: areas, single-use challenges, sessions,
//! administrative records, and the audit chain.

mod common;

use hpki_gateway::audit::{AuditEvent, ChainBreak, ChainVerifier};
use hpki_gateway::store::{Backend, NewPerson, NewSession, SessionEnd, SessionQuery, SessionUse, Store, StoreError};
use sqlx::Connection;

/// The audit entry a change stages with it, as a handler makes it.
fn staged(request_id: &str) -> hpki_gateway::audit::outbox::Staged {
    hpki_gateway::audit::outbox::Staging {
        request_id: request_id.into(),
        terminal: "Clinic/t1".into(),
        institution: "Clinic".into(),
        action: hpki_gateway::audit::Action::DraftConfirm,
    }
    .stage("D1", "-", 1_000)
}

async fn verify(store: &Store) -> Result<u64, ChainBreak> {
    let mut v = ChainVerifier::default();
    let mut after = 0;
    loop {
        let page = store.audit_page(after, 100).await.expect("read");
        if page.is_empty() {
            return Ok(v.checked);
        }
        for r in &page {
            v.check(r)?;
            after = r.seq;
        }
    }
}

async fn seed(store: &Store) {
    store.add_institution("Kanazawa Clinic", Some("金沢診療所"), 1).await.expect("institution");
    for (id, role) in
        [("MD-1", "doctor"), ("DDS-2", "dentist"), ("RN-3", "nurse"), ("Kanazawa Clinic/S-1", "assistant")]
    {
        store
            .add_person(
                &NewPerson {
                    id: id.into(),
                    role: role.into(),
                    name: id.into(),
                    name_kanji: None,
                    institution: "Kanazawa Clinic".into(),
                },
                1,
            )
            .await
            .expect("person");
    }
}

both_stores!(identity_and_health_data_live_in_separate_areas_data_2, |db| {
    let store = db.store().await;
    match &db.config {
        hpki_gateway::store::StoreConfig::Sqlite { dir } => {
            let tables = |file: &str| {
                let path = dir.join(file);
                async move {
                    let mut c =
                        sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.expect("open");
                    let rows: Vec<(String,)> = sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table'")
                        .fetch_all(&mut c)
                        .await
                        .expect("list");
                    rows.into_iter().map(|r| r.0).collect::<Vec<_>>()
                }
            };
            let identity = tables("identity.db").await;
            let health = tables("health.db").await;
            assert!(
                identity.contains(&"persons".to_string()) && identity.contains(&"audit".to_string()),
                "{identity:?}"
            );
            assert!(!health.contains(&"persons".to_string()), "{health:?}");
            assert!(health.contains(&"area_marker".to_string()), "{health:?}");
        }
        hpki_gateway::store::StoreConfig::Postgres { url } => {
            let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT table_schema::text, table_name::text FROM information_schema.tables WHERE table_schema IN ('identity', 'health')",
            )
            .fetch_all(&mut c)
            .await
            .expect("list");
            assert!(rows.contains(&("identity".into(), "persons".into())), "{rows:?}");
            assert!(rows.contains(&("health".into(), "area_marker".into())), "{rows:?}");
            assert!(!rows.contains(&("health".into(), "persons".into())));
        }
    }
    // Migrating again changes nothing.
    db.store().await.close().await;
    store.close().await;
    db.drop_db().await;
});

both_stores!(a_challenge_is_taken_once_even_by_racing_gateways, |db| {
    let a = db.store().await;
    let b = db.store().await; // a second gateway on the same database
    a.create_challenge("c1", &[7; 32], "Kanazawa Clinic/t1", 100, 220).await.expect("create");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { s.take_challenge("c1", 101).await }));
    }
    let mut won = 0;
    let mut already = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(Some(c)) => {
                won += 1;
                assert_eq!(c.terminal, "Kanazawa Clinic/t1");
                assert_eq!(c.nonce, vec![7; 32]);
            }
            Err(StoreError::Conflict(_)) => already += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((won, already), (1, 15));
    assert_eq!(a.take_challenge("nope", 101).await.expect("lookup"), None);
    a.close().await;
    b.close().await;
    db.drop_db().await;
});

both_stores!(expired_challenges_are_purged_and_live_ones_kept, |db| {
    let s = db.store().await;
    s.create_challenge("old", &[1; 32], "t", 100, 220).await.expect("create");
    s.create_challenge("live", &[2; 32], "t", 200, 320).await.expect("create");
    assert_eq!(s.purge_challenges(300).await.expect("purge"), 1);
    assert_eq!(s.take_challenge("old", 300).await.expect("lookup"), None, "gone");
    assert!(s.take_challenge("live", 300).await.expect("lookup").is_some(), "kept");
    s.close().await;
    db.drop_db().await;
});

both_stores!(a_batch_of_session_lookups_answers_each_as_alone_in_order, |db| {
    let s = db.store().await;
    seed(&s).await;
    let q = |tok: &[u8], terminal: &str, now: i64| SessionQuery {
        token_hash: tok.to_vec(),
        institution: "Kanazawa Clinic".into(),
        name: terminal.into(),
        now,
    };
    let k = "Kanazawa Clinic/t1";
    s.create_session(&session(b"fresh", "MD-1", k, b"c"), 1000, 9000).await.expect("create");
    s.create_session(&session(b"due", "DDS-2", k, b"c"), 1000, 9000).await.expect("create");
    s.create_session(&session(b"idle", "RN-3", k, b"c"), 1000, 9000).await.expect("create");
    s.create_session(&session(b"old", "MD-1", k, b"c"), 1000, 1100).await.expect("create");
    s.create_session(&session(b"gone", "MD-1", k, b"c"), 1000, 9000).await.expect("create");
    s.end_session(b"gone", 1001, "logout").await.expect("end");
    s.create_session(&session(b"held", "MD-1", "Kanazawa Clinic/t9", b"c"), 1000, 9000).await.expect("create");
    s.set_terminal_suspended("Kanazawa Clinic", "t9", true, "test", 1001).await.expect("suspend");
    let batch = [
        q(b"fresh", "t1", 1005),
        q(b"due", "t1", 1200),
        q(b"idle", "t1", 1300),
        q(b"old", "t1", 1100),
        q(b"gone", "t1", 1005),
        q(b"nope", "t1", 1005),
        q(b"held", "t9", 1005),
        q(b"fresh", "t1", 1006),
    ];
    let got = s.use_sessions(&batch, 300).await.expect("db");
    let kinds: Vec<String> = got
        .iter()
        .map(|u| match u {
            SessionUse::Usable(r, p) => {
                format!("usable {} seen {} {:?}", r.person_id, r.last_seen, p.as_ref().map(|p| &p.id))
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "usable MD-1 seen 1000 Some(\"MD-1\")",
            "usable DDS-2 seen 1200 Some(\"DDS-2\")",
            "Unusable(IdleTimeout)",
            "Unusable(Expired)",
            "Unusable(Ended)",
            "Unusable(Unknown)",
            "TerminalSuspended",
            "usable MD-1 seen 1000 Some(\"MD-1\")",
        ]
    );
    // The writes happened: the due session moved, the two dead ones ended,
    // the one on the suspended terminal was left alone.
    let again = [q(b"due", "t1", 1490), q(b"idle", "t1", 1301), q(b"old", "t1", 1000)];
    let after = s.use_sessions(&again, 300).await.expect("db");
    assert!(matches!(&after[0], SessionUse::Usable(r, _) if r.last_seen == 1490), "{after:?}");
    assert_eq!(after[1..], [SessionUse::Unusable(SessionEnd::Ended), SessionUse::Unusable(SessionEnd::Ended)]);
    s.set_terminal_suspended("Kanazawa Clinic", "t9", false, "lifted", 1002).await.expect("lift");
    let held = s.use_sessions(&[q(b"held", "t9", 1010)], 300).await.expect("db");
    assert!(matches!(&held[0], SessionUse::Usable(r, _) if r.last_seen == 1010), "{held:?}");
    // More requests than one statement takes are answered too, in order.
    let many: Vec<SessionQuery> =
        (0..600).map(|i| q(if i % 2 == 0 { b"fresh" } else { b"nope" }, "t1", 1010)).collect();
    let got = s.use_sessions(&many, 300).await.expect("db");
    assert_eq!(got.len(), 600);
    for (i, u) in got.iter().enumerate() {
        assert_eq!(matches!(u, SessionUse::Usable(..)), i % 2 == 0, "{i}: {u:?}");
    }
    s.close().await;
    db.drop_db().await;
});

both_stores!(sessions_end_on_idle_timeout_expiry_and_logout, |db| {
    let s = db.store().await;
    seed(&s).await;
    s.create_session(&session(b"tok1", "MD-1", "Kanazawa Clinic/t1", b"cert"), 1000, 1000 + 12 * 3600)
        .await
        .expect("create");
    const T1: (&str, &str) = ("Kanazawa Clinic", "t1");
    let SessionUse::Usable(used, person) = s.use_session(b"tok1", T1, 1000 + 299, 300).await.expect("db") else {
        panic!("tok1 not usable")
    };
    assert_eq!(used.person_id, "MD-1");
    // The person comes with the session, as registered now.
    assert_eq!(person.map(|p| (p.id, p.active)), Some(("MD-1".to_owned(), true)));
    // Activity moves the idle deadline.
    assert!(matches!(s.use_session(b"tok1", T1, 1000 + 598, 300).await.expect("db"), SessionUse::Usable(..)));
    let ended = |end| SessionUse::Unusable(end);
    assert_eq!(s.use_session(b"tok1", T1, 1000 + 598 + 300, 300).await.expect("db"), ended(SessionEnd::IdleTimeout));
    assert_eq!(
        s.use_session(b"tok1", T1, 1000 + 598 + 301, 300).await.expect("db"),
        ended(SessionEnd::Ended),
        "stays ended"
    );

    s.create_session(&session(b"tok2", "MD-1", "Kanazawa Clinic/t1", b"cert"), 1000, 2000).await.expect("create");
    assert_eq!(s.use_session(b"tok2", T1, 2000, 3000).await.expect("db"), ended(SessionEnd::Expired));

    s.create_session(&session(b"tok3", "MD-1", "Kanazawa Clinic/t1", b"cert"), 1000, 9000).await.expect("create");
    assert!(s.end_session(b"tok3", 1001, "logout").await.expect("end"));
    assert!(!s.end_session(b"tok3", 1002, "logout").await.expect("end"), "ending twice is a no-op");
    assert_eq!(s.use_session(b"tok3", T1, 1003, 300).await.expect("db"), ended(SessionEnd::Ended));
    assert_eq!(s.use_session(b"nope", T1, 1003, 300).await.expect("db"), ended(SessionEnd::Unknown));

    // The same lookup tells that the requesting terminal is suspended, and
    // then leaves the session alone: neither used nor ended.
    s.create_session(&session(b"tok4", "MD-1", "Kanazawa Clinic/t1", b"cert"), 1000, 9000).await.expect("create");
    s.set_terminal_suspended("Kanazawa Clinic", "t1", true, "test", 1001).await.expect("suspend");
    assert_eq!(s.use_session(b"tok4", T1, 1000 + 50, 300).await.expect("db"), SessionUse::TerminalSuspended);
    assert_eq!(s.use_session(b"nope", T1, 1000 + 50, 300).await.expect("db"), SessionUse::TerminalSuspended);
    assert_eq!(s.use_session(b"tok4", T1, 9000, 300).await.expect("db"), SessionUse::TerminalSuspended);
    let other = ("Kanazawa Clinic", "t2");
    let SessionUse::Usable(kept, _) = s.use_session(b"tok4", other, 1000 + 60, 300).await.expect("db") else {
        panic!("tok4 was changed while its terminal was suspended")
    };
    assert_eq!(kept.last_seen, 1000 + 60, "another terminal's suspension does not matter");
    s.set_terminal_suspended("Kanazawa Clinic", "t1", false, "lifted", 1002).await.expect("lift");
    assert!(matches!(s.use_session(b"tok4", T1, 1000 + 70, 300).await.expect("db"), SessionUse::Usable(..)));
    s.close().await;
    db.drop_db().await;
});

both_stores!(people_are_registered_linked_and_deactivated_flow_1_flow_6, |db| {
    let s = db.store().await;
    seed(&s).await;
    assert!(matches!(s.add_institution("Kanazawa Clinic", None, 2).await, Err(StoreError::Conflict(_))));
    let dup = NewPerson {
        id: "MD-1".into(),
        role: "doctor".into(),
        name: "x".into(),
        name_kanji: None,
        institution: "Kanazawa Clinic".into(),
    };
    assert!(matches!(s.add_person(&dup, 2).await, Err(StoreError::Conflict(_))));
    let nowhere = NewPerson { id: "MD-9".into(), institution: "Nowhere".into(), ..dup.clone() };
    assert!(matches!(s.add_person(&nowhere, 2).await, Err(StoreError::NotFound(_))));

    s.link_assistant("Kanazawa Clinic/S-1", "MD-1", 3).await.expect("link");
    s.link_assistant("Kanazawa Clinic/S-1", "DDS-2", 3).await.expect("link dentist");
    assert_eq!(
        s.linked_doctors("Kanazawa Clinic/S-1").await.expect("links"),
        vec!["DDS-2".to_string(), "MD-1".to_string()]
    );
    assert!(
        matches!(s.link_assistant("Kanazawa Clinic/S-1", "RN-3", 3).await, Err(StoreError::Invalid(m)) if m.contains("nurse"))
    );
    assert!(matches!(s.link_assistant("MD-1", "DDS-2", 3).await, Err(StoreError::Invalid(_))));
    assert!(matches!(s.link_assistant("Kanazawa Clinic/S-1", "MD-1", 4).await, Err(StoreError::Conflict(_))));

    s.set_person_active("RN-3", false, 5).await.expect("deactivate");
    assert!(!s.person("RN-3").await.expect("get").expect("exists").active);
    assert!(matches!(s.set_person_active("XX", false, 5).await, Err(StoreError::NotFound(_))));

    assert!(!s.terminal_suspended("Kanazawa Clinic", "t1").await.expect("status"));
    s.set_terminal_suspended("Kanazawa Clinic", "t1", true, "lost", 6).await.expect("suspend");
    assert!(s.terminal_suspended("Kanazawa Clinic", "t1").await.expect("status"));
    s.set_terminal_suspended("Kanazawa Clinic", "t1", false, "found", 7).await.expect("lift");
    assert!(!s.terminal_suspended("Kanazawa Clinic", "t1").await.expect("status"));
    s.close().await;
    db.drop_db().await;
});

both_stores!(audit_chain_holds_under_concurrent_appends_and_refuses_changes_log_1, |db| {
    let a = db.store().await;
    let b = db.store().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let e = AuditEvent {
                actor: format!("MD-{i}"),
                action: "auth.login".into(),
                outcome: "ok".into(),
                ..Default::default()
            };
            s.append_audit(&e, 1_000 + i).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("append");
    }
    assert_eq!(verify(&a).await, Ok(40));
    let seqs: Vec<i64> = a.audit_page(0, 100).await.expect("page").iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());

    // Each store remembers the tail it wrote; the other one's entries in
    // between are found (the insert collides), and a batch longer than one
    // INSERT is still all or nothing.
    let event = |n: i64| AuditEvent { actor: format!("RN-{n}"), outcome: "ok".into(), ..Default::default() };
    assert_eq!(a.append_audit(&event(0), 2_000).await.expect("a").seq, 41);
    let batch: Vec<(AuditEvent, i64)> = (1..=150).map(|n| (event(n), 2_000 + n)).collect();
    let written = b.append_audit_batch(&batch).await.expect("b batch");
    assert_eq!((written[0].seq, written[149].seq), (42, 191));
    assert_eq!(a.append_audit(&event(151), 3_000).await.expect("a again").seq, 192);
    assert_eq!(verify(&a).await, Ok(192));

    // The database itself refuses updates and deletes.
    assert!(
        sqlx::query("UPDATE audit SET outcome = 'refused' WHERE seq = 3")
            .execute(pool_of(&db).await.as_ref())
            .await
            .is_err()
    );
    assert!(sqlx::query("DELETE FROM audit WHERE seq = 3").execute(pool_of(&db).await.as_ref()).await.is_err());
    a.close().await;
    b.close().await;
    db.drop_db().await;
});

/// A raw connection pool to the test database, as an attacker with database
/// access would have.
async fn pool_of(db: &common::TestDb) -> Box<sqlx::AnyPool> {
    sqlx::any::install_default_drivers();
    let url = match &db.config {
        hpki_gateway::store::StoreConfig::Sqlite { dir } => format!("sqlite://{}", dir.join("identity.db").display()),
        hpki_gateway::store::StoreConfig::Postgres { url } => url.clone(),
    };
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&url).await.expect("raw pool");
    if matches!(db.config, hpki_gateway::store::StoreConfig::Postgres { .. }) {
        sqlx::query("SET search_path = identity, health, public").execute(&pool).await.expect("path");
    }
    Box::new(pool)
}

both_stores!(a_changed_or_removed_audit_entry_is_detected_and_located_log_1, |db| {
    let s = db.store().await;
    for i in 0..6 {
        let e =
            AuditEvent { actor: "MD-1".into(), action: format!("a{i}"), outcome: "ok".into(), ..Default::default() };
        s.append_audit(&e, 10 + i).await.expect("append");
    }
    let raw = pool_of(&db).await;
    // Someone with database access disables the protection first.
    let disable = match s.backend() {
        Backend::Sqlite => vec!["DROP TRIGGER audit_no_update", "DROP TRIGGER audit_no_delete"],
        Backend::Postgres => vec!["DROP TRIGGER audit_no_change ON identity.audit"],
    };
    for stmt in disable {
        sqlx::query(sqlx::AssertSqlSafe(stmt.to_string())).execute(raw.as_ref()).await.expect("drop trigger");
    }
    sqlx::query("UPDATE audit SET outcome = 'refused' WHERE seq = 4").execute(raw.as_ref()).await.expect("tamper");
    assert_eq!(verify(&s).await, Err(ChainBreak::Changed { seq: 4 }));
    sqlx::query("UPDATE audit SET outcome = 'ok' WHERE seq = 4").execute(raw.as_ref()).await.expect("restore");
    assert_eq!(verify(&s).await, Ok(6));
    sqlx::query("DELETE FROM audit WHERE seq = 2").execute(raw.as_ref()).await.expect("remove");
    assert_eq!(verify(&s).await, Err(ChainBreak::Missing { from: 2, to: 2 }));
    raw.close().await;
    s.close().await;
    db.drop_db().await;
});

both_stores!(a_record_refuses_change_and_removal_even_from_raw_sql_data_6, |db| {
    let s = db.store().await;
    let row = hpki_gateway::store::RecordRow {
        id: "rec_1".into(),
        kind: "medical".into(),
        patient: "pseud_1".into(),
        institution: "Kanazawa Clinic".into(),
        origin_reference: "draft:d_1".into(),
        draft_version: Some(1),
        author: "Kanazawa Clinic/S-1".into(),
        signer: Some("MD-1".into()),
        key_id: "k1".into(),
        content: vec![1, 2, 3],
        document_sha256: Some(vec![7; 32]),
        signature: Some(vec![9; 256]),
        signature_cert: Some(vec![0x30, 0x00]),
        revocation: "[]".into(),
        created_at: 5,
        signature_level: None,
        time_stamped_at: None,
    };
    s.add_record(&row, &staged("r")).await.expect("add record");
    // Records live in the health area: on SQLite another file than the
    // identity one pool_of opens.
    let raw: Box<sqlx::AnyPool> = match &db.config {
        hpki_gateway::store::StoreConfig::Sqlite { dir } => {
            sqlx::any::install_default_drivers();
            let url = format!("sqlite://{}", dir.join("health.db").display());
            Box::new(sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&url).await.expect("raw pool"))
        }
        hpki_gateway::store::StoreConfig::Postgres { .. } => pool_of(&db).await,
    };
    for stmt in [
        "UPDATE records SET author = 'someone else' WHERE id = 'rec_1'",
        "UPDATE records SET signature = NULL WHERE id = 'rec_1'",
        "UPDATE records SET created_at = 6 WHERE id = 'rec_1'",
        "DELETE FROM records WHERE id = 'rec_1'",
    ] {
        let e = sqlx::query(stmt).execute(raw.as_ref()).await.expect_err(stmt).to_string();
        assert!(e.contains("records are immutable"), "{stmt}: {e}");
    }
    let kept = s.record("rec_1").await.expect("read").expect("still there");
    assert_eq!((kept.author.as_str(), kept.signature, kept.created_at), (row.author.as_str(), row.signature, 5));
    raw.close().await;
    s.close().await;
    db.drop_db().await;
});

both_stores!(a_change_and_its_staged_audit_entry_commit_together_log_1, |db| {
    use hpki_gateway::store::{DraftRow, EncounterRow, RecordRow};
    let s = db.store().await;
    let requests =
        |s: Vec<hpki_gateway::audit::outbox::Staged>| -> Vec<String> { s.into_iter().map(|r| r.request_id).collect() };
    let e = EncounterRow {
        id: "enc_1".into(),
        patient: "pseud_1".into(),
        institution: "Kanazawa Clinic".into(),
        opened_by: "Kanazawa Clinic/S-1".into(),
        opened_at: 1,
        expires_at: 10_000,
        closed_at: None,
    };
    s.open_encounter(&e, &staged("open")).await.expect("encounter");
    let d = DraftRow {
        id: "drf_1".into(),
        kind: "medical".into(),
        patient: "pseud_1".into(),
        encounter: "enc_1".into(),
        institution: "Kanazawa Clinic".into(),
        assistant: "Kanazawa Clinic/S-1".into(),
        signer: "MD-1".into(),
        version: 1,
        key_id: "k1".into(),
        content: vec![1],
        confirmed: false,
        record_id: None,
        created_at: 2,
        updated_at: 2,
    };
    s.create_draft(&d, &staged("create")).await.expect("draft");
    // A refused change stages nothing: the draft with the same id again.
    assert!(matches!(s.create_draft(&d, &staged("create-again")).await, Err(StoreError::Conflict(_))));
    let record = |id: &str| RecordRow {
        id: id.into(),
        kind: "medical".into(),
        patient: "pseud_1".into(),
        institution: "Kanazawa Clinic".into(),
        origin_reference: "draft:drf_1".into(),
        draft_version: Some(1),
        author: "Kanazawa Clinic/S-1".into(),
        signer: Some("MD-1".into()),
        key_id: "k1".into(),
        content: vec![2],
        document_sha256: Some(vec![7; 32]),
        signature: Some(vec![9; 256]),
        signature_cert: Some(vec![0x30, 0x00]),
        revocation: "[]".into(),
        created_at: 3,
        signature_level: None,
        time_stamped_at: None,
    };
    let signature = |id: &str| hpki_gateway::store::SignatureRow {
        record: id.into(),
        seq: 0,
        level: "CAdES B-LT".into(),
        time_stamped_at: Some(3),
        container: vec![0x30, 0x03, 0x02, 0x01, 0x01],
        created_at: 3,
    };
    s.confirm_draft("drf_1", 1, &record("rec_1"), &signature("rec_1"), &staged("confirm")).await.expect("confirm");
    // The losing confirm (PostgreSQL: the one-statement path) stages nothing
    // and keeps no signature container.
    assert!(matches!(
        s.confirm_draft("drf_1", 1, &record("rec_2"), &signature("rec_2"), &staged("confirm-lost")).await,
        Err(StoreError::Conflict(_))
    ));
    let kept = s.record_signatures("rec_1").await.expect("signatures");
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].level.as_str(), kept[0].time_stamped_at), ("CAdES B-LT", Some(3)));
    assert_eq!(kept[0].container, signature("rec_1").container);
    assert!(s.record_signatures("rec_2").await.expect("signatures").is_empty());
    assert!(!s.edit_draft("drf_1", 1, "k1", &[3], 4, &staged("edit-lost")).await.expect("edit"));
    assert!(!s.close_encounter("enc_nope", "x", 4, &staged("close-lost")).await.expect("close"));
    assert_eq!(requests(s.outbox_rows().await.expect("outbox")), ["open", "create", "confirm"]);
    // The writer's clearing: by request, the others stay.
    s.clear_outbox(&["open", "confirm"]).await.expect("clear");
    assert_eq!(requests(s.outbox_rows().await.expect("outbox")), ["create"]);
    s.clear_outbox(&["create"]).await.expect("clear");
    assert!(s.outbox_rows().await.expect("outbox").is_empty());
    s.close().await;
    db.drop_db().await;
});

both_stores!(an_identity_change_s_staged_row_goes_with_the_insert_of_its_entry_log_1, |db| {
    use hpki_gateway::audit::Action;
    use hpki_gateway::audit::outbox::Staging;
    let s = db.store().await;
    let staging = |request_id: &str, action: Action| Staging {
        request_id: request_id.into(),
        terminal: "-".into(),
        institution: "-".into(),
        action,
    };
    let added = staging("cli-1", Action::AdminInstitutionAdd).stage("it-desk", "Kanazawa Clinic", 1_000);
    s.add_institution_staged("Kanazawa Clinic", None, 1, Some(&added)).await.expect("institution");
    let other = staging("cli-2", Action::AdminInstitutionAdd).stage("it-desk", "Noto Clinic", 1_000);
    s.add_institution_staged("Noto Clinic", None, 1, Some(&other)).await.expect("institution");
    let rows =
        |s: Vec<hpki_gateway::audit::outbox::Staged>| -> Vec<String> { s.into_iter().map(|r| r.request_id).collect() };
    assert_eq!(rows(s.outbox_rows().await.expect("outbox")), ["cli-1", "cli-2"]);
    let entry = |request_id: &str, action: Action| AuditEvent {
        request_id: request_id.into(),
        ..AuditEvent::new(action, hpki_gateway::audit::Outcome::Ok)
    };
    // Another action of the same request clears nothing; the entry the row
    // stands for clears it in its own INSERT, with no second statement.
    s.append_audit_batch(&[(entry("cli-1", Action::AdminPersonAdd), 2_000)]).await.expect("append");
    assert_eq!(rows(s.outbox_rows().await.expect("outbox")), ["cli-1", "cli-2"]);
    s.append_audit_batch(&[(entry("cli-1", Action::AdminInstitutionAdd), 2_001)]).await.expect("append");
    assert_eq!(rows(s.outbox_rows().await.expect("outbox")), ["cli-2"]);
    // A health row: on SQLite the writer's to delete (a trigger cannot
    // reach the health file), so the entry alone leaves it; on PostgreSQL
    // (one database) the entry's INSERT clears it too.
    let encounter = hpki_gateway::store::EncounterRow {
        id: "enc_h".into(),
        patient: "pseud_1".into(),
        institution: "Kanazawa Clinic".into(),
        opened_by: "Kanazawa Clinic/S-1".into(),
        opened_at: 1,
        expires_at: 10_000,
        closed_at: None,
    };
    s.open_encounter(&encounter, &staged("req-h")).await.expect("encounter");
    s.append_audit_batch(&[(entry("req-h", Action::DraftConfirm), 2_002)]).await.expect("append");
    if s.backend() == hpki_gateway::store::Backend::Sqlite {
        assert_eq!(rows(s.outbox_rows().await.expect("outbox")), ["cli-2", "req-h"]);
        s.clear_health_outbox(&["req-h"]).await.expect("clear");
    }
    assert_eq!(rows(s.outbox_rows().await.expect("outbox")), ["cli-2"]);
    s.close().await;
    db.drop_db().await;
});

fn session<'a>(token_hash: &'a [u8], person_id: &'a str, terminal: &'a str, card_cert: &'a [u8]) -> NewSession<'a> {
    NewSession { token_hash, person_id, terminal, card_cert, revocation: "[]" }
}

both_stores!(a_challenge_opens_at_most_one_session_however_logins_race_for_it, |db| {
    use hpki_gateway::store::login_writer::{LoginWrite, OpenSession};
    let store = db.store().await;
    seed(&store).await;
    let challenge = |id: &str| LoginWrite::Challenge {
        id: id.into(),
        nonce: vec![7; 32],
        terminal: "Kanazawa Clinic/desk".into(),
        now: 10,
        expires_at: 130,
    };
    let session = |challenge: &str, token: u8| {
        LoginWrite::Session(Box::new(OpenSession {
            challenge_id: challenge.into(),
            token_hash: [token; 32],
            person_id: "MD-1".into(),
            terminal: "Kanazawa Clinic/desk".into(),
            card_cert: [1; 32],
            card_cert_der: vec![0x30, 0],
            revocation: "[]".into(),
            now: 20,
            expires_at: 1000,
            staged: staged(&format!("login-{token}")),
        }))
    };
    assert_eq!(store.login_writes(vec![challenge("c1"), challenge("c2")]).await.expect("challenges"), [true, true]);
    // Two logins with c1 in one batch, one with c2, one with an unknown id.
    let won = store
        .login_writes(vec![session("c1", 1), session("c1", 2), session("c2", 3), session("nope", 4)])
        .await
        .expect("sessions");
    assert_eq!(won, [true, false, true, false]);
    // c1 again in a later batch: taken.
    assert_eq!(store.login_writes(vec![session("c1", 5)]).await.expect("again"), [false]);
    let (_, used) = store.challenge("c1").await.expect("read").expect("c1");
    assert!(used);
    // Exactly the winners' sessions exist.
    for (token, exists) in [(1u8, true), (2, false), (3, true), (4, false), (5, false)] {
        let found = store.use_session(&[token; 32], ("Kanazawa Clinic", "desk"), 21, 300).await.expect("lookup");
        assert_eq!(matches!(found, hpki_gateway::store::SessionUse::Usable(..)), exists, "token {token}");
    }
    // Exactly the winners staged their login's audit entry, with the session.
    let staged: Vec<String> = store.outbox_rows().await.expect("outbox").into_iter().map(|r| r.request_id).collect();
    assert_eq!(staged, ["login-1", "login-3"]);
});

both_stores!(concurrent_password_guesses_are_admitted_at_most_up_to_the_limit, |db| {
    use hpki_gateway::store::{Guess, PatientRow};
    let store = db.store().await;
    let p = PatientRow {
        id: "PAAAAAAAAAA".into(),
        pseudonym: "00".repeat(16),
        name: "Mori Aki".into(),
        name_kanji: None,
        birth_date: "1980-05-05".into(),
    };
    store.add_patient(&p, "test", 0, &staged("p")).await.expect("patient");
    store.set_initial_password(&p.id, "$argon2id$x", 0, None).await.expect("account");
    let tries: Vec<_> = (0..50)
        .map(|_| {
            let (store, id) = (store.clone(), p.id.clone());
            tokio::spawn(async move { store.admit_password_guess(&id, 100, 5, 30).await })
        })
        .collect();
    let mut admitted = 0;
    for t in tries {
        match t.await.expect("task").expect("admit") {
            Guess::Try(_) => admitted += 1,
            Guess::Locked { until } => assert_eq!(until, 130),
            Guess::Unknown => panic!("the account exists"),
        }
    }
    assert_eq!(admitted, 5);
    // Once the lock is over, one more guess; right, and all is forgiven.
    assert!(
        matches!(store.admit_password_guess(&p.id, 130, 5, 30).await.expect("admit"), Guess::Try(a) if a.failed_attempts == 6)
    );
    assert!(matches!(store.admit_password_guess(&p.id, 130, 5, 30).await.expect("admit"), Guess::Locked { .. }));
    store.settle_password_guess(&p.id, true, 0).await.expect("settle");
    assert!(
        matches!(store.admit_password_guess(&p.id, 131, 5, 30).await.expect("admit"), Guess::Try(a) if a.failed_attempts == 1)
    );
    assert!(matches!(store.admit_password_guess("PNOSUCHPAT1", 131, 5, 30).await.expect("admit"), Guess::Unknown));
});
