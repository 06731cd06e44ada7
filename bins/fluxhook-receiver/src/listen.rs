//! Listening on addresses written as Go writes them.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpListener;

/// Binds `addr`: `host:port`, or `:port` for every interface as Go's
/// `net.Listen` reads it (IPv6 and IPv4 where the host has IPv6, IPv4
/// otherwise).
pub(crate) async fn bind(addr: &str) -> io::Result<TcpListener> {
    let Some(port) = addr.strip_prefix(':') else {
        return TcpListener::bind(addr).await;
    };
    let port: u16 = port.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid port in {addr:?}"),
        )
    })?;
    match TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))).await {
        Ok(listener) => Ok(listener),
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => Err(error),
        Err(_) => TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).await,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn reads_host_port_and_bare_port() {
        let listener = bind("127.0.0.1:0").await.unwrap();
        assert!(listener.local_addr().unwrap().ip().is_loopback());

        for bad in [":http", ":99999", "nonsense"] {
            assert!(bind(bad).await.is_err(), "{bad}");
        }
    }
}
