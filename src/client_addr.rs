//! The client's network address, for the limits counted per address.
//!
//! By default it is the peer of the TCP connection, and no header is believed: anyone can
//! send `X-Forwarded-For`. Behind a reverse proxy the operator names the header the proxy
//! sets (`STEWARD_TRUSTED_PROXY_HEADER`) and the proxies' addresses
//! (`STEWARD_TRUSTED_PROXIES`); then, for a request whose peer is one of those proxies, the
//! header's hops are read from the right (the hop the proxy itself appended) and the first
//! address that is not a trusted proxy is the client. Whatever a client writes to the left
//! of that is never reached.

use actix_web::{web, FromRequest, HttpRequest};
use std::future::{ready, Ready};
use std::net::{IpAddr, SocketAddr};

use crate::error::ApiError;
use crate::state::AppState;

/// An address or a network in CIDR form (`10.0.0.0/8`, `2001:db8::/32`, `127.0.0.1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{raw:?} is not an IP address or CIDR network"))?;
        let addr = addr.to_canonical();
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{raw:?} has a prefix length outside 0..={bits}"))?,
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn same_prefix(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (whole, rest) = ((prefix / 8) as usize, prefix % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

/// Which forwarding header to believe, and from whom. Off (no header) by default.
#[derive(Clone, Debug, Default)]
pub struct ProxyTrust {
    /// `X-Forwarded-For` style (a comma-separated list of hops) or `Forwarded` (RFC 7239).
    pub header: Option<String>,
    pub proxies: Vec<IpNet>,
}

impl ProxyTrust {
    fn trusts(&self, ip: &IpAddr) -> bool {
        self.proxies.iter().any(|net| net.contains(ip))
    }
}

/// The client's address as Steward believes it (`None` when the connection has no peer
/// address, e.g. in unit tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    /// The peer, or with a trusted proxy header from a trusted proxy, the first hop from the
    /// right that is not a trusted proxy. `header` holds the header's values joined by commas.
    pub fn resolve(peer: Option<IpAddr>, header: Option<&str>, trust: &ProxyTrust) -> Self {
        let Some(peer) = peer.map(|ip| ip.to_canonical()) else {
            return Self(None);
        };
        let (Some(name), Some(value)) = (&trust.header, header) else {
            return Self(Some(peer));
        };
        if !trust.trusts(&peer) {
            return Self(Some(peer));
        }
        let forwarded = name.eq_ignore_ascii_case("forwarded");
        let mut leftmost = peer;
        for hop in value.split(',').rev() {
            let node = if forwarded { forwarded_for(hop) } else { Some(hop) };
            // A hop that is not an address cannot have been written by a trusted proxy:
            // stop at the last address a trusted proxy vouched for.
            let Some(ip) = node.and_then(parse_node) else {
                return Self(Some(leftmost));
            };
            if !trust.trusts(&ip) {
                return Self(Some(ip));
            }
            leftmost = ip;
        }
        Self(Some(leftmost))
    }

    /// What per-address limits count under: an IPv4 address, or an IPv6 address's /64 (one
    /// customer's network is usually a whole /64).
    pub fn subject(&self) -> String {
        match self.0 {
            Some(IpAddr::V4(ip)) => ip.to_string(),
            Some(IpAddr::V6(ip)) => {
                let s = ip.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            None => "unknown".to_string(),
        }
    }
}

/// The `for=` node of one element of a `Forwarded` header.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
    })
}

/// `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`, optionally quoted.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let node = raw.trim().trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok().map(|ip: IpAddr| ip.to_canonical());
    }
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

impl FromRequest for ClientAddr {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let peer = req.peer_addr().map(|a| a.ip());
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Ok(Self(peer)));
        };
        let trust = &state.config.proxy_trust;
        let header = trust.header.as_deref().map(|name| {
            req.headers()
                .get_all(name)
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(",")
        });
        let header = header.filter(|h| !h.trim().is_empty());
        ready(Ok(Self::resolve(peer, header.as_deref(), trust)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trust(header: &str, proxies: &[&str]) -> ProxyTrust {
        ProxyTrust {
            header: Some(header.to_string()),
            proxies: proxies.iter().map(|p| IpNet::parse(p).unwrap()).collect(),
        }
    }

    #[test]
    fn networks_contain_their_addresses() {
        let net = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(&ip("10.1.200.3")));
        assert!(!net.contains(&ip("10.2.0.1")));
        assert!(IpNet::parse("::ffff:127.0.0.1").unwrap().contains(&ip("127.0.0.1")));
        assert!(IpNet::parse("2001:db8::/32").unwrap().contains(&ip("2001:db8:1::9")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(&ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x"] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_header_is_believed_by_default() {
        let none = ProxyTrust::default();
        let got = ClientAddr::resolve(Some(ip("127.0.0.1")), Some("9.9.9.9"), &none);
        assert_eq!(got, ClientAddr(Some(ip("127.0.0.1"))));
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let t = trust("X-Forwarded-For", &["10.0.0.0/8"]);
        let peer = Some(ip("10.0.0.2"));
        let got = ClientAddr::resolve(peer, Some("1.1.1.1, 203.0.113.7, 10.0.0.9"), &t);
        assert_eq!(got.0, Some(ip("203.0.113.7")));
        // Not from a trusted proxy: the header is the client's own words.
        let got = ClientAddr::resolve(Some(ip("198.51.100.1")), Some("1.1.1.1"), &t);
        assert_eq!(got.0, Some(ip("198.51.100.1")));
        // Garbage where a proxy would have written an address: the last vouched-for hop.
        let got = ClientAddr::resolve(peer, Some("203.0.113.7, junk"), &t);
        assert_eq!(got.0, Some(ip("10.0.0.2")));
    }

    #[test]
    fn forwarded_and_ports_and_ipv6() {
        let t = trust("Forwarded", &["127.0.0.1"]);
        let got = ClientAddr::resolve(
            Some(ip("127.0.0.1")),
            Some("for=1.2.3.4, for=\"[2001:db8:cafe:1:2::3]:4711\";proto=https"),
            &t,
        );
        assert_eq!(got.0, Some(ip("2001:db8:cafe:1:2::3")));
        assert_eq!(got.subject(), "2001:db8:cafe:1::/64");
        let t = trust("X-Forwarded-For", &["127.0.0.1"]);
        let got = ClientAddr::resolve(Some(ip("127.0.0.1")), Some("203.0.113.7:5555"), &t);
        assert_eq!(got.subject(), "203.0.113.7");
    }
}
