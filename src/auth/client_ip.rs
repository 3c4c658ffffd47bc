//! The client's address (API §1.6): the socket's peer, or — when the peer is a trusted proxy —
//! the last address of `X-Forwarded-For` that is not itself a trusted proxy. Used by the rate
//! limits and the audit trail.

use std::net::IpAddr;

use ipnet::IpNet;

/// The client address of a request from `peer` carrying `forwarded_for`.
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|network| network.contains(ip));
    let peer = peer?;
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else {
        return Some(peer);
    };
    let mut last = peer;
    // Right to left: each hop appended the address it received the request from.
    for hop in header.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // A malformed entry ends what can be believed: the hop after it is the client.
            return Some(last);
        };
        if !is_trusted(&ip) {
            return Some(ip);
        }
        last = ip;
    }
    Some(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), Some("1.2.3.4"), &trusted),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            client_ip(
                Some(ip("10.0.0.2")),
                Some("1.2.3.4, 198.51.100.7, 10.0.0.3"),
                &trusted
            ),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), None, &trusted),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), Some("garbage, 10.0.0.9"), &trusted),
            Some(ip("10.0.0.9"))
        );
        assert_eq!(client_ip(None, Some("1.2.3.4"), &trusted), None);
    }
}
