//! Listening on addresses written as Go writes them, with Go's backlog.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::{TcpListener, TcpSocket};

/// Binds `addr`: `host:port`, or `:port` for every interface as Go's
/// `net.Listen` reads it (IPv6 and IPv4 where the host has IPv6, IPv4
/// otherwise).
pub(crate) async fn bind(addr: &str) -> io::Result<TcpListener> {
    let Some(port) = addr.strip_prefix(':') else {
        let mut last = None;
        for addr in tokio::net::lookup_host(addr).await? {
            match bind_one(addr) {
                Ok(listener) => return Ok(listener),
                Err(error) => last = Some(error),
            }
        }
        return Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{addr:?} resolves to no address"),
            )
        }));
    };
    let port: u16 = port.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid port in {addr:?}"),
        )
    })?;
    match bind_one(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))) {
        Ok(listener) => Ok(listener),
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => Err(error),
        Err(_) => bind_one(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))),
    }
}

/// Listens on `addr` as Go's `net.Listen` does: `SO_REUSEADDR`, and a
/// backlog of `net.core.somaxconn` connections ([`backlog`]).
fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog())
}

/// The backlog of a listening socket: connections the kernel completes
/// and queues before the server accepts them. Past it, a new connection's
/// SYN is dropped and its client sends it again a second later (then 3,
/// 7 s...), so a flood of connections that fills a short queue delays
/// every other client by whole seconds (docs/reliability.md). Go's
/// `net.Listen`, and so Flux, asks for `net.core.somaxconn`
/// (`maxListenerBacklog`, net/sock_linux.go): 4,096 by default since
/// Linux 5.4, where tokio asks for 1,024. So does fluxhook (4,096 if it
/// cannot be read).
fn backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
        // listen(2) takes an int.
        .map_or(4096, |n| n.min(i32::MAX as u32))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn reads_host_port_and_bare_port() {
        let listener = bind("127.0.0.1:0").await.unwrap();
        assert!(listener.local_addr().unwrap().ip().is_loopback());
        let named = bind("localhost:0").await.unwrap();
        assert!(named.local_addr().unwrap().ip().is_loopback());
        assert!(backlog() > 0);

        for bad in [":http", ":99999", "nonsense"] {
            assert!(bind(bad).await.is_err(), "{bad}");
        }
    }
}
