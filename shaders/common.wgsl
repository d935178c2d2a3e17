// Kernels and helpers shared by both curves. A curve's module is its generated field file, this
// file and the curve file (secp256k1.wgsl or ed25519.wgsl), which defines `Pt`, `pt_add`,
// `pt_identity`, `pt_neg`, the scratch layout, `load_term`, `term_status`, `table_entry`,
// `table_point` and `store_result`.
//
// Every kernel calls `pt_add` and `fe_mul` from as few places as it can: drivers inline every
// call, and one call site per operation keeps each compiled kernel small (lavapipe compiles
// one in a few seconds).

// `pts`: lincomb points (PT_WORDS each), mul_base scalars (8 words each) or, for Ed25519
// decompression, encodings (8 words each).
@group(0) @binding(0) var<storage, read> pts: array<u32>;
// Recoded lincomb scalars (DIGIT_WORDS each, see `digit`).
@group(0) @binding(1) var<storage, read> digits: array<u32>;
// Per lincomb chunk: first term, term count.
@group(0) @binding(2) var<storage, read> spans: array<u32>;
@group(0) @binding(3) var<storage, read_write> outp: array<u32>;
// Per lincomb chunk: the multiples 1..8 of each of its terms' points.
@group(0) @binding(4) var<storage, read_write> scratch: array<u32>;
// x: items in this dispatch; y: 1, a run-time factor on loop bounds so that compilers keep
// the loops instead of unrolling them.
@group(0) @binding(5) var<uniform> params: vec4<u32>;
// Fixed-base table: entry (w, j) = j * 16^w * B for w <= 64, j < 16 (PT_WORDS each); window 64
// serves the top digit of lincomb's recoded scalars.
@group(0) @binding(6) var<storage, read> table: array<u32>;

const DIGIT_WORDS: u32 = 9u;
// Bit 31 of a recoded scalar's last word: the term's point is the curve's base point. Its
// additions read the fixed-base table into a second accumulator; it needs no scratch table.
const BASE_FLAG: u32 = 0x80000000u;
// Most terms one lincomb invocation handles (the host splits longer jobs).
const MAX_TERMS: u32 = 8u;
const CHUNK_SCRATCH: u32 = MAX_TERMS * 8u * ENTRY_WORDS;

fn fe_small(v: u32) -> Fe {
    var r = Fe();
    r[0] = v;
    return r;
}

fn fe_neg(a: Fe) -> Fe {
    return fe_sub(Fe(), a);
}

// a^e by square-and-multiply over a public exponent, with one multiplication site.
fn fe_pow(a: Fe, e: array<u32, 8>) -> Fe {
    var x = fe_small(1u);
    for (var i = 0u; i < 512u * params.y; i++) {
        let bit = 255u - (i >> 1u);
        var y = x;
        if ((i & 1u) == 1u) {
            if (((e[bit >> 5u] >> (bit & 31u)) & 1u) == 0u) {
                continue;
            }
            y = a;
        }
        x = fe_mul(x, y);
    }
    return x;
}

fn fe_inv(a: Fe) -> Fe {
    return fe_pow(a, INV_EXP);
}

fn pts_fe(o: u32) -> Fe {
    return fe_unpack(array<u32, 10>(pts[o], pts[o + 1u], pts[o + 2u], pts[o + 3u], pts[o + 4u], pts[o + 5u], pts[o + 6u], pts[o + 7u], pts[o + 8u], pts[o + 9u]));
}

fn table_fe(o: u32) -> Fe {
    return fe_unpack(array<u32, 10>(table[o], table[o + 1u], table[o + 2u], table[o + 3u], table[o + 4u], table[o + 5u], table[o + 6u], table[o + 7u], table[o + 8u], table[o + 9u]));
}

fn pts_words(o: u32) -> array<u32, 8> {
    return array<u32, 8>(pts[o], pts[o + 1u], pts[o + 2u], pts[o + 3u], pts[o + 4u], pts[o + 5u], pts[o + 6u], pts[o + 7u]);
}

fn scratch_fe(o: u32) -> Fe {
    return fe_unpack(array<u32, 10>(scratch[o], scratch[o + 1u], scratch[o + 2u], scratch[o + 3u], scratch[o + 4u], scratch[o + 5u], scratch[o + 6u], scratch[o + 7u], scratch[o + 8u], scratch[o + 9u]));
}

fn scratch_store_fe(o: u32, a: Fe) {
    let w = fe_pack(a);
    scratch[o] = w[0];
    scratch[o + 1u] = w[1];
    scratch[o + 2u] = w[2];
    scratch[o + 3u] = w[3];
    scratch[o + 4u] = w[4];
    scratch[o + 5u] = w[5];
    scratch[o + 6u] = w[6];
    scratch[o + 7u] = w[7];
    scratch[o + 8u] = w[8];
    scratch[o + 9u] = w[9];
}

