//! Bitcoin: P2TR (BIP86 key path, or a key path under a script tree) and P2WPKH addresses, and
//! the signing of BIP174 PSBTs (v0, with the BIP371 Taproot fields).
//!
//! [`plan_psbt`] decodes a PSBT, finds the inputs the key can spend, computes each one's sighash
//! (BIP341 for Taproot key-path spends and for the script-path leaves that name the key, BIP143
//! for P2WPKH) and summarises what the transaction moves. The service signs the
//! [`SignRequest`]s; [`PsbtPlan::finish`] checks every signature against the key and the sighash,
//! writes it into the PSBT and, when every input then carries a complete signature (a key-path
//! one, or one for a leaf that is a single key's checksig), finalizes the PSBT and extracts the
//! network transaction.

use std::fmt;
use std::str::FromStr;

use bitcoin::hashes::Hash;
use bitcoin::key::{CompressedPublicKey, TapTweak, XOnlyPublicKey};
use bitcoin::opcodes::all::OP_CHECKSIG;
use bitcoin::psbt::{Input, Psbt};
use bitcoin::script::{Builder, Instruction};
use bitcoin::secp256k1::{self, Message, Secp256k1, Verification};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::{LeafVersion, TapLeafHash, TapNodeHash};
use bitcoin::{Address, ScriptBuf, Transaction, TxOut, Witness};

use crate::{Chain, Error, Summary, Transfer};

/// A Bitcoin network: it decides the address prefix (`bc1`, `tb1`, `bcrt1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Network {
    /// The Bitcoin main network.
    Mainnet,
    /// The public test network.
    Testnet,
    /// The signet test network (BIP325).
    Signet,
    /// A local regression-test network.
    Regtest,
}

impl Network {
    fn params(self) -> bitcoin::Network {
        match self {
            Network::Mainnet => bitcoin::Network::Bitcoin,
            Network::Testnet => bitcoin::Network::Testnet,
            Network::Signet => bitcoin::Network::Signet,
            Network::Regtest => bitcoin::Network::Regtest,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
        })
    }
}

impl FromStr for Network {
    type Err = Error;

    /// `mainnet` (or `bitcoin`), `testnet`, `signet` or `regtest`.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "mainnet" | "bitcoin" => Ok(Network::Mainnet),
            "testnet" => Ok(Network::Testnet),
            "signet" => Ok(Network::Signet),
            "regtest" => Ok(Network::Regtest),
            other => Err(Error::Unsupported(format!(
                "Bitcoin network {other:?} (expected mainnet, bitcoin, testnet, signet or regtest)"
            ))),
        }
    }
}

/// A Tessera public key as Bitcoin spends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BitcoinKey {
    /// A BIP340 key, the Taproot internal key of its outputs.
    Taproot {
        /// The x-only BIP340 public key.
        internal_key: [u8; 32],
    },
    /// An ECDSA secp256k1 key, spent through P2WPKH outputs.
    Segwit {
        /// The SEC1 compressed public key.
        public_key: [u8; 33],
    },
}

/// A [`BitcoinKey`] parsed into a curve point.
#[derive(Clone, Copy, Debug)]
enum Key {
    Taproot(XOnlyPublicKey),
    Segwit(CompressedPublicKey),
}

impl Key {
    fn parse(key: &BitcoinKey) -> Result<Key, Error> {
        match key {
            BitcoinKey::Taproot { internal_key } => XOnlyPublicKey::from_slice(internal_key)
                .map(Key::Taproot)
                .map_err(|e| Error::Key(format!("Taproot internal key: {e}"))),
            BitcoinKey::Segwit { public_key } => CompressedPublicKey::from_slice(public_key)
                .map(Key::Segwit)
                .map_err(|e| Error::Key(format!("compressed secp256k1 key: {e}"))),
        }
    }
}

/// The bech32m P2TR address of the BIP86 output key (the internal key tweaked with no script
/// tree), or the bech32 P2WPKH address of a compressed ECDSA key.
pub fn address(key: &BitcoinKey, network: Network) -> Result<String, Error> {
    Ok(match Key::parse(key)? {
        Key::Taproot(internal) => Address::p2tr(
            &Secp256k1::verification_only(),
            internal,
            None,
            network.params(),
        ),
        Key::Segwit(public) => Address::p2wpkh(&public, network.params()),
    }
    .to_string())
}

