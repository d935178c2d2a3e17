//! The conformance kit on every path this host can run, and calibration for `auto`. A path the CPU lacks is reported and
//! skipped (CI hosts with IFMA run all of them).

use accel_api::{Accelerator, BackendId, kit};
use backend_simd::{EdLincomb, Path, SimdBackend};

/// The whole kit with the default choices, then the Ed25519 linear-combination and
/// decompression checks with each of their two implementations forced (so both run at every
/// batch size of the kit).
fn run(path: Path) {
    match SimdBackend::with_path(path) {
        Ok(b) => {
            kit::check_all(&b);
            let caps = b.capabilities();
            assert_eq!(caps.backend, BackendId::Simd);
            assert_eq!(caps.device_id, format!("simd:{}", path.device_id()));
            for choice in [EdLincomb::Lanes, EdLincomb::Dalek] {
                let b = b.clone().with_ed_lincomb(choice);
                kit::check_ed25519_lincomb_vartime(&b);
                kit::check_ed25519_verify_batch_vartime(&b);
                kit::check_ed25519_decompress_batch(&b);
            }
        }
        // CI runs on hosts with AVX-512 IFMA: there a path that cannot run is a failure, not a
        // silent pass. Elsewhere the path is skipped with a note.
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and the {path} path cannot run on this host: {e}")
        }
        Err(e) => eprintln!("skipping the {path} path: {e}"),
    }
}

#[test]
fn kit_ifma() {
    run(Path::Ifma);
}

#[test]
fn kit_portable() {
    run(Path::Portable);
}

#[test]
fn kit_default_path() {
    match SimdBackend::new() {
        Ok(b) => kit::check_all(&b),
        Err(e) => eprintln!("no default path on this host: {e}"),
    }
}

#[test]
fn kit_avx2() {
    run(Path::Avx2);
}

/// `auto` can model the backend: calibration measures every (curve, op) it lists.
#[test]
fn calibrate_covers_every_op() {
    let b = SimdBackend::with_path(Path::Portable).unwrap();
    let model = accel_api::calibrate(&b, 1, 8, 1).unwrap();
    for (curve, op) in accel_api::Capabilities::all_ops() {
        let cost = model.get(curve, op).unwrap();
        assert!(cost.per_item_ns.is_finite() && cost.fixed_ns.is_finite());
    }
}
