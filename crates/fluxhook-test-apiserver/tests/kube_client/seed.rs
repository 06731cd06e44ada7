use std::path::PathBuf;

use fluxhook_test_apiserver::{SeedError, TestApiServer};
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use serde_json::json;

use super::{GitRepository, client};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "fluxhook-test-apiserver-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const CRD: &str = "
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
";

const OBJECTS: &str = "
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: demo}
spec: {size: 3}
status: {ready: true}
---
apiVersion: v1
kind: Namespace
metadata: {name: demo}
";

#[tokio::test]
async fn seeding_registers_crds_and_stores_objects_with_status() {
    let dir = TempDir::new("seed");
    std::fs::write(dir.0.join("b-objects.yaml"), OBJECTS).unwrap();
    std::fs::write(dir.0.join("a-crd.yml"), CRD).unwrap();
    std::fs::write(dir.0.join("ignored.txt"), "not a manifest").unwrap();
    let server = TestApiServer::start().await.unwrap();
    assert_eq!(server.seed_from_path(&dir.0).unwrap(), 3);
    assert!(server.is_registered("example.com", "v1", "widgets"));

    let client = client(&server).await;
    let widgets = ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client, "demo", &widgets);
    let widget = api.get("w").await.unwrap();
    assert_eq!(widget.data["status"]["ready"], true, "seeding keeps status");

    // Seeding again applies over what is there.
    std::fs::write(
        dir.0.join("b-objects.yaml"),
        OBJECTS.replace("size: 3", "size: 4"),
    )
    .unwrap();
    server.seed_from_path(&dir.0).unwrap();
    let widget = server.get("example.com/v1", "Widget", "demo", "w").unwrap();
    assert_eq!(
        (
            widget["spec"]["size"].as_u64(),
            widget["metadata"]["generation"].as_u64()
        ),
        (Some(4), Some(2))
    );

    let missing = server
        .seed_from_path(dir.0.join("absent.yaml"))
        .unwrap_err();
    assert!(matches!(missing, SeedError::Read { .. }), "{missing}");
    std::fs::write(
        dir.0.join("c-unknown.json"),
        r#"{"apiVersion": "nope/v1", "kind": "Nope", "metadata": {"name": "x"}}"#,
    )
    .unwrap();
    let refused = server.seed_from_path(&dir.0).unwrap_err();
    assert!(matches!(refused, SeedError::Refused { .. }), "{refused}");
}

#[tokio::test]
async fn handle_helpers_and_kubeconfig_file() {
    let server = TestApiServer::start_flux(&[]).await.unwrap();
    let seeded = server
        .create(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "flux-repo"},
            "spec": {"url": "https://example.com/a.git"},
            "status": {"lastHandledReconcileAt": "before"}
        }))
        .unwrap();
    assert_eq!(seeded["metadata"]["namespace"], "default");
    assert_eq!(
        server.create(seeded.clone()).unwrap_err().code,
        500,
        "resourceVersion is set"
    );

    let dir = TempDir::new("kubeconfig");
    let path = dir.0.join("kubeconfig");
    server.write_kubeconfig(&path).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "default");
    let client = kube::Client::try_from(config).unwrap();
    let repos: Api<GitRepository> = Api::default_namespaced(client);
    let repo = repos.get("flux-repo").await.unwrap();
    assert_eq!(
        repo.status.unwrap().last_handled_reconcile_at.as_deref(),
        Some("before")
    );

    assert_eq!(
        server
            .list("source.toolkit.fluxcd.io/v1", "GitRepository", None)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        server.get("v1", "Namespace", "", "kube-system").unwrap()["status"]["phase"],
        "Active"
    );
    assert_eq!(
        server.get("nope/v1", "Nope", "", "x").unwrap_err().code,
        400
    );
    assert!(server.url().starts_with("http://127.0.0.1:"));
    assert_eq!(server.address().ip(), std::net::Ipv4Addr::LOCALHOST);
}
