//! Wire encodings of the signing messages ([`Round1Msg`], [`Round2Msg`], [`Round3Msg`]), for
//! parties on separate machines. Every decoder checks lengths exactly, accepts only canonical
//! scalars and valid points, refuses trailing bytes, and names the sender it was told to
//! expect when the bytes are not a message of the expected shape.

use k256::ProjectivePoint;
use k256::Scalar;

use crate::codec::{POINT_LEN, R, SCALAR_LEN, W};
use crate::error::Error;
use crate::fq::Fq;
use crate::keygen::PartyId;
use crate::mul::{self, VoleMsg};
use crate::ot::{KAPPA, KosMsg, M, XI};
use crate::sign::{Round1Msg, Round2Msg, Round3Msg};

const COLUMN: usize = M / 8;
const ROUND1_LEN: usize = 2 + 2 + 32 + 32 + 32 + KAPPA * COLUMN + 16 + 16;
const ROUND2_LEN: usize = 2
    + 2
    + POINT_LEN
    + 32
    + 3 * POINT_LEN
    + SCALAR_LEN
    + XI * mul::W * SCALAR_LEN
    + mul::L * SCALAR_LEN
    + 32;
const ROUND3_LEN: usize = 2 + 2 * SCALAR_LEN;

/// Maps a decoding failure to the expected sender.
fn blame(from: PartyId) -> impl Fn(Error) -> Error {
    move |_| Error::Malformed {
        culprit: from,
        what: "undecodable signing message",
    }
}

/// Checks the decoded sender is the one the transport authenticated.
fn sender(got: PartyId, from: PartyId) -> Result<(), Error> {
    if got == from {
        Ok(())
    } else {
        Err(Error::Malformed {
            culprit: from,
            what: "message claims another sender",
        })
    }
}

impl Round1Msg {
    /// The message's encoding (`ROUND1_LEN` bytes: ids, nonce, commitment, KOS message).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = W::with_len(ROUND1_LEN);
        w.u16(self.from);
        w.u16(self.to);
        w.bytes(&self.nonce);
        w.bytes(&self.commitment);
        w.bytes(&self.kos.nonce);
        for col in &self.kos.u {
            w.bytes(col);
        }
        w.u128(self.kos.x_check);
        w.u128(self.kos.t_check);
        w.finish().to_vec()
    }

    /// Decodes a round-1 message that party `from` sent.
    pub fn from_bytes(b: &[u8], from: PartyId) -> Result<Self, Error> {
        if b.len() != ROUND1_LEN {
            return Err(Error::Malformed {
                culprit: from,
                what: "round-1 message length",
            });
        }
        let mut r = R(b);
        let m = (|| {
            let got = r.u16()?;
            let to = r.u16()?;
            let mut nonce = [0u8; 32];
            r.fill(&mut nonce)?;
            let mut commitment = [0u8; 32];
            r.fill(&mut commitment)?;
            let mut kos_nonce = [0u8; 32];
            r.fill(&mut kos_nonce)?;
            let mut u = vec![[0u8; COLUMN]; KAPPA];
            for col in u.iter_mut() {
                r.fill(col)?;
            }
            let (mut x_check, mut t_check) = (0u128, 0u128);
            r.u128_into(&mut x_check)?;
            r.u128_into(&mut t_check)?;
            r.end()?;
            Ok::<_, Error>(Round1Msg {
                from: got,
                to,
                nonce,
                commitment,
                kos: KosMsg {
                    nonce: kos_nonce,
                    u,
                    x_check,
                    t_check,
                },
            })
        })()
        .map_err(blame(from))?;
        sender(m.from, from)?;
        Ok(m)
    }
}

impl Round2Msg {
    /// The message's encoding (ids, opening, public shares, `ψ`, the multiplication answer).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = W::with_len(ROUND2_LEN);
        w.u16(self.from);
        w.u16(self.to);
        w.point(&self.big_r);
        w.bytes(&self.salt);
        w.point(&self.pk_share);
        w.point(&self.gamma_u);
        w.point(&self.gamma_v);
        w.scalar(&self.psi);
        for row in &self.vole.tau {
            for s in row {
                w.bytes(&s.to_bytes());
            }
        }
        for s in &self.vole.u {
            w.scalar(s);
        }
        w.bytes(&self.vole.digest);
        w.finish().to_vec()
    }

    /// Decodes a round-2 message that party `from` sent.
    pub fn from_bytes(b: &[u8], from: PartyId) -> Result<Self, Error> {
        if b.len() != ROUND2_LEN {
            return Err(Error::Malformed {
                culprit: from,
                what: "round-2 message length",
            });
        }
        let mut r = R(b);
        let m = (|| {
            let got = r.u16()?;
            let to = r.u16()?;
            let big_r = r.point()?;
            let mut salt = [0u8; 32];
            r.fill(&mut salt)?;
            let pk_share = r.point()?;
            let gamma_u = r.point()?;
            let gamma_v = r.point()?;
            let psi = r.scalar()?;
            let mut tau = Vec::with_capacity(XI);
            for _ in 0..XI {
                let mut row = [Fq::ZERO; mul::W];
                for s in row.iter_mut() {
                    *s = r.fq()?;
                }
                tau.push(row);
            }
            let mut u = [Scalar::ZERO; mul::L];
            for s in u.iter_mut() {
                *s = r.scalar()?;
            }
            let mut digest = [0u8; 32];
            r.fill(&mut digest)?;
            r.end()?;
            Ok::<_, Error>(Round2Msg {
                from: got,
                to,
                big_r,
                salt,
                pk_share,
                gamma_u,
                gamma_v,
                psi,
                vole: VoleMsg { tau, u, digest },
            })
        })()
        .map_err(blame(from))?;
        sender(m.from, from)?;
        if m.big_r == ProjectivePoint::IDENTITY {
            return Err(Error::Malformed {
                culprit: from,
                what: "identity instance point",
            });
        }
        Ok(m)
    }
}

