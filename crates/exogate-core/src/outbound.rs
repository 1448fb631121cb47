//! (hardening) Where exogate may send a request an admin pointed it at (a webhook, the SMTP
//! relay): by default only to public addresses, never to this machine, a private or link-local
//! network (a cloud metadata service), nor an address that hides one of those (IPv4-mapped,
//! NAT64, 6to4). The edge resolves names and asks [`refused`] about every address, at save time
//! and again at send time (`crate::ops::notify::TargetCheck`, `exogate::outbound`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{ConflictReason, CoreError};
use crate::text;

/// Why `ip` is not a public address, in a person's words; `None`: it is public.
pub fn refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address (this machine)")
    } else if o[0] == 0 {
        Some("an unspecified address (this machine)")
    } else if ip.is_private() {
        Some("a private network address")
    } else if ip.is_link_local() {
        Some("a link-local address (such as a cloud metadata service)")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("a shared (carrier-grade NAT) address")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("a reserved protocol address")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("a benchmarking network address")
    } else if ip.is_multicast() || o[0] >= 240 {
        Some("a multicast, broadcast or reserved address")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        refused_v4(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        ))
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        // ::ffff:a.b.c.d is a.b.c.d.
        refused_v4(v4)
    } else if ip.is_loopback() {
        Some("a loopback address (this machine)")
    } else if ip.is_unspecified() {
        Some("an unspecified address (this machine)")
    } else if s[..6] == [0; 6] {
        // ::a.b.c.d (IPv4-compatible, deprecated): refused whatever it embeds.
        Some("an IPv4-compatible address")
    } else if (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfec0 {
        Some("a private network address")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if s[0] == 0x64 && s[1] == 0xff9b {
        // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48) reaches the IPv4 address it
        // embeds.
        embedded(s[6], s[7])
    } else if s[0] == 0x2002 {
        // 6to4 embeds an IPv4 address in its second and third groups.
        embedded(s[1], s[2])
    } else {
        None
    }
}

/// Whether a host name is loopback by definition (`localhost` and names under it, RFC 6761),
/// whatever a resolver says of it.
pub fn loopback_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// Checks every address `host` resolved to (`allow_private`: the installation's receivers are
/// on a private network, nothing is refused). An empty list is refused too: nothing was checked.
pub fn check(host: &str, addrs: &[IpAddr], allow_private: bool) -> Result<(), CoreError> {
    if allow_private {
        return Ok(());
    }
    if addrs.is_empty() {
        return Err(CoreError::invalid(
            "url",
            format!(
                "the host `{}` has no address; check the name",
                text::capped(host, 64)
            ),
        ));
    }
    for ip in addrs {
        if let Some(kind) = refused(*ip) {
            return Err(CoreError::conflict(ConflictReason::TargetNotAllowed {
                host: text::capped(host, 64),
                kind,
            }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_internal_class_is_refused_and_public_addresses_pass() {
        for a in [
            "127.0.0.1",
            "127.8.9.1",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.5",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "192.0.0.170",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a00:5::1",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert!(refused(ip).is_some(), "{a} must be refused");
            let e = check("h", &[ip], false).unwrap_err();
            assert_eq!(e.code(), "target_not_allowed", "{a}");
            assert!(check("h", &[ip], true).is_ok(), "{a} with the switch on");
        }
        for a in [
            "93.184.215.14",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(refused(ip), None, "{a} is public");
        }
        // One bad address among good ones refuses the name.
        let mixed = ["8.8.8.8".parse().unwrap(), "10.1.1.1".parse().unwrap()];
        assert!(check("h", &mixed, false).is_err());
        assert_eq!(check("h", &[], false).unwrap_err().code(), "invalid_input");
        for n in ["localhost", "LOCALHOST.", "a.b.localhost"] {
            assert!(loopback_name(n), "{n}");
        }
        assert!(!loopback_name("localhost.example.com"));
    }
}
