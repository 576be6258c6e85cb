//! The loopback addresses the stack listens on, and binding them.

use super::DevArgs;
use anyhow::{Context, Result, bail};
use std::net::SocketAddr;

pub(super) fn loopback(addr: &str, what: &str) -> Result<SocketAddr> {
    let parsed: SocketAddr = addr
        .parse()
        .with_context(|| format!("{what} {addr:?} is not an address like 127.0.0.1:3000"))?;
    if !parsed.ip().is_loopback() {
        bail!(
            "{what} {addr} is not a loopback address: the local stack prints credentials and mints tokens, so it only listens on 127.0.0.1 or ::1"
        );
    }
    Ok(parsed)
}

pub(super) async fn bind(addr: SocketAddr, flag: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!(
            "could not listen on {addr}; is another process (an earlier `hsbridge dev`?) using it? Stop it, or pick another port with {flag}"
        )
    })
}

/// The functions' address and the stand-in's (by default the next port), both loopback.
pub(super) fn listen_addrs(args: &DevArgs) -> Result<(SocketAddr, SocketAddr)> {
    let addr = loopback(&args.addr, "--addr")?;
    let protected_addr = match &args.protected_addr {
        Some(a) => loopback(a, "--protected-addr")?,
        None => SocketAddr::new(
            addr.ip(),
            if addr.port() == 0 {
                0
            } else {
                addr.port().wrapping_add(1)
            },
        ),
    };
    Ok((addr, protected_addr))
}
