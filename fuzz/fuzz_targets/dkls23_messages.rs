//! Fuzzes the decoders of the threshold-ECDSA (DKLs23) messages parties exchange: the
//! signing rounds (`dkls23::sign::Round1Msg`, `Round2Msg`, `Round3Msg`, crates/dkls23/src/wire.rs)
//! and the five flows of the pairwise base OT (`dkls23::ot::VsotMsg1` … `VsotMsg5`). The
//! first input byte is the sender the transport authenticated (`from`), the rest the message.
//!
//! Asserts: no decoder panics; a message that decodes re-encodes with `to_bytes`, and the
//! encoding decodes (from the same sender) to the same value.

#![no_main]

use dkls23::ot::{VsotMsg1, VsotMsg2, VsotMsg3, VsotMsg4, VsotMsg5};
use dkls23::sign::{Round1Msg, Round2Msg, Round3Msg};
use libfuzzer_sys::fuzz_target;

/// Decodes `body` as a message of type `$t` from `$from`; on success checks the round trip.
macro_rules! round_trip {
    ($t:ty, $body:expr, $from:expr) => {
        if let Ok(m) = <$t>::from_bytes($body, $from) {
            assert_eq!(<$t>::from_bytes(&m.to_bytes(), $from), Ok(m));
        }
    };
}

fuzz_target!(|data: &[u8]| {
    let Some((&from, body)) = data.split_first() else {
        return;
    };
    let from = u16::from(from);
    round_trip!(Round1Msg, body, from);
    round_trip!(Round2Msg, body, from);
    round_trip!(Round3Msg, body, from);
    round_trip!(VsotMsg1, body, from);
    round_trip!(VsotMsg2, body, from);
    round_trip!(VsotMsg3, body, from);
    round_trip!(VsotMsg4, body, from);
    round_trip!(VsotMsg5, body, from);
});
