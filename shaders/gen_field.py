#!/usr/bin/env python3
"""Generates the straight-line field arithmetic of the Tessera compute shaders.

    python3 shaders/gen_field.py          # rewrite shaders/field_*.wgsl
    python3 shaders/gen_field.py --check  # exit 1 if a checked-in file differs

Two variants per curve:

- `field_<curve>.wgsl` (u32 only): 20 limbs of 13 bits in u32 lanes (radix 2^13, 260 bits).
  13 bits is the widest radix whose 20 x 20 schoolbook product sums every column in a u32
  without carrying or splitting products.
- `field_<curve>_u64.wgsl` (needs SHADER_INT64): 10 limbs of 26 bits in u32 lanes, products
  and column sums in u64: a quarter of the multiplications.

Every function is straight-line code with constant limb indices: no loops and no dynamically
indexed private arrays, which LLVM-based drivers (lavapipe) compile in seconds and which run
the same instruction sequence for every input (constant time). The generator tracks an upper
bound for every intermediate value, types each one u32 or u64 by that bound, and refuses to
emit code that could overflow.

Invariant of an `Fe` between functions ("loose"): every limb <= LOOSE. Values are congruent
to the field element but not reduced below p; `fe_canon` gives the unique representative
(limbs below 2^BITS). An `Fe` is stored in 10 u32 words (`fe_pack`/`fe_unpack`): two 13-bit
limbs per word, or one 26-bit limb per word.
"""

import sys
from pathlib import Path

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1

VARIANTS = {
    "": {"bits": 13, "n": 20, "loose": 14000, "wide": False},
    "_u64": {"bits": 26, "n": 10, "loose": 1 << 30, "wide": True},
}

BITS = MASK = N = LOOSE = 0
WIDE = False


def configure(v):
    """Selects a variant (module-level parameters used by every emitter function)."""
    global BITS, MASK, N, LOOSE, WIDE
    BITS, N, LOOSE, WIDE = v["bits"], v["n"], v["loose"], v["wide"]
    MASK = (1 << BITS) - 1
    acc = U64 if WIDE else U32
    assert N * LOOSE * LOOSE <= acc, "column sums of a product must fit the accumulator"
    assert 2 * LOOSE <= U32, "sums of two loose limbs must fit a u32"
    assert BITS * N >= 256


CURVES = {
    "secp256k1": {
        "p": 2**256 - 2**32 - 977,
        "fold_bits": 256,
        "desc": "p = 2^256 - 2^32 - 977",
    },
    "ed25519": {
        "p": 2**255 - 19,
        "fold_bits": 255,
        "desc": "p = 2^255 - 19",
    },
}


def limbs_of(v, n=None):
    out = []
    while v:
        out.append(v & MASK)
        v >>= BITS
    if n is not None:
        assert len(out) <= n
        out += [0] * (n - len(out))
    return out


def wide(t):
    return t[1] > U32


def as64(t):
    """The term as a u64 expression."""
    return t[0] if wide(t) else f"u64({t[0]})"


class Emitter:
    """Emits `let` bindings with unique names; each value is (expression, upper bound) and is
    a u64 exactly when its bound exceeds u32."""

    def __init__(self):
        self.lines = []
        self.count = 0

    def let(self, expr, bound):
        assert bound <= (U64 if WIDE else U32), f"overflow: {expr} may reach {bound}"
        self.count += 1
        name = f"v{self.count}"
        self.lines.append(f"    let {name} = {expr};")
        return (name, bound)

    def sum(self, terms):
        """terms: list of (expr, bound) -> (name, bound), or a zero constant."""
        terms = [t for t in terms if t[1] > 0]
        if not terms:
            return ("0u", 0)
        if len(terms) == 1:
            return terms[0]
        bound = sum(t[1] for t in terms)
        if bound > U32:
            return self.let(" + ".join(as64(t) for t in terms), bound)
        return self.let(" + ".join(t[0] for t in terms), bound)

    def low(self, v):
        """v mod 2^BITS as a u32."""
        if wide(v):
            return self.let(f"u32({v[0]}) & {MASK}u", MASK)
        return self.let(f"{v[0]} & {MASK}u", MASK)

    def high(self, v):
        """v >> BITS, a u32 when its bound allows."""
        b = v[1] >> BITS
        if wide(v) and b <= U32:
            return self.let(f"u32({v[0]} >> {BITS}u)", b)
        return self.let(f"{v[0]} >> {BITS}u", b)


