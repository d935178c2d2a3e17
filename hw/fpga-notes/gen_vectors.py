#!/usr/bin/env python3
"""Test vectors for the hw/fpga-notes test benches (Python big-int reference).

Field multiplication: random operands and edge values (0, 1, p-1, p-2, p, p+1, values >= p up to
2^256 - 1, which the multipliers accept). Point addition: points k*G built by double-and-add,
given random projective Z, plus edge cases (doubling, P + (-P), identities, small-order
Edwards points); the expected outputs are the exact outputs of the formulas the RTL implements
(HWCD 2008 unified addition with k = 2d; RCB 2016 Alg. 7), and every expected output is also
checked against plain affine addition. The affine reference itself is checked against published
values: the RFC 8032 section 7.1 TEST 1 public key and the SEC 2 / well-known 2G of secp256k1.

Usage: gen_vectors.py OUTDIR [--seed N] [--nmul N] [--nadd N]
Each unit gets OUTDIR/<unit>.hex (one 256-bit hex value per line) and OUTDIR/<unit>.n (count).
"""
import argparse
import hashlib
import os
import random

P25519 = 2**255 - 19
PK256 = 2**256 - 2**32 - 977
ED_D = (-121665 * pow(121666, -1, P25519)) % P25519
ED_K = (2 * ED_D) % P25519
ED_L = 2**252 + 27742317777372353535851937790883648493
K256_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
K256_B3 = 21
K256_G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
          0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)
