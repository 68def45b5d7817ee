//! Who the client is: its address, believed from `X-Forwarded-For` or `Forwarded` only when the
//! connection comes from a trusted proxy, and the key its budgets are counted under.
//!
//! Behind a load balancer every connection comes from the balancer. With `--trusted-proxy` the
//! router reads the hops the proxies appended, right to left, skipping the trusted ones: the first
//! untrusted hop is the client (a client can write anything into the header it sends, but only
//! to the left of what the proxies add). A connection from anywhere else is its own address,
//! whatever its headers say.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Which header the trusted proxies append the client's address to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1` (HAProxy's `option forwardfor`, most ingresses).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    /// Their address ranges; none: no header is believed.
    pub ranges: Vec<IpNet>,
    /// The header they append to.
    pub header: ForwardedHeader,
}

impl TrustedProxies {
    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.ranges.iter().any(|range| range.contains(&address))
    }

    /// The client's address for a connection from `peer` with `headers`.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => hops(headers, "x-forwarded-for", xff_hop),
            ForwardedHeader::Forwarded => hops(headers, "forwarded", forwarded_hop),
        };
        // From the right: the hop each trusted proxy saw, until one is not a proxy of ours. A hop
        // that does not read as an address ends the walk at the proxy that wrote it.
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(address) if self.trusts(*address) => client = *address,
                Some(address) => return *address,
                None => return client,
            }
        }
        client
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`, as dual-stack sockets report) as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// Every hop in every `name` header, in order, each read by `read`.
fn hops(headers: &HeaderMap, name: &str, read: fn(&str) -> Option<IpAddr>) -> Vec<Option<IpAddr>> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| {
            let text = value.to_str().unwrap_or("\u{0}");
            text.split(',')
                .map(|hop| read(hop.trim()).map(canonical))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// An `X-Forwarded-For` hop: an address, perhaps with a port (`192.0.2.1:4711`, `[2001:db8::1]:80`).
fn xff_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// A `Forwarded` element's `for=` (`for=192.0.2.43`, `for="[2001:db8::1]:4711"`); `unknown` and
/// obfuscated names are no address.
fn forwarded_hop(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then_some(value.trim())
    })?;
    let value = value.trim_matches('"');
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.split_once(']'))
        .map_or(value, |(inside, _)| inside);
    xff_hop(bare).or_else(|| xff_hop(value))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn proxies(header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies {
            ranges: vec![
                "10.0.0.0/8".parse().expect("a range"),
                "fd00::/8".parse().expect("a range"),
            ],
            header,
        }
    }

    fn headers(name: &'static str, values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn headers_are_believed_only_from_trusted_proxies() {
        let trusted = proxies(ForwardedHeader::XForwardedFor);
        let claims = headers("x-forwarded-for", &["198.51.100.7"]);
        assert_eq!(
            trusted.client_address(ip("203.0.113.9"), &claims),
            ip("203.0.113.9")
        );
        assert_eq!(
            trusted.client_address(ip("10.1.2.3"), &claims),
            ip("198.51.100.7")
        );
        assert_eq!(
            TrustedProxies::default().client_address(ip("10.1.2.3"), &claims),
            ip("10.1.2.3")
        );
        // A trusted proxy that sent no header is the client.
        assert_eq!(
            trusted.client_address(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = proxies(ForwardedHeader::XForwardedFor);
        // The client wrote "1.1.1.1" itself; the proxies appended what they saw.
        let chain = headers("x-forwarded-for", &["1.1.1.1, 198.51.100.7", "10.0.0.5"]);
        assert_eq!(
            trusted.client_address(ip("10.0.0.9"), &chain),
            ip("198.51.100.7")
        );
        let all_trusted = headers("x-forwarded-for", &["10.9.9.9, 10.0.0.5"]);
        assert_eq!(
            trusted.client_address(ip("10.0.0.9"), &all_trusted),
            ip("10.9.9.9")
        );
        let garbage = headers("x-forwarded-for", &["198.51.100.7, nonsense, 10.0.0.5"]);
        assert_eq!(
            trusted.client_address(ip("10.0.0.9"), &garbage),
            ip("10.0.0.5")
        );
        let ported = headers("x-forwarded-for", &["[2001:db8::1]:443"]);
        assert_eq!(
            trusted.client_address(ip("::ffff:10.0.0.9"), &ported),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn forwarded_reads_for_parameters() {
        let trusted = proxies(ForwardedHeader::Forwarded);
        let chain = headers(
            "forwarded",
            &[
                "for=1.1.1.1, for=\"[2001:db8:cafe::17]:4711\";proto=https",
                "for=10.0.0.5;by=10.0.0.9",
            ],
        );
        assert_eq!(
            trusted.client_address(ip("10.0.0.9"), &chain),
            ip("2001:db8:cafe::17")
        );
        // X-Forwarded-For is not read when the proxies write Forwarded.
        let other = headers("x-forwarded-for", &["198.51.100.7"]);
        assert_eq!(
            trusted.client_address(ip("10.0.0.9"), &other),
            ip("10.0.0.9")
        );
        let unknown = headers("forwarded", &["for=unknown, for=10.0.0.5"]);
        assert_eq!(
            trusted.client_address(ip("10.0.0.9"), &unknown),
            ip("10.0.0.5")
        );
    }
}