impl Round3Msg {
    /// The message's encoding (sender id, `w`, `u`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = W::with_len(ROUND3_LEN);
        w.u16(self.from);
        w.scalar(&self.w);
        w.scalar(&self.u);
        w.finish().to_vec()
    }

    /// Decodes a round-3 (online) message that party `from` sent.
    pub fn from_bytes(b: &[u8], from: PartyId) -> Result<Self, Error> {
        let mut r = R(b);
        let m = (|| {
            let got = r.u16()?;
            let w = r.scalar()?;
            let u = r.scalar()?;
            r.end()?;
            Ok::<_, Error>(Round3Msg { from: got, w, u })
        })()
        .map_err(blame(from))?;
        sender(m.from, from)?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::embedded;
    use crate::sign;

    /// A real session's messages survive their encoding, and a presignature made from the
    /// decoded messages signs.
    #[test]
    fn signing_messages_round_trip_and_still_sign() {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let mut set = embedded::dkg(&accel, 2, 3, &mut rng).unwrap();
        let signers = [1u16, 3];
        let sid = [4u8; 32];
        let mut st1 = Vec::new();
        let mut m1 = Vec::new();
        for &p in &signers {
            let (s, m) =
                sign::start(&accel, set.share(p).unwrap(), &signers, &sid, &mut rng).unwrap();
            st1.push(s);
            m1.extend(m);
        }
        let m1: Vec<Round1Msg> = m1
            .iter()
            .map(|m| {
                let back = Round1Msg::from_bytes(&m.to_bytes(), m.from).unwrap();
                assert_eq!(&back, m);
                back
            })
            .collect();
        let mut st2 = Vec::new();
        let mut m2 = Vec::new();
        for (s, &p) in st1.into_iter().zip(&signers) {
            let mine: Vec<_> = m1.iter().filter(|m| m.to == p).cloned().collect();
            let (s2, m) = s
                .round2(&accel, set.share_mut(p).unwrap(), &mine, &mut rng)
                .unwrap();
            st2.push(s2);
            m2.extend(m);
        }
        let m2: Vec<Round2Msg> = m2
            .iter()
            .map(|m| {
                let back = Round2Msg::from_bytes(&m.to_bytes(), m.from).unwrap();
                assert_eq!(&back, m);
                back
            })
            .collect();
        let mut shares = Vec::new();
        let mut big_r = None;
        for (s, &p) in st2.into_iter().zip(&signers) {
            let mine: Vec<_> = m2.iter().filter(|m| m.to == p).cloned().collect();
            let pre = s.presign(&accel, set.share_mut(p).unwrap(), &mine).unwrap();
            big_r = Some(pre.big_r());
            let m3 = pre.sign(&[7; 32]);
            let back = Round3Msg::from_bytes(&m3.to_bytes(), p).unwrap();
            assert_eq!(back, m3);
            shares.push(back);
        }
        let pk = set.share(1).unwrap().public_key();
        sign::combine(&accel, &pk, &big_r.unwrap(), &[7; 32], &shares).unwrap();
    }

    /// Wrong lengths, a claimed sender other than the authenticated one, non-canonical
    /// scalars and trailing bytes are refused, naming the sender.
    #[test]
    fn malformed_messages_name_their_sender() {
        let m3 = Round3Msg {
            from: 2,
            w: Scalar::ONE,
            u: Scalar::ONE,
        };
        let b = m3.to_bytes();
        let named = |e: Error| matches!(e, Error::Malformed { culprit: 2, .. });
        assert!(matches!(
            Round3Msg::from_bytes(&b, 3),
            Err(Error::Malformed { culprit: 3, .. })
        ));
        let mut long = b.clone();
        long.push(0);
        assert!(named(Round3Msg::from_bytes(&long, 2).unwrap_err()));
        let mut high = b.clone();
        high[2..34].fill(0xff);
        assert!(named(Round3Msg::from_bytes(&high, 2).unwrap_err()));
        assert!(named(Round1Msg::from_bytes(&[0; 10], 2).unwrap_err()));
        assert!(named(Round2Msg::from_bytes(&[0; 10], 2).unwrap_err()));
    }
}
