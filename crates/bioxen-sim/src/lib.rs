//! `bioxen sim`: an XAPI server for tests, demos and development.
//!
//! No XCP-ng host can run on a researcher's laptop or in CI, so bioxen brings its own
//! pool: it speaks XAPI's real wire format (XML-RPC and JSON-RPC, xapi's envelopes and
//! encodings), keeps records with xapi's power-state rules and error codes, reports
//! changes through `event.from`, and can misbehave on request (latency, dropped
//! connections, HTTP 500, garbage, expired sessions, a pool member that redirects).

pub mod api;
pub mod db;
pub mod filter;
pub mod guest;
pub mod records;
pub mod rrd;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;

pub use api::{Faults, Sim, SimOptions};

/// A running simulator.
pub struct SimServer {
    pub sim: Arc<Sim>,
    pub addr: SocketAddr,
    /// `http://…` or `https://…`, without a trailing slash.
    pub url: String,
    /// `sha256:AB:CD:…` of the certificate, when serving TLS.
    pub fingerprint: Option<String>,
    task: tokio::task::JoinHandle<()>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl SimServer {
    /// Starts a simulator listening on `addr` (port 0 picks a free one), over TLS with a
    /// freshly generated self-signed certificate when `tls` is set.
    pub async fn start(
        addr: SocketAddr,
        options: SimOptions,
        tls: bool,
    ) -> std::io::Result<SimServer> {
        SimServer::start_with(Sim::new(options), addr, tls).await
    }

    /// Serves an existing simulated pool (to bring a "restarted" pool back with its
    /// records).
    pub async fn start_with(
        sim: Arc<Sim>,
        addr: SocketAddr,
        tls: bool,
    ) -> std::io::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (acceptor, fingerprint) = if tls {
            let (acceptor, fp) = self_signed(addr)?;
            (Some(acceptor), Some(fp))
        } else {
            (None, None)
        };
        let scheme = if tls { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let (shutdown, down) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(server::serve(sim.clone(), listener, acceptor, down));
        Ok(SimServer {
            sim,
            addr,
            url,
            fingerprint,
            task,
            shutdown,
        })
    }

    /// Stops listening and closes every open connection.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TLS acceptor with a new self-signed certificate for `localhost` and the listening
/// address, and that certificate's SHA-256 fingerprint.
fn self_signed(addr: SocketAddr) -> std::io::Result<(tokio_rustls::TlsAcceptor, String)> {
    let names = vec!["localhost".to_string(), addr.ip().to_string()];
    let key = rcgen::generate_simple_self_signed(names).map_err(std::io::Error::other)?;
    let cert_der = key.cert.der().clone();
    let fingerprint = bioxen_backend::xapi::tls::fingerprint(&cert_der);
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)
        .map_err(std::io::Error::other)?;
    Ok((
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        fingerprint,
    ))
}
