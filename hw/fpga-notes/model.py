#!/usr/bin/env python3
"""Executable throughput / crossover model for the hw/fpga-notes FPGA backend design.

Prints Markdown tables (the README's numbers come from `python3 hw/fpga-notes/model.py`):
  1. resources per point-adder instance (from resources.md when synth.sh has run, else the
     DSP count of the RTL) and instances per device;
  2. throughput per device = instances x Fmax / (point additions per op), with a
     cycle-level schedule that charges pipeline latency when too few independent ops are in
     flight to fill the adder pipeline;
  3. the card's cost in our `fixed_ns + per_item_ns x items` form (host link + compute) and the
     batch size from which it beats backend-simd and backend-cpu as measured on this machine.
Every input that is an assumption rather than a measurement is marked ASSUMED below.
"""
import json
import math
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))

# ------------------------------------------------------------------ RTL facts (this directory)
DSP_PER_FMUL = 150                     # mul256.v: 10 x 15 DSP48E2 (26x17 unsigned)
UNITS = {
    # name: (field multipliers, pipeline latency in cycles from the RTL, curve)
    "ed25519_add": (9, 32, "ed25519"),
    "k256_add": (12, 29, "secp256k1"),
}

# ------------------------------------------------------------------ devices
# DSP/LUT/FF/BRAM/URAM: AMD Alveo U55C data sheet (DS978) and Virtex UltraScale+ HBM product
# table (DS890) -- both parts have 9,024 DSP48E2, 1,303,680 LUTs, 2,607,360 FFs, 2,016 BRAM36,
# 960 URAM. PCIe: U55C Gen3 x16 (8 GT/s x 16 lanes x 128/130 = 15.75 GB/s raw per direction).
DEVICES = {
    "Alveo U55C": dict(dsp=9024, lut=1303680, ff=2607360, bram=2016, uram=960, board_w=150),
    "AWS F2 (VU47P)": dict(dsp=9024, lut=1303680, ff=2607360, bram=2016, uram=960, board_w=None),
}
USABLE = 0.75          # ASSUMED: share of the fabric left to user kernels after the shell
                       # (XRT/AWS shell, HBM/PCIe IP) and for routability.
FMAX_HZ = 250e6        # ASSUMED: see README "Fmax"; the model also prints 200 and 300 MHz.
LINCOMB_OCCUPANCY = 0.9  # ASSUMED: bucket-conflict stalls in Pippenger accumulation.

# ------------------------------------------------------------------ ops in point additions
COMB_ADDS = 64         # fixed-base comb: 64 signed radix-16 digits, one table add each
                       # (same digit count as curve25519-dalek's basepoint table)


def pippenger_adds(m, bits=256):
    """Point additions for one m-term multi-scalar job, best of Straus (w-NAF) and Pippenger."""
    best = None
    for w in range(2, 9):           # Straus, interleaved w-NAF: shared doublings (as adds:
        straus = bits + m * (bits / (w + 1) + 2 ** (w - 2))   # the unit is unified/complete)
        best = straus if best is None else min(best, straus)
    for c in range(2, 17):          # Pippenger, signed digits: 2^(c-1) buckets per window
        windows = math.ceil(bits / c)
        pip = windows * (m + 2 * 2 ** (c - 1) + c)
        best = min(best, pip)
    return best


def adds_per_term(m):
    return pippenger_adds(m) / m


# ------------------------------------------------------------------ measured here (simd / cpu)
# Fixed + per-item fits of backend-simd and backend-cpu on this machine, read from the file that
# `tessera bench-accel --backends cpu,simd --save hw/fpga-notes/bench-accel.json` writes (times
# there in ns; here in µs; per item = per term for lincomb_vartime). backend-cpu is measured
# there on all cores (rayon), as `bench-accel` runs it.
BENCH_ACCEL = os.path.join(HERE, "bench-accel.json")
OPS = [("secp256k1", "mul_base"), ("secp256k1", "lincomb_vartime"),
       ("ed25519", "mul_base"), ("ed25519", "lincomb_vartime")]


