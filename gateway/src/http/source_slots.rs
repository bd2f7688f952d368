//! Connections per source address (issue 18): each listener lets one
//! address hold at most so many connections — handshaking or open — so one
//! host cannot take the slots every other client needs. A slot is given back
//! when its guard drops, however the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

pub struct SourceSlots {
    max: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's slot of its source.
pub struct SourceSlot {
    slots: Arc<SourceSlots>,
    ip: IpAddr,
}

/// An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d: one host.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl SourceSlots {
    pub fn new(max: usize) -> Arc<SourceSlots> {
        Arc::new(SourceSlots { max: max.max(1), held: Mutex::new(HashMap::new()) })
    }

    /// A slot for `ip`, or `None` when it holds its maximum.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let ip = canonical(ip);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let n = held.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SourceSlot { slots: self.clone(), ip })
    }

    /// Source addresses holding a slot now (the map never outgrows the
    /// listener's connections).
    pub fn sources(&self) -> usize {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_holds_at_most_its_maximum_and_slots_come_back_when_dropped() {
        let slots = SourceSlots::new(2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = slots.take(a).expect("first");
        let second = slots.take(mapped).expect("second, the same host");
        assert!(slots.take(a).is_none(), "a third from the same host");
        assert!(slots.take(b).is_some(), "another host has its own");
        drop(first);
        let third = slots.take(a).expect("a slot came back");
        drop((second, third));
        assert_eq!(slots.sources(), 0, "nothing is remembered for a host with no connection");
    }
}