/// One signature the service must make for the PSBT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignRequest {
    /// The index of the PSBT input it spends.
    pub input: usize,
    /// The 32-byte sighash to sign.
    pub message: [u8; 32],
    /// How to sign it.
    pub kind: SigKind,
}

/// The signature a [`SignRequest`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigKind {
    /// A BIP340 signature under the key's Taproot output key: the key tweaked (BIP341) with the
    /// PSBT input's `tap_merkle_root` (`None`: the BIP86 key path, no script tree).
    Taproot {
        /// The script tree's Merkle root the output key commits to.
        merkle_root: Option<[u8; 32]>,
    },
    /// A BIP340 signature under the key itself (no tweak) for a script-path spend of the leaf
    /// with this BIP341 leaf hash (BIP342: the leaf's script checks the key's signature).
    TaprootScript {
        /// The tapleaf hash the sighash commits to.
        leaf_hash: [u8; 32],
    },
    /// An ECDSA signature over this BIP143 sighash (the service signs the 32 bytes as a
    /// prehash).
    Ecdsa,
}

/// What [`PsbtPlan::finish`] checks each answer against.
#[derive(Clone, Copy, Debug)]
enum Expected {
    Taproot {
        output_key: XOnlyPublicKey,
        sighash_type: TapSighashType,
    },
    TaprootScript {
        key: XOnlyPublicKey,
        leaf_hash: TapLeafHash,
        sighash_type: TapSighashType,
    },
    Ecdsa {
        public_key: CompressedPublicKey,
        sighash_type: EcdsaSighashType,
    },
}

/// A decoded PSBT with the signatures a key must make for it.
#[derive(Clone, Debug)]
pub struct PsbtPlan {
    psbt: Psbt,
    utxos: Vec<TxOut>,
    requests: Vec<SignRequest>,
    expected: Vec<Expected>,
    summary: Summary,
}

/// A PSBT with the key's signatures written in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsbtSigned {
    /// The serialized BIP174 PSBT (finalized when `transaction` is present).
    pub psbt: Vec<u8>,
    /// The consensus-encoded network transaction, when every input is signed.
    pub transaction: Option<Vec<u8>>,
    /// The transaction id (as block explorers show it), when every input is signed.
    pub txid: Option<String>,
}

/// Decodes a PSBT (binary BIP174 v0) and plans the signatures `key` must make for it: one per
/// input whose spent output is the key's (P2TR key path for a Taproot key, P2WPKH for a Segwit
/// key), and one per script-path leaf that names a Taproot key in an input that is not its key
/// path's, each with its sighash, and a [`Summary`] of the outputs and the fee.
pub fn plan_psbt(psbt: &[u8], key: &BitcoinKey, network: Network) -> Result<PsbtPlan, Error> {
    let key = Key::parse(key)?;
    let psbt = decode(psbt)?;
    let utxos = (0..psbt.inputs.len())
        .map(|i| funding_utxo(&psbt, i))
        .collect::<Result<Vec<_>, _>>()?;
    let summary = summarise(&psbt.unsigned_tx, &utxos, network)?;

    let secp = Secp256k1::verification_only();
    let mut cache = SighashCache::new(&psbt.unsigned_tx);
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    let mut finalized = Vec::new();
    for (i, (input, utxo)) in psbt.inputs.iter().zip(&utxos).enumerate() {
        let is_final = input.final_script_witness.is_some() || input.final_script_sig.is_some();
        if !owns(key, &secp, input, utxo, i)? {
            // Not the key's output: its script-path leaves may still name the key.
            let leaves = match key {
                Key::Taproot(ours) if !is_final => script_leaves(ours, &secp, input, utxo, i)?
                    .into_iter()
                    .map(|leaf_hash| (ours, leaf_hash))
                    .collect(),
                _ => Vec::new(),
            };
            if !is_final {
                // A signature the input already carries (another key's, or this key's from an
                // earlier round) must be sound, since it goes into the final transaction.
                key_path_witness(&secp, &mut cache, &utxos, input, i)?;
                script_path_witness(&secp, &mut cache, &utxos, input, i)?;
            }
            for (ours, leaf_hash) in leaves {
                let (request, want) =
                    script_request_for(ours, &mut cache, &utxos, input, i, leaf_hash)?;
                requests.push(request);
                expected.push(want);
            }
            continue;
        }
        if is_final {
            finalized.push(i);
            continue;
        }
        let (request, want) = request_for(key, &secp, &mut cache, &utxos, input, i)?;
        requests.push(request);
        expected.push(want);
    }
    if requests.is_empty() {
        return Err(Error::Refused(match finalized.as_slice() {
            [] => "no input of the PSBT is spendable by this key".to_owned(),
            done => format!("every input of this key is already finalized (inputs {done:?})"),
        }));
    }
    Ok(PsbtPlan {
        psbt,
        utxos,
        requests,
        expected,
        summary,
    })
}