def load_measured(path=BENCH_ACCEL):
    """{backend: {(curve, op): (fixed_us, per_item_us)}} and {backend: device} from the file."""
    with open(path) as fh:
        doc = json.load(fh)
    fits, devices = {}, {}
    for m in doc["models"]:
        fits[m["backend"]] = {(c["curve"], c["op"]): (c["fixed_ns"] / 1e3, c["per_item_ns"] / 1e3)
                              for c in m["costs"]}
        devices[m["backend"]] = m["device"]
    for backend in ("simd", "cpu"):
        missing = [k for k in OPS if k not in fits.get(backend, {})]
        if missing:
            raise ValueError("%s has no %s fit for %s: re-run tessera bench-accel --backends "
                             "cpu,simd --save %s" % (path, backend, missing, path))
    return fits, devices


MEASURED, MEASURED_DEVICES = load_measured()
SIMD = {k: MEASURED["simd"][k] for k in OPS}
CPU = {k: MEASURED["cpu"][k] for k in OPS}

# ------------------------------------------------------------------ host link
LINK_FIXED_US = 30.0   # ASSUMED: one XRT call (kernel start, two buffer syncs, completion wait)
LINK_GBPS = 12.0       # ASSUMED: sustained DMA, both directions together, of 15.75 GB/s raw
COORD = 32
BYTES = {              # bytes over PCIe per item: inputs + outputs (projective, as the port returns)
    ("secp256k1", "mul_base"): 32 + 3 * COORD,
    ("ed25519", "mul_base"): 32 + 4 * COORD,
    ("secp256k1", "lincomb_vartime"): 32 + 2 * COORD,   # scalar + affine point in
    ("ed25519", "lincomb_vartime"): 32 + 2 * COORD,
}
# ASSUMED, not measured: host CPU time per item to turn card words into the port's types and
# back. The port's types keep their coordinates private, so (as backend-gpu's codec does) outputs
# go through affine coordinates: secp256k1 AffinePoint::from_encoded_point (curve check) after a
# batch inversion (Montgomery's trick, ~3 field mults per point); edwards25519 needs
# CompressedEdwardsY::decompress (a square root, ~250 field squarings) per output point, and
# lincomb input points must be compressed (one inversion each) unless batched. Measure with
# bench-accel before relying on these.
HOST_CODEC_US = {
    ("secp256k1", "mul_base"): 0.3,
    ("ed25519", "mul_base"): 4.0,
    ("secp256k1", "lincomb_vartime"): 0.3,
    ("ed25519", "lincomb_vartime"): 4.0,
}
CURVE_UNIT = {"secp256k1": "k256_add", "ed25519": "ed25519_add"}
LINCOMB_JOB_TERMS = 2  # the calibration shape (2 terms per job); see also VERIFY_CHUNK_TERMS
VERIFY_CHUNK_TERMS = 129   # one verify_batch chunk: 64 items -> 1 + 2 x 64 terms


def load_resources(path=os.path.join(HERE, "resources.md")):
    """Per-instance totals {unit: {DSP, LUT, FF, ...}} from resources.md, if synth.sh wrote it."""
    res = {}
    if not os.path.exists(path):
        return res
    with open(path) as fh:
        lines = fh.readlines()
    for line in lines:
        m = re.match(r"\|\s*\*\*(\w+) total\*\*[^|]*\|(.*)\|\s*computed\s*\|", line)
        if m:
            vals = [int(v.strip().strip("*")) for v in m.group(2).split("|")]
            res[m.group(1)] = dict(zip(["DSP", "LUT", "SRL", "CARRY", "FF", "BRAM", "URAM"], vals))
    return res


def instance_resources(unit, res=None):
    res = load_resources() if res is None else res
    if unit in res:
        return res[unit]
    return {"DSP": UNITS[unit][0] * DSP_PER_FMUL}


def instances(unit, device, res=None, usable=USABLE):
    r = instance_resources(unit, res)
    d = DEVICES[device]
    limits = [math.floor(usable * d["dsp"] / r["DSP"])]
    if "LUT" in r:
        # LUTs, SRLs (also LUTs) and carry cells (8 LUTs' worth of carry per CARRY4 pair is not
        # exact; counted as the LUT they occupy) against the device's LUTs.
        limits.append(math.floor(usable * d["lut"] / (r["LUT"] + r["SRL"])))
        limits.append(math.floor(usable * d["ff"] / r["FF"]))
    return max(0, min(limits))


