//! The conformance kit on backend-cpu, multi-threaded and single-threaded.

use accel_api::kit;
use backend_cpu::CpuBackend;

#[test]
fn kit_parallel() {
    kit::check_all(&CpuBackend::new());
}

#[test]
fn kit_single_threaded() {
    kit::check_all(&CpuBackend::single_threaded());
}

#[test]
fn device_ids_tell_the_threading_modes_apart() {
    use accel_api::{Accelerator, BackendId};
    let arch = std::env::consts::ARCH;
    let serial = CpuBackend::single_threaded().capabilities();
    assert_eq!(serial.backend, BackendId::Cpu);
    assert_eq!(serial.device_id, format!("cpu:{arch}:serial"));
    let parallel = CpuBackend::new().capabilities();
    assert_eq!(parallel.backend, BackendId::Cpu);
    assert_eq!(
        parallel.device_id,
        format!("cpu:{arch}:rayon-{}", rayon_threads(&parallel.device))
    );
}

/// The thread count in a CPU backend's description ("… on N thread(s)").
fn rayon_threads(device: &str) -> usize {
    device
        .rsplit(" on ")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no thread count in {device:?}"))
}
