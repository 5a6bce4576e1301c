// The portal page: reads the link, requests the second factor, opens the
// message in the browser and sends an encrypted reply. The cryptography is
// in scheme.js; this file only drives the page. Text from the message is
// written with textContent, never as HTML.

import {
  SchemeError,
  decode,
  deriveKeys,
  encode,
  normalise,
  openEnvelope,
  sealReply,
} from "./scheme.js";

// A server could announce a huge iteration count to freeze the page; the
// desktop's default is 600000.
const MAX_ITERATIONS = 10_000_000;

const FACTOR_LABELS = {
  code: "8-digit code from the clinic",
  passphrase: "Passphrase agreed with the clinic",
  "email-code": "8-digit code from the second e-mail (low assurance: anyone who can read your e-mail can use it)",
};

const byId = (id) => document.getElementById(id);

const page = {
  status: byId("status"),
  unlockForm: byId("unlock-form"),
  codeInput: byId("code"),
  message: byId("message"),
  replyForm: byId("reply-form"),
  replyText: byId("reply-text"),
  replyFiles: byId("reply-files"),
  gone: byId("gone"),
};

// Secrets stay in these variables only: never in storage, never in the URL.
const state = {
  id: null,
  // The page's path, "/m/{id}" or "/{prefix}/m/{id}" behind a proxy that
  // serves the portal under a path prefix; the API paths extend it.
  messagePath: "",
  linkSecret: null,
  factor: null,
  iterations: 0,
  verifier: null,
  reply: null,
  blobUrls: [],
};

function say(text) {
  page.status.textContent = text;
}

// Moves focus to an element that is not focusable by itself, so screen
// readers announce it and keyboard users continue from there.
function focusOn(element) {
  if (!element.hasAttribute("tabindex")) {
    element.setAttribute("tabindex", "-1");
  }
  element.focus();
}

function setBusy(form, busy) {
  form.setAttribute("aria-busy", busy ? "true" : "false");
  for (const control of form.querySelectorAll("button, input, textarea")) {
    control.disabled = busy;
  }
}

function showGone(contact) {
  page.unlockForm.hidden = true;
  page.message.hidden = true;
  let line = byId("gone-contact");
  if (line === null) {
    line = document.createElement("p");
    line.id = "gone-contact";
    page.gone.append(line);
  }
  line.textContent = contact ? `Contact: ${contact}` : "";
  page.gone.hidden = false;
  say("This message is no longer available.");
  focusOn(page.gone);
}

function showLocked() {
  page.unlockForm.hidden = true;
  say(
    "This message is locked after too many wrong codes. " +
      "Call the clinic and ask for a new code; the link stays the same.",
  );
  focusOn(page.status);
}

// Handles the responses that unlock and reply share (403, 423, 410).
// Returns true when the response was one of them.
async function handleRefusal(response, form, input) {
  if (response.status === 403) {
    const body = await response.json().catch(() => ({}));
    const left = Number.isInteger(body.attempts_left) ? body.attempts_left : null;
    let tries = "";
    if (left === 1) {
      tries = " 1 try left.";
    } else if (left !== null) {
      tries = ` ${left} tries left.`;
    }
    if (form === page.unlockForm) {
      say(`Wrong code.${tries}`);
    } else {
      // The code changed since the message was opened, for example because
      // the clinic issued a new one.
      say(
        `Your reply was not sent: the portal no longer accepts your code.${tries} ` +
          "Open the link from the e-mail again and enter the current code.",
      );
    }
    focusOn(input);
    return true;
  }
  if (response.status === 423) {
    showLocked();
    return true;
  }
  if (response.status === 410) {
    const body = await response.json().catch(() => ({}));
    showGone(typeof body.contact === "string" ? body.contact : "");
    return true;
  }
  return false;
}

function readLink() {
  const match = /\/m\/([A-Za-z0-9_-]{22})$/.exec(location.pathname);
  const fragment = location.hash.slice(1);
  // Drop the link secret from the address bar and the history entry.
  history.replaceState(null, "", location.pathname + location.search);
  if (match === null) {
    return false;
  }
  try {
    const id = decode(match[1], "message id");
    const linkSecret = decode(fragment, "link secret");
    if (id.length !== 16 || linkSecret.length !== 32) {
      return false;
    }
    state.id = id;
    state.messagePath = location.pathname;
    state.linkSecret = linkSecret;
    return true;
  } catch {
    return false;
  }
}

async function loadMeta() {
  let response;
  try {
    response = await fetch(`${state.messagePath}/meta`, {
      headers: { Accept: "application/json" },
      cache: "no-store",
    });
  } catch {
    say("The portal cannot be reached. Check your internet connection and reload the page.");
    return;
  }
  if (response.status === 410) {
    const body = await response.json().catch(() => ({}));
    showGone(typeof body.contact === "string" ? body.contact : "");
    return;
  }
  if (response.status === 423) {
    showLocked();
    return;
  }
  if (!response.ok) {
    say(`The portal answered with an error (HTTP ${response.status}). Reload the page later.`);
    return;
  }

  const meta = await response.json().catch(() => ({}));
  const label = FACTOR_LABELS[meta.factor];
  const iterations = meta.iterations;
  const validIterations =
    Number.isInteger(iterations) && iterations >= 1 && iterations <= MAX_ITERATIONS;
  if (label === undefined || !validIterations) {
    say("This message uses settings this page does not understand. Call the clinic.");
    return;
  }
  state.factor = meta.factor;
  state.iterations = iterations;

  const labelElement = document.querySelector('label[for="code"]');
  if (labelElement !== null) {
    labelElement.textContent = label;
  }
  if (meta.factor === "passphrase") {
    page.codeInput.setAttribute("autocomplete", "off");
    page.codeInput.removeAttribute("inputmode");
  } else {
    page.codeInput.setAttribute("inputmode", "numeric");
    page.codeInput.setAttribute("autocomplete", "one-time-code");
  }
  page.unlockForm.hidden = false;
  say("");
  page.codeInput.focus();
}

