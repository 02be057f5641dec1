//! Tests of the export side of the API Gateway emulator (`tests/support/exports.rs`, see
//! `EXPORTS.md`), driven with a plain `reqwest` client against moto: if the emulator is wrong,
//! every object test built on it is wrong too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use support::exports::{md5_hex, put_objects, ExportApi, ExportConfig, RefForm, S3Front, Tripwire};

fn objects(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                format!("out/part-{i:03}.jsonl"),
                format!("{{\"i\":{i}}}\n").into_bytes(),
            )
        })
        .collect()
}

async fn get_json(url: &str) -> Value {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn the_listing_pages_presigned_urls_that_read_the_objects_through_the_front() {
    let content = objects(5);
    let listed = put_objects("emu-listing", &content).await;
    let front = S3Front::start().await;
    let mut config = ExportConfig::new(listed, &front.url());
    config.page_size = 2;
    let api = ExportApi::start(config).await;

    let mut files = Vec::new();
    let mut url = api.url("/prod/files");
    loop {
        let page = get_json(&url).await;
        files.extend(page["files"].as_array().unwrap().clone());
        match page["next_cursor"].as_str() {
            Some(c) => {
                url = reqwest::Url::parse_with_params(&api.url("/prod/files"), [("cursor", c)])
                    .unwrap()
                    .to_string()
            }
            None => break,
        }
    }
    assert_eq!(files.len(), 5);
    assert_eq!(api.listings(), 1, "one listing of three pages");
    for ((key, bytes), file) in content.iter().zip(&files) {
        assert_eq!(file["name"], key.as_str());
        assert_eq!(file["size"], bytes.len() as u64);
        assert_eq!(file["md5"], md5_hex(bytes));
        let link = file["url"].as_str().unwrap();
        assert!(
            link.starts_with(&front.url()) && link.contains("X-Amz-Signature="),
            "{link}"
        );
        let got = reqwest::get(link).await.unwrap();
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(got.bytes().await.unwrap().to_vec(), *bytes);
    }
    assert_eq!(front.expired(), 0);
}

#[tokio::test]
async fn expired_listings_hand_out_urls_the_front_refuses_as_s3_does() {
    let listed = put_objects("emu-expired", &objects(1)).await;
    let front = S3Front::start().await;
    let mut config = ExportConfig::new(listed, &front.url());
    config.expired_listings = 1;
    let api = ExportApi::start(config).await;

    let stale = get_json(&api.url("/prod/files")).await;
    let refused = reqwest::get(stale["files"][0]["url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let xml = refused.text().await.unwrap();
    assert!(
        xml.contains("<Code>AccessDenied</Code><Message>Request has expired</Message>"),
        "{xml}"
    );
    assert_eq!(front.expired(), 1);

    let fresh = get_json(&api.url("/prod/files")).await;
    let ok = reqwest::get(fresh["files"][0]["url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(api.listings(), 2);
}

#[tokio::test]
async fn an_export_starts_runs_and_lists_its_files_as_s3_uris() {
    let listed = put_objects("emu-export", &objects(3)).await;
    let mut config = ExportConfig::new(listed, &support::identity::moto_url());
    config.form = RefForm::S3Uri;
    config.polls_before_done = 2;
    config.page_size = 2;
    let api = ExportApi::start(config).await;
    let client = reqwest::Client::new();

    let started = client
        .post(api.url("/prod/exports"))
        .body(r#"{"table":"orders"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let started: Value = serde_json::from_slice(&started.bytes().await.unwrap()).unwrap();
    assert_eq!(started["id"], "exp-1");
    let status_url = started["status_url"].as_str().unwrap().to_string();
    assert_eq!(status_url, api.url("/prod/exports/exp-1"));
    assert_eq!(api.requests()[0].body.as_ref(), br#"{"table":"orders"}"#);

    for _ in 0..2 {
        assert_eq!(get_json(&status_url).await["status"], "RUNNING");
    }
    let done = get_json(&status_url).await;
    assert_eq!(done["status"], "SUCCEEDED");
    assert_eq!(
        done["files"][0]["s3_uri"],
        "s3://emu-export/out/part-000.jsonl"
    );
    assert_eq!(done["files"].as_array().unwrap().len(), 2);
    let cursor = done["next_cursor"].as_str().unwrap();
    let rest = get_json(
        reqwest::Url::parse_with_params(&status_url, [("cursor", cursor)])
            .unwrap()
            .as_str(),
    )
    .await;
    assert_eq!(
        rest["files"][0]["s3_uri"],
        "s3://emu-export/out/part-002.jsonl"
    );
    assert!(rest["next_cursor"].is_null());
    assert_eq!(api.exports_started(), 1);

    // An unknown export, a body that is not JSON, an unknown route.
    let missing = client
        .get(api.url("/prod/exports/exp-9"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let bad = client
        .post(api.url("/prod/exports"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let unknown = client.get(api.url("/prod/nothing")).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::FORBIDDEN);
    assert_eq!(api.exports_started(), 1);
}

#[tokio::test]
async fn a_failing_export_and_a_foreign_url_base() {
    let listed = put_objects("emu-foreign", &objects(1)).await;
    let tripwire = Tripwire::start().await;
    let mut config = ExportConfig::new(listed.clone(), &support::identity::moto_url());
    config.url_base = Some(tripwire.url());
    let api = ExportApi::start(config).await;
    let page = get_json(&api.url("/prod/files")).await;
    let link = page["files"][0]["url"].as_str().unwrap();
    assert!(
        link.starts_with(&format!(
            "{}/emu-foreign/out/part-000.jsonl?",
            tripwire.url()
        )),
        "{link}"
    );
    assert_eq!(tripwire.connections(), 0);

    let mut config = ExportConfig::new(listed, &support::identity::moto_url());
    config.polls_before_done = 0;
    config.fail_with = Some("warehouse offline".into());
    let api = ExportApi::start(config).await;
    let started = reqwest::Client::new()
        .post(api.url("/prod/exports"))
        .send()
        .await
        .unwrap();
    let started: Value = serde_json::from_slice(&started.bytes().await.unwrap()).unwrap();
    let done = get_json(started["status_url"].as_str().unwrap()).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["error"], "warehouse offline");
}