impl PsbtPlan {
    /// The signatures to make, in input order.
    pub fn requests(&self) -> &[SignRequest] {
        &self.requests
    }

    /// What the transaction moves: each output and the fee.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Writes the service's signatures into the PSBT. `signatures[i]` answers `requests()[i]`:
    /// 64 bytes, BIP340 `r‖s` or ECDSA `r‖s` with a low S. Each is checked against the right
    /// key and sighash (`Error::Signature` otherwise), then written as `tap_key_sig` (with the
    /// sighash byte unless SIGHASH_DEFAULT), as a `tap_script_sigs` entry, or as a
    /// `partial_sigs` entry (DER and the sighash byte). When every input then carries a
    /// complete signature (a key-path one, or one for a `<key> OP_CHECKSIG` leaf; this key's or
    /// another key's already in the PSBT), the inputs are finalized (`final_script_witness`)
    /// and the network transaction is extracted.
    pub fn finish(self, signatures: &[[u8; 64]]) -> Result<PsbtSigned, Error> {
        let PsbtPlan {
            mut psbt,
            utxos,
            requests,
            expected,
            ..
        } = self;
        if signatures.len() != requests.len() {
            return Err(Error::Signature(format!(
                "{} signatures answer {} requests",
                signatures.len(),
                requests.len()
            )));
        }
        let secp = Secp256k1::verification_only();
        for ((request, want), signature) in requests.iter().zip(&expected).zip(signatures) {
            let i = request.input;
            let message = Message::from_digest(request.message);
            let input = psbt
                .inputs
                .get_mut(i)
                .ok_or_else(|| Error::Signature(format!("input {i} is not in the PSBT")))?;
            match *want {
                Expected::Taproot {
                    output_key,
                    sighash_type,
                } => {
                    let signature = secp256k1::schnorr::Signature::from_slice(signature)
                        .map_err(|e| Error::Signature(format!("input {i}: BIP340: {e}")))?;
                    secp.verify_schnorr(&signature, &message, &output_key)
                        .map_err(|_| {
                            Error::Signature(format!(
                                "input {i}: the BIP340 signature does not verify under the \
                                 Taproot output key {output_key}"
                            ))
                        })?;
                    input.tap_key_sig = Some(bitcoin::taproot::Signature {
                        signature,
                        sighash_type,
                    });
                }
                Expected::TaprootScript {
                    key,
                    leaf_hash,
                    sighash_type,
                } => {
                    let signature = secp256k1::schnorr::Signature::from_slice(signature)
                        .map_err(|e| Error::Signature(format!("input {i}: BIP340: {e}")))?;
                    secp.verify_schnorr(&signature, &message, &key)
                        .map_err(|_| {
                            Error::Signature(format!(
                                "input {i}: the BIP340 signature for leaf {leaf_hash} does not \
                                 verify under the key {key}"
                            ))
                        })?;
                    input.tap_script_sigs.insert(
                        (key, leaf_hash),
                        bitcoin::taproot::Signature {
                            signature,
                            sighash_type,
                        },
                    );
                }
                Expected::Ecdsa {
                    public_key,
                    sighash_type,
                } => {
                    let signature = secp256k1::ecdsa::Signature::from_compact(signature)
                        .map_err(|e| Error::Signature(format!("input {i}: ECDSA: {e}")))?;
                    let mut low = signature;
                    low.normalize_s();
                    if low != signature {
                        return Err(Error::Signature(format!(
                            "input {i}: the ECDSA signature's S is not low (BIP146)"
                        )));
                    }
                    secp.verify_ecdsa(&message, &signature, &public_key.0)
                        .map_err(|_| {
                            Error::Signature(format!(
                                "input {i}: the ECDSA signature does not verify under {public_key}"
                            ))
                        })?;
                    input.partial_sigs.insert(
                        public_key.into(),
                        bitcoin::ecdsa::Signature {
                            signature,
                            sighash_type,
                        },
                    );
                }
            }
        }

        let tx = psbt.unsigned_tx.clone();
        let mut cache = SighashCache::new(&tx);
        let mut witnesses = Vec::with_capacity(psbt.inputs.len());
        for (i, input) in psbt.inputs.iter().enumerate() {
            if input.final_script_witness.is_some() || input.final_script_sig.is_some() {
                witnesses.push(None);
            } else {
                let witness = match key_path_witness(&secp, &mut cache, &utxos, input, i)? {
                    Some(w) => Some(w),
                    None => script_path_witness(&secp, &mut cache, &utxos, input, i)?,
                };
                match witness {
                    Some(witness) => witnesses.push(Some(witness)),
                    None => {
                        return Ok(PsbtSigned {
                            psbt: psbt.serialize(),
                            transaction: None,
                            txid: None,
                        });
                    }
                }
            }
        }
        for (input, witness) in psbt.inputs.iter_mut().zip(witnesses) {
            if let Some(witness) = witness {
                *input = finalized(input, witness);
            }
        }
        let serialized = psbt.serialize();
        let transaction = psbt.extract_tx_unchecked_fee_rate();
        Ok(PsbtSigned {
            psbt: serialized,
            transaction: Some(bitcoin::consensus::serialize(&transaction)),
            txid: Some(transaction.compute_txid().to_string()),
        })
    }
}