def product(x, y):
    """x * y for two u32 terms."""
    b = x[1] * y[1]
    if b > U32:
        return (f"u64({x[0]}) * u64({y[0]})", b)
    return (f"{x[0]} * {y[0]}", b)


def scaled(term, k):
    """term * k for a constant k."""
    if k == 0:
        return ("0u", 0)
    if k == 1:
        return term
    b = term[1] * k
    if k & (k - 1) == 0:
        return (f"(({as64(term) if b > U32 else term[0]}) << {k.bit_length() - 1}u)", b)
    if b > U32:
        return (f"({as64(term)} * u64({k}u))", b)
    return (f"({term[0]} * {k}u)", b)


def carry(em, limbs, stop=None):
    """Carry pass: each limb below 2^BITS (the carry out of the last one is appended when it
    can be non-zero). With `stop`, ends early once every remaining limb's bound is <= stop."""
    out = []
    c = ("0u", 0)
    for i, l in enumerate(limbs):
        v = em.sum([l, c])
        if stop is not None and v[1] <= stop and all(x[1] <= stop for x in limbs[i + 1:]):
            out.extend([v] + list(limbs[i + 1:]))
            return out
        if v[1] <= MASK:
            out.append(v)
            c = ("0u", 0)
            continue
        out.append(em.low(v))
        c = em.high(v)
    if c[1] > 0:
        out.append(c)
    return out


def fold(em, limbs, r_limbs):
    """Replaces limbs at and above N by their value times R = 2^(BITS * N) mod p (as limbs)."""
    low = [[l] for l in limbs[:N]]
    for j, h in enumerate(limbs[N:]):
        for b, rb in enumerate(r_limbs):
            while len(low) <= j + b:
                low.append([])
            low[j + b].append(scaled(h, rb))
    return [em.sum(col) for col in low]


def reduce_loose(em, limbs, r_limbs):
    """Any limb vector -> N loose limbs."""
    while True:
        limbs = carry(em, limbs, stop=LOOSE)
        if len(limbs) <= N and all(l[1] <= LOOSE for l in limbs):
            return limbs + [("0u", 0)] * (N - len(limbs))
        if len(limbs) > N:
            limbs = fold(em, limbs, r_limbs)


def fe_expr(limbs):
    return "Fe(" + ", ".join(l[0] for l in limbs) + ")"


def inputs(name):
    return [(f"{name}[{i}]", LOOSE) for i in range(N)]


def words8(v):
    return "array<u32, 8>(" + ", ".join(f"0x{(v >> (32 * i)) & 0xFFFFFFFF:08x}u" for i in range(8)) + ")"


