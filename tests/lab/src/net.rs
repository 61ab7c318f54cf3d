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
    /// The block for the `index`-th pod the lab created (0-based):
    /// 127.10.0.4, 127.10.0.8, … (127.10.0.0 itself is never used).
    pub fn for_index(index: u32) -> PodAddrs {
        let base = u32::from(Ipv4Addr::new(127, 10, 0, 0)) + 4 * (index + 1);
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
}