/// A binary PSBT, all of it: the bytes after its last map are refused too (and so, by the
/// decoder, is any version but 0).
fn decode(bytes: &[u8]) -> Result<Psbt, Error> {
    let malformed = |reason: String| Error::Malformed {
        format: "PSBT",
        reason,
    };
    let mut rest = bytes;
    let psbt = Psbt::deserialize_from_reader(&mut rest).map_err(|e| malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(malformed(format!(
            "{} bytes after the last output map",
            rest.len()
        )));
    }
    Ok(psbt)
}

/// The output input `i` spends: its `witness_utxo`, or the output of its `non_witness_utxo`
/// (whose txid must be the outpoint's); when both are present they must agree.
fn funding_utxo(psbt: &Psbt, i: usize) -> Result<TxOut, Error> {
    let input = &psbt.inputs[i];
    let outpoint = psbt.unsigned_tx.input[i].previous_output;
    let from_tx = match &input.non_witness_utxo {
        Some(tx) => {
            let txid = tx.compute_txid();
            if txid != outpoint.txid {
                return Err(Error::Refused(format!(
                    "input {i} spends {outpoint} but its non_witness_utxo is transaction {txid}"
                )));
            }
            let out = usize::try_from(outpoint.vout)
                .ok()
                .and_then(|vout| tx.output.get(vout))
                .ok_or_else(|| {
                    Error::Refused(format!(
                        "input {i} spends output {} but its non_witness_utxo has {} outputs",
                        outpoint.vout,
                        tx.output.len()
                    ))
                })?;
            Some(out.clone())
        }
        None => None,
    };
    match (&input.witness_utxo, from_tx) {
        (Some(w), Some(t)) if *w != t => Err(Error::Refused(format!(
            "input {i}: witness_utxo ({} sat, script {}) differs from the output of its \
             non_witness_utxo ({} sat, script {})",
            w.value.to_sat(),
            w.script_pubkey.to_hex_string(),
            t.value.to_sat(),
            t.script_pubkey.to_hex_string()
        ))),
        (Some(w), _) => Ok(w.clone()),
        (None, Some(t)) => Ok(t),
        (None, None) => Err(Error::Refused(format!(
            "input {i} has no UTXO (witness_utxo or non_witness_utxo)"
        ))),
    }
}

/// The outputs (address, or `script:<hex>` when the script has none) and the fee.
fn summarise(tx: &Transaction, utxos: &[TxOut], network: Network) -> Result<Summary, Error> {
    let params = network.params();
    let transfers: Vec<Transfer> = tx
        .output
        .iter()
        .map(|out| Transfer {
            to: match Address::from_script(&out.script_pubkey, params) {
                Ok(address) => address.to_string(),
                Err(_) => format!("script:{}", out.script_pubkey.to_hex_string()),
            },
            amount: u128::from(out.value.to_sat()),
        })
        .collect();
    let spent: u128 = utxos.iter().map(|u| u128::from(u.value.to_sat())).sum();
    let paid: u128 = transfers.iter().map(|t| t.amount).sum();
    let fee = spent.checked_sub(paid).ok_or_else(|| {
        Error::Refused(format!(
            "the outputs ({paid} sat) exceed the inputs ({spent} sat)"
        ))
    })?;
    Ok(Summary {
        chain: Chain::Bitcoin,
        kind: "psbt",
        network: Some(network.to_string()),
        transfers,
        fee: Some(fee),
    })
}