def schedule_cycles(n_ops, adds_per_op, inst, latency):
    """Cycles to finish n_ops independent ops of adds_per_op *dependent* additions each on
    `inst` fully pipelined adders of the given latency: each adder interleaves its share of the
    ops round-robin; a round is max(ops in flight, latency) cycles (one issue per cycle, and an
    op's next addition waits for its previous result)."""
    if n_ops == 0:
        return 0
    per = math.ceil(n_ops / inst)
    return adds_per_op * max(per, latency)


def card_time_us(curve, op, n, device, fmax=FMAX_HZ, res=None, host_codec=True):
    unit = CURVE_UNIT[curve]
    inst = instances(unit, device, res)
    lat = UNITS[unit][1] + 2                       # + table/bucket read
    if op == "mul_base":
        cycles = schedule_cycles(n, COMB_ADDS, inst, lat)
    else:                                          # n terms in jobs of LINCOMB_JOB_TERMS
        jobs = math.ceil(n / LINCOMB_JOB_TERMS)
        adds = pippenger_adds(LINCOMB_JOB_TERMS)
        cycles = schedule_cycles(jobs, math.ceil(adds), inst, lat) / LINCOMB_OCCUPANCY
    link = LINK_FIXED_US + n * BYTES[(curve, op)] / (LINK_GBPS * 1e3)
    host = n * HOST_CODEC_US[(curve, op)] if host_codec else 0.0
    return link + host + cycles / fmax * 1e6


def card_fit(curve, op, device, fmax=FMAX_HZ, res=None, small=1, large=65536, host_codec=True):
    """Our cost-model form: fit fixed + per_item on two batch sizes, as accel_api::calibrate."""
    t1 = card_time_us(curve, op, small, device, fmax, res, host_codec)
    t2 = card_time_us(curve, op, large, device, fmax, res, host_codec)
    per = (t2 - t1) / (large - small)
    return (t1 - per * small, per)


def crossover(card, other, limit=1 << 24):
    """Smallest batch n >= 1 with card(n) < other(n), for fixed + per-item models; None if never."""
    (cf, cp), (of, op_) = card, other
    if cf + cp < of + op_:
        return 1
    if cp >= op_:
        return None
    n = math.floor((cf - of) / (op_ - cp)) + 1
    return n if n <= limit else None