function formatDate(text) {
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? text : date.toLocaleString();
}

function formatSize(bytes) {
  if (bytes < 1024) {
    return `${bytes} bytes`;
  }
  if (bytes < 1024 * 1024) {
    return `${Math.round(bytes / 1024)} KB`;
  }
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function render(envelope) {
  byId("msg-from").textContent = envelope.from;
  byId("msg-subject").textContent = envelope.subject;
  byId("msg-date").textContent = formatDate(envelope.date);
  byId("msg-text").textContent = envelope.text;

  const list = byId("msg-attachments");
  list.replaceChildren();
  for (const attachment of envelope.attachments) {
    // application/octet-stream makes the browser download the file rather
    // than render it in this page's origin.
    const blob = new Blob([attachment.data], { type: "application/octet-stream" });
    const url = URL.createObjectURL(blob);
    state.blobUrls.push(url);
    const link = document.createElement("a");
    link.href = url;
    link.download = attachment.name;
    link.textContent = `${attachment.name} (${formatSize(attachment.data.length)})`;
    const item = document.createElement("li");
    item.append(link);
    list.append(item);
  }
  list.hidden = envelope.attachments.length === 0;

  page.unlockForm.hidden = true;
  page.message.hidden = false;
  say("The message is open. It was decrypted in this browser.");
  focusOn(byId("msg-subject"));
}

async function unlock(event) {
  event.preventDefault();
  const normalised = normalise(state.factor, page.codeInput.value);
  if (normalised === "") {
    say(state.factor === "passphrase" ? "Enter the passphrase." : "Enter the 8-digit code.");
    focusOn(page.codeInput);
    return;
  }

  setBusy(page.unlockForm, true);
  say("Checking… this takes a few seconds.");
  try {
    const keys = await deriveKeys(state.id, state.linkSecret, normalised, state.iterations);
    const response = await fetch(`${state.messagePath}/unlock`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ verifier: encode(keys.verifier) }),
      cache: "no-store",
    });
    if (await handleRefusal(response, page.unlockForm, page.codeInput)) {
      return;
    }
    if (!response.ok) {
      say(`The portal answered with an error (HTTP ${response.status}). Try again later.`);
      return;
    }
    const body = await response.json();
    const envelope = await openEnvelope(
      state.id,
      keys.wrapKey,
      decode(body.wrapped_key, "wrapped key"),
      decode(body.envelope, "envelope"),
    );
    state.verifier = keys.verifier;
    state.reply = envelope.reply;
    render(envelope);
  } catch (error) {
    if (error instanceof SchemeError && error.code === "wrong-factor") {
      say("The code was accepted, but the message does not open with it. Call the clinic.");
    } else if (error instanceof SchemeError) {
      say("The message was changed on the way and cannot be shown safely. Call the clinic.");
    } else {
      say("The portal cannot be reached. Check your internet connection and try again.");
    }
    focusOn(page.status);
  } finally {
    setBusy(page.unlockForm, false);
  }
}

async function readFiles(files) {
  const attachments = [];
  for (const file of files) {
    attachments.push({
      name: file.name,
      type: file.type || "application/octet-stream",
      data: new Uint8Array(await file.arrayBuffer()),
    });
  }
  return attachments;
}

async function sendReply(event) {
  event.preventDefault();
  const text = page.replyText.value;
  const files = Array.from(page.replyFiles.files ?? []);
  if (text.trim() === "" && files.length === 0) {
    say("Write a reply or attach a file first.");
    focusOn(page.replyText);
    return;
  }

  setBusy(page.replyForm, true);
  say("Encrypting and sending your reply…");
  try {
    const sealed = await sealReply(state.id, state.reply.publicKey, state.reply.proof, {
      text,
      attachments: await readFiles(files),
    });
    const response = await fetch(`${state.messagePath}/reply`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ verifier: encode(state.verifier), ...sealed }),
      cache: "no-store",
    });
    if (await handleRefusal(response, page.replyForm, page.replyText)) {
      return;
    }
    if (response.status !== 201) {
      say(`Your reply was not sent: the portal answered HTTP ${response.status}. Try again.`);
      focusOn(page.status);
      return;
    }
    page.replyForm.reset();
    say("Your reply was sent to the clinic. Only the clinic can read it.");
    focusOn(page.status);
  } catch {
    say("Your reply was not sent: the portal cannot be reached. Try again.");
    focusOn(page.status);
  } finally {
    setBusy(page.replyForm, false);
  }
}

function start() {
  page.message.hidden = true;
  page.gone.hidden = true;
  page.unlockForm.hidden = true;
  if (!readLink()) {
    say(
      "This link is incomplete. Open the whole link from the clinic's e-mail again; " +
        "this page cannot be opened by typing its address.",
    );
    focusOn(page.status);
    return;
  }
  page.unlockForm.addEventListener("submit", unlock);
  page.replyForm.addEventListener("submit", sendReply);
  window.addEventListener("pagehide", () => {
    for (const url of state.blobUrls) {
      URL.revokeObjectURL(url);
    }
  });
  loadMeta();
}

start();