/// Whether input `i` spends an output of `key`: for a Taproot key, a P2TR output whose key is
/// the internal key tweaked with the input's `tap_merkle_root` (refused when the input names the
/// key as `tap_internal_key` but the script disagrees, or names another internal key for the
/// key's output); for a Segwit key, the P2WPKH output of its hash160.
fn owns<C: Verification>(
    key: Key,
    secp: &Secp256k1<C>,
    input: &Input,
    utxo: &TxOut,
    i: usize,
) -> Result<bool, Error> {
    let spk = &utxo.script_pubkey;
    match key {
        Key::Taproot(internal) => {
            let (output_key, _) = internal.tap_tweak(secp, input.tap_merkle_root);
            let ours = *spk == ScriptBuf::new_p2tr_tweaked(output_key);
            match input.tap_internal_key {
                Some(named) if named == internal && !ours => Err(Error::Refused(format!(
                    "input {i} names this key as tap_internal_key, but its script {} is not \
                     the key's P2TR output {}",
                    spk.to_hex_string(),
                    tweak_description(input.tap_merkle_root)
                ))),
                Some(named) if named != internal && ours => Err(Error::Refused(format!(
                    "input {i} pays this key's P2TR output but names another tap_internal_key \
                     ({named})"
                ))),
                _ => Ok(ours),
            }
        }
        Key::Segwit(public_key) => Ok(*spk == ScriptBuf::new_p2wpkh(&public_key.wpubkey_hash())),
    }
}

/// The signature `key` must make for its input `i`: the BIP341 key-path sighash (Taproot) or
/// the BIP143 sighash (P2WPKH) under the input's sighash type.
fn request_for<C: Verification>(
    key: Key,
    secp: &Secp256k1<C>,
    cache: &mut SighashCache<&Transaction>,
    utxos: &[TxOut],
    input: &Input,
    i: usize,
) -> Result<(SignRequest, Expected), Error> {
    let outputs = cache.transaction().output.len();
    let (message, kind, want) = match key {
        Key::Taproot(internal) => {
            let sighash_type = taproot_sighash_type(input, i, outputs)?;
            let message = cache
                .taproot_key_spend_signature_hash(i, &Prevouts::All(utxos), sighash_type)
                .map_err(|e| Error::Refused(format!("input {i}: BIP341 sighash: {e}")))?;
            let (output_key, _) = internal.tap_tweak(secp, input.tap_merkle_root);
            (
                message.to_byte_array(),
                SigKind::Taproot {
                    merkle_root: input.tap_merkle_root.map(TapNodeHash::to_byte_array),
                },
                Expected::Taproot {
                    output_key: output_key.to_x_only_public_key(),
                    sighash_type,
                },
            )
        }
        Key::Segwit(public_key) => {
            let sighash_type = ecdsa_sighash_type(input, i)?;
            check_single(
                matches!(
                    sighash_type,
                    EcdsaSighashType::Single | EcdsaSighashType::SinglePlusAnyoneCanPay
                ),
                i,
                outputs,
            )?;
            let utxo = utxos
                .get(i)
                .ok_or_else(|| Error::Refused(format!("input {i} has no UTXO")))?;
            let message = cache
                .p2wpkh_signature_hash(i, &utxo.script_pubkey, utxo.value, sighash_type)
                .map_err(|e| Error::Refused(format!("input {i}: BIP143 sighash: {e}")))?;
            (
                message.to_byte_array(),
                SigKind::Ecdsa,
                Expected::Ecdsa {
                    public_key,
                    sighash_type,
                },
            )
        }
    };
    Ok((
        SignRequest {
            input: i,
            message,
            kind,
        },
        want,
    ))
}

