//! One storage suite, run against `memory://`, local files and a real S3 server alike.

use bytes::Bytes;
use clipline_core::storage::{Store, StoreOptions};
use clipline_core::Error;

use crate::support::S3Server;

async fn conformance(store: &Store) {
    let name = store.uri().to_string();
    store.put("a/one.bin", Bytes::from_static(b"0123456789")).await.unwrap();
    store.put("a/b/two.bin", Bytes::from_static(b"two")).await.unwrap();
    store.put("c.bin", Bytes::from_static(b"c")).await.unwrap();
    assert_eq!(store.get("a/one.bin").await.unwrap().as_ref(), b"0123456789", "{name}");
    assert_eq!(store.get_range("a/one.bin", 2..5).await.unwrap().as_ref(), b"234", "{name}: ranged read");
    let keys: Vec<String> = store.list("a").await.unwrap().into_iter().map(|e| e.key).collect();
    assert_eq!(keys, vec!["a/b/two.bin", "a/one.bin"], "{name}: listing is recursive, sorted, relative");
    assert!(store.exists("c.bin").await.unwrap());
    assert_eq!(store.get_opt("missing.bin").await.unwrap(), None, "{name}");

    store.put("a/one.bin", Bytes::from_static(b"replaced")).await.unwrap();
    assert_eq!(store.get("a/one.bin").await.unwrap().as_ref(), b"replaced", "{name}: put replaces");
    assert!(store.put_if_absent("lock", Bytes::from_static(b"first")).await.unwrap(), "{name}");
    assert!(!store.put_if_absent("lock", Bytes::from_static(b"second")).await.unwrap(), "{name}: conditional create refuses");
    assert_eq!(store.get("lock").await.unwrap().as_ref(), b"first", "{name}");

    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    let payload: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&big, &payload).unwrap();
    store.put_file("big/file.bin", &big).await.unwrap();
    assert_eq!(store.get("big/file.bin").await.unwrap().as_ref(), payload.as_slice(), "{name}: multipart upload");
    let back = dir.path().join("back.bin");
    let mut seen = 0usize;
    store.download("big/file.bin", &back, |c| seen += c.len()).await.unwrap();
    assert_eq!((seen, std::fs::read(&back).unwrap().len()), (payload.len(), payload.len()), "{name}: download");

    store.delete("c.bin").await.unwrap();
    store.delete("c.bin").await.unwrap();
    assert!(!store.exists("c.bin").await.unwrap(), "{name}: delete, twice");
    assert!(matches!(store.put("../escape", Bytes::new()).await, Err(Error::InvalidLocation { .. })), "{name}: keys cannot escape the root");
}

#[tokio::test]
async fn memory_store_conforms() {
    conformance(&Store::open("memory://").unwrap()).await;
}

#[tokio::test]
async fn local_store_conforms_and_stays_inside_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    conformance(&Store::open(root.to_str().unwrap()).unwrap()).await;
    assert!(!dir.path().join("escape").exists());
}

#[tokio::test]
async fn s3_store_conforms() {
    let Some(server) = S3Server::start() else { return };
    let uri = format!("s3://{}/prefix", server.bucket);
    conformance(&Store::open_with(&uri, server.options()).unwrap()).await;
}

#[tokio::test]
async fn s3_errors_are_bounded_and_name_the_object_without_credentials() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s3 = [("aws_access_key_id", "AKIDSECRETVALUE"), ("aws_secret_access_key", "hunter2"), ("aws_region", "us-east-1")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([("aws_endpoint".to_string(), format!("http://127.0.0.1:{port}"))])
        .collect();
    let options = StoreOptions { s3, max_retries: 2, call_timeout: std::time::Duration::from_secs(5), ..Default::default() };
    let store = Store::open_with("s3://nobucket/x", options).unwrap();
    let started = std::time::Instant::now();
    let err = store.get("manifests/videos/part-1.parquet").await.unwrap_err().to_string();
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "retries are bounded");
    assert!(err.contains("s3://nobucket/x/manifests/videos/part-1.parquet"), "{err}");
    assert!(!err.contains("hunter2") && !err.contains("AKIDSECRETVALUE"), "credentials leaked: {err}");
}
