//! The process's GPU context: adapter, device, queue, pipelines, fixed-base tables and the
//! scratch buffer, and the dispatch/readback path with error capture.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use accel_api::AccelError;
use wgpu::util::DeviceExt;

use crate::{BACKEND, FieldImpl, GpuConfig, GpuField, codec, device_err};

/// Invocations per workgroup (`@workgroup_size` in the shaders).
pub(crate) const WORKGROUP: u32 = 64;
/// Most workgroups per dispatch dimension (the WebGPU default limit).
const MAX_GROUPS: u32 = 65_535;
/// Largest scratch buffer the context allocates (per-chunk tables of the lincomb kernels).
const MAX_SCRATCH_BYTES: u64 = 64 << 20;

const COMMON_WGSL: &str = include_str!("../../../shaders/common.wgsl");
const SECP_FIELD_WGSL: &str = include_str!("../../../shaders/field_secp256k1.wgsl");
const SECP_FIELD_U64_WGSL: &str = include_str!("../../../shaders/field_secp256k1_u64.wgsl");
const SECP_WGSL: &str = include_str!("../../../shaders/secp256k1.wgsl");
const ED_FIELD_WGSL: &str = include_str!("../../../shaders/field_ed25519.wgsl");
const ED_FIELD_U64_WGSL: &str = include_str!("../../../shaders/field_ed25519_u64.wgsl");
const ED_WGSL: &str = include_str!("../../../shaders/ed25519.wgsl");

/// Which curve a kernel works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CurveId {
    Secp,
    Ed,
}

impl CurveId {
    /// Scratch words per lincomb chunk (`CHUNK_SCRATCH` in the shaders).
    fn chunk_scratch_words(self) -> u64 {
        let entry = match self {
            CurveId::Secp => 30,
            CurveId::Ed => 40,
        };
        (codec::CHUNK_TERMS * 8 * entry) as u64
    }

    pub(crate) fn out_words(self) -> usize {
        match self {
            CurveId::Secp => codec::SECP_OUT_WORDS,
            CurveId::Ed => codec::ED_OUT_WORDS,
        }
    }
}

/// One curve's pipelines and its fixed-base table in GPU memory.
struct CurveKernels {
    lincomb: wgpu::ComputePipeline,
    mul_base: wgpu::ComputePipeline,
    table: wgpu::Buffer,
}

/// Adapter, device, queue and both curves' kernels.
pub(crate) struct Context {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    field: FieldImpl,
    secp: CurveKernels,
    ed: CurveKernels,
    decompress: wgpu::ComputePipeline,
    lost: Arc<AtomicBool>,
    uncaptured: Arc<AtomicBool>,
    /// Held for a whole batch (record, submit, wait, read back): each batch's error scopes
    /// then see only its own work, and the scratch buffer has one user at a time.
    scratch: Mutex<Option<wgpu::Buffer>>,
}

fn unavailable(reason: impl Into<String>) -> AccelError {
    AccelError::Unavailable {
        backend: BACKEND,
        reason: reason.into(),
    }
}

/// The shaders' uniform: item count, and 1 (a run-time factor on loop bounds, see
/// `common.wgsl`).
fn params_bytes(count: u32) -> Vec<u8> {
    [count, 1, 0, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

struct Scopes {
    oom: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
    internal: wgpu::ErrorScopeGuard,
}

impl Scopes {
    fn push(device: &wgpu::Device) -> Self {
        Self {
            oom: device.push_error_scope(wgpu::ErrorFilter::OutOfMemory),
            validation: device.push_error_scope(wgpu::ErrorFilter::Validation),
            internal: device.push_error_scope(wgpu::ErrorFilter::Internal),
        }
    }

    /// Pops the scopes (innermost first) and returns the first error any caught.
    fn pop(self) -> Option<wgpu::Error> {
        let internal = pollster::block_on(self.internal.pop());
        let validation = pollster::block_on(self.validation.pop());
        let oom = pollster::block_on(self.oom.pop());
        internal.or(validation).or(oom)
    }
}

/// One batch being recorded: its command encoder and the buffers to read back.
struct Batch<'a> {
    ctx: &'a Context,
    enc: wgpu::CommandEncoder,
    readbacks: Vec<wgpu::Buffer>,
    wipe: Vec<wgpu::Buffer>,
    inject: bool,
}

impl Batch<'_> {
    fn storage(&self, label: &str, words: &[u32]) -> wgpu::Buffer {
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        if bytes.is_empty() {
            bytes.extend([0u8; 4]);
        }
        let buf = self
            .ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            });
        zeroize::Zeroize::zeroize(&mut bytes);
        buf
    }

    /// An output buffer of `words` words. An injected failure creates it without storage
    /// usage: binding it is then a genuine validation error, caught like any device error.
    fn output(&self, words: usize, read_back: bool) -> wgpu::Buffer {
        let mut usage = wgpu::BufferUsages::COPY_SRC;
        if !(self.inject && read_back) {
            usage |= wgpu::BufferUsages::STORAGE;
        }
        self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("out"),
            size: (words.max(1) * 4) as u64,
            usage,
            mapped_at_creation: false,
        })
    }

    fn pass(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        entries: &[(u32, &wgpu::Buffer)],
        count: u32,
    ) {
        let params = self
            .ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: &params_bytes(count),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let mut list: Vec<wgpu::BindGroupEntry> = entries
            .iter()
            .map(|&(binding, buf)| wgpu::BindGroupEntry {
                binding,
                resource: buf.as_entire_binding(),
            })
            .collect();
        list.push(wgpu::BindGroupEntry {
            binding: 5,
            resource: params.as_entire_binding(),
        });
        let bind = self
            .ctx
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.get_bind_group_layout(0),
                entries: &list,
            });
        let mut pass = self
            .enc
            .begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(count.div_ceil(WORKGROUP), 1, 1);
    }

    /// Copies `out` to a mappable buffer read back by `finish`, in call order.
    fn read_back(&mut self, out: &wgpu::Buffer) {
        let staging = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: out.size(),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.enc
            .copy_buffer_to_buffer(out, 0, &staging, 0, out.size());
        self.readbacks.push(staging);
    }
}

