// A LiteSVM runtime (the Solana SVM in-process, from the `litesvm` package) driven over stdin and
// stdout, one JSON object a line each way, for Tessera's Solana adapter tests
// (crates/test-support/src/solana_svm.rs). The unsigned messages are built by @solana/kit and
// @solana-program/system, so the wire format Tessera decodes and assembles is the ecosystem's own.
//
// Requests and replies (every reply carries "ok"; a failed one carries "error"):
//   {"op":"airdrop","to":B58,"lamports":N}                  -> {"ok":true}
//   {"op":"balance","of":B58}                               -> {"ok":true,"lamports":"N"}
//   {"op":"transfer_message","from":B58,"to":B58,"lamports":N,"version":"legacy"|"v0"}
//                                                           -> {"ok":true,"message":BASE64}
//   {"op":"send","tx":BASE64}                               -> {"ok":true,"signature":B58,"logs":[..]}
//                                                              or {"ok":false,"error":S,"logs":[..]}
// Lamport amounts may be JSON numbers or decimal strings; balances come back as decimal strings.

import { createInterface } from "node:readline";
import {
  address,
  appendTransactionMessageInstruction,
  compileTransaction,
  createNoopSigner,
  createTransactionMessage,
  getBase58Decoder,
  getBase64Decoder,
  getBase64Encoder,
  getTransactionDecoder,
  getTransactionEncoder,
  lamports,
  pipe,
  setTransactionMessageFeePayer,
} from "@solana/kit";
import { getTransferSolInstruction } from "@solana-program/system";
import { FailedTransactionMetadata, LiteSVM } from "litesvm";

const svm = new LiteSVM();
const base58 = getBase58Decoder();
const toBase64 = getBase64Decoder();
const fromBase64 = getBase64Encoder();

function transferMessage({ from, to, lamports: amount, version }) {
  if (version !== "legacy" && version !== "v0") {
    throw new Error(`version must be "legacy" or "v0", not ${JSON.stringify(version)}`);
  }
  const source = createNoopSigner(address(from));
  const message = pipe(
    createTransactionMessage({ version: version === "legacy" ? "legacy" : 0 }),
    (m) => setTransactionMessageFeePayer(source.address, m),
    (m) => svm.setTransactionMessageLifetimeUsingLatestBlockhash(m),
    (m) =>
      appendTransactionMessageInstruction(
        getTransferSolInstruction({ source, destination: address(to), amount: BigInt(amount) }),
        m,
      ),
  );
  return { message: toBase64.decode(compileTransaction(message).messageBytes) };
}

function send({ tx }) {
  const wire = fromBase64.encode(tx);
  const transaction = getTransactionDecoder().decode(wire);
  const again = getTransactionEncoder().encode(transaction);
  if (again.length !== wire.length || again.some((b, i) => b !== wire[i])) {
    return { ok: false, error: "@solana/kit re-encodes the transaction differently", logs: [] };
  }
  const result = svm.sendTransaction(transaction);
  if (result instanceof FailedTransactionMetadata) {
    return { ok: false, error: result.toString(), logs: result.meta().logs() };
  }
  return { ok: true, signature: base58.decode(result.signature()), logs: result.logs() };
}

function handle(request) {
  switch (request.op) {
    case "airdrop": {
      const result = svm.airdrop(address(request.to), lamports(BigInt(request.lamports)));
      if (result === null || result instanceof FailedTransactionMetadata) {
        return { ok: false, error: `airdrop failed: ${result}` };
      }
      return { ok: true };
    }
    case "balance":
      return { ok: true, lamports: String(svm.getBalance(address(request.of)) ?? 0n) };
    case "transfer_message":
      return { ok: true, ...transferMessage(request) };
    case "send":
      return send(request);
    default:
      return { ok: false, error: `unknown op ${JSON.stringify(request.op)}` };
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() === "") continue;
  let reply;
  try {
    reply = handle(JSON.parse(line));
  } catch (e) {
    reply = { ok: false, error: String(e?.message ?? e) };
  }
  process.stdout.write(`${JSON.stringify(reply)}\n`);
}