/// The script-path leaves of input `i` that name the Taproot key `ours`: its BIP371
/// `tap_scripts` entries whose leaf is a BIP342 tapscript pushing the key. Each leaf's control
/// block must commit it to the spent output's key (BIP341 "Script validation rules"); an input
/// whose control block does not is refused rather than signed.
fn script_leaves<C: Verification>(
    ours: XOnlyPublicKey,
    secp: &Secp256k1<C>,
    input: &Input,
    utxo: &TxOut,
    i: usize,
) -> Result<Vec<TapLeafHash>, Error> {
    if !utxo.script_pubkey.is_p2tr() {
        return Ok(Vec::new());
    }
    let mut leaves = Vec::new();
    for (control, (script, version)) in &input.tap_scripts {
        let pushes_ours = script.instructions().any(|step| {
            matches!(step, Ok(Instruction::PushBytes(b)) if b.as_bytes() == ours.serialize())
        });
        if *version != LeafVersion::TapScript || !pushes_ours {
            continue;
        }
        let leaf_hash = TapLeafHash::from_script(script, *version);
        let output_key = p2tr_output_key(&utxo.script_pubkey, i)?;
        if !control.verify_taproot_commitment(secp, output_key, script) {
            return Err(Error::Refused(format!(
                "input {i}: the control block of leaf {leaf_hash} does not commit it to the \
                 output key {output_key}"
            )));
        }
        if !leaves.contains(&leaf_hash) {
            leaves.push(leaf_hash);
        }
    }
    Ok(leaves)
}

/// The signature the key `ours` makes for the script-path leaf `leaf_hash` of its input `i`:
/// the BIP341 sighash with the leaf's extension (BIP342, "Signature validation").
fn script_request_for(
    ours: XOnlyPublicKey,
    cache: &mut SighashCache<&Transaction>,
    utxos: &[TxOut],
    input: &Input,
    i: usize,
    leaf_hash: TapLeafHash,
) -> Result<(SignRequest, Expected), Error> {
    let sighash_type = taproot_sighash_type(input, i, cache.transaction().output.len())?;
    let message = cache
        .taproot_script_spend_signature_hash(i, &Prevouts::All(utxos), leaf_hash, sighash_type)
        .map_err(|e| Error::Refused(format!("input {i}: BIP341 script-path sighash: {e}")))?;
    Ok((
        SignRequest {
            input: i,
            message: message.to_byte_array(),
            kind: SigKind::TaprootScript {
                leaf_hash: leaf_hash.to_byte_array(),
            },
        },
        Expected::TaprootScript {
            key: ours,
            leaf_hash,
            sighash_type,
        },
    ))
}

/// The key of a leaf that is exactly `<32-byte key> OP_CHECKSIG`, the one script-path form
/// whose witness the signature alone completes.
fn single_key_leaf(script: &ScriptBuf) -> Option<XOnlyPublicKey> {
    let key = XOnlyPublicKey::from_slice(script.as_bytes().get(1..33)?).ok()?;
    let expected = Builder::new()
        .push_x_only_key(&key)
        .push_opcode(OP_CHECKSIG)
        .into_script();
    (*script == expected).then_some(key)
}

/// The output key of a P2TR script.
fn p2tr_output_key(spk: &ScriptBuf, i: usize) -> Result<XOnlyPublicKey, Error> {
    spk.as_bytes()
        .get(2..34)
        .and_then(|b| XOnlyPublicKey::from_slice(b).ok())
        .ok_or_else(|| {
            Error::Refused(format!(
                "input {i} spends a P2TR output whose key is not a curve point"
            ))
        })
}

