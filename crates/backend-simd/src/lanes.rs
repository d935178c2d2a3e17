//! The `Lanes` abstraction: eight independent 64-bit lanes and the handful of operations the
//! field arithmetic needs, plus the portable implementation (plain `u64`/`u128` code).
//!
//! Every kernel in this crate is written once, generically over [`Lanes`]; the portable
//! implementation runs exactly the same lane code as the vector implementations, which is what
//! the vector-vs-serial tests compare.

/// Number of lanes every implementation carries (one batch item per lane).
pub(crate) const LANES: usize = 8;

/// Mask of the low 52 bits.
pub(crate) const M52: u64 = (1 << 52) - 1;

/// Eight lanes of 64-bit integers and the operations on them. Implementations are zero-sized
/// tokens: holding one proves the instructions behind it may run on this CPU.
pub(crate) trait Lanes: Copy {
    /// Eight 64-bit lanes.
    type V: Copy;
    /// A per-lane boolean.
    type M: Copy;

    /// Every lane set to `x`.
    fn splat(self, x: u64) -> Self::V;
    /// Lanes from an array.
    fn load(self, x: &[u64; LANES]) -> Self::V;
    /// Lanes into an array.
    fn store(self, v: Self::V) -> [u64; LANES];
    /// Lane-wise wrapping addition.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise wrapping subtraction.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise bitwise and.
    fn and(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise logical right shift by `N`.
    fn shr<const N: u32>(self, a: Self::V) -> Self::V;
    /// Lane-wise left shift by `N`.
    fn shl<const N: u32>(self, a: Self::V) -> Self::V;
    /// `acc + lo52((a mod 2^52)·(b mod 2^52))` per lane (`vpmadd52luq`).
    fn madd52lo(self, acc: Self::V, a: Self::V, b: Self::V) -> Self::V;
    /// `acc + hi52((a mod 2^52)·(b mod 2^52))` per lane (`vpmadd52huq`).
    fn madd52hi(self, acc: Self::V, a: Self::V, b: Self::V) -> Self::V;
    /// Per lane, whether `a == b` (constant time).
    fn eq(self, a: Self::V, b: Self::V) -> Self::M;
    /// Per lane, `if_true` where `m` holds, else `if_false` (constant time).
    fn select(self, m: Self::M, if_false: Self::V, if_true: Self::V) -> Self::V;
}

/// The portable implementation: eight `u64`s and scalar code.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Portable;

#[inline(always)]
fn map2(a: [u64; LANES], b: [u64; LANES], f: impl Fn(u64, u64) -> u64) -> [u64; LANES] {
    core::array::from_fn(|i| f(a[i], b[i]))
}

impl Lanes for Portable {
    type V = [u64; LANES];
    type M = [u64; LANES];

    #[inline(always)]
    fn splat(self, x: u64) -> Self::V {
        [x; LANES]
    }
    #[inline(always)]
    fn load(self, x: &[u64; LANES]) -> Self::V {
        *x
    }
    #[inline(always)]
    fn store(self, v: Self::V) -> [u64; LANES] {
        v
    }
    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        map2(a, b, u64::wrapping_add)
    }
    #[inline(always)]
    fn sub(self, a: Self::V, b: Self::V) -> Self::V {
        map2(a, b, u64::wrapping_sub)
    }
    #[inline(always)]
    fn and(self, a: Self::V, b: Self::V) -> Self::V {
        map2(a, b, |x, y| x & y)
    }
    #[inline(always)]
    fn shr<const N: u32>(self, a: Self::V) -> Self::V {
        a.map(|x| x >> N)
    }
    #[inline(always)]
    fn shl<const N: u32>(self, a: Self::V) -> Self::V {
        a.map(|x| x << N)
    }
    #[inline(always)]
    fn madd52lo(self, acc: Self::V, a: Self::V, b: Self::V) -> Self::V {
        core::array::from_fn(|i| {
            let p = u128::from(a[i] & M52) * u128::from(b[i] & M52);
            acc[i].wrapping_add((p as u64) & M52)
        })
    }
    #[inline(always)]
    fn madd52hi(self, acc: Self::V, a: Self::V, b: Self::V) -> Self::V {
        core::array::from_fn(|i| {
            let p = u128::from(a[i] & M52) * u128::from(b[i] & M52);
            acc[i].wrapping_add((p >> 52) as u64)
        })
    }
    #[inline(always)]
    fn eq(self, a: Self::V, b: Self::V) -> Self::M {
        // All-ones where equal, zero elsewhere, without a branch: x | -x has its top bit set
        // exactly when x != 0. The mask goes through an optimisation barrier so the compiler
        // cannot turn the masked scans built on it back into a branch or an indexed load.
        core::hint::black_box(map2(a, b, |x, y| {
            let d = x ^ y;
            ((d | d.wrapping_neg()) >> 63).wrapping_sub(1)
        }))
    }
    #[inline(always)]
    fn select(self, m: Self::M, if_false: Self::V, if_true: Self::V) -> Self::V {
        core::array::from_fn(|i| (if_true[i] & m[i]) | (if_false[i] & !m[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::{LANES, Lanes, Portable};

    /// `eq` is exact for every difference, the top bit alone included (`x ^ y = 2⁶³`, where a
    /// sign-bit trick that misses a lowest set bit of 63 would call the lanes equal), and
    /// `select` takes each lane from the side its mask names.
    #[test]
    fn portable_eq_is_exact_and_select_follows_the_mask() {
        let values = [
            0,
            1,
            2,
            1 << 52,
            1 << 63,
            (1 << 63) | 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        for x in values {
            let a: [u64; LANES] = [x; LANES];
            let m = Portable.eq(a, values);
            for i in 0..LANES {
                let want = if values[i] == x { u64::MAX } else { 0 };
                assert_eq!(m[i], want, "eq({x:#x}, {:#x})", values[i]);
            }
            let picked = Portable.select(m, [7; LANES], [9; LANES]);
            for i in 0..LANES {
                assert_eq!(picked[i], if values[i] == x { 9 } else { 7 });
            }
        }
    }
}
