// The recipient's side of the secure portal's scheme (docs/portal-scheme.md):
// factor normalisation, key derivation, opening the envelope, and sealing a
// reply with HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256 and AES-256-GCM.
//
// Only WebCrypto is used, and nothing here touches the page, so Node 20 can
// import this module for tests (portal/tests/crosscheck.mjs).

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

const PBKDF2_LABEL = utf8.encode("wardmail-portal-v1");
const WRAP_INFO = utf8.encode("wardmail-portal-v1 wrap");
const VERIFY_INFO = utf8.encode("wardmail-portal-v1 verify");
const KEY_AAD = utf8.encode("wardmail-portal-v1 key");
const MESSAGE_AAD = utf8.encode("wardmail-portal-v1 message");
const REPLY_INFO = utf8.encode("wardmail-portal-v1 reply");

const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;

/** An error of the scheme; `code` is "wrong-factor", "envelope" or "format". */
export class SchemeError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "SchemeError";
    this.code = code;
  }
}

/** Encodes bytes as base64url without padding (RFC 4648 section 5). */
export function encode(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes base64url without padding; `field` names the value in the error. */
export function decode(text, field = "value") {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new SchemeError("format", `invalid ${field}: not base64url without padding`);
  }
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const binary = atob(padded);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) {
    bytes[i] = binary.charCodeAt(i);
  }
  return bytes;
}

function concat(...parts) {
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Normalises a factor as typed. A "code" or "email-code" keeps only its
 * ASCII digits. A "passphrase" loses leading and trailing whitespace and has
 * each run of whitespace replaced by one space, keeping case. Whitespace is
 * Unicode's White_Space property, as Rust's `char::is_whitespace`. Returns ""
 * when nothing is left.
 */
export function normalise(factor, text) {
  switch (factor) {
    case "code":
    case "email-code":
      return text.replace(/[^0-9]/g, "");
    case "passphrase":
      return text
        .split(/\p{White_Space}+/u)
        .filter((word) => word !== "")
        .join(" ");
    default:
      throw new SchemeError("format", `unknown factor kind ${JSON.stringify(factor)}`);
  }
}

/**
 * Derives the wrap key (a non-extractable AES-GCM key) and the verifier
 * (32 bytes) from the id (16 bytes), the link secret S (32 bytes), the
 * normalised factor and the PBKDF2 iteration count N.
 */
export async function deriveKeys(id, linkSecret, normalised, iterations) {
  if (normalised === "") {
    throw new SchemeError("format", "the code or passphrase is empty");
  }
  const password = await subtle.importKey("raw", utf8.encode(normalised), "PBKDF2", false, [
    "deriveBits",
  ]);
  const stretched = new Uint8Array(
    await subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt: concat(PBKDF2_LABEL, id, linkSecret), iterations },
      password,
      256,
    ),
  );

  const ikm = await subtle.importKey("raw", concat(linkSecret, stretched), "HKDF", false, [
    "deriveBits",
  ]);
  const hkdf = async (info) =>
    new Uint8Array(
      await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: id, info }, ikm, 256),
    );
  const wrapBytes = await hkdf(WRAP_INFO);
  const verifier = await hkdf(VERIFY_INFO);
  const wrapKey = await subtle.importKey("raw", wrapBytes, "AES-GCM", false, ["decrypt"]);
  wrapBytes.fill(0);
  return { wrapKey, verifier };
}

/** Decrypts `nonce || ciphertext || tag`; rejects when it does not authenticate. */
async function openPart(key, aad, sealed) {
  if (sealed.length < NONCE_LENGTH + TAG_LENGTH) {
    throw new Error("sealed part too short");
  }
  const iv = sealed.subarray(0, NONCE_LENGTH);
  const plaintext = await subtle.decrypt(
    { name: "AES-GCM", iv, additionalData: aad, tagLength: 128 },
    key,
    sealed.subarray(NONCE_LENGTH),
  );
  return new Uint8Array(plaintext);
}

function requireString(object, field) {
  if (typeof object[field] !== "string") {
    throw new SchemeError("format", `invalid envelope: ${field} is missing or not text`);
  }
  return object[field];
}

