//! Adapter discovery without opening a device or building pipelines.

/// Name and device type of every Vulkan adapter on this host.
fn enumerate() -> Vec<wgpu::AdapterInfo> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::VULKAN;
    let instance = wgpu::Instance::new(desc);
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::VULKAN))
        .into_iter()
        .map(|a| a.get_info())
        .collect()
}

/// The name of the first hardware (non-CPU) Vulkan adapter on this host, or `None` when
/// there is none. Software rasterizers such as Mesa's lavapipe report the CPU device type and
/// are skipped: they run on the same cores as the CPU backends, so `--backend auto` gains
/// nothing from them (an explicit `--backend gpu` still uses them).
pub fn hardware_adapter() -> Option<String> {
    enumerate()
        .into_iter()
        .find(|i| i.device_type != wgpu::DeviceType::Cpu)
        .map(|i| i.name)
}

/// The names of every Vulkan adapter on this host, hardware or software.
pub fn adapters() -> Vec<String> {
    enumerate().into_iter().map(|i| i.name).collect()
}
