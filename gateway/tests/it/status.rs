//! The Status API.

use crate::support::{gateway, get};

#[tokio::test]
async fn status_ready_and_metrics() {
    let gw = gateway("", &[]).await;
    let status = format!("http://{}", gw.status[0]);
    let r = get(&format!("{status}/status/ready"), &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["message"],
        "no configuration available (empty configuration present)"
    );
    let r = get(&format!("{status}/status"), &[]).await.json();
    assert_eq!(r["configuration_hash"], "0".repeat(32));
    assert!(r.get("database").is_none());
    let admin = format!("http://{}", gw.admin[0]);
    let yaml = "_format_version: \"3.0\"\nservices:\n- {name: s, host: h}\n";
    assert_eq!(
        crate::support::send("POST", &format!("{admin}/config"), &[], yaml)
            .await
            .status,
        201
    );
    let r = get(&format!("{status}/status/ready"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["message"], "ready");
    let r = get(&format!("{status}/status"), &[]).await.json();
    let hash = r["configuration_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 32);
    assert_ne!(hash, "0".repeat(32));
    assert!(r["server"]["total_requests"].as_u64().is_some());
    assert!(r["server"]["connections_accepted"].as_u64().unwrap() >= 1);
    let r = get(&format!("{status}/metrics"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(get(&format!("{admin}/metrics"), &[]).await.status, 200);
    assert_eq!(get(&format!("{status}/nope"), &[]).await.status, 404);
    gw.shutdown().await;
}
