//! The Admin API: entity writes that take effect at once, `/config`, seeds' requests.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::support::{echo_server, gateway, get, send};

const JSON: (&str, &str) = ("content-type", "application/json");
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

#[tokio::test]
async fn entity_writes_take_effect_while_traffic_flows() {
    let a = echo_server("a").await;
    let b = echo_server("b").await;
    let gw = gateway("", &[]).await;
    let admin = format!("http://{}", gw.admin[0]);
    let proxy = format!("http://127.0.0.1:{}", gw.proxy[0].port());

    let r = send(
        "POST",
        &format!("{admin}/services"),
        &[JSON],
        json!({"name": "shop", "url": format!("http://127.0.0.1:{}", a.addr.port())}).to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let service = r.json();
    assert_eq!(
        (service["port"].as_u64(), service["retries"].as_u64()),
        (Some(a.addr.port().into()), Some(5))
    );
    assert_eq!(service["path"], Value::Null);
    let r = send(
        "POST",
        &format!("{admin}/services/shop/routes"),
        &[FORM],
        "name=shop&paths[]=/shop&methods=GET",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["service"], json!({"id": service["id"]}));
    assert_eq!(r.json()["methods"], json!(["GET"]));
    assert_eq!(r.json()["strip_path"], true);
    assert_eq!(
        get(&format!("{proxy}/shop/x"), &[]).await.json()["upstream"],
        "a"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let traffic = {
        let (stop, failures, served, proxy) = (
            stop.clone(),
            failures.clone(),
            served.clone(),
            proxy.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = get(&format!("{proxy}/shop/x"), &[]).await;
                served.fetch_add(1, Ordering::Relaxed);
                if r.status != 200 {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let r = send(
        "PATCH",
        &format!("{admin}/services/shop"),
        &[JSON],
        json!({"port": b.addr.port()}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["host"], "127.0.0.1");
    let mut switched = false;
    for _ in 0..50 {
        if get(&format!("{proxy}/shop/x"), &[]).await.json()["upstream"] == "b" {
            switched = true;
            break;
        }
    }
    assert!(switched);
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    assert!(served.load(Ordering::Relaxed) > 0);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "requests failed during the reload"
    );

    let r = send("DELETE", &format!("{admin}/services/shop"), &[], "").await;
    assert_eq!(r.status, 400, "routes still reference it");
    assert_eq!(
        send("DELETE", &format!("{admin}/routes/shop"), &[], "")
            .await
            .status,
        204
    );
    assert_eq!(get(&format!("{proxy}/shop/x"), &[]).await.status, 404);
    assert_eq!(
        send("DELETE", &format!("{admin}/services/shop"), &[], "")
            .await
            .status,
        204
    );
    assert_eq!(
        get(&format!("{admin}/services/shop"), &[]).await.status,
        404
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn seed_plugin_requests_are_accepted() {
    let gw = gateway("", &[]).await;
    let admin = format!("http://{}", gw.admin[0]);
    // Seed 001, method 2 (Kong Gateway 3.8 or later), as printed.
    let body = "\n{\n\"name\": \"opentelemetry\",\n\"config\": {\n\"traces_endpoint\": \"<HTTP_ENDPOINT>\",\n\"resource_attributes\": {\n\"service.name\": \"<SERVICE_NAME>\"\n}\n}\n}";
    let r = send(
        "POST",
        &format!("{admin}/plugins/"),
        &[("accept", "application/json"), JSON],
        body,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let plugin = r.json();
    assert_eq!(plugin["enabled"], true);
    assert_eq!(
        plugin["protocols"],
        json!(["grpc", "grpcs", "http", "https"])
    );
    assert_eq!(
        plugin["config"]["resource_attributes"]["service.name"],
        "<SERVICE_NAME>"
    );
    // A second global opentelemetry plugin is a uniqueness violation.
    let r = send("POST", &format!("{admin}/plugins/"), &[JSON], body).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "UNIQUE violation detected on '{consumer=null,name=\"opentelemetry\",route=null,service=null}'"
    );
    // Seeds 003/004: multipart upload of a Lua file for post-function.
    let boundary = "------------------------d74496d66958873e";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\npost-function\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"config.access[1]\"; filename=\"custom-span.lua\"\r\nContent-Type: application/octet-stream\r\n\r\nlocal span = kong.tracing.start_span(\"custom-span\")\nspan:finish()\n\r\n--{boundary}--\r\n"
    );
    let ct = format!("multipart/form-data; boundary={boundary}");
    let r = send(
        "POST",
        &format!("{admin}/plugins"),
        &[("content-type", ct.as_str())],
        multipart,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.json()["config"]["access"][0]
        .as_str()
        .unwrap()
        .contains("custom-span"));
    let r = send(
        "POST",
        &format!("{admin}/plugins"),
        &[JSON],
        r#"{"name":"no-such-plugin"}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["name"], "schema violation");
    assert_eq!(
        r.json()["fields"]["name"],
        "plugin 'no-such-plugin' not enabled; add it to the 'plugins' configuration property"
    );
    let r = send(
        "POST",
        &format!("{admin}/services"),
        &[JSON],
        r#"{"name":"x","port":"eighty"}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "2 schema violations (host: required field missing; port: expected an integer)"
    );
    let r = get(&format!("{admin}/plugins"), &[]).await;
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    gw.shutdown().await;
}

#[tokio::test]
async fn lists_page_and_filter_by_tags() {
    let mut yaml = String::from("_format_version: \"3.0\"\nservices:\n");
    for i in 0..5 {
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        yaml.push_str(&format!(
            "- {{name: s{i}, host: h{i}, tags: [{tag}, all]}}\n"
        ));
    }
    let gw = gateway(&yaml, &[]).await;
    let admin = format!("http://{}", gw.admin[0]);
    let r = get(&format!("{admin}/services?size=2"), &[]).await.json();
    assert_eq!(r["data"].as_array().unwrap().len(), 2);
    let next = r["next"].as_str().unwrap().to_owned();
    let r = get(&format!("{admin}{next}"), &[]).await.json();
    assert_eq!(r["data"][0]["name"], "s2");
    let r = get(&format!("{admin}/services?tags=even"), &[])
        .await
        .json();
    assert_eq!(r["data"].as_array().unwrap().len(), 3);
    assert_eq!(r["next"], Value::Null);
    let r = get(&format!("{admin}/services?tags=even,odd"), &[])
        .await
        .json();
    assert_eq!(r["data"].as_array().unwrap().len(), 0);
    let r = get(&format!("{admin}/services?tags=even/odd"), &[])
        .await
        .json();
    assert_eq!(r["data"].as_array().unwrap().len(), 5);
    assert_eq!(
        get(&format!("{admin}/services/s3"), &[]).await.json()["host"],
        "h3"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn post_config_replaces_the_configuration() {
    let a = echo_server("a").await;
    let gw = gateway("", &[]).await;
    let admin = format!("http://{}", gw.admin[0]);
    let proxy = format!("http://127.0.0.1:{}", gw.proxy[0].port());
    assert_eq!(get(&format!("{proxy}/c"), &[]).await.status, 404);
    let yaml = format!("_format_version: \"3.0\"\nservices:\n- name: c\n  host: 127.0.0.1\n  port: {}\n  routes:\n  - name: c\n    paths: [/c]\n", a.addr.port());
    let r = send(
        "POST",
        &format!("{admin}/config"),
        &[("content-type", "text/yaml")],
        yaml.clone(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["services"].as_object().unwrap().len(), 1);
    assert_eq!(get(&format!("{proxy}/c"), &[]).await.status, 200);
    let r = send(
        "POST",
        &format!("{admin}/config?check_hash=1"),
        &[],
        yaml.clone(),
    )
    .await;
    assert_eq!(r.status, 304);
    let wrapped = json!({"config": yaml}).to_string();
    let r = send("POST", &format!("{admin}/config"), &[JSON], wrapped).await;
    assert_eq!(r.status, 201);
    let r = get(&format!("{admin}/config"), &[]).await;
    assert!(r.json()["config"].as_str().unwrap().contains("name: c"));
    let bad = "_format_version: \"3.0\"\nservices:\n- name: broken\n";
    let r = send(
        "POST",
        &format!("{admin}/config?flatten_errors=1"),
        &[],
        bad,
    )
    .await;
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(body["code"], 14);
    assert_eq!(
        body["fields"]["services"]["broken"]["host"],
        "required field missing"
    );
    assert_eq!(body["flattened_errors"][0]["errors"][0]["field"], "host");
    assert_eq!(
        get(&format!("{proxy}/c"), &[]).await.status,
        200,
        "the old config stays"
    );
    gw.shutdown().await;
}
