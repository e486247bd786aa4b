//! WebSocket upgrades (HTTP/1.1): the upgrade headers are forwarded, and once the upstream
//! answers 101 both connections are spliced together.

use http::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use super::upstream::Upgrade;

/// Whether a request asks for a WebSocket upgrade.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let websocket = headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    connection_upgrade && websocket
}

/// Upstream request headers of an upgrade: `Connection: keep-alive, Upgrade`,
/// `Upgrade: websocket`.
pub fn set_upgrade_headers(headers: &mut HeaderMap) {
    headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
}

/// Puts back the headers a 101 response needs after hop-by-hop headers were removed.
pub fn restore_response_headers(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(UPGRADE, protocol);
}

/// Copies bytes both ways between the upgraded client and upstream connections until one
/// side closes; bytes the upstream sent right after its 101 go to the client first.
pub fn splice(downstream: OnUpgrade, upstream: Upgrade) {
    tokio::spawn(async move {
        let client = match downstream.await {
            Ok(client) => client,
            Err(error) => {
                tracing::debug!(%error, "websocket upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let ended = match upstream {
            Upgrade::Plain(mut plain) => {
                let sent = client.write_all(&plain.read_ahead).await;
                match sent {
                    Ok(()) => tokio::io::copy_bidirectional(&mut client, &mut plain.stream)
                        .await
                        .map(drop),
                    Err(error) => Err(error),
                }
            }
            Upgrade::Hyper(upstream) => match upstream.await {
                Ok(server) => {
                    let mut server = TokioIo::new(server);
                    tokio::io::copy_bidirectional(&mut client, &mut server)
                        .await
                        .map(drop)
                }
                Err(error) => {
                    tracing::debug!(%error, "websocket upgrade failed");
                    return;
                }
            },
        };
        if let Err(error) = ended {
            tracing::debug!(%error, "websocket connection ended");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_upgrade_requests() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        h.insert(UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(is_upgrade(&h));
        h.insert(UPGRADE, HeaderValue::from_static("h2c"));
        assert!(!is_upgrade(&h));
    }
}