SQRT_M1 = pow(2, (P25519 - 1) // 4, P25519)


# ---------------------------------------------------------------- edwards25519 (affine ref)
def ed_recover_x(y, sign):
    u = (y * y - 1) % P25519
    v = (ED_D * y * y + 1) % P25519
    x2 = u * pow(v, -1, P25519) % P25519
    x = pow(x2, (P25519 + 3) // 8, P25519)
    if (x * x - x2) % P25519:
        x = x * SQRT_M1 % P25519
    assert (x * x - x2) % P25519 == 0
    if x & 1 != sign:
        x = P25519 - x
    return x


ED_BY = 4 * pow(5, -1, P25519) % P25519
ED_B = (ed_recover_x(ED_BY, 0), ED_BY)
ED_O = (0, 1)


def ed_add_affine(p1, p2):
    (x1, y1), (x2, y2) = p1, p2
    t = ED_D * x1 * x2 * y1 * y2 % P25519
    x3 = (x1 * y2 + y1 * x2) * pow(1 + t, -1, P25519) % P25519
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, -1, P25519) % P25519
    return (x3, y3)


def ed_mul(k, pt):
    acc = ED_O
    for bit in bin(k)[2:] if k else "0":
        acc = ed_add_affine(acc, acc)
        if bit == "1":
            acc = ed_add_affine(acc, pt)
    return acc


def ed_encode(pt):
    x, y = pt
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def ed_on_curve(pt):
    x, y = pt
    return (-x * x + y * y - 1 - ED_D * x * x * y * y) % P25519 == 0


# HWCD 2008 unified addition, extended coordinates, a = -1, k = 2d ("add-2008-hwcd-3").
def ed_add_hwcd(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    p = P25519
    a = (y1 - x1) * (y2 - x2) % p
    b = (y1 + x1) * (y2 + x2) % p
    c = t1 * ED_K % p * t2 % p
    d = 2 * z1 * z2 % p
    e, f, g, h = (b - a) % p, (d - c) % p, (d + c) % p, (b + a) % p
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def ed_to_ext(pt, z):
    x, y = pt
    return (x * z % P25519, y * z % P25519, z, x * y % P25519 * z % P25519)


def ed_from_ext(q):
    x, y, z, t = q
    zi = pow(z, -1, P25519)
    assert (x * y - t * z) % P25519 == 0
    return (x * zi % P25519, y * zi % P25519)


# ---------------------------------------------------------------- secp256k1 (affine ref)
def k_add_affine(p1, p2):
    p = PK256
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % p == 0:
        return None
    if p1 == p2:
        lam = 3 * x1 * x1 * pow(2 * y1, -1, p) % p
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, p) % p
    x3 = (lam * lam - x1 - x2) % p
    return (x3, (lam * (x1 - x3) - y1) % p)


def k_mul(k, pt):
    acc = None
    for bit in bin(k)[2:] if k else "0":
        acc = k_add_affine(acc, acc)
        if bit == "1":
            acc = k_add_affine(acc, pt)
    return acc


# RCB 2016 Algorithm 7 (complete projective addition, a = 0, b3 = 3b = 21), step by step.
def k_add_rcb(p1, p2):
    p = PK256
    X1, Y1, Z1 = p1
    X2, Y2, Z2 = p2
    t0 = X1 * X2 % p; t1 = Y1 * Y2 % p; t2 = Z1 * Z2 % p
    t3 = (X1 + Y1) % p; t4 = (X2 + Y2) % p; t3 = t3 * t4 % p
    t4 = (t0 + t1) % p; t3 = (t3 - t4) % p; t4 = (Y1 + Z1) % p
    X3 = (Y2 + Z2) % p; t4 = t4 * X3 % p; X3 = (t1 + t2) % p
    t4 = (t4 - X3) % p; X3 = (X1 + Z1) % p; Y3 = (X2 + Z2) % p
    X3 = X3 * Y3 % p; Y3 = (t0 + t2) % p; Y3 = (X3 - Y3) % p
    X3 = (t0 + t0) % p; t0 = (X3 + t0) % p; t2 = K256_B3 * t2 % p
    Z3 = (t1 + t2) % p; t1 = (t1 - t2) % p; Y3 = K256_B3 * Y3 % p
    X3 = t4 * Y3 % p; t2 = t3 * t1 % p; X3 = (t2 - X3) % p
    Y3 = Y3 * t0 % p; t1 = t1 * Z3 % p; Y3 = (t1 + Y3) % p
    t0 = t0 * t3 % p; Z3 = Z3 * t4 % p; Z3 = (Z3 + t0) % p
    return (X3, Y3, Z3)


def k_to_proj(pt, z):
    if pt is None:
        return (0, z, 0)
    return (pt[0] * z % PK256, pt[1] * z % PK256, z)


def k_from_proj(q):
    x, y, z = q
    if z == 0:
        assert x == 0 and y != 0
        return None
    zi = pow(z, -1, PK256)
    return (x * zi % PK256, y * zi % PK256)


# ---------------------------------------------------------------- published anchors
def self_check():
    # RFC 8032 section 7.1, TEST 1: secret key -> public key.
    sk = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    h = hashlib.sha512(sk).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    pub = ed_encode(ed_mul(a, ED_B))
    assert pub.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pub.hex()
    assert ed_mul(ED_L, ED_B) == ED_O
    # secp256k1: 2G (well-known value, e.g. SEC 2 test data / any secp256k1 library) and n*G = O.
    g2 = k_mul(2, K256_G)
    assert g2 == (0xC6047F9441ED7D6D3045406E95C07CD85C778E4B8CEF3CA7ABAC09B95C709EE5,
                  0x1AE168FEA63DC339A3C58419466CEAEEF7F632653266D0E1236431A950CFE52A), hex(g2[0])
    assert k_mul(K256_N, K256_G) is None


def field_vectors(p, rng, n_random):
    top = 2**256 - 1
    edges = [0, 1, 2, p - 1, p - 2, p, p + 1, top, top - 1, 2**255 - 1, 2**255, p // 2]
    pairs = [(x, y) for x in edges for y in edges]
    pairs += [(rng.getrandbits(256), rng.getrandbits(256)) for _ in range(n_random)]
    pairs += [(rng.randrange(p), rng.randrange(p)) for _ in range(n_random // 4)]
    return [(x, y, x * y % p) for x, y in pairs]


def ed_vectors(rng, n):
    p = P25519
    pts = [ed_mul(rng.randrange(1, ED_L), ED_B) for _ in range(max(4, n // 8))]
    small = [ED_O, (0, p - 1), (SQRT_M1, 0), (p - SQRT_M1, 0)]  # orders 1, 2, 4, 4
    for s in small:
        assert ed_on_curve(s)
    cases = []
    for _ in range(n):
        kind = rng.randrange(8)
        a = rng.choice(pts)
        if kind == 0:
            b = a                                   # doubling
        elif kind == 1:
            b = ((p - a[0]) % p, a[1])              # P + (-P)
        elif kind == 2:
            b = rng.choice(small)                   # small-order / identity
        elif kind == 3:
            a, b = rng.choice(small), rng.choice(small)
        else:
            b = rng.choice(pts)
        cases.append((a, b))
    out = []
    for a, b in cases:
        q1 = ed_to_ext(a, rng.randrange(1, p))
        q2 = ed_to_ext(b, rng.randrange(1, p))
        r = ed_add_hwcd(q1, q2)
        assert ed_from_ext(r) == ed_add_affine(a, b)
        out.append(q1 + q2 + r)
    return out


def k_vectors(rng, n):
    p = PK256
    pts = [k_mul(rng.randrange(1, K256_N), K256_G) for _ in range(max(4, n // 8))]
    cases = []
    for _ in range(n):
        kind = rng.randrange(8)
        a = rng.choice(pts)
        if kind == 0:
            b = a
        elif kind == 1:
            b = (a[0], (p - a[1]) % p)
        elif kind == 2:
            b = None
        elif kind == 3:
            a, b = None, rng.choice([None, a])
        else:
            b = rng.choice(pts)
        cases.append((a, b))
    out = []
    for a, b in cases:
        q1 = k_to_proj(a, rng.randrange(1, p))
        q2 = k_to_proj(b, rng.randrange(1, p))
        r = k_add_rcb(q1, q2)
        assert k_from_proj(r) == k_add_affine(a, b)
        out.append(q1 + q2 + r)
    return out


def write(outdir, unit, rows):
    with open(os.path.join(outdir, unit + ".hex"), "w") as f:
        for row in rows:
            for v in row:
                f.write("%064x\n" % v)
    with open(os.path.join(outdir, unit + ".n"), "w") as f:
        f.write("%d\n" % len(rows))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=25519)
    ap.add_argument("--nmul", type=int, default=2000)
    ap.add_argument("--nadd", type=int, default=256)
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    self_check()
    rng = random.Random(args.seed)
    write(args.outdir, "fmul_p25519", field_vectors(P25519, rng, args.nmul))
    write(args.outdir, "fmul_k256", field_vectors(PK256, rng, args.nmul))
    write(args.outdir, "ed25519_add", ed_vectors(rng, args.nadd))
    write(args.outdir, "k256_add", k_vectors(rng, args.nadd))


if __name__ == "__main__":
    main()