def gen_curve(curve):
    p = CURVES[curve]["p"]
    r_limbs = limbs_of((1 << (BITS * N)) % p)
    out = []

    def function(sig, body_fn):
        em = Emitter()
        ret = body_fn(em)
        out.append(f"fn {sig} {{")
        out.extend(em.lines)
        out.append(f"    return {ret};")
        out.append("}")
        out.append("")

    # Sum and difference.
    function(
        "fe_add(a: Fe, b: Fe) -> Fe",
        lambda em: fe_expr(
            reduce_loose(
                em,
                [em.let(f"a[{i}] + b[{i}]", 2 * LOOSE) for i in range(N)],
                r_limbs,
            )
        ),
    )

    # a - b = a + D - b for a multiple D of p whose limbs are each >= LOOSE.
    m = 1
    while True:
        d = limbs_of(m * p, N + 1)
        d[N - 1] += d[N] << BITS
        d = d[:N]
        for i in range(N - 1):
            k = max(0, -(-(LOOSE - d[i]) // (1 << BITS)))
            d[i] += k << BITS
            d[i + 1] -= k
        if d[N - 1] >= LOOSE:
            break
        m *= 2
    assert sum(x << (BITS * i) for i, x in enumerate(d)) == m * p
    sub_d = d

    def sub_limb(em, i):
        assert LOOSE + sub_d[i] <= U32
        return em.let(f"a[{i}] + {sub_d[i]}u - b[{i}]", LOOSE + sub_d[i])

    function(
        "fe_sub(a: Fe, b: Fe) -> Fe",
        lambda em: fe_expr(
            reduce_loose(
                em,
                [sub_limb(em, i) for i in range(N)],
                r_limbs,
            )
        ),
    )

    def mul_body(em, sq):
        a, b = inputs("a"), inputs("b")
        cols = [[] for _ in range(2 * N - 1)]
        if sq:
            for i in range(N):
                cols[2 * i].append(product(a[i], a[i]))
                for j in range(i + 1, N):
                    cols[i + j].append(scaled(product(a[i], a[j]), 2))
        else:
            for i in range(N):
                for j in range(N):
                    cols[i + j].append(product(a[i], b[j]))
        limbs = [em.sum(c) for c in cols]
        return fe_expr(reduce_loose(em, limbs, r_limbs))

    function("fe_mul(a: Fe, b: Fe) -> Fe", lambda em: mul_body(em, False))
    function("fe_sqr(a: Fe) -> Fe", lambda em: mul_body(em, True))

    # a * k for a constant k <= 1024.
    function(
        "fe_mul_small(a: Fe, k: u32) -> Fe",
        lambda em: fe_expr(
            reduce_loose(
                em,
                [em.let(*product((f"a[{i}]", LOOSE), ("k", 1024))) for i in range(N)],
                r_limbs,
            )
        ),
    )

    # Canonical form: limbs below 2^BITS and value below p.
    fold_bits = CURVES[curve]["fold_bits"]
    top_limb, top_shift = divmod(fold_bits, BITS)
    c_limbs = limbs_of((1 << fold_bits) % p)

    def canon_body(em):
        # Strict carry; fold everything at and above 2^fold_bits twice, then one conditional
        # subtraction of p (the value is then below 2^fold_bits < 2p).
        limbs = carry(em, inputs("a"))
        for _ in range(2):
            hi_parts = []
            if len(limbs) > N:
                hi_parts.append(scaled(limbs[N], 1 << (BITS * N - fold_bits)))
            hi_parts.append((f"({limbs[top_limb][0]} >> {top_shift}u)", limbs[top_limb][1] >> top_shift))
            t = em.sum(hi_parts)
            limbs = limbs[:N]
            limbs[top_limb] = em.let(f"{limbs[top_limb][0]} & {(1 << top_shift) - 1}u", (1 << top_shift) - 1)
            cols = [[l] for l in limbs]
            for b, cb in enumerate(c_limbs):
                cols[b].append(scaled(t, cb))
            limbs = carry(em, [em.sum(c) for c in cols])
            assert len(limbs) == N
        # value < 2^fold_bits: subtract p when value >= p (borrow chain, masked select).
        p_limbs = limbs_of(p, N)
        diff = []
        borrow = ("0u", 0)
        for i in range(N):
            v = em.let(f"{limbs[i][0]} + {1 << BITS}u - {p_limbs[i]}u - {borrow[0]}", (1 << (BITS + 1)))
            diff.append(em.let(f"{v[0]} & {MASK}u", MASK))
            borrow = em.let(f"1u - ({v[0]} >> {BITS}u)", 1)
        keep = em.let(f"0u - {borrow[0]}", U32)
        res = [em.let(f"({limbs[i][0]} & {keep[0]}) | ({diff[i][0]} & ~{keep[0]})", MASK) for i in range(N)]
        return fe_expr(res)

    function("fe_canon(a: Fe) -> Fe", canon_body)

    # Conversions: 10 storage words (two loose 13-bit limbs below 2^16 per word, or one
    # loose 26-bit limb per word), and 8 little-endian 32-bit words (canonical values only).
    if N == 20:
        assert LOOSE < 1 << 16
        packed = [f"a[{2 * i}] | (a[{2 * i + 1}] << 16u)" for i in range(10)]
        unpacked = [f"w[{i // 2}] & 0xffffu" if i % 2 == 0 else f"w[{i // 2}] >> 16u" for i in range(N)]
    else:
        assert N == 10
        packed = [f"a[{i}]" for i in range(N)]
        unpacked = [f"w[{i}]" for i in range(N)]
    out.append("fn fe_pack(a: Fe) -> array<u32, 10> {")
    out.append("    return array<u32, 10>(" + ", ".join(packed) + ");")
    out.append("}")
    out.append("")
    out.append("fn fe_unpack(w: array<u32, 10>) -> Fe {")
    out.append("    return Fe(" + ", ".join(unpacked) + ");")
    out.append("}")
    out.append("")
    parts = []
    for i in range(N):
        lo = BITS * i
        terms = []
        j, off = divmod(lo, 32)
        if j < 8:
            terms.append(f"(w[{j}] >> {off}u)")
            if off + BITS > 32 and j + 1 < 8:
                terms.append(f"(w[{j + 1}] << {32 - off}u)")
        parts.append(f"({' | '.join(terms)}) & {MASK}u" if terms else "0u")
    out.append("fn fe_from_words(w: array<u32, 8>) -> Fe {")
    out.append("    return Fe(" + ", ".join(parts) + ");")
    out.append("}")
    out.append("")
    words = []
    for j in range(8):
        terms = []
        for i in range(N):
            lo, hi = BITS * i, BITS * i + BITS
            if hi <= 32 * j or lo >= 32 * j + 32:
                continue
            sh = lo - 32 * j
            terms.append(f"(a[{i}] << {sh}u)" if sh >= 0 else f"(a[{i}] >> {-sh}u)")
        words.append(" | ".join(terms))
    out.append("fn fe_to_words(a: Fe) -> array<u32, 8> {")
    out.append("    return array<u32, 8>(" + ", ".join(words) + ");")
    out.append("}")
    out.append("")
    out.append("fn fe_or(a: Fe) -> u32 {")
    out.append("    return " + " | ".join(f"a[{i}]" for i in range(N)) + ";")
    out.append("}")
    out.append("")

    consts = [
        f"// Generated by shaders/gen_field.py; do not edit. Field of {curve}: {CURVES[curve]['desc']}.",
        f"// Radix 2^{BITS}, {N} limbs in u32{', products and column sums in u64' if WIDE else ''}; loose limbs are <= {LOOSE};",
        f"// fe_sub adds {m} * p.",
        "",
        f"alias Fe = array<u32, {N}>;",
        "",
        f"const FE_P = Fe({', '.join(f'{x}u' for x in limbs_of(p, N))});",
        "// p - 2, little-endian words (the inversion exponent).",
        f"const INV_EXP = {words8(p - 2)};",
    ]
    if curve == "ed25519":
        d = (-121665 * pow(121666, p - 2, p)) % p
        sqrt_m1 = pow(2, (p - 1) // 4, p)
        assert sqrt_m1 * sqrt_m1 % p == p - 1
        consts += [
            "// (p - 5) / 8, little-endian words (the square-root exponent, RFC 8032 section 5.1.3).",
            f"const SQRT_EXP = {words8((p - 5) // 8)};",
            "// d = -121665 / 121666, 2d and sqrt(-1) (RFC 8032 section 5.1).",
            f"const FE_D = Fe({', '.join(f'{x}u' for x in limbs_of(d, N))});",
            f"const FE_D2 = Fe({', '.join(f'{x}u' for x in limbs_of(2 * d % p, N))});",
            f"const FE_SQRT_M1 = Fe({', '.join(f'{x}u' for x in limbs_of(sqrt_m1, N))});",
        ]
    consts.append("")
    return "\n".join(consts + out)


def targets():
    here = Path(__file__).resolve().parent
    out = {}
    for suffix, v in VARIANTS.items():
        configure(v)
        for c in CURVES:
            out[here / f"field_{c}{suffix}.wgsl"] = gen_curve(c)
    return out


def main():
    check = "--check" in sys.argv[1:]
    bad = False
    for path, text in targets().items():
        if check:
            if not path.exists() or path.read_text() != text:
                print(f"{path.name} differs from its generator: run python3 shaders/gen_field.py")
                bad = True
        else:
            path.write_text(text)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
