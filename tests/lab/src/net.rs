//! Lab addressing: every pod gets its own block of four loopback addresses.
//!
//! A real pod has its own network namespace: its IP, its own `127.0.0.1`, and
//! iptables that send inbound traffic to the sidecar's port 15006 and outbound
//! traffic to 15001. The lab has one network namespace and no iptables, so it
//! gives each pod four addresses in 127.0.0.0/8 instead (see tests/lab/README.md):
//!
//! | offset | name        | who binds it                                               |
//! |--------|-------------|------------------------------------------------------------|
//! | +0     | `pod_ip`    | `status.podIP`; the sidecar's inbound listener (or the app when there is no sidecar) |
//! | +1     | `localhost` | the pod's "127.0.0.1": Envoy admin :15000, apps told to listen on 127.0.0.1 |
//! | +2     | `app_ip`    | the app's view of its pod IP when a sidecar owns `pod_ip`   |
//! | +3     | `egress`    | the sidecar's outbound listeners (what iptables would capture) |

use std::net::Ipv4Addr;

/// The four addresses of one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PodAddrs {
    pub pod_ip: Ipv4Addr,
    pub localhost: Ipv4Addr,
    pub app_ip: Ipv4Addr,
    pub egress: Ipv4Addr,
}

impl PodAddrs {
    /// The block for the `index`-th pod of the lab in slot 10:
    /// 127.10.0.4, 127.10.0.8, … (127.10.0.0 itself is never used).
    pub fn for_index(index: u32) -> PodAddrs {
        Self::for_slot_index(10, index)
    }

    /// The block for the `index`-th pod of the lab holding `slot`
    /// (127.`slot`.0.0/16, see [`SlotLock`]).
    pub fn for_slot_index(slot: u8, index: u32) -> PodAddrs {
        let base = u32::from(Ipv4Addr::new(127, slot, 0, 0)) + 4 * (index + 1);
        Self::from_pod_ip(Ipv4Addr::from(base))
    }

    /// Recover the block from a pod IP the lab handed out.
    pub fn from_pod_ip(pod_ip: Ipv4Addr) -> PodAddrs {
        let base = u32::from(pod_ip);
        PodAddrs {
            pod_ip,
            localhost: Ipv4Addr::from(base + 1),
            app_ip: Ipv4Addr::from(base + 2),
            egress: Ipv4Addr::from(base + 3),
        }
    }
}

/// Several labs may run at once (parallel tests, a lab started by hand):
/// each takes its own 127.`slot`.0.0/16. The slot is held by a listening
/// socket on 127.`slot`.255.254:1 for the lab's lifetime, so the claim is
/// exclusive across processes and released when the lab (or process) ends.
pub struct SlotLock {
    pub slot: u8,
    _held: std::net::TcpListener,
}

impl SlotLock {
    /// Claim the first free slot from 10 to 250.
    pub fn claim() -> std::io::Result<SlotLock> {
        let mut last = None;
        for slot in 10..=250u8 {
            match std::net::TcpListener::bind((Ipv4Addr::new(127, slot, 255, 254), 1)) {
                Ok(l) => return Ok(SlotLock { slot, _held: l }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free lab slot")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_do_not_overlap_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..500 {
            let a = PodAddrs::for_index(i);
            for ip in [a.pod_ip, a.localhost, a.app_ip, a.egress] {
                assert!(seen.insert(ip), "address {ip} reused at index {i}");
                assert_eq!(ip.octets()[0], 127);
            }
            assert_eq!(PodAddrs::from_pod_ip(a.pod_ip), a);
        }
    }

    #[test]
    fn slots_are_exclusive() {
        let a = SlotLock::claim().unwrap();
        let b = SlotLock::claim().unwrap();
        assert_ne!(a.slot, b.slot);
        let s = a.slot;
        drop(a);
        let c = SlotLock::claim().unwrap();
        assert!(c.slot <= s || c.slot != b.slot);
    }
}
