// secp256k1 points for the kernels of common.wgsl (module: field_secp256k1.wgsl, common.wgsl,
// this file).
//
// Points are projective (X : Y : Z) and added with the complete formula of Renes, Costello and
// Batina, "Complete addition formulas for prime order elliptic curves" (EUROCRYPT 2016),
// Algorithm 7 (a = 0, b3 = 3 * 7), which also doubles and handles the identity.

// A point in `pts` or `table`: x (10 words), y (10 words), identity flag.
const PT_WORDS: u32 = 21u;
// A projective point in `scratch`: X, Y, Z (10 words each).
const ENTRY_WORDS: u32 = 30u;
// Output: x (8 words), y (8 words), identity flag.
const OUT_WORDS: u32 = 17u;

struct Pt {
    x: Fe,
    y: Fe,
    z: Fe,
}

fn pt_identity() -> Pt {
    return Pt(Fe(), fe_small(1u), Fe());
}

// RCB 2016, Algorithm 7: 12 multiplications and 2 by b3.
fn pt_add(p: Pt, q: Pt) -> Pt {
    var t0 = fe_mul(p.x, q.x);
    var t1 = fe_mul(p.y, q.y);
    var t2 = fe_mul(p.z, q.z);
    var t3 = fe_mul(fe_add(p.x, p.y), fe_add(q.x, q.y));
    var t4 = fe_add(t0, t1);
    t3 = fe_sub(t3, t4);
    t4 = fe_mul(fe_add(p.y, p.z), fe_add(q.y, q.z));
    var x3 = fe_add(t1, t2);
    t4 = fe_sub(t4, x3);
    x3 = fe_mul(fe_add(p.x, p.z), fe_add(q.x, q.z));
    var y3 = fe_add(t0, t2);
    y3 = fe_sub(x3, y3);
    x3 = fe_add(t0, t0);
    t0 = fe_add(x3, t0);
    t2 = fe_mul_small(t2, 21u);
    var z3 = fe_add(t1, t2);
    t1 = fe_sub(t1, t2);
    y3 = fe_mul_small(y3, 21u);
    x3 = fe_mul(t4, y3);
    t2 = fe_mul(t3, t1);
    x3 = fe_sub(t2, x3);
    y3 = fe_mul(y3, t0);
    t1 = fe_mul(t1, z3);
    y3 = fe_add(t1, y3);
    t0 = fe_mul(t0, t3);
    z3 = fe_mul(z3, t4);
    z3 = fe_add(z3, t0);
    return Pt(x3, y3, z3);
}

fn scratch_load(o: u32) -> Pt {
    return Pt(scratch_fe(o), scratch_fe(o + 10u), scratch_fe(o + 20u));
}

fn scratch_store(o: u32, p: Pt) {
    scratch_store_fe(o, p.x);
    scratch_store_fe(o + 10u, p.y);
    scratch_store_fe(o + 20u, p.z);
}

// Writes the affine form of p (x, y, identity flag) at outp[o..o + OUT_WORDS].
fn store_result(o: u32, p: Pt, status: u32) {
    let zi = fe_inv(p.z);
    store_words(o, fe_to_words(fe_canon(fe_mul(p.x, zi))));
    store_words(o + 8u, fe_to_words(fe_canon(fe_mul(p.y, zi))));
    outp[o + 16u] = select(0u, 1u, fe_or(fe_canon(p.z)) == 0u);
}

fn pt_neg(p: Pt) -> Pt {
    return Pt(p.x, fe_neg(p.y), p.z);
}

fn load_term(term: u32) -> Pt {
    let o = term * PT_WORDS;
    if (pts[o + 20u] != 0u) {
        return pt_identity();
    }
    return Pt(pts_fe(o), pts_fe(o + 10u), fe_small(1u));
}

fn term_status(term: u32) -> u32 {
    return 0u;
}

// Entry `nib` of window w, read in constant time (all 16 entries of the window under masks).
fn table_entry(w: u32, nib: u32) -> Pt {
    var sx = array<u32, 10>();
    var sy = array<u32, 10>();
    var inf = 0u;
    for (var j = 0u; j < 16u; j++) {
        let m = 0u - u32(j == nib);
        let o = (w * 16u + j) * PT_WORDS;
        sx = table_sel(o, m, sx);
        sy = table_sel(o + 10u, m, sy);
        inf |= table[o + 20u] & m;
    }
    return Pt(fe_unpack(sx), fe_unpack(sy), fe_small(1u - inf));
}

// Entry (w, j) of the fixed-base table (public index: lincomb's base-point terms).
fn table_point(w: u32, j: u32) -> Pt {
    let o = (w * 16u + j) * PT_WORDS;
    if (table[o + 20u] != 0u) {
        return pt_identity();
    }
    return Pt(table_fe(o), table_fe(o + 10u), fe_small(1u));
}
