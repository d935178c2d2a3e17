// Prints tests/vectors/solana/vectors.json: Solana addresses and unsigned messages built by
// @solana/kit and @solana-program/system from fixed inputs, the expectations of Tessera's Solana
// decoder (crates/chains/src/solana.rs). The test `vectors_match_solana_kit`
// (crates/chains/tests/solana_svm.rs) runs this again and compares its output with the committed
// file. Regenerate with: node tests/chains/solana/vectors.mjs > tests/vectors/solana/vectors.json
//
// Keys: the public keys of RFC 8032 section 7.1 TEST 1, 2 and 3 (tests/vectors/rfc8032/keys.txt).

import {
  AccountRole,
  address,
  appendTransactionMessageInstructions,
  compileTransaction,
  compressTransactionMessageUsingAddressLookupTables,
  createNoopSigner,
  createTransactionMessage,
  getAddressDecoder,
  getBase16Decoder,
  getBase16Encoder,
  pipe,
  setTransactionMessageFeePayer,
  setTransactionMessageLifetimeUsingBlockhash,
} from "@solana/kit";
import { getTransferSolInstruction } from "@solana-program/system";

const hex = getBase16Decoder();
const unhex = getBase16Encoder();
const addressOf = (publicKeyHex) => getAddressDecoder().decode(unhex.encode(publicKeyHex));

const RFC8032 = {
  TEST1: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
  TEST2: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
  TEST3: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
};
const [k1, k2, k3] = [RFC8032.TEST1, RFC8032.TEST2, RFC8032.TEST3].map(addressOf);
// Any 32 bytes serve as a blockhash for decoding; 0x11 repeated keeps the vectors readable.
const blockhash = getAddressDecoder().decode(new Uint8Array(32).fill(0x11));
// A program and an account of no meaning, for an instruction that is not a transfer.
const otherProgram = getAddressDecoder().decode(new Uint8Array(32).fill(0x22));
const tableAccount = getAddressDecoder().decode(new Uint8Array(32).fill(0x33));
const lookupTable = getAddressDecoder().decode(new Uint8Array(32).fill(0x44));

function transfer(from, to, amount) {
  return getTransferSolInstruction({
    source: createNoopSigner(from),
    destination: to,
    amount: BigInt(amount),
  });
}

function message({ version, feePayer, instructions, tables }) {
  let m = pipe(
    createTransactionMessage({ version }),
    (m) => setTransactionMessageFeePayer(feePayer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash, lastValidBlockHeight: 0n }, m),
    (m) => appendTransactionMessageInstructions(instructions, m),
  );
  if (tables) m = compressTransactionMessageUsingAddressLookupTables(m, tables);
  return hex.decode(compileTransaction(m).messageBytes);
}

const notATransfer = {
  programAddress: otherProgram,
  accounts: [{ address: tableAccount, role: AccountRole.READONLY }],
  data: new Uint8Array([0x68, 0x69]),
};

const messages = [
  {
    name: "legacy_transfer",
    kind: "solana-legacy",
    signers: [k1],
    transfers: [{ to: k2, amount: 1000000 }],
    message: message({ version: "legacy", feePayer: k1, instructions: [transfer(k1, k2, 1000000)] }),
  },
  {
    name: "v0_transfer",
    kind: "solana-v0",
    signers: [k1],
    transfers: [{ to: k2, amount: 1000000 }],
    message: message({ version: 0, feePayer: k1, instructions: [transfer(k1, k2, 1000000)] }),
  },
  {
    name: "legacy_two_signers_two_transfers",
    kind: "solana-legacy",
    signers: [k3, k1],
    transfers: [
      { to: k2, amount: 500 },
      { to: k1, amount: 700 },
    ],
    message: message({
      version: "legacy",
      feePayer: k3,
      instructions: [transfer(k1, k2, 500), transfer(k3, k1, 700)],
    }),
  },
  {
    name: "v0_lookup_table",
    kind: "solana-v0",
    signers: [k1],
    transfers: [{ to: k2, amount: 42 }],
    lookups: [{ table: lookupTable, readonly: 1 }],
    message: message({
      version: 0,
      feePayer: k1,
      instructions: [transfer(k1, k2, 42), notATransfer],
      tables: { [lookupTable]: [tableAccount] },
    }),
  },
  {
    name: "v0_recipient_from_lookup_table",
    kind: "solana-v0",
    signers: [k1],
    refused: "loaded from an address lookup table",
    message: message({
      version: 0,
      feePayer: k1,
      instructions: [transfer(k1, k2, 42)],
      tables: { [lookupTable]: [k2] },
    }),
  },
];

const addresses = Object.entries(RFC8032).map(([name, publicKey]) => ({
  name: `RFC 8032 ${name}`,
  public_key: publicKey,
  address: addressOf(publicKey),
}));

process.stdout.write(`${JSON.stringify({ addresses, messages }, null, 2)}\n`);
