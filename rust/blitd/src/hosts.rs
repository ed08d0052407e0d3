//! Host access rules of a module: `hosts_allow` and `hosts_deny`.
//!
//! An entry is an IP address (`"192.0.2.7"`, `"::1"`) or a CIDR range
//! (`"10.0.0.0/8"`, `"fd00::/8"`). Host names are not accepted, because
//! matching them would need a DNS lookup per request. A peer connected
//! over IPv6 with an IPv4-mapped address (`::ffff:192.0.2.7`) is matched
//! as the IPv4 address, so IPv4 rules cover IPv4 clients of a daemon that
//! listens on an IPv6 socket.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One `hosts_allow` or `hosts_deny` entry: an address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPattern {
    /// The first address of the range; the bits past `prefix_len` are zero.
    network: IpAddr,
    /// Number of leading bits that must match: 0 to 32 for IPv4, 0 to 128
    /// for IPv6.
    prefix_len: u8,
}

impl HostPattern {
    /// Parses an address or a CIDR range.
    ///
    /// Host bits past the prefix are ignored, as rsyncd ignores them
    /// (`"10.1.2.3/8"` is `"10.0.0.0/8"`). An IPv4-mapped IPv6 range with a
    /// prefix of at least 96 bits is stored as the IPv4 range it covers.
    ///
    /// # Errors
    ///
    /// Returns a message that names the problem; the caller adds the
    /// entry, its module and the fix.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let (address_text, prefix_text) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address_text.parse().map_err(|_| {
            format!("{address_text:?} is not an IPv4 or IPv6 address (host names are not accepted)")
        })?;
        let max_len = max_prefix_len(address);
        let prefix_len = match prefix_text {
            None => max_len,
            Some(prefix) => match prefix.parse::<u8>() {
                Ok(len) if len <= max_len && !prefix.starts_with('+') => len,
                _ => {
                    return Err(format!(
                        "prefix length {prefix:?} is not a number from 0 to {max_len}, the \
                         range for an {} address",
                        if address.is_ipv4() { "IPv4" } else { "IPv6" }
                    ));
                }
            },
        };
        Ok(HostPattern::new(address, prefix_len))
    }

    fn new(address: IpAddr, prefix_len: u8) -> HostPattern {
        if let IpAddr::V6(v6) = address {
            if let Some(v4) = v6.to_ipv4_mapped() {
                if prefix_len >= 96 {
                    return HostPattern::new(IpAddr::V4(v4), prefix_len - 96);
                }
            }
        }
        HostPattern {
            network: mask(address, prefix_len),
            prefix_len,
        }
    }

    /// Returns whether `peer` lies in this range. An IPv4-mapped IPv6 peer
    /// is compared as its IPv4 address.
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = canonical(peer);
        peer.is_ipv4() == self.network.is_ipv4() && mask(peer, self.prefix_len) == self.network
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// Decides whether a module admits `peer`, with rsyncd's rules (the
/// `allow_access` function of rsync 3.x's `access.c`):
///
/// 1. a peer that matches `allow` is admitted;
/// 2. otherwise, when `allow` is not empty and `deny` is empty, it is
///    rejected;
/// 3. otherwise a peer that matches `deny` is rejected;
/// 4. every other peer is admitted.
///
/// So with both lists set, a peer that matches neither is admitted.
pub fn is_admitted(allow: &[HostPattern], deny: &[HostPattern], peer: IpAddr) -> bool {
    if allow.iter().any(|pattern| pattern.contains(peer)) {
        return true;
    }
    if !allow.is_empty() && deny.is_empty() {
        return false;
    }
    !deny.iter().any(|pattern| pattern.contains(peer))
}

/// Returns the IPv4 address of an IPv4-mapped IPv6 address, and any
/// other address unchanged.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

fn max_prefix_len(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Clears every bit of `address` past the first `prefix_len`.
fn mask(address: IpAddr, prefix_len: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            // A shift by the full width (prefix 0) overflows: the mask is 0.
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> HostPattern {
        HostPattern::parse(text).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn single_addresses_match_exactly() {
        assert!(pattern("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!pattern("192.0.2.7").contains(ip("192.0.2.8")));
        assert!(pattern("::1").contains(ip("::1")));
        assert!(!pattern("::1").contains(ip("::2")));
    }

    #[test]
    fn ranges_match_their_prefix() {
        let ten = pattern("10.0.0.0/8");
        assert!(ten.contains(ip("10.255.1.2")));
        assert!(!ten.contains(ip("11.0.0.0")));
        let ula = pattern("fd00::/8");
        assert!(ula.contains(ip("fd12:3456::1")));
        assert!(!ula.contains(ip("fe80::1")));
        assert!(pattern("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(pattern("::/0").contains(ip("2001:db8::1")));
        assert!(pattern("127.0.0.1/32").contains(ip("127.0.0.1")));
        assert!(!pattern("127.0.0.1/32").contains(ip("127.0.0.2")));
    }

    #[test]
    fn host_bits_are_ignored() {
        assert_eq!(pattern("10.1.2.3/8"), pattern("10.0.0.0/8"));
        assert_eq!(pattern("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(pattern("fd00::1/8").to_string(), "fd00::/8");
    }

    #[test]
    fn families_never_cross() {
        assert!(!pattern("0.0.0.0/0").contains(ip("::1")));
        assert!(!pattern("::/0").contains(ip("127.0.0.1")));
    }

    #[test]
    fn mapped_peer_matches_ipv4_rules() {
        assert!(pattern("192.0.2.0/24").contains(ip("::ffff:192.0.2.7")));
        assert!(pattern("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
        assert!(!pattern("192.0.2.0/24").contains(ip("::ffff:198.51.100.1")));
    }

    #[test]
    fn mapped_rule_becomes_ipv4_rule() {
        assert_eq!(pattern("::ffff:192.0.2.0/120"), pattern("192.0.2.0/24"));
        assert!(pattern("::ffff:192.0.2.7").contains(ip("192.0.2.7")));
    }

    #[test]
    fn invalid_entries_rejected() {
        let cases = [
            ("localhost", "not an IPv4 or IPv6 address"),
            ("10.0.0.0/33", "from 0 to 32"),
            ("::/129", "from 0 to 128"),
            ("10.0.0.0/", "not a number"),
            ("10.0.0.0/-1", "not a number"),
            ("10.0.0.0/+8", "not a number"),
            ("10.0.0.0/8/8", "not a number"),
            ("10.0.0.*", "not an IPv4 or IPv6 address"),
            ("", "not an IPv4 or IPv6 address"),
            ("fe80::1%eth0", "not an IPv4 or IPv6 address"),
        ];
        for (text, expected) in cases {
            let err = HostPattern::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn allow_and_deny_follow_rsyncd() {
        let local = ip("127.0.0.1");
        let loopback = [pattern("127.0.0.0/8")];
        let other = [pattern("10.0.0.0/8")];
        // No rules: everyone.
        assert!(is_admitted(&[], &[], local));
        // Deny only.
        assert!(!is_admitted(&[], &loopback, local));
        assert!(is_admitted(&[], &other, local));
        // Allow only: everyone else is rejected.
        assert!(is_admitted(&loopback, &[], local));
        assert!(!is_admitted(&other, &[], local));
        // An allow match overrides a deny match.
        assert!(is_admitted(&loopback, &loopback, local));
        // Both lists, neither matching: admitted, as in rsyncd.
        assert!(is_admitted(&other, &[pattern("192.0.2.0/24")], local));
        // Both lists, only the deny list matching: rejected.
        assert!(!is_admitted(&other, &loopback, local));
    }
}
