//! An audit log that cannot be cut short (issue 18, 6): with the database's
//! protections removed, deleting the newest entries or rewriting an entry
//! and recomputing every later hash leaves a chain that verifies — and the
//! signed checkpoints outside the database show both.

use anyhow::Result;
use hpki_e2e::{World, WorldOptions, gateway_cli_raw};
use sqlx::Connection;

async fn world_with_checkpointed_entries() -> Result<World> {
    let world = World::start(WorldOptions::default()).await?;
    for name in ["A Clinic", "B Clinic", "C Clinic", "D Clinic"] {
        let (code, _, err) = gateway_cli_raw(&world.config_path(), &["admin", "add-institution", "--name", name])?;
        assert_eq!(code, 0, "{err}");
    }
    world.checkpoint().await;
    Ok(world)
}

fn verify(world: &World) -> Result<(i32, String)> {
    let file = world.path("audit-checkpoints.jsonl");
    let (code, out, err) =
        gateway_cli_raw(&world.config_path(), &["audit", "verify", "--checkpoints", &file.display().to_string()])?;
    Ok((code, format!("{out}{err}")))
}

async fn raw(world: &World) -> Result<sqlx::SqliteConnection> {
    let db = world.path("data/identity.db");
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await?;
    sqlx::query("DROP TRIGGER audit_no_update").execute(&mut c).await?;
    sqlx::query("DROP TRIGGER audit_no_delete").execute(&mut c).await?;
    Ok(c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_newest_entries_passes_the_chain_but_not_the_checkpoints() -> Result<()> {
    let world = world_with_checkpointed_entries().await?;
    let (code, out) = verify(&world)?;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit chain intact") && out.contains("signed and matching the log"), "{out}");
    let mut c = raw(&world).await?;
    sqlx::query("DELETE FROM audit WHERE seq > (SELECT MAX(seq) - 2 FROM audit)").execute(&mut c).await?;
    let (code, out) = verify(&world)?;
    assert!(out.contains("audit chain intact"), "the chain alone cannot tell: {out}");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entries were removed"), "{out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewriting_an_entry_and_every_later_hash_passes_the_chain_but_not_the_checkpoints() -> Result<()> {
    let world = world_with_checkpointed_entries().await?;
    let mut c = raw(&world).await?;
    // Entry 2 says another institution; it and every entry after it are
    // chained anew, as a careful forger would.
    sqlx::query("UPDATE audit SET object = 'Z Clinic' WHERE seq = 2").execute(&mut c).await?;
    let rows = world.gw.store.audit_page(1, 10_000).await?;
    let (mut prev,): (Vec<u8>,) = sqlx::query_as("SELECT hash FROM audit WHERE seq = 1").fetch_one(&mut c).await?;
    for r in rows {
        let hash = hpki_gateway::audit::entry_hash(&prev, r.seq, r.at, &r.event).to_vec();
        sqlx::query("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?")
            .bind(&prev)
            .bind(&hash)
            .bind(r.seq)
            .execute(&mut c)
            .await?;
        prev = hash;
    }
    let (code, out) = verify(&world)?;
    assert!(out.contains("audit chain intact"), "the chain alone cannot tell: {out}");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("was rewritten"), "{out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_signed_by_another_key_is_not_believed() -> Result<()> {
    let world = world_with_checkpointed_entries().await?;
    let other = hpki_gateway::audit::checkpoint::CheckpointKey::open_or_create(&world.path("other.key"))?;
    let forged = other.sign("gateway.test.invalid/audit", 1, &[0; 32], 0);
    hpki_gateway::audit::checkpoint::append(&world.path("audit-checkpoints.jsonl"), &forged)?;
    let (code, out) = verify(&world)?;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not signed by the gateway's key"), "{out}");
    Ok(())
}