function readAttachments(list, what) {
  if (!Array.isArray(list)) {
    throw new SchemeError("format", `invalid ${what}: attachments is not a list`);
  }
  return list.map((attachment) => ({
    name: requireString(attachment, "name"),
    type: requireString(attachment, "type"),
    data: decode(requireString(attachment, "data"), "attachment data"),
  }));
}

/**
 * Unwraps the content key with the wrap key and decrypts the envelope; both
 * sealed parts are bytes. Returns the envelope with attachment data and the
 * reply address as bytes. Throws a SchemeError "wrong-factor" when the key
 * does not unwrap, "envelope" when the envelope does not decrypt, and
 * "format" when its JSON does not match the scheme.
 */
export async function openEnvelope(id, wrapKey, wrappedKey, envelope) {
  let contentBytes;
  try {
    contentBytes = await openPart(wrapKey, concat(KEY_AAD, id), wrappedKey);
  } catch {
    throw new SchemeError("wrong-factor", "the code or passphrase does not open this message");
  }
  if (contentBytes.length !== 32) {
    throw new SchemeError("format", "invalid content key: not 32 bytes");
  }
  const contentKey = await subtle.importKey("raw", contentBytes, "AES-GCM", false, ["decrypt"]);
  contentBytes.fill(0);

  let plaintext;
  try {
    plaintext = await openPart(contentKey, concat(MESSAGE_AAD, id), envelope);
  } catch {
    throw new SchemeError("envelope", "the message was changed after it was sealed");
  }
  let json;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plaintext));
  } catch {
    throw new SchemeError("format", "invalid envelope: not UTF-8 JSON");
  }
  if (json === null || typeof json !== "object" || json.v !== 1) {
    throw new SchemeError("format", "unsupported envelope version");
  }
  if (json.reply === null || typeof json.reply !== "object") {
    throw new SchemeError("format", "invalid envelope: reply is missing");
  }
  const publicKey = decode(requireString(json.reply, "public_key"), "reply public key");
  const proof = decode(requireString(json.reply, "proof"), "reply proof");
  if (publicKey.length !== 32 || proof.length !== 32) {
    throw new SchemeError("format", "invalid envelope: reply key or proof is not 32 bytes");
  }
  return {
    from: requireString(json, "from"),
    to: requireString(json, "to"),
    subject: requireString(json, "subject"),
    date: requireString(json, "date"),
    text: requireString(json, "text"),
    attachments: readAttachments(json.attachments, "envelope"),
    contact: requireString(json, "contact"),
    reply: { publicKey, proof },
  };
}

// HPKE (RFC 9180). Identifiers from section 7: DHKEM(X25519, HKDF-SHA256)
// is 0x0020 and HKDF-SHA256 is 0x0001. AEAD 0x0001 is AES-128-GCM, used only
// to check RFC 9180's test vector A.1; replies use 0x0002, AES-256-GCM.
const KEM_ID = 0x0020;
const KDF_ID = 0x0001;
const AEAD_KEY_LENGTHS = new Map([
  [0x0001, 16],
  [0x0002, 32],
]);
const HPKE_VERSION = utf8.encode("HPKE-v1");
const EMPTY = new Uint8Array(0);

function i2osp(value, length) {
  const out = new Uint8Array(length);
  for (let i = length - 1, rest = value; i >= 0; i -= 1, rest >>>= 8) {
    out[i] = rest & 0xff;
  }
  return out;
}

async function hmacSha256(key, data) {
  // WebCrypto rejects an empty HMAC key. HMAC pads short keys with zeros to
  // the block size, so 32 zero bytes give the same result as the empty salt
  // that HKDF-Extract receives in RFC 9180.
  const keyBytes = key.length === 0 ? new Uint8Array(32) : key;
  const hmacKey = await subtle.importKey(
    "raw",
    keyBytes,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await subtle.sign("HMAC", hmacKey, data));
}

// RFC 9180 section 4: LabeledExtract and LabeledExpand over HKDF-SHA256.
function labeledExtract(suiteId, salt, label, ikm) {
  return hmacSha256(salt, concat(HPKE_VERSION, suiteId, utf8.encode(label), ikm));
}

