//! What clients ask Tessera to sign on a chain (`SignTransaction`, `SignTypedData`): RLP
//! transactions, EIP-712 documents, PSBTs and Solana messages through the chain adapter, with
//! keys of each scheme the chain takes. A refusal is fine; a panic, a hang or an allocation
//! blow-up is a bug.
#![no_main]

use chains::ChainAdapter;
use libfuzzer_sys::fuzz_target;
use service_core::Scheme;
use service_core::chain::{Chains, Unsigned};

/// secp256k1's generator: its x-only key and compressed SEC1 encoding.
const X: [u8; 32] = [
    0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87, 0x0b, 0x07,
    0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16, 0xf8, 0x17, 0x98,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut sec1 = [2u8; 33];
    sec1[1..].copy_from_slice(&X);
    // RFC 8032 §7.1 TEST 1 public key.
    let ed: [u8; 32] = [
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07,
        0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07,
        0x51, 0x1a,
    ];
    let psbt = |network: &str| Unsigned::BitcoinPsbt {
        psbt: rest.to_vec(),
        network: network.to_owned(),
    };
    let (scheme, key, unsigned): (Scheme, &[u8], Unsigned) = match selector % 6 {
        0 => (
            Scheme::EcdsaSecp256k1,
            &sec1,
            Unsigned::EthereumTransaction(rest.to_vec()),
        ),
        1 => (
            Scheme::EcdsaSecp256k1,
            &sec1,
            Unsigned::EthereumTypedData(String::from_utf8_lossy(rest).into_owned()),
        ),
        2 => (Scheme::Bip340, &X, psbt("regtest")),
        3 => (Scheme::EcdsaSecp256k1, &sec1, psbt("mainnet")),
        4 => (Scheme::Ed25519, &ed, Unsigned::SolanaMessage(rest.to_vec())),
        _ => (
            Scheme::EcdsaSecp256k1,
            &sec1,
            Unsigned::EthereumPersonalMessage(rest.to_vec()),
        ),
    };
    if let Ok(plan) = ChainAdapter.plan(scheme, key, &unsigned) {
        let steps = plan.steps();
        assert!(!steps.is_empty(), "a plan with nothing to sign");
        let _ = plan.summary();
    }
});
