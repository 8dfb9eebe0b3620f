//! Spin's `[outbound_networking] block_networks`: addresses guests may not
//! connect to, checked on the addresses a name resolved to, so a name cannot
//! smuggle a blocked address in. `"private"` blocks every address that is not
//! globally routable (loopback, RFC 1918, CGNAT, link-local, unique-local,
//! documentation and reserved ranges), as Spin does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use flint_config::BlockNetworks;

use crate::outbound_hosts::in_cidr;

#[derive(Debug, Clone, Default)]
pub struct BlockedNetworks {
    private: bool,
    cidrs: Vec<(IpAddr, u8)>,
}

impl BlockedNetworks {
    pub fn new(config: &BlockNetworks) -> Self {
        Self {
            private: config.private,
            cidrs: config.cidrs.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.private && self.cidrs.is_empty()
    }

    pub fn is_blocked(&self, addr: IpAddr) -> bool {
        // An IPv4-mapped or -compatible IPv6 address is checked as IPv4 too,
        // so the other notation cannot get around a rule.
        if let IpAddr::V6(v6) = addr
            && let Some(v4) = v6.to_ipv4()
            && self.is_blocked(IpAddr::V4(v4))
        {
            return true;
        }
        (self.private && !is_global(addr))
            || self
                .cidrs
                .iter()
                .any(|&(net, bits)| in_cidr(addr, net, bits))
    }
}

fn is_global(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => is_global_v4(a),
        IpAddr::V6(a) => is_global_v6(a),
    }
}

fn is_global_v4(a: Ipv4Addr) -> bool {
    const NOT_GLOBAL: [(Ipv4Addr, u8); 15] = [
        (Ipv4Addr::new(0, 0, 0, 0), 8),
        (Ipv4Addr::new(10, 0, 0, 0), 8),
        (Ipv4Addr::new(100, 64, 0, 0), 10),
        (Ipv4Addr::new(127, 0, 0, 0), 8),
        (Ipv4Addr::new(169, 254, 0, 0), 16),
        (Ipv4Addr::new(172, 16, 0, 0), 12),
        (Ipv4Addr::new(192, 0, 0, 0), 24),
        (Ipv4Addr::new(192, 0, 2, 0), 24),
        (Ipv4Addr::new(192, 88, 99, 0), 24),
        (Ipv4Addr::new(192, 168, 0, 0), 16),
        (Ipv4Addr::new(198, 18, 0, 0), 15),
        (Ipv4Addr::new(198, 51, 100, 0), 24),
        (Ipv4Addr::new(203, 0, 113, 0), 24),
        (Ipv4Addr::new(224, 0, 0, 0), 4),
        (Ipv4Addr::new(240, 0, 0, 0), 4),
    ];
    !NOT_GLOBAL
        .iter()
        .any(|&(net, bits)| in_cidr(IpAddr::V4(a), IpAddr::V4(net), bits))
}

fn is_global_v6(a: Ipv6Addr) -> bool {
    const NOT_GLOBAL: [(Ipv6Addr, u8); 10] = [
        (Ipv6Addr::UNSPECIFIED, 128),
        (Ipv6Addr::LOCALHOST, 128),
        (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96),
        (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),
        (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
        (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
    ];
    !NOT_GLOBAL
        .iter()
        .any(|&(net, bits)| in_cidr(IpAddr::V6(a), IpAddr::V6(net), bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn private_blocks_what_is_not_globally_routable() {
        let blocked = BlockedNetworks {
            private: true,
            cidrs: vec![],
        };
        for private in [
            "0.0.0.0",
            "10.10.10.10",
            "100.64.1.1",
            "127.0.0.1",
            "169.254.0.1",
            "192.0.0.1",
            "172.20.0.1",
            "192.168.1.1",
            "::1",
            "::ffff:10.10.10.10",
            "fc00::f00d",
            "fe80::1",
        ] {
            assert!(blocked.is_blocked(ip(private)), "{private}");
        }
        assert!(!blocked.is_blocked(ip("123.123.123.123")));
        assert!(!blocked.is_blocked(ip("2600::beef")));
    }

    #[test]
    fn cidrs_block_their_range_in_either_notation() {
        let blocked = BlockedNetworks {
            private: false,
            cidrs: vec![(ip("123.123.0.0"), 16), (ip("2600:f00d::"), 32)],
        };
        assert!(blocked.is_blocked(ip("123.123.4.5")));
        assert!(blocked.is_blocked(ip("::ffff:123.123.4.5")));
        assert!(blocked.is_blocked(ip("2600:f00d::4")));
        assert!(!blocked.is_blocked(ip("123.124.0.1")));
        assert!(!blocked.is_blocked(ip("127.0.0.1")));
        let all = BlockedNetworks {
            private: false,
            cidrs: vec![(ip("0.0.0.0"), 0)],
        };
        assert!(all.is_blocked(ip("8.8.8.8")));
    }
}
