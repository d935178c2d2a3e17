// edwards25519 points for the kernels of common.wgsl (module: field_ed25519.wgsl,
// common.wgsl, this file), plus the decompression kernel.
//
// Points are extended twisted Edwards coordinates (X : Y : Z : T), a = -1, added with the
// unified formula of Hisil, Wong, Carter and Dawson, "Twisted Edwards curves revisited"
// (ASIACRYPT 2008), section 3.1 with k = 2d, which is complete on this curve (d is not a
// square): it also doubles and handles the identity and points of small order.

// A point in `pts` or `table` (the output of `decompress`): x, y, t = x * y (10 words each),
// status (0: valid, 1: the encoding did not decode).
const PT_WORDS: u32 = 31u;
// A point in `scratch`: X, Y, Z, T (10 words each).
const ENTRY_WORDS: u32 = 40u;
// Output: affine x and y (8 words each, canonical), status (0: valid, 1: a term did not
// decode).
const OUT_WORDS: u32 = 17u;

struct Pt {
    x: Fe,
    y: Fe,
    z: Fe,
    t: Fe,
}

fn pt_identity() -> Pt {
    return Pt(Fe(), fe_small(1u), fe_small(1u), Fe());
}

fn pt_neg(p: Pt) -> Pt {
    return Pt(fe_neg(p.x), p.y, p.z, fe_neg(p.t));
}

// HWCD 2008, section 3.1 (a = -1, k = 2d): 9 multiplications.
fn pt_add(p: Pt, q: Pt) -> Pt {
    let a = fe_mul(fe_sub(p.y, p.x), fe_sub(q.y, q.x));
    let b = fe_mul(fe_add(p.y, p.x), fe_add(q.y, q.x));
    let c = fe_mul(fe_mul(p.t, FE_D2), q.t);
    let zz = fe_mul(p.z, q.z);
    let d = fe_add(zz, zz);
    let e = fe_sub(b, a);
    let f = fe_sub(d, c);
    let g = fe_add(d, c);
    let h = fe_add(b, a);
    return Pt(fe_mul(e, f), fe_mul(g, h), fe_mul(f, g), fe_mul(e, h));
}

fn scratch_load(o: u32) -> Pt {
    return Pt(scratch_fe(o), scratch_fe(o + 10u), scratch_fe(o + 20u), scratch_fe(o + 30u));
}

fn scratch_store(o: u32, p: Pt) {
    scratch_store_fe(o, p.x);
    scratch_store_fe(o + 10u, p.y);
    scratch_store_fe(o + 20u, p.z);
    scratch_store_fe(o + 30u, p.t);
}

fn load_term(term: u32) -> Pt {
    let o = term * PT_WORDS;
    return Pt(pts_fe(o), pts_fe(o + 10u), fe_small(1u), pts_fe(o + 20u));
}

fn term_status(term: u32) -> u32 {
    return pts[term * PT_WORDS + 30u];
}

// Entry `nib` of window w, read in constant time (all 16 entries of the window under masks).
fn table_entry(w: u32, nib: u32) -> Pt {
    var sx = array<u32, 10>();
    var sy = array<u32, 10>();
    var st = array<u32, 10>();
    for (var j = 0u; j < 16u; j++) {
        let m = 0u - u32(j == nib);
        let o = (w * 16u + j) * PT_WORDS;
        sx = table_sel(o, m, sx);
        sy = table_sel(o + 10u, m, sy);
        st = table_sel(o + 20u, m, st);
    }
    return Pt(fe_unpack(sx), fe_unpack(sy), fe_small(1u), fe_unpack(st));
}

// Entry (w, j) of the fixed-base table (public index: lincomb's base-point terms).
fn table_point(w: u32, j: u32) -> Pt {
    let o = (w * 16u + j) * PT_WORDS;
    return Pt(table_fe(o), table_fe(o + 10u), fe_small(1u), table_fe(o + 20u));
}

// Writes the affine coordinates of p (x, y, canonical) and the status at
// outp[o..o + OUT_WORDS].
fn store_result(o: u32, p: Pt, status: u32) {
    let zi = fe_inv(p.z);
    store_words(o, fe_to_words(fe_canon(fe_mul(p.x, zi))));
    store_words(o + 8u, fe_to_words(fe_canon(fe_mul(p.y, zi))));
    outp[o + 16u] = status;
}

fn outp_store_fe(o: u32, a: Fe) {
    let w = fe_pack(a);
    outp[o] = w[0];
    outp[o + 1u] = w[1];
    outp[o + 2u] = w[2];
    outp[o + 3u] = w[3];
    outp[o + 4u] = w[4];
    outp[o + 5u] = w[5];
    outp[o + 6u] = w[6];
    outp[o + 7u] = w[7];
    outp[o + 8u] = w[8];
    outp[o + 9u] = w[9];
}

fn fe_eq(a: Fe, b: Fe) -> bool {
    return fe_or(fe_canon(fe_sub(a, b))) == 0u;
}

// Decodes the encodings at pts[8i..8i + 8] (RFC 8032 section 5.1.3; variable time, public
// inputs) into PT_WORDS words at outp[i * PT_WORDS].
@compute @workgroup_size(64)
fn decompress(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.x) {
        return;
    }
    var enc = pts_words(i * 8u);
    let sign = enc[7] >> 31u;
    enc[7] &= 0x7fffffffu;
    let y = fe_from_words(enc);
    let yy = fe_mul(y, y);
    let u = fe_sub(yy, fe_small(1u));
    let v = fe_add(fe_mul(FE_D, yy), fe_small(1u));
    let v3 = fe_mul(fe_mul(v, v), v);
    let v7 = fe_mul(fe_mul(v3, v3), v);
    var x = fe_mul(fe_mul(u, v3), fe_pow(fe_mul(u, v7), SQRT_EXP));
    let vxx = fe_mul(v, fe_mul(x, x));
    var bad = 0u;
    if (!fe_eq(vxx, u)) {
        if (fe_eq(vxx, fe_neg(u))) {
            x = fe_mul(x, FE_SQRT_M1);
        } else {
            bad = 1u;
        }
    }
    x = fe_canon(x);
    if (fe_or(x) == 0u && sign == 1u) {
        bad = 1u;
    }
    if ((x[0] & 1u) != sign) {
        x = fe_neg(x);
    }
    let o = i * PT_WORDS;
    outp_store_fe(o, x);
    outp_store_fe(o + 10u, y);
    outp_store_fe(o + 20u, fe_mul(x, y));
    outp[o + 30u] = bad;
}