def throughput_table(fmaxes=(200e6, 250e6, 300e6), res=None):
    rows = ["| device | unit | DSP/inst | instances | Fmax | point adds/s | mul_base/s "
            "| lincomb terms/s (2-term jobs) | terms/s (129-term jobs) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for dev in DEVICES:
        for unit, (_, _, curve) in UNITS.items():
            inst = instances(unit, dev, res)
            for f in fmaxes:
                adds = inst * f
                rows.append("| %s | %s | %d | %d | %d MHz | %.2e | %.2e | %.2e | %.2e |" % (
                    dev, unit, instance_resources(unit, res)["DSP"], inst, f / 1e6, adds,
                    adds / COMB_ADDS, adds * LINCOMB_OCCUPANCY / adds_per_term(LINCOMB_JOB_TERMS),
                    adds * LINCOMB_OCCUPANCY / adds_per_term(VERIFY_CHUNK_TERMS)))
    return "\n".join(rows)


def crossover_table(res=None):
    rows = ["| device | curve | op | card fixed (µs) | card per item (µs) | simd fixed + per item (µs) "
            "| beats simd from n = | beats cpu (all cores) from n = | beats simd if link fixed = 200 µs "
            "| card per item without host codec (µs) | beats simd from n, no host codec |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for dev in DEVICES:
        for (curve, op), simd in SIMD.items():
            card = card_fit(curve, op, dev, res=res)
            xs = crossover(card, simd)
            xc = crossover(card, CPU[(curve, op)])
            slow = (card[0] + 200.0 - LINK_FIXED_US, card[1])
            x2 = crossover(slow, simd)
            bare = card_fit(curve, op, dev, res=res, host_codec=False)
            x3 = crossover(bare, simd)
            rows.append("| %s | %s | %s | %.1f | %.4f | %.1f + %.2f | %s | %s | %s | %.4f | %s |" % (
                dev, curve, op, card[0], card[1], simd[0], simd[1],
                xs if xs else "never", xc if xc else "never", x2 if x2 else "never",
                bare[1], x3 if x3 else "never"))
    return "\n".join(rows)


def energy_table(res=None):
    rows = ["| device | curve | verify items/s (batch, 129-term chunks) | board W (max) "
            "| µJ per verified signature at max board power |", "|---|---|---|---|---|"]
    for dev, d in DEVICES.items():
        for unit, (_, _, curve) in UNITS.items():
            adds = instances(unit, dev, res) * FMAX_HZ * LINCOMB_OCCUPANCY
            items = adds / (pippenger_adds(VERIFY_CHUNK_TERMS) / 64)
            w = d["board_w"]
            rows.append("| %s | %s | %.2e | %s | %s |" % (
                dev, curve, items, w if w else "unknown",
                "%.2f" % (w / items * 1e6) if w else "n/a"))
    return "\n".join(rows)


def model_report(res):
    """The tables as printed by main() (without the inputs paragraph)."""
    return "\n\n".join([
        "**Throughput per device** (per card, all instances of one curve's adder):\n\n"
        + throughput_table(res=res),
        "**Card cost in our `fixed + per item` form and crossover batch sizes** (%.0f MHz; per "
        "item = per term for lincomb; card = link + host codec + schedule; simd and cpu are the "
        "fits in `bench-accel.json`, measured with `tessera bench-accel` on this machine: "
        "backend-simd on %s, backend-cpu on %s):\n\n"
        % (FMAX_HZ / 1e6, MEASURED_DEVICES["simd"], MEASURED_DEVICES["cpu"])
        + crossover_table(res=res),
        "**Energy (upper bound: maximum board power)**:\n\n" + energy_table(res=res)])


def resources_rows(path=os.path.join(HERE, "resources.md")):
    if not os.path.exists(path):
        return "(resources.md not generated yet: run synth.sh)"
    with open(path) as fh:
        return "\n".join(l.rstrip("\n") for l in fh if l.startswith("|"))


def update_readme(path=os.path.join(HERE, "README.md")):
    """Rewrites the generated sections of README.md between their BEGIN/END markers."""
    with open(path) as fh:
        text = fh.read()
    res = load_resources()
    for name, body in (("MODEL", model_report(res)), ("RESOURCES", resources_rows())):
        begin, end = "<!-- %s:BEGIN -->" % name, "<!-- %s:END -->" % name
        i, j = text.index(begin) + len(begin), text.index(end)
        text = text[:i] + "\n" + body + "\n" + text[j:]
    with open(path, "w") as fh:
        fh.write(text)


def main():
    import sys
    if "--update-readme" in sys.argv:
        update_readme()
        return
    res = load_resources()
    src = "resources.md (synth.sh)" if res else "RTL DSP counts only (resources.md not found)"
    print("## Model inputs\n")
    print("Per-instance resources from: %s. Usable fabric %.0f%% (assumed). Fmax %.0f MHz "
          "(assumed). Link: %.0f µs fixed + bytes / %.0f GB/s (assumed). Host codec per item "
          "(assumed): %s.\n"
          % (src, USABLE * 100, FMAX_HZ / 1e6, LINK_FIXED_US, LINK_GBPS,
             ", ".join("%s %s %.1f µs" % (c, o, v) for (c, o), v in HOST_CODEC_US.items())))
    print("Point additions per op: mul_base %d (comb); lincomb %.1f per term in 2-term jobs, "
          "%.1f per term in 129-term jobs; verify %.1f per signature.\n"
          % (COMB_ADDS, adds_per_term(2), adds_per_term(VERIFY_CHUNK_TERMS),
             pippenger_adds(VERIFY_CHUNK_TERMS) / 64))
    print("## Throughput per device\n")
    print(throughput_table(res=res))
    print("\n## Card cost (fixed + per item) and crossover batch sizes at %.0f MHz\n" % (FMAX_HZ / 1e6))
    print(crossover_table(res=res))
    print("\n## Energy\n")
    print(energy_table(res=res))


if __name__ == "__main__":
    main()