impl Context {
    pub(crate) fn new(cfg: &GpuConfig) -> Result<Self, AccelError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::VULKAN;
        let instance = wgpu::Instance::new(desc);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        }))
        .map_err(|e| unavailable(format!("no Vulkan adapter found ({e})")))?;
        let info = adapter.get_info();
        let int64 = adapter.features().contains(wgpu::Features::SHADER_INT64);
        let field = match cfg.field {
            GpuField::U32 => FieldImpl::U32,
            GpuField::U64 if int64 => FieldImpl::U64,
            GpuField::U64 => {
                return Err(unavailable(format!(
                    "accel.gpu_field = u64 needs SHADER_INT64, which {} does not offer",
                    info.name
                )));
            }
            GpuField::Auto if int64 => FieldImpl::U64,
            GpuField::Auto => FieldImpl::U32,
        };
        let required_features = match field {
            FieldImpl::U32 => wgpu::Features::empty(),
            FieldImpl::U64 => wgpu::Features::SHADER_INT64,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("tessera"),
            required_features,
            required_limits: adapter.limits(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| unavailable(format!("cannot open device {}: {e}", info.name)))?;
        let lost = Arc::new(AtomicBool::new(false));
        let lost_cb = Arc::clone(&lost);
        device.set_device_lost_callback(move |_, _| lost_cb.store(true, Ordering::SeqCst));
        let uncaptured = Arc::new(AtomicBool::new(false));
        let uncaptured_cb = Arc::clone(&uncaptured);
        device.on_uncaptured_error(Arc::new(move |_| {
            uncaptured_cb.store(true, Ordering::SeqCst)
        }));

        let scopes = Scopes::push(&device);
        let module = |name: &str, field: &str, curve: &str| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(format!("{field}\n{COMMON_WGSL}\n{curve}").into()),
            })
        };
        let (secp_field, ed_field) = match field {
            FieldImpl::U32 => (SECP_FIELD_WGSL, ED_FIELD_WGSL),
            FieldImpl::U64 => (SECP_FIELD_U64_WGSL, ED_FIELD_U64_WGSL),
        };
        let secp_module = module("secp256k1", secp_field, SECP_WGSL);
        let ed_module = module("ed25519", ed_field, ED_WGSL);
        let pipeline = |module: &wgpu::ShaderModule, entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            })
        };
        let secp_table = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("secp256k1 fixed-base table"),
            contents: &words_to_bytes(&codec::secp_table(field)),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let ed_table = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("ed25519 fixed-base table"),
            size: (codec::TABLE_ENTRIES * codec::ED_PT_WORDS * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let ctx = Self {
            secp: CurveKernels {
                lincomb: pipeline(&secp_module, "lincomb"),
                mul_base: pipeline(&secp_module, "mul_base"),
                table: secp_table,
            },
            ed: CurveKernels {
                lincomb: pipeline(&ed_module, "lincomb"),
                mul_base: pipeline(&ed_module, "mul_base"),
                table: ed_table,
            },
            decompress: pipeline(&ed_module, "decompress"),
            device,
            queue,
            info,
            field,
            lost,
            uncaptured,
            scratch: Mutex::new(None),
        };
        if let Some(e) = scopes.pop() {
            return Err(unavailable(format!("shader compilation failed: {e}")));
        }
        ctx.build_ed_table(cfg)
            .map_err(|e| unavailable(format!("building the ed25519 table failed: {e}")))?;
        Ok(ctx)
    }

    /// Decodes the host's encodings of the edwards25519 table entries into the table buffer
    /// and checks that every one decoded.
    fn build_ed_table(&self, cfg: &GpuConfig) -> Result<(), AccelError> {
        let encodings = codec::ed_table_encodings();
        let ed_table = &self.ed.table;
        let words = self.batch(cfg, false, |b| {
            let inp = b.storage("table encodings", &encodings);
            b.pass(
                &self.decompress,
                &[(0, &inp), (3, ed_table)],
                codec::TABLE_ENTRIES as u32,
            );
            b.read_back(ed_table);
            Ok(())
        })?;
        let bad = words
            .chunks_exact(codec::ED_PT_WORDS)
            .filter(|e| e[codec::ED_PT_WORDS - 1] != 0)
            .count();
        if bad != 0 {
            return Err(device_err(format!(
                "{bad} table entries did not decode on the GPU"
            )));
        }
        Ok(())
    }

    /// The field arithmetic the kernels were built with.
    pub(crate) fn field(&self) -> FieldImpl {
        self.field
    }

    /// The stable id of this adapter and kernel variant for [`accel_api::Capabilities`]:
    /// `gpu:<PCI vendor id>:<PCI device id>:<u32|u64>`, ids in lower-case hex of at least four
    /// digits (e.g. `gpu:10de:2684:u64`; Mesa's lavapipe reports vendor `10005`, device `0`).
    pub(crate) fn device_id(&self) -> String {
        let field = match self.field {
            FieldImpl::U32 => "u32",
            FieldImpl::U64 => "u64",
        };
        format!(
            "{BACKEND}:{:04x}:{:04x}:{field}",
            self.info.vendor, self.info.device
        )
    }

    /// "name (API, driver)".
    pub(crate) fn adapter_name(&self) -> String {
        format!(
            "{} ({:?}, {} {})",
            self.info.name, self.info.backend, self.info.driver, self.info.driver_info
        )
    }

    fn check_health(&self) -> Result<(), AccelError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(device_err("GPU device lost"));
        }
        if self.uncaptured.swap(false, Ordering::SeqCst) {
            return Err(device_err("GPU reported an uncaptured error"));
        }
        Ok(())
    }

    /// Records one batch with `record`, submits it, waits and returns the read-back words (all
    /// read-back buffers concatenated in order). Buffers registered in `wipe` are cleared on
    /// the GPU once the batch has read them.
    fn batch(
        &self,
        cfg: &GpuConfig,
        inject: bool,
        record: impl FnOnce(&mut Batch<'_>) -> Result<(), AccelError>,
    ) -> Result<Vec<u32>, AccelError> {
        self.check_health()?;
        let scopes = Scopes::push(&self.device);
        let mut b = Batch {
            ctx: self,
            enc: self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor::default()),
            readbacks: Vec::new(),
            wipe: Vec::new(),
            inject,
        };
        record(&mut b)?;
        let Batch {
            mut enc,
            readbacks,
            wipe,
            ..
        } = b;
        for buf in &wipe {
            enc.clear_buffer(buf, 0, None);
        }
        let idx = self.queue.submit([enc.finish()]);
        if let Some(e) = scopes.pop() {
            return Err(device_err(format!("GPU error: {e}")));
        }
        let (tx, rx) = mpsc::channel();
        for b in &readbacks {
            let tx = tx.clone();
            b.slice(..)
                .map_async(wgpu::MapMode::Read, move |r| drop(tx.send(r)));
        }
        drop(tx);
        self.wait(idx, cfg.timeout)?;
        for _ in 0..readbacks.len() {
            match rx.recv_timeout(cfg.timeout) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(device_err(format!("readback failed: {e}"))),
                Err(_) => return Err(device_err("readback timed out")),
            }
        }
        let mut out = Vec::new();
        for b in &readbacks {
            let data = b
                .slice(..)
                .get_mapped_range()
                .map_err(|e| device_err(format!("readback mapping failed: {e}")))?;
            out.extend(
                data.chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            drop(data);
            b.unmap();
        }
        self.check_health()?;
        Ok(out)
    }

    fn wait(&self, idx: wgpu::SubmissionIndex, timeout: Duration) -> Result<(), AccelError> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(idx),
                timeout: Some(timeout),
            })
            .map(|_| ())
            .map_err(|e| device_err(format!("waiting for the GPU failed: {e}")))
    }

    /// Most lincomb chunks one dispatch may carry: the configured limit, the scratch budget
    /// and the device's storage-binding limit.
    fn chunks_per_dispatch(&self, curve: CurveId, cfg: &GpuConfig) -> usize {
        let per_chunk = curve.chunk_scratch_words() * 4;
        let limit = self
            .device
            .limits()
            .max_storage_buffer_binding_size
            .min(MAX_SCRATCH_BYTES);
        let by_scratch = (limit / per_chunk).max(1) as usize;
        (cfg.max_items_per_dispatch.clamp(1, MAX_GROUPS * WORKGROUP) as usize).min(by_scratch)
    }

    /// Runs the lincomb kernel over `spans` (first term, term count per chunk, in term order)
    /// of the terms in `points` (secp256k1: packed affine points; edwards25519: encodings,
    /// decoded on the GPU first) and `digits`; returns `curve.out_words()` words per chunk.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn lincomb(
        &self,
        curve: CurveId,
        points: &[u32],
        point_words: usize,
        digits: &[u32],
        spans: &[(u32, u32)],
        inject: bool,
        cfg: &GpuConfig,
    ) -> Result<Vec<u32>, AccelError> {
        let step = self.chunks_per_dispatch(curve, cfg);
        let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let need = (step.min(spans.len()) as u64 * curve.chunk_scratch_words() * 4).max(4);
        if scratch.as_ref().is_none_or(|s| s.size() < need) {
            *scratch = Some(self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("lincomb scratch"),
                size: need,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            }));
        }
        let Some(scratch) = scratch.as_ref() else {
            return Err(device_err("no scratch buffer"));
        };
        let kernels = match curve {
            CurveId::Secp => &self.secp,
            CurveId::Ed => &self.ed,
        };
        self.batch(cfg, inject, |b| {
            for group in spans.chunks(step) {
                let (Some(&(t0, _)), Some(&(last, n))) = (group.first(), group.last()) else {
                    continue;
                };
                let (t0, t1) = (t0 as usize, (last + n) as usize);
                let rebased: Vec<u32> = group
                    .iter()
                    .flat_map(|&(s, c)| [s - t0 as u32, c])
                    .collect();
                let spans_buf = b.storage("spans", &rebased);
                let digits_buf = b.storage(
                    "digits",
                    &digits[t0 * codec::DIGIT_WORDS..t1 * codec::DIGIT_WORDS],
                );
                let inp = b.storage("points", &points[t0 * point_words..t1 * point_words]);
                let decoded;
                let pts = match curve {
                    CurveId::Secp => &inp,
                    CurveId::Ed => {
                        decoded = b.output((t1 - t0) * codec::ED_PT_WORDS, false);
                        b.pass(
                            &self.decompress,
                            &[(0, &inp), (3, &decoded)],
                            (t1 - t0) as u32,
                        );
                        &decoded
                    }
                };
                let out = b.output(group.len() * curve.out_words(), true);
                b.pass(
                    &kernels.lincomb,
                    &[
                        (0, pts),
                        (1, &digits_buf),
                        (2, &spans_buf),
                        (3, &out),
                        (4, scratch),
                        (6, &kernels.table),
                    ],
                    group.len() as u32,
                );
                b.read_back(&out);
            }
            Ok(())
        })
    }

    /// Runs the constant-time fixed-base kernel over `scalars` (8 words each); returns
    /// `curve.out_words()` words per scalar. The scalars' GPU copies are cleared after use.
    pub(crate) fn mul_base(
        &self,
        curve: CurveId,
        scalars: &[u32],
        inject: bool,
        cfg: &GpuConfig,
    ) -> Result<Vec<u32>, AccelError> {
        let step = cfg.max_items_per_dispatch.clamp(1, MAX_GROUPS * WORKGROUP) as usize;
        let kernels = match curve {
            CurveId::Secp => &self.secp,
            CurveId::Ed => &self.ed,
        };
        let _guard = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        self.batch(cfg, inject, |b| {
            for group in scalars.chunks(step * 8) {
                let n = group.len() / 8;
                let inp = b.storage("scalars", group);
                let out = b.output(n * curve.out_words(), true);
                b.pass(
                    &kernels.mul_base,
                    &[(0, &inp), (3, &out), (6, &kernels.table)],
                    n as u32,
                );
                b.read_back(&out);
                b.wipe.push(inp);
            }
            Ok(())
        })
    }
}

fn words_to_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}