/// The final witness of a script-path spend when input `i` carries a `tap_script_sigs` entry
/// for one of its `tap_scripts` leaves of the form `<key> OP_CHECKSIG`: the signature, the
/// leaf's script and its control block (BIP341 "Script validation rules"). The control block
/// must commit the leaf to the output key and the signature must verify under the key and the
/// leaf's sighash (refused otherwise); `None` when no such leaf is signed.
fn script_path_witness<C: Verification>(
    secp: &Secp256k1<C>,
    cache: &mut SighashCache<&Transaction>,
    utxos: &[TxOut],
    input: &Input,
    i: usize,
) -> Result<Option<Witness>, Error> {
    let Some(utxo) = utxos.get(i) else {
        return Ok(None);
    };
    if !utxo.script_pubkey.is_p2tr() {
        return Ok(None);
    }
    for (control, (script, version)) in &input.tap_scripts {
        let Some(key) = single_key_leaf(script) else {
            continue;
        };
        let leaf_hash = TapLeafHash::from_script(script, *version);
        let Some(sig) = input.tap_script_sigs.get(&(key, leaf_hash)) else {
            continue;
        };
        if *version != LeafVersion::TapScript {
            continue;
        }
        let output_key = p2tr_output_key(&utxo.script_pubkey, i)?;
        if !control.verify_taproot_commitment(secp, output_key, script) {
            return Err(Error::Refused(format!(
                "input {i}: the control block of signed leaf {leaf_hash} does not commit it \
                 to the output key {output_key}"
            )));
        }
        let sighash = cache
            .taproot_script_spend_signature_hash(
                i,
                &Prevouts::All(utxos),
                leaf_hash,
                sig.sighash_type,
            )
            .map_err(|e| Error::Refused(format!("input {i}: BIP341 script-path sighash: {e}")))?;
        secp.verify_schnorr(
            &sig.signature,
            &Message::from_digest(sighash.to_byte_array()),
            &key,
        )
        .map_err(|_| {
            Error::Refused(format!(
                "input {i} carries a tap_script_sig for leaf {leaf_hash} that does not verify \
                 under {key}"
            ))
        })?;
        let mut witness = Witness::new();
        witness.push(sig.to_vec());
        witness.push(script.as_bytes());
        witness.push(control.serialize());
        return Ok(Some(witness));
    }
    Ok(None)
}

fn tweak_description(merkle_root: Option<TapNodeHash>) -> String {
    match merkle_root {
        Some(root) => format!("for tap_merkle_root {root}"),
        None => "for the BIP86 key path (no tap_merkle_root)".to_owned(),
    }
}

/// Input `i`'s BIP341 sighash type (SIGHASH_DEFAULT when the PSBT names none), checked against
/// the transaction's `outputs` (see [`check_single`]).
fn taproot_sighash_type(input: &Input, i: usize, outputs: usize) -> Result<TapSighashType, Error> {
    let sighash_type = input.taproot_hash_ty().map_err(|_| {
        Error::Refused(format!(
            "input {i} has sighash type {:#x}, which BIP341 does not define",
            input.sighash_type.map_or(0, |t| t.to_u32())
        ))
    })?;
    check_single(
        matches!(
            sighash_type,
            TapSighashType::Single | TapSighashType::SinglePlusAnyoneCanPay
        ),
        i,
        outputs,
    )?;
    Ok(sighash_type)
}

/// Input `i`'s BIP143 sighash type (SIGHASH_ALL when the PSBT names none).
fn ecdsa_sighash_type(input: &Input, i: usize) -> Result<EcdsaSighashType, Error> {
    input.ecdsa_hash_ty().map_err(|_| {
        Error::Refused(format!(
            "input {i} has sighash type {:#x}, which is not a standard BIP143 type",
            input.sighash_type.map_or(0, |t| t.to_u32())
        ))
    })
}

/// SIGHASH_SINGLE signs the output at the input's own index: refused when there is none.
fn check_single(single: bool, i: usize, outputs: usize) -> Result<(), Error> {
    if single && i >= outputs {
        return Err(Error::Refused(format!(
            "input {i} uses SIGHASH_SINGLE but the transaction has no output {i} ({outputs} \
             outputs)"
        )));
    }
    Ok(())
}

