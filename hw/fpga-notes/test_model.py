"""Unit tests for model.py (the throughput / crossover model).

Run: python3 -m unittest discover -s hw/fpga-notes -p 'test_*.py'
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import model  # noqa: E402


class ScheduleTest(unittest.TestCase):
    def test_latency_bound_when_few_ops(self):
        # one op of 64 dependent additions on a 34-deep pipeline: 64 x 34 cycles
        self.assertEqual(model.schedule_cycles(1, 64, 1, 34), 64 * 34)

    def test_throughput_bound_when_pipeline_full(self):
        # 340 ops over 5 instances: 68 ops each >= latency 34, one issue per cycle
        self.assertEqual(model.schedule_cycles(340, 64, 5, 34), 64 * 68)

    def test_zero_ops(self):
        self.assertEqual(model.schedule_cycles(0, 64, 5, 34), 0)

    def test_more_instances_never_slower(self):
        for n in (1, 7, 100, 5000):
            self.assertLessEqual(model.schedule_cycles(n, 64, 6, 34),
                                 model.schedule_cycles(n, 64, 5, 34))


class InstancesTest(unittest.TestCase):
    def test_dsp_bound_without_synthesis(self):
        # 9 x 150 DSPs per edwards25519 adder; 75% of 9,024 DSPs -> 5 instances
        self.assertEqual(model.instances("ed25519_add", "Alveo U55C", res={}), 5)
        # 12 x 150 DSPs per secp256k1 adder -> 3 instances
        self.assertEqual(model.instances("k256_add", "Alveo U55C", res={}), 3)

    def test_lut_limit_applies(self):
        res = {"ed25519_add": dict(DSP=1350, LUT=600000, SRL=0, CARRY=0, FF=1, BRAM=0, URAM=0)}
        self.assertEqual(model.instances("ed25519_add", "Alveo U55C", res=res), 1)


class CostTest(unittest.TestCase):
    def test_crossover_formula(self):
        # card 40 + 0.1 n, simd 25 + 6 n: 40 + 0.1 n < 25 + 6 n  <=>  n > 2.54
        self.assertEqual(model.crossover((40.0, 0.1), (25.0, 6.0)), 3)
        self.assertEqual(model.crossover((10.0, 0.1), (25.0, 6.0)), 1)
        self.assertIsNone(model.crossover((40.0, 7.0), (25.0, 6.0)))

    def test_fit_is_linear_in_our_form(self):
        f, p = model.card_fit("ed25519", "mul_base", "Alveo U55C", res={})
        self.assertGreater(f, model.LINK_FIXED_US)
        # beyond the pipeline-fill region the fitted line is within 1% of the schedule model
        # (the fit's small batch is latency-bound, so the line sits slightly above it)
        n = 20000
        t = model.card_time_us("ed25519", "mul_base", n, "Alveo U55C", res={})
        self.assertLess(abs(f + p * n - t) / t, 0.01)

    def test_pippenger_beats_naive(self):
        self.assertLess(model.adds_per_term(129), 256 + 128)
        self.assertLess(model.adds_per_term(129), model.adds_per_term(2))

    def test_tables_render(self):
        for t in (model.throughput_table(res={}), model.crossover_table(res={}),
                  model.energy_table(res={})):
            self.assertTrue(t.startswith("| device"))


class ReadmeTest(unittest.TestCase):
    def test_readme_tables_come_from_model(self):
        # README.md's generated section must be what `model.py --update-readme` writes now.
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md")) as fh:
            readme = fh.read()
        self.assertIn(model.model_report(model.load_resources()), readme,
                      "README tables are stale: run python3 hw/fpga-notes/model.py --update-readme")


class MeasuredTest(unittest.TestCase):
    def test_fits_come_from_bench_accel_file(self):
        fits, devices = model.load_measured()
        for backend in ("simd", "cpu"):
            self.assertIn(backend, devices)
            for key in model.OPS:
                fixed, per = fits[backend][key]
                self.assertGreaterEqual(fixed, 0.0)
                self.assertGreater(per, 0.0)
        self.assertEqual(model.SIMD[("ed25519", "mul_base")], fits["simd"][("ed25519", "mul_base")])

    def test_a_file_without_simd_is_refused(self):
        import json
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump({"version": "x", "models": []}, fh)
        try:
            with self.assertRaises(ValueError):
                model.load_measured(fh.name)
        finally:
            os.unlink(fh.name)


if __name__ == "__main__":
    unittest.main()
