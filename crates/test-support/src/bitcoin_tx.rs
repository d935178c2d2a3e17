//! Bitcoin test helpers: PSBTs spending made-up outpoints of given outputs, the scripts of a
//! threshold key's addresses, and Bitcoin Core's verdict on a spend (libbitcoinconsensus of
//! Bitcoin Core 26 through the `bitcoinconsensus` crate, every consensus rule through Taproot).

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::key::UntweakedPublicKey;
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{PublicKey, Secp256k1};
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness,
};

/// The BIP86 P2TR script of a 32-byte x-only internal key.
pub fn bip86_script(x_only: &[u8]) -> ScriptBuf {
    let key = UntweakedPublicKey::from_slice(x_only).expect("an x-only key");
    ScriptBuf::new_p2tr(&Secp256k1::verification_only(), key, None)
}

/// The P2WPKH script of a 33-byte compressed key.
pub fn p2wpkh_script(sec1: &[u8]) -> ScriptBuf {
    let pk = CompressedPublicKey(PublicKey::from_slice(sec1).expect("a compressed key"));
    ScriptBuf::new_p2wpkh(&pk.wpubkey_hash())
}

/// An output of `sat` satoshi to `script_pubkey`.
pub fn utxo(sat: u64, script_pubkey: ScriptBuf) -> TxOut {
    TxOut {
        value: Amount::from_sat(sat),
        script_pubkey,
    }
}

/// A PSBT spending one made-up outpoint per entry of `claimed` (set as its `witness_utxo`).
pub fn psbt_for(claimed: &[TxOut], outputs: Vec<TxOut>) -> Psbt {
    let input = (0..claimed.len())
        .map(|n| TxIn {
            previous_output: OutPoint {
                txid: Txid::from_byte_array([0xb0 + n as u8; 32]),
                vout: n as u32,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        })
        .collect();
    let tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input,
        output: outputs,
    };
    let mut psbt = Psbt::from_unsigned_tx(tx).expect("an unsigned transaction");
    for (input, out) in psbt.inputs.iter_mut().zip(claimed) {
        input.witness_utxo = Some(out.clone());
    }
    psbt
}

/// Bitcoin Core's verdict on input `index` of the network transaction `tx` spending
/// `spent[index]` (all of `spent` given, as Taproot signatures commit to every input).
pub fn core_verify(
    tx: &[u8],
    spent: &[TxOut],
    index: usize,
) -> Result<(), bitcoinconsensus::Error> {
    let utxos: Vec<bitcoinconsensus::Utxo> = spent
        .iter()
        .map(|o| bitcoinconsensus::Utxo {
            script_pubkey: o.script_pubkey.as_bytes().as_ptr(),
            script_pubkey_len: o.script_pubkey.len() as u32,
            value: o.value.to_sat() as i64,
        })
        .collect();
    bitcoinconsensus::verify_with_flags(
        spent[index].script_pubkey.as_bytes(),
        spent[index].value.to_sat(),
        tx,
        Some(&utxos),
        index,
        bitcoinconsensus::VERIFY_ALL_PRE_TAPROOT | bitcoinconsensus::VERIFY_TAPROOT,
    )
}

/// Panics unless Bitcoin Core accepts every input of `tx`.
pub fn assert_core_accepts(tx: &[u8], spent: &[TxOut]) {
    for index in 0..spent.len() {
        core_verify(tx, spent, index)
            .unwrap_or_else(|e| panic!("Bitcoin Core refuses input {index}: {e:?}"));
    }
}
