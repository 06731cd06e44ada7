//! Conformance: the Receiver CRD the standalone overlay ships is Flux's own,
//! byte for byte. Needs `../shared/flux-crds` (or `FLUXHOOK_FLUX_CRDS`); run
//! by `cargo xtask conformance`.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use fluxhook_corpus::{FLUX_CRDS_ENV, FluxCrds};
use fluxhook_manifests::Overlay;

const SHARED_FILE: &str = "receivers.yaml";
const SHIPPED_FILE: &str = "notification.toolkit.fluxcd.io_receivers.yaml";

/// Where fluxhook-corpus finds the CRDs: `$FLUXHOOK_FLUX_CRDS`, else
/// `shared/flux-crds` beside the workspace.
fn shared_crds_dir() -> PathBuf {
    std::env::var_os(FLUX_CRDS_ENV).map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .nth(3)
                .unwrap()
                .join("shared")
                .join("flux-crds")
        },
        PathBuf::from,
    )
}

#[test]
fn standalone_ships_fluxs_receiver_crd_unmodified() {
    // Fails with fluxhook-corpus' explanation when the folder is missing.
    let crds = FluxCrds::locate().unwrap_or_else(|error| panic!("{error}"));
    let flux = std::fs::read(shared_crds_dir().join(SHARED_FILE)).unwrap();
    let shipped_path = Overlay::Standalone.dir().join(SHIPPED_FILE);
    let shipped = std::fs::read(&shipped_path).unwrap();
    assert!(
        shipped == flux,
        "{} differs from Flux's {SHARED_FILE}: copy it again from {}",
        shipped_path.display(),
        shared_crds_dir().display()
    );
    // And it is the Receiver CRD fluxhook-corpus checks the API types against.
    let parsed: serde_json::Value = serde_yaml_ng::from_slice(&shipped).unwrap();
    assert_eq!(parsed, crds.read(SHARED_FILE).unwrap());
}
