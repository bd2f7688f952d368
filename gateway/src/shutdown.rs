//! Stopping gracefully: the signal every listener and connection watches,
//! the accept loop that ends on it, and the HTTP/1.1 connection driver that
//! finishes the request in hand before closing. Raised by
//! `app::Running::shutdown`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

/// A signal every listener and connection watches: once raised, stop
/// taking work and finish what is in hand.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// A signal and the switch that raises it.
    pub fn new() -> (watch::Sender<bool>, Stop) {
        let (tx, rx) = watch::channel(false);
        (tx, Stop(rx))
    }

    /// Resolves once the signal is raised; never, if its switch is gone
    /// without raising it.
    pub async fn raised(&mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// The next connection of `listener`, or `None` once `stop` is raised.
/// Accept errors (out of file descriptors, …) are logged and waited out.
pub async fn next_connection(
    listener: &TcpListener,
    stop: &mut Stop,
    what: &str,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.raised() => return None,
        };
        match accepted {
            Ok(c) => return Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "{what}: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Drives an HTTP/1.1 connection; once `stop` is raised, lets it finish the
/// request in hand and close (an idle one closes at once).
pub async fn until_stopped<T, S>(
    connection: hyper::server::conn::http1::Connection<T, S>,
    mut stop: Stop,
) -> Result<(), hyper::Error>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(connection);
    tokio::select! {
        r = connection.as_mut() => r,
        _ = stop.raised() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}
