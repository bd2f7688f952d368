//! Reader and card events, watched on a thread of their own.
//!
//! PC/SC's `SCardGetStatusChange` blocks, so a desktop agent runs it on a
//! dedicated thread and receives events over a channel. Stopping cancels the
//! blocking call (`SCardCancel`) and joins the thread.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::card::{CardIdentity, PcscContext};
use crate::error::CardError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEvent {
    ReaderAdded { reader: String },
    ReaderRemoved { reader: String },
    CardInserted(CardIdentity),
    CardRemoved { reader: String },
}

/// Watches every reader; dropped or [`stop`](ReaderWatcher::stop)ped, it
/// cancels the wait and joins its thread.
pub struct ReaderWatcher {
    ctx: PcscContext,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    events: mpsc::Receiver<Result<ReaderEvent, CardError>>,
}

/// Even with cancellation, wake up now and then: an `SCardCancel` that
/// arrives before the thread blocks would otherwise be lost.
const POLL: Duration = Duration::from_millis(500);

impl ReaderWatcher {
    /// Starts watching. The first events describe the present state: one
    /// `ReaderAdded` per reader and one `CardInserted` per card.
    pub fn start() -> Result<ReaderWatcher, CardError> {
        let ctx = PcscContext::establish()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, events) = mpsc::channel();
        let thread_ctx = ctx.clone();
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("pcsc-events".into())
            .spawn(move || watch(&thread_ctx, &thread_stop, &tx))
            .map_err(|_| CardError::Pcsc(pcsc::Error::NoMemory))?;
        Ok(ReaderWatcher { ctx, stop, thread: Some(thread), events })
    }

    /// The next event, or `None` if none came within `timeout` (or the
    /// watcher ended).
    pub fn next_timeout(&self, timeout: Duration) -> Option<Result<ReaderEvent, CardError>> {
        self.events.recv_timeout(timeout).ok()
    }

    /// The channel itself, for callers that select over several sources.
    pub fn receiver(&self) -> &mpsc::Receiver<Result<ReaderEvent, CardError>> {
        &self.events
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Fails only when no call is blocked, which is fine.
        let _ = self.ctx.raw().cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ReaderWatcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

type Sender = mpsc::Sender<Result<ReaderEvent, CardError>>;

/// What the watcher last knew of one reader.
#[derive(Clone, PartialEq, Eq)]
struct Known {
    card: Option<CardIdentity>,
}

fn watch(ctx: &PcscContext, stop: &AtomicBool, tx: &Sender) {
    let mut known: BTreeMap<String, Known> = BTreeMap::new();
    // Whether anybody is still listening; stop quietly if not.
    let send = |e: Result<ReaderEvent, CardError>| tx.send(e).is_ok();

    'relist: while !stop.load(Ordering::SeqCst) {
        let names = match ctx.readers() {
            Ok(n) => n,
            Err(e) => {
                send(Err(e));
                return;
            }
        };
        for gone in known.keys().filter(|k| !names.contains(k)).cloned().collect::<Vec<_>>() {
            if known.remove(&gone).is_some_and(|k| k.card.is_some())
                && !send(Ok(ReaderEvent::CardRemoved { reader: gone.clone() }))
            {
                return;
            }
            if !send(Ok(ReaderEvent::ReaderRemoved { reader: gone })) {
                return;
            }
        }

        let mut states = vec![pcsc::ReaderState::new(pcsc::PNP_NOTIFICATION(), pcsc::State::UNAWARE)];
        for n in &names {
            match CString::new(n.as_str()) {
                Ok(c) => states.push(pcsc::ReaderState::new(c, pcsc::State::UNAWARE)),
                Err(_) => continue,
            }
        }

        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match ctx.raw().get_status_change(POLL, &mut states) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => continue,
                Err(pcsc::Error::Cancelled) => return,
                // A reader vanished between listing and waiting: list again.
                Err(pcsc::Error::UnknownReader) => continue 'relist,
                Err(e) => {
                    send(Err(CardError::from_pcsc(e, None)));
                    return;
                }
            }
            let mut relist = false;
            for (i, st) in states.iter_mut().enumerate() {
                let ev = st.event_state();
                if i == 0 {
                    // The PnP pseudo-reader changes when readers come or go.
                    if ev.contains(pcsc::State::CHANGED) && st.current_state() != pcsc::State::UNAWARE {
                        relist = true;
                    }
                    st.sync_current_state();
                    continue;
                }
                let reader = st.name().to_string_lossy().into_owned();
                if ev.intersects(pcsc::State::UNKNOWN | pcsc::State::UNAVAILABLE) {
                    relist = true;
                    continue;
                }
                let now = (ev.contains(pcsc::State::PRESENT) && !ev.contains(pcsc::State::MUTE)).then(|| {
                    CardIdentity { reader: reader.clone(), atr: st.atr().to_vec(), insertion: st.event_count() }
                });
                st.sync_current_state();
                let before = known.get(&reader).cloned();
                if before.is_none() && !send(Ok(ReaderEvent::ReaderAdded { reader: reader.clone() })) {
                    return;
                }
                let was = before.and_then(|k| k.card);
                if was == now {
                    known.insert(reader, Known { card: now });
                    continue;
                }
                // Same reader, different insertion: the card left (and maybe
                // another one, or the same, came back).
                if was.is_some() && !send(Ok(ReaderEvent::CardRemoved { reader: reader.clone() })) {
                    return;
                }
                if let Some(card) = &now
                    && !send(Ok(ReaderEvent::CardInserted(card.clone())))
                {
                    return;
                }
                known.insert(reader, Known { card: now });
            }
            if relist {
                continue 'relist;
            }
        }
    }
}
