//! Outbound requests to addresses that integrators choose (webhook endpoints) must never
//! reach Steward's own network: server-side request forgery. An endpoint must be `http` or
//! `https`, and every address its host resolves to must be public, unless the operator
//! allows private addresses (`STEWARD_WEBHOOK_ALLOW_PRIVATE`, for tests and closed networks).
//! The check runs when an endpoint is registered and again before every delivery, since
//! what a name resolves to can change.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether an address is reachable on the public internet (not loopback, private,
/// link-local, shared, documentation, multicast or otherwise reserved).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments()[1] == 0x0db8)
}

/// The parts of an endpoint URL a delivery needs: the host and port to resolve.
pub fn host_and_port(raw: &str) -> Result<(String, u16), String> {
    let url = reqwest::Url::parse(raw).map_err(|_| "is not a URL".to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let host = url.host_str().ok_or_else(|| "must name a host".to_string())?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| "must name a port".to_string())?;
    Ok((host.trim_matches(|c| c == '[' || c == ']').to_string(), port))
}

/// Refuses addresses that are not public, unless private ones are allowed.
pub fn check_addresses(addresses: &[IpAddr], allow_private: bool) -> Result<(), String> {
    if addresses.is_empty() {
        return Err("its host does not resolve".into());
    }
    match addresses.iter().find(|ip| !is_public(**ip)) {
        Some(ip) if !allow_private => Err(format!(
            "resolves to {ip}, which is not a public address (loopback, private and link-local addresses are refused)"
        )),
        _ => Ok(()),
    }
}

/// Resolves and checks an endpoint URL; blocking (call it on the blocking pool).
pub fn check_url_blocking(raw: &str, allow_private: bool) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let (host, port) = host_and_port(raw)?;
    let addresses: Vec<IpAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|_| "its host does not resolve".to_string())?
        .map(|a| a.ip())
        .collect();
    check_addresses(&addresses, allow_private)
}

/// Resolves and checks an endpoint URL, without blocking (the delivery worker).
pub async fn check_url(raw: &str, allow_private: bool) -> Result<(), String> {
    let (host, port) = host_and_port(raw)?;
    let addresses: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| "its host does not resolve".to_string())?
        .map(|a| a.ip())
        .collect();
    check_addresses(&addresses, allow_private)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_must_be_web_urls_to_a_host() {
        assert!(host_and_port("ftp://example.com/x").is_err());
        assert!(host_and_port("https://user:pw@example.com/").is_err());
        assert!(host_and_port("not a url").is_err());
        assert_eq!(
            host_and_port("https://example.com/hook").unwrap(),
            ("example.com".into(), 443)
        );
        assert_eq!(host_and_port("http://[::1]:8080/").unwrap(), ("::1".into(), 8080));
        assert!(check_url_blocking("http://127.0.0.1:9/", false).is_err());
        assert!(check_url_blocking("http://127.0.0.1:9/", true).is_ok());
    }
}
