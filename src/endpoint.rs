//! `http://host[:port]` / `https://host[:port]` endpoints of upstream models.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    /// Host name or IP address, without brackets for IPv6.
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err("must start with http:// or https://".into());
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') || authority.contains('?') || authority.contains('#') {
            return Err("must be scheme://host[:port] without a path; requests keep their own path (/v1/...)".into());
        }
        if authority.contains('@') {
            return Err("credentials in the URL are not supported; use api_key_env".into());
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("port {p:?} is not a number from 1 to 65535"))?,
            None if tls => 443,
            None => 80,
        };
        if host.is_empty() {
            return Err("has no host".into());
        }
        let valid_host = host.parse::<std::net::IpAddr>().is_ok()
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !valid_host {
            return Err(format!("host {host:?} is not a DNS name or IP address"));
        }
        Ok(Endpoint {
            tls,
            host: host.to_string(),
            port,
        })
    }

    /// Stands in for an unparsable endpoint so validation can go on collecting errors.
    pub(crate) fn placeholder() -> Self {
        Endpoint {
            tls: false,
            host: String::new(),
            port: 0,
        }
    }

    pub fn is_ip(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }

    /// The `Host` / `:authority` an upstream expects.
    pub fn authority(&self) -> String {
        let default_port = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("IPv6 address is missing its closing ']'")?;
        if after.is_empty() {
            return Ok((host, None));
        }
        let port = after
            .strip_prefix(':')
            .ok_or("unexpected text after the IPv6 address")?;
        return Ok((host, Some(port)));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((authority, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_or_explain() {
        let ok: &[(&str, bool, &str, u16)] = &[
            ("http://127.0.0.1:18081", false, "127.0.0.1", 18081),
            ("https://llm.example.com", true, "llm.example.com", 443),
            ("http://models.local/", false, "models.local", 80),
            ("https://[::1]:8443", true, "::1", 8443),
        ];
        for (url, tls, host, port) in ok {
            let e = Endpoint::parse(url).unwrap();
            assert_eq!(
                (e.tls, e.host.as_str(), e.port),
                (*tls, *host, *port),
                "{url}"
            );
        }
        let bad: &[(&str, &str)] = &[
            ("ftp://x", "http:// or https://"),
            ("http://x:0", "port"),
            ("http://x:99999", "port"),
            ("http://x/v1", "without a path"),
            ("https://", "no host"),
            ("http://bad host", "not a DNS name"),
            ("http://u:p@x", "credentials"),
        ];
        for (url, why) in bad {
            let err = Endpoint::parse(url).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn authority_omits_default_port_and_brackets_ipv6() {
        assert_eq!(Endpoint::parse("https://a.b").unwrap().authority(), "a.b");
        assert_eq!(
            Endpoint::parse("http://a.b:81").unwrap().authority(),
            "a.b:81"
        );
        assert_eq!(
            Endpoint::parse("http://[::1]:81").unwrap().authority(),
            "[::1]:81"
        );
    }
}
