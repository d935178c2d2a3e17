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
