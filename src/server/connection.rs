//! The accept loop of [`super::serve`], on hyper directly rather than `axum::serve`, because
//! the connection is where slow clients are bounded: a client must finish its request headers
//! within `http.header_timeout_secs` of connecting (or of its previous request, so idle
//! keep-alive connections are closed too), and a request body that pauses for longer than
//! `http.body_timeout_secs` fails (408). WebSocket upgrades are served on the same
//! connections, and shutdown drains them gracefully.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

use super::HttpPolicy;

/// Accepts connections until `shutdown`, then asks each to finish its request in flight and
/// waits for them (the caller bounds that wait).
pub async fn accept(
    listener: TcpListener,
    app: Router,
    policy: HttpPolicy,
    shutdown: CancellationToken,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
            // Finished connections are collected as they end.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        connections.spawn(serve_connection(
            stream,
            remote,
            app.clone(),
            policy.clone(),
            shutdown.clone(),
        ));
    }
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    app: Router,
    policy: HttpPolicy,
    shutdown: CancellationToken,
) {
    let service = tower::ServiceBuilder::new()
        .layer(RequestBodyTimeoutLayer::new(policy.body_timeout))
        .service(app)
        .map_request(move |mut request: hyper::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            request
        });
    let service = TowerToHyperService::new(service);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(policy.header_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => finished(result),
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            finished(connection.await);
        }
    }
}

fn finished(result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        // Timeouts and clients that vanish are normal at this level.
        tracing::debug!(%error, "connection ended with an error");
    }
}
