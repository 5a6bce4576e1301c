// Checks scheme.js against values the Rust side sealed, without a server.
//
//   node portal/tests/crosscheck.mjs DIR
//
// Reads DIR/input.json (written by tests/portal_scheme.rs), opens the
// envelope with the code as the page does, checks every field, checks that
// a wrong code fails, seals a reply with sealReply and writes DIR/output.json
// for the Rust side to open. Also checks hpkeSealBase against RFC 9180's test
// vector A.1.1 and times deriveKeys with N = 600000. Exits with status 1 and
// a message on the first failed check.

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

const nodeMajor = Number(process.versions.node.split(".")[0]);
if (nodeMajor < 18) {
  console.error(`crosscheck: Node ${process.version} is too old; WebCrypto X25519 needs Node 18 or later`);
  process.exit(1);
}
// Node 18 has WebCrypto only under node:crypto; Node 19 and later also as
// globalThis.crypto, which scheme.js uses.
if (globalThis.crypto?.subtle === undefined) {
  globalThis.crypto = (await import("node:crypto")).webcrypto;
}
const scheme = await import("../assets/scheme.js");
const { decode, encode, normalise, deriveKeys, openEnvelope, sealReply, hpkeSealBase } = scheme;

const hex = (text) => Uint8Array.from(text.match(/../g) ?? [], (pair) => parseInt(pair, 16));

function check(condition, message) {
  if (!condition) {
    throw new Error(`crosscheck: ${message}`);
  }
}

function equalBytes(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

async function sha256(bytes) {
  return new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes));
}

// RFC 9180 appendix A.1.1: base mode, DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256, AES-128-GCM, first encryption.
async function checkHpkeVector() {
  const skEm = hex("52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736");
  const pkEm = hex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431");
  const pkRm = hex("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d");
  const info = hex("4f6465206f6e2061204772656369616e2055726e");
  const aad = hex("436f756e742d30");
  const plaintext = hex("4265617574792069732074727574682c20747275746820626561757479");
  const expected = hex(
    "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a9" +
      "6d8770ac83d07bea87e13c512a",
  );

  // PKCS#8 wrapping of a raw X25519 private key (RFC 8410 section 7).
  const pkcs8 = new Uint8Array([...hex("302e020100300506032b656e04220420"), ...skEm]);
  const subtle = globalThis.crypto.subtle;
  const ephemeral = {
    privateKey: await subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, false, ["deriveBits"]),
    publicKey: await subtle.importKey("raw", pkEm, { name: "X25519" }, true, []),
  };
  const sealed = await hpkeSealBase(pkRm, info, aad, plaintext, { aeadId: 0x0001, ephemeral });
  check(equalBytes(sealed.enc, pkEm), "HPKE vector A.1.1: enc differs");
  check(equalBytes(sealed.ciphertext, expected), "HPKE vector A.1.1: ciphertext differs");
}

function checkNormalisation(cases) {
  for (const { factor, input, expected } of cases) {
    const actual = normalise(factor, input);
    check(
      actual === expected,
      `normalise(${factor}, ${JSON.stringify(input)}) is ${JSON.stringify(actual)}, ` +
        `Rust gives ${JSON.stringify(expected)}`,
    );
  }
}

function checkEnvelope(opened, input) {
  const expected = input.expected;
  for (const field of ["from", "to", "subject", "date", "text", "contact"]) {
    check(opened[field] === expected[field], `envelope field ${field} differs`);
  }
  check(opened.attachments.length === expected.attachments.length, "attachment count differs");
  expected.attachments.forEach((attachment, i) => {
    const actual = opened.attachments[i];
    check(actual.name === attachment.name, `attachment ${i} name differs`);
    check(actual.type === attachment.type, `attachment ${i} type differs`);
    check(encode(actual.data) === attachment.data, `attachment ${i} data differs`);
  });
  check(encode(opened.reply.publicKey) === input.reply_public_key, "reply public key differs");
  check(encode(opened.reply.proof) === input.proof, "reply proof differs");
}

async function main() {
  const dir = process.argv[2];
  check(dir !== undefined, "usage: node crosscheck.mjs DIR");
  const input = JSON.parse(await readFile(join(dir, "input.json"), "utf8"));
  const id = decode(input.id, "id");
  const linkSecret = decode(input.link_secret, "link secret");
  const wrappedKey = decode(input.wrapped_key, "wrapped key");
  const envelope = decode(input.envelope, "envelope");

  await checkHpkeVector();
  checkNormalisation(input.normalise_cases);

  const keys = await deriveKeys(
    id,
    linkSecret,
    normalise(input.factor, input.code),
    input.iterations,
  );
  const verifierHash = encode(await sha256(keys.verifier));
  check(verifierHash === input.verifier_hash, "SHA-256 of the verifier differs from the upload's");
  const opened = await openEnvelope(id, keys.wrapKey, wrappedKey, envelope);
  checkEnvelope(opened, input);

  const wrong = await deriveKeys(
    id,
    linkSecret,
    normalise(input.factor, input.wrong_code),
    input.iterations,
  );
  check(encode(await sha256(wrong.verifier)) !== input.verifier_hash, "wrong code gave the verifier");
  let wrongCodeRejected = false;
  try {
    await openEnvelope(id, wrong.wrapKey, wrappedKey, envelope);
  } catch (error) {
    check(error.code === "wrong-factor", `wrong code failed with ${error.code}, not wrong-factor`);
    wrongCodeRejected = true;
  }
  check(wrongCodeRejected, "the envelope opened with a wrong code");

  const reply = await sealReply(id, opened.reply.publicKey, opened.reply.proof, {
    text: input.reply.text,
    date: input.reply.date,
    attachments: input.reply.attachments.map((attachment) => ({
      name: attachment.name,
      type: attachment.type,
      data: decode(attachment.data, "reply attachment"),
    })),
  });

  const started = performance.now();
  await deriveKeys(id, linkSecret, "12345678", 600000);
  const deriveMilliseconds = Math.round(performance.now() - started);

  await writeFile(
    join(dir, "output.json"),
    JSON.stringify({
      enc: reply.enc,
      ciphertext: reply.ciphertext,
      wrong_code_rejected: wrongCodeRejected,
      derive_ms_600000: deriveMilliseconds,
      node: process.version,
    }),
  );
}

try {
  await main();
} catch (error) {
  console.error(error.message);
  process.exit(1);
}