/// The final witness of a key-path spend when input `i` carries its signature: a P2TR input
/// with a `tap_key_sig`, or a P2WPKH input with a partial signature of the key its script
/// hashes. The signature is checked against the output key or public key and its own sighash
/// type (refused when it does not verify); `None` when the input is of another kind or not
/// yet signed.
fn key_path_witness<C: Verification>(
    secp: &Secp256k1<C>,
    cache: &mut SighashCache<&Transaction>,
    utxos: &[TxOut],
    input: &Input,
    i: usize,
) -> Result<Option<Witness>, Error> {
    let Some(utxo) = utxos.get(i) else {
        return Ok(None);
    };
    let spk = &utxo.script_pubkey;
    if spk.is_p2tr() {
        let Some(sig) = input.tap_key_sig else {
            return Ok(None);
        };
        let output_key = p2tr_output_key(spk, i)?;
        let sighash = cache
            .taproot_key_spend_signature_hash(i, &Prevouts::All(utxos), sig.sighash_type)
            .map_err(|e| Error::Refused(format!("input {i}: BIP341 sighash: {e}")))?;
        secp.verify_schnorr(
            &sig.signature,
            &Message::from_digest(sighash.to_byte_array()),
            &output_key,
        )
        .map_err(|_| {
            Error::Refused(format!(
                "input {i} carries a tap_key_sig that does not verify under its output key \
                 {output_key}"
            ))
        })?;
        return Ok(Some(Witness::p2tr_key_spend(&sig)));
    }
    if spk.is_p2wpkh() {
        let signed = input.partial_sigs.iter().find_map(|(pk, sig)| {
            let pk = CompressedPublicKey::try_from(*pk).ok()?;
            (*spk == ScriptBuf::new_p2wpkh(&pk.wpubkey_hash())).then_some((pk, *sig))
        });
        let Some((public_key, sig)) = signed else {
            return Ok(None);
        };
        let sighash = cache
            .p2wpkh_signature_hash(i, spk, utxo.value, sig.sighash_type)
            .map_err(|e| Error::Refused(format!("input {i}: BIP143 sighash: {e}")))?;
        secp.verify_ecdsa(
            &Message::from_digest(sighash.to_byte_array()),
            &sig.signature,
            &public_key.0,
        )
        .map_err(|_| {
            Error::Refused(format!(
                "input {i} carries a partial signature of {public_key} that does not verify"
            ))
        })?;
        return Ok(Some(Witness::p2wpkh(&sig, &public_key.0)));
    }
    Ok(None)
}

/// The input once finalized (BIP174): its UTXO, the final witness and the unknown and
/// proprietary entries; everything else is cleared.
fn finalized(input: &Input, witness: Witness) -> Input {
    Input {
        non_witness_utxo: input.non_witness_utxo.clone(),
        witness_utxo: input.witness_utxo.clone(),
        final_script_witness: Some(witness),
        proprietary: input.proprietary.clone(),
        unknown: input.unknown.clone(),
        ..Input::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn network_names_round_trip() {
        for network in [
            Network::Mainnet,
            Network::Testnet,
            Network::Signet,
            Network::Regtest,
        ] {
            assert_eq!(network.to_string().parse::<Network>().unwrap(), network);
        }
        assert_eq!("bitcoin".parse::<Network>().unwrap(), Network::Mainnet);
        let err = "testnet4".parse::<Network>().unwrap_err();
        assert!(
            matches!(err, Error::Unsupported(ref m) if m.contains("\"testnet4\"")),
            "{err}"
        );
    }

    #[test]
    fn keys_off_the_curve_are_refused() {
        // x = 5 is not the x coordinate of a secp256k1 point.
        let mut x = [0u8; 32];
        x[31] = 5;
        let err = address(&BitcoinKey::Taproot { internal_key: x }, Network::Mainnet);
        assert!(matches!(err, Err(Error::Key(_))), "{err:?}");
        let mut sec1 = [0u8; 33];
        sec1[0] = 0x04;
        let err = address(&BitcoinKey::Segwit { public_key: sec1 }, Network::Mainnet);
        assert!(matches!(err, Err(Error::Key(_))), "{err:?}");
    }

    #[test]
    fn trailing_bytes_and_other_versions_are_refused() {
        let tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![],
            output: vec![],
        };
        let mut psbt = Psbt::from_unsigned_tx(tx).unwrap();
        let mut bytes = psbt.serialize();
        assert!(decode(&bytes).is_ok());
        bytes.push(0);
        let err = decode(&bytes).unwrap_err();
        assert!(
            matches!(err, Error::Malformed { format: "PSBT", ref reason } if reason.contains("1 bytes after")),
            "{err}"
        );
        psbt.version = 2;
        let err = decode(&psbt.serialize()).unwrap_err();
        assert!(
            matches!(err, Error::Malformed { ref reason, .. } if reason.contains("versions greater than 0")),
            "{err}"
        );
    }

    #[test]
    fn single_needs_an_output_at_the_input_index() {
        assert!(check_single(true, 1, 2).is_ok());
        assert!(check_single(false, 3, 2).is_ok());
        let err = check_single(true, 2, 2).unwrap_err();
        assert!(
            matches!(err, Error::Refused(ref m) if m.starts_with("input 2 ")),
            "{err}"
        );
    }
}