fn store_words(o: u32, w: array<u32, 8>) {
    outp[o] = w[0];
    outp[o + 1u] = w[1];
    outp[o + 2u] = w[2];
    outp[o + 3u] = w[3];
    outp[o + 4u] = w[4];
    outp[o + 5u] = w[5];
    outp[o + 6u] = w[6];
    outp[o + 7u] = w[7];
}

// Ten table words at o, masked by m, or-ed into acc (constant-time selection).
fn table_sel(o: u32, m: u32, acc: array<u32, 10>) -> array<u32, 10> {
    return array<u32, 10>(
        acc[0] | (table[o] & m), acc[1] | (table[o + 1u] & m), acc[2] | (table[o + 2u] & m),
        acc[3] | (table[o + 3u] & m), acc[4] | (table[o + 4u] & m), acc[5] | (table[o + 5u] & m),
        acc[6] | (table[o + 6u] & m), acc[7] | (table[o + 7u] & m), acc[8] | (table[o + 8u] & m),
        acc[9] | (table[o + 9u] & m));
}

// Window w (0..=64) of a recoded scalar: its digit plus 8, in 0..=15 (8 stands for 0). The
// host stores s + 8 * (16^0 + ... + 16^64), whose nibbles are the signed radix-16 digits of s
// in -8..=7, each plus 8.
fn digit(term: u32, w: u32) -> u32 {
    return (digits[term * DIGIT_WORDS + (w >> 3u)] >> ((w & 7u) * 4u)) & 15u;
}

fn is_base(term: u32) -> bool {
    return (digits[term * DIGIT_WORDS + 8u] & BASE_FLAG) != 0u;
}

// Variable-time sum of s_t * P_t over one chunk of at most MAX_TERMS terms: per term a table
// of P, 2P, ..., 8P in scratch, then 65 signed radix-16 windows of 4 doublings and one table
// addition per term (Straus). Base-point terms instead add the fixed-base table's entry
// |d| * 16^w * B into a second accumulator, which needs no doublings, added in at the end.
// Table building, doublings and additions share one `pt_add` (the formulas are complete, so
// doubling is an addition of a point to itself).
@compute @workgroup_size(64)
fn lincomb(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= params.x) {
        return;
    }
    let start = spans[2u * c];
    let count = min(spans[2u * c + 1u], MAX_TERMS);
    let base = c * CHUNK_SCRATCH;
    var status = 0u;
    var any_base = false;
    for (var t = 0u; t < count; t++) {
        status |= term_status(start + t);
        if (is_base(start + t)) {
            any_base = true;
        } else {
            scratch_store(base + t * 8u * ENTRY_WORDS, load_term(start + t));
        }
    }
    let tsteps = 7u * count;
    let per_window = 4u + count;
    let wsteps = 65u * per_window;
    var acc = pt_identity();
    var acc_base = pt_identity();
    for (var s = 0u; s < (tsteps + wsteps + 1u) * params.y; s++) {
        var x = acc;
        var y = acc;
        var dst = 0xffffffffu;
        if (s == tsteps + wsteps) {
            if (!any_base) {
                continue;
            }
            y = acc_base;
        } else if (s < tsteps) {
            let t = s / 7u;
            if (is_base(start + t)) {
                continue;
            }
            let j = s % 7u + 1u;
            x = scratch_load(base + (t * 8u + j - 1u) * ENTRY_WORDS);
            y = scratch_load(base + t * 8u * ENTRY_WORDS);
            dst = base + (t * 8u + j) * ENTRY_WORDS;
        } else {
            let m = s - tsteps;
            let w = 64u - m / per_window;
            let r = m % per_window;
            if (r < 4u) {
                if (w == 64u) {
                    continue;
                }
            } else {
                let t = r - 4u;
                let d = digit(start + t, w);
                if (d == 8u) {
                    continue;
                }
                let mag = select(8u - d, d - 8u, d > 8u);
                if (is_base(start + t)) {
                    x = acc_base;
                    y = table_point(w, mag);
                    dst = 0xfffffffeu;
                } else {
                    y = scratch_load(base + (t * 8u + mag - 1u) * ENTRY_WORDS);
                }
                if (d < 8u) {
                    y = pt_neg(y);
                }
            }
        }
        let sum = pt_add(x, y);
        if (dst == 0xffffffffu) {
            acc = sum;
        } else if (dst == 0xfffffffeu) {
            acc_base = sum;
        } else {
            scratch_store(dst, sum);
        }
    }
    store_result(c * OUT_WORDS, acc, status);
}

// k * B for a secret k at pts[8i..8i + 8] (little-endian words). Constant time: 64 complete
// additions of a table entry chosen by reading all 16 candidates of its window under a mask
// (`table_entry`); no branch or memory index depends on k.
@compute @workgroup_size(64)
fn mul_base(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.x) {
        return;
    }
    var acc = pt_identity();
    for (var w = 0u; w < 64u * params.y; w++) {
        let nib = (pts[i * 8u + (w >> 3u)] >> ((w & 7u) * 4u)) & 15u;
        acc = pt_add(acc, table_entry(w, nib));
    }
    store_result(i * OUT_WORDS, acc, 0u);
}
