//! Who the client is, and what it may hold.
//!
//! - Its address ([`TrustedProxies`]), believed from `X-Forwarded-For` or `Forwarded` only when the
//!   connection comes from a trusted proxy.
//! - The key its budgets are counted under ([`ClientKey`]), and the budgets ([`Budget`]): what one
//!   client may hold at once is bounded per client, so one client at its limit leaves the rest of
//!   the router to everyone else.
//!
//! Behind a load balancer every connection comes from the balancer. With `--trusted-proxy` the
//! router reads the hops the proxies appended, right to left, skipping the trusted ones: the first
//! untrusted hop is the client (a client can write anything into the header it sends, but only
//! to the left of what the proxies add). A connection from anywhere else is its own address,
//! whatever its headers say.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};

use axum::http::{header, HeaderMap};
use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::fetch::CLIENT_ADDRESS_HEADER;

/// Whom a request's budget is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A bearer token's holder (its SHA-256: the router keeps no tokens).
    Token([u8; 32]),
    /// An address (anonymous requests, and what needs no account: connections, CPU).
    Address(IpAddr),
    /// Neither: a request the router made up itself (tests, the fuzz target).
    Unknown,
}

impl ClientKey {
    /// The request's address, as the HTTP face found it ([`CLIENT_ADDRESS_HEADER`]).
    pub fn address(headers: &HeaderMap) -> Self {
        headers
            .get(CLIENT_ADDRESS_HEADER)
            .and_then(|value| value.to_str().ok()?.parse().ok())
            .map_or(ClientKey::Unknown, ClientKey::Address)
    }

    /// The request's token if it sent one, else its address. The router cannot tell a valid token
    /// from a made-up one: budgets kept this way hold only what a subgraph also checks (a
    /// subscription with a made-up token is refused at once and gives its place back).
    pub fn holder(headers: &HeaderMap) -> Self {
        match headers.get(header::AUTHORIZATION) {
            Some(token) => ClientKey::Token(Sha256::digest(token.as_bytes()).into()),
            None => Self::address(headers),
        }
    }
}

/// How many of one thing each client holds, each at most `limit`.
#[derive(Debug)]
pub struct Budget {
    /// What is counted, for the refusal's message ("subscriptions").
    pub what: &'static str,
    pub limit: usize,
    held: Mutex<HashMap<ClientKey, usize>>,
}

/// One unit of a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Held {
    budget: Arc<Budget>,
    key: ClientKey,
}

impl Budget {
    /// Each client may hold `limit` of `what` (0: no limit).
    pub fn new(what: &'static str, limit: usize) -> Arc<Self> {
        Arc::new(Budget {
            what,
            limit,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// One more for `key`, unless it holds its limit already.
    pub fn take(self: &Arc<Self>, key: &ClientKey) -> Option<Held> {
        let mut held = self.held.lock().expect("a budget's lock is never poisoned");
        let count = held.entry(key.clone()).or_default();
        if self.limit > 0 && *count >= self.limit {
            if *count == 0 {
                held.remove(key);
            }
            return None;
        }
        *count += 1;
        Some(Held {
            budget: self.clone(),
            key: key.clone(),
        })
    }

    /// The refusal of one more: 429, `RATE_LIMITED`.
    pub fn refusal(&self) -> crate::error::RequestError {
        crate::error::RequestError {
            status: axum::http::StatusCode::TOO_MANY_REQUESTS,
            errors: vec![crate::error::GraphqlError::new(
                crate::error::Code::RateLimited,
                format!(
                    "this client has its most {} open ({}); end one first",
                    self.what, self.limit
                ),
            )
            .retry_after(1)],
        }
    }

    /// How many `key` holds now.
    pub fn held_by(&self, key: &ClientKey) -> usize {
        let held = self.held.lock().expect("a budget's lock is never poisoned");
        held.get(key).copied().unwrap_or(0)
    }

    /// How many clients hold any now (a bounded map: one entry per client holding something).
    pub fn clients(&self) -> usize {
        self.held
            .lock()
            .expect("a budget's lock is never poisoned")
            .len()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self
            .budget
            .held
            .lock()
            .expect("a budget's lock is never poisoned");
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

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

    #[test]
    fn a_budget_is_per_client_and_given_back() {
        let budget = Budget::new("subscriptions", 2);
        let a = ClientKey::Address(ip("192.0.2.1"));
        let b = ClientKey::Address(ip("192.0.2.2"));
        let first = budget.take(&a).expect("one");
        let _second = budget.take(&a).expect("two");
        assert!(budget.take(&a).is_none(), "a is at its limit");
        let _other = budget.take(&b).expect("b is not a");
        drop(first);
        let _again = budget.take(&a).expect("one was given back");
        assert_eq!(budget.held_by(&a), 2);
        drop((_second, _again, _other));
        assert_eq!(
            budget.clients(),
            0,
            "nothing is kept for clients that hold nothing"
        );
    }

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
