//! An axum [`Listener`] that serves TLS: TCP connections are accepted in a task of their
//! own, each handshake runs in its own task with the TLS config current when the connection
//! came (so a rotated certificate applies to the next connection), and finished handshakes
//! are handed to axum's serve loop. Handshakes are bounded in number and time, so clients
//! that connect and say nothing cannot hold the listener. A client speaking plain HTTP to the
//! TLS port is answered 400, as Go's servers do, and closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::{Web, names};

/// Handshakes in progress at most; more connections wait in the kernel's backlog.
pub(crate) const MAX_HANDSHAKES: usize = 256;

/// How long a client has to complete its handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a plain-HTTP request to the TLS port is answered.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// TLS connections, handshakes done.
pub(crate) struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `listener` with `web`'s TLS configs.
    pub(crate) fn new(listener: TcpListener, web: Web) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, incoming) = mpsc::channel(64);
        let accepting = tokio::spawn(accept_loop(listener, web, tx));
        Ok(Self {
            incoming,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Graceful shutdown drops the listener: stop accepting at once.
        self.accepting.abort();
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accept task ended (it only does when this listener is dropped).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    listener: TcpListener,
    web: Web,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(config) = web.current().tls.clone() else {
            continue;
        };
        let (tx, web) = (tx.clone(), web.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(stream, config)).await {
                Ok(Ok(tls)) => {
                    log_client(&tls, addr);
                    let _ = tx.send((tls, addr)).await;
                }
                Ok(Err(reason)) => {
                    web.metrics().record_tls_failure(reason);
                    tracing::debug!(client = %addr, reason, "TLS handshake failed");
                }
                Err(_) => {
                    web.metrics().record_tls_failure("timeout");
                    tracing::debug!(client = %addr, "TLS handshake timed out");
                }
            }
        });
    }
}

/// Runs the handshake; a plain-HTTP client is answered 400 instead. The error is a bounded
/// reason for the metric.
async fn handshake(
    mut stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
) -> Result<TlsStream<TcpStream>, &'static str> {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) if first[0] == TLS_HANDSHAKE_RECORD => {}
        Ok(1) => {
            // Read the request head before answering, so closing does not reset the
            // connection under the answer.
            let mut head = [0u8; 4096];
            let _ = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut head)).await;
            let _ = stream.write_all(PLAIN_HTTP_ANSWER).await;
            let _ = stream.shutdown().await;
            return Err("plain_http");
        }
        _ => return Err("closed"),
    }
    TlsAcceptor::from(config)
        .accept(stream)
        .await
        .map_err(|_| "handshake")
}

/// A verified client certificate's subject, at debug; never anything of its key.
fn log_client(tls: &TlsStream<TcpStream>, addr: SocketAddr) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let (_, connection) = tls.get_ref();
    if let Some(subject) = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(names::subject)
    {
        tracing::debug!(client = %addr, %subject, "client certificate verified");
    }
}