async function labeledExpand(suiteId, prk, label, info, length) {
  const labeledInfo = concat(i2osp(length, 2), HPKE_VERSION, suiteId, utf8.encode(label), info);
  const blocks = [];
  let previous = EMPTY;
  for (let counter = 1; blocks.length * 32 < length; counter += 1) {
    previous = await hmacSha256(prk, concat(previous, labeledInfo, Uint8Array.of(counter)));
    blocks.push(previous);
  }
  return concat(...blocks).subarray(0, length);
}

/**
 * Seals one message in HPKE base mode to the X25519 public key `recipient`
 * (32 bytes) and returns `{enc, ciphertext}` as bytes. `ephemeral` (a
 * WebCrypto X25519 key pair) is for tests with fixed keys; by default a new
 * pair is generated. `aeadId` is 0x0002 (AES-256-GCM) except in tests.
 */
export async function hpkeSealBase(recipient, info, aad, plaintext, options = {}) {
  const aeadId = options.aeadId ?? 0x0002;
  const keyLength = AEAD_KEY_LENGTHS.get(aeadId);
  if (keyLength === undefined) {
    throw new SchemeError("format", `unsupported HPKE AEAD ${aeadId}`);
  }
  const ephemeral =
    options.ephemeral ?? (await subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]));

  // Section 4.1: Encap with DHKEM(X25519, HKDF-SHA256).
  const enc = new Uint8Array(await subtle.exportKey("raw", ephemeral.publicKey));
  const recipientKey = await subtle.importKey("raw", recipient, { name: "X25519" }, true, []);
  const dh = new Uint8Array(
    await subtle.deriveBits({ name: "X25519", public: recipientKey }, ephemeral.privateKey, 256),
  );
  // Section 7.1.4: an all-zero shared value means a low-order public key.
  if (dh.every((byte) => byte === 0)) {
    throw new SchemeError("format", "invalid reply public key: low-order X25519 point");
  }
  const kemSuite = concat(utf8.encode("KEM"), i2osp(KEM_ID, 2));
  const eaePrk = await labeledExtract(kemSuite, EMPTY, "eae_prk", dh);
  const sharedSecret = await labeledExpand(
    kemSuite,
    eaePrk,
    "shared_secret",
    concat(enc, recipient),
    32,
  );

  // Section 5.1: the key schedule in mode_base (0x00) with no PSK.
  const suite = concat(utf8.encode("HPKE"), i2osp(KEM_ID, 2), i2osp(KDF_ID, 2), i2osp(aeadId, 2));
  const pskIdHash = await labeledExtract(suite, EMPTY, "psk_id_hash", EMPTY);
  const infoHash = await labeledExtract(suite, EMPTY, "info_hash", info);
  const context = concat(Uint8Array.of(0x00), pskIdHash, infoHash);
  const secret = await labeledExtract(suite, sharedSecret, "secret", EMPTY);
  const keyBytes = await labeledExpand(suite, secret, "key", context, keyLength);
  const baseNonce = await labeledExpand(suite, secret, "base_nonce", context, NONCE_LENGTH);

  // Section 5.2: the first message uses sequence number 0, so its nonce is
  // base_nonce itself.
  const key = await subtle.importKey("raw", keyBytes, "AES-GCM", false, ["encrypt"]);
  const ciphertext = new Uint8Array(
    await subtle.encrypt({ name: "AES-GCM", iv: baseNonce, additionalData: aad }, key, plaintext),
  );
  return { enc, ciphertext };
}

/**
 * Seals a reply to message `id` (16 bytes) for the reply public key and the
 * proof R from the envelope. `reply` is `{text, attachments, date}` with
 * attachments as `{name, type, data}` (data as bytes); `date` defaults to
 * now. Returns `{enc, ciphertext}` as base64url text for POST /m/{id}/reply.
 */
export async function sealReply(id, publicKey, proof, reply) {
  const date = reply.date ?? new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const plaintext = utf8.encode(
    JSON.stringify({
      v: 1,
      proof: encode(proof),
      date,
      text: reply.text,
      attachments: (reply.attachments ?? []).map((attachment) => ({
        name: attachment.name,
        type: attachment.type,
        data: encode(attachment.data),
      })),
    }),
  );
  const sealed = await hpkeSealBase(publicKey, concat(REPLY_INFO, id), EMPTY, plaintext);
  return { enc: encode(sealed.enc), ciphertext: encode(sealed.ciphertext) };
}
