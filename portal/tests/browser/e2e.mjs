// Drives the portal page in headless Chromium for tests/portal_e2e.rs.
//
//   node e2e.mjs JOB_JSON       (or the job on standard input)
//
// The job is a JSON object:
//   mode         "read" (default), "gone", or "nojs" (open the link with
//                JavaScript off and report the visible text)
//   link         the whole link from the notice, fragment included
//   server_cert  PEM file of the portal's TLS certificate; Chromium accepts
//                exactly this certificate's public key and no other
//                untrusted one
//   wrong_codes  codes to enter first, in order (read mode)
//   code         the code to enter after them, or null (read mode)
//   reply_text   text of a reply to send once the message is open, or null
//   reply_file   path of a file to attach to that reply, or null
//   chromium     the browser binary (default /usr/bin/chromium)
//   screenshot   a PNG path for a screenshot at the end, or null
//
// It prints one JSON line: what the page showed, the result of every code
// entered and every request the browser sent (method, URL, body), so the
// caller can check that the link secret never left the browser. Errors
// print {"error": "..."} and exit with status 1.

import { X509Certificate, createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

// PBKDF2 with 600,000 iterations takes a few seconds in a busy browser.
const STEP_TIMEOUT_MS = 30_000;
// A whole job, however many codes it enters, ends within this time.
const JOB_TIMEOUT_MS = 180_000;

// Progress goes to standard error, so a failure shows the last step.
function step(text) {
  process.stderr.write(`e2e.mjs: ${new Date().toISOString()} ${text}\n`);
}

async function readJob() {
  if (process.argv[2] !== undefined) {
    return JSON.parse(process.argv[2]);
  }
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

// Chromium's --ignore-certificate-errors-spki-list takes the base64 of the
// SHA-256 of a certificate's SubjectPublicKeyInfo.
function spkiHash(pemPath) {
  const certificate = new X509Certificate(readFileSync(pemPath));
  const spki = certificate.publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64");
}

async function text(page, selector) {
  const element = await page.$(selector);
  return element === null ? null : (await element.textContent()) ?? "";
}

async function isVisible(page, selector) {
  const element = await page.$(selector);
  return element !== null && (await element.isVisible());
}

// Waits until the form's handler finished: app.js sets aria-busy to "false"
// in its finally block.
async function waitUntilIdle(page, formId) {
  await page.waitForFunction(
    (id) => document.getElementById(id).getAttribute("aria-busy") === "false",
    formId,
    { timeout: STEP_TIMEOUT_MS, polling: 100 },
  );
}

// Reads the attempts left from the status line, which app.js writes from the
// portal's 403 answer ("Wrong code. 4 tries left."). The answer's body is
// not read through Playwright: Response.json() sometimes never settled here
// (Chromium 156, playwright-core 1.64.1) for answers the page had read.
function attemptsLeft(status) {
  const match = /(\d+) tr(?:y|ies) left/.exec(status ?? "");
  return match === null ? null : Number(match[1]);
}

// Enters one code and returns the HTTP status of the unlock request, the
// attempts left that the portal answered and the status line shown.
async function enterCode(page, code) {
  step("entering a code");
  await page.waitForSelector("#unlock-form:not([hidden])", { timeout: STEP_TIMEOUT_MS });
  await page.fill("#code", code, { timeout: STEP_TIMEOUT_MS });
  const answered = page.waitForResponse(
    (response) => response.url().endsWith("/unlock") && response.request().method() === "POST",
    { timeout: STEP_TIMEOUT_MS },
  );
  await page.click("#unlock-form button[type=submit]", { timeout: STEP_TIMEOUT_MS });
  const response = await answered;
  step(`the unlock request answered HTTP ${response.status()}`);
  await waitUntilIdle(page, "unlock-form");
  const status = await text(page, "#status");
  return { http_status: response.status(), attempts_left: attemptsLeft(status), status };
}

async function sendReply(page, replyText, replyFile) {
  await page.fill("#reply-text", replyText ?? "");
  if (replyFile) {
    await page.setInputFiles("#reply-files", replyFile);
  }
  const answered = page.waitForResponse(
    (response) => response.url().endsWith("/reply") && response.request().method() === "POST",
    { timeout: STEP_TIMEOUT_MS },
  );
  await page.click("#reply-form button[type=submit]");
  const response = await answered;
  await waitUntilIdle(page, "reply-form");
  const status = await text(page, "#status");
  return {
    http_status: response.status(),
    status,
    confirmed: response.status() === 201 && status.startsWith("Your reply was sent"),
  };
}

async function read(page, job, result) {
  await page.goto(job.link, { timeout: STEP_TIMEOUT_MS });
  result.attempts = [];
  for (const code of job.wrong_codes ?? []) {
    result.attempts.push(await enterCode(page, code));
  }
  if (job.code !== null && job.code !== undefined) {
    const attempt = await enterCode(page, job.code);
    result.attempts.push(attempt);
  }
  result.opened = await isVisible(page, "#message");
  result.status = await text(page, "#status");
  result.unlock_form_visible = await isVisible(page, "#unlock-form");
  result.from = await text(page, "#msg-from");
  result.subject = await text(page, "#msg-subject");
  result.text = await text(page, "#msg-text");
  result.attachments = await page.$$eval("#msg-attachments a", (links) =>
    links.map((link) => link.download),
  );
  if (result.opened && (job.reply_text || job.reply_file)) {
    result.reply = await sendReply(page, job.reply_text, job.reply_file);
  }
}

async function gone(page, job, result) {
  const response = await page.goto(job.link, { timeout: STEP_TIMEOUT_MS });
  result.page_status = response === null ? null : response.status();
  // The server's 410 page shows #gone at once; the app page shows it once
  // its meta request comes back 410.
  await page.waitForSelector("#gone:not([hidden])", { timeout: STEP_TIMEOUT_MS });
  result.heading = await text(page, "#gone-heading");
  result.contact = await text(page, "#gone-contact");
  result.status = await text(page, "#status");
  result.opened = await isVisible(page, "#message");
}

async function noScript(page, job, result) {
  const response = await page.goto(job.link, { timeout: STEP_TIMEOUT_MS });
  result.page_status = response === null ? null : response.status();
  // The accessibility tree contains what a reader gets, apart from
  // <noscript>, which Playwright leaves out of it; the page's HTML has
  // that. The screenshot shows both together.
  result.visible = await page.locator("body").ariaSnapshot({ timeout: STEP_TIMEOUT_MS });
  result.html = await page.content();
}

async function main() {
  const job = await readJob();
  setTimeout(() => {
    process.stdout.write(`${JSON.stringify({ error: `the job took over ${JOB_TIMEOUT_MS} ms` })}\n`);
    process.exit(1);
  }, JOB_TIMEOUT_MS).unref();
  const args = [];
  // The browser setting, not Playwright's emulation, so that <noscript>
  // renders as it does for a patient who turned JavaScript off.
  if (job.mode === "nojs") {
    args.push("--blink-settings=scriptEnabled=false");
  }
  if (job.server_cert) {
    args.push(`--ignore-certificate-errors-spki-list=${spkiHash(job.server_cert)}`);
  }
  const browser = await chromium.launch({
    executablePath: job.chromium ?? "/usr/bin/chromium",
    headless: true,
    args,
    timeout: STEP_TIMEOUT_MS,
  });
  const result = { mode: job.mode ?? "read", requests: [], console_errors: [] };
  try {
    const page = await browser.newPage();
    page.on("request", (request) => {
      result.requests.push({
        method: request.method(),
        url: request.url(),
        body: request.postData() ?? "",
      });
    });
    page.on("console", (message) => {
      step(`console ${message.type()}: ${message.text()}`);
      if (message.type() === "error") {
        result.console_errors.push(message.text());
      }
    });
    if (result.mode === "gone") {
      await gone(page, job, result);
    } else if (result.mode === "nojs") {
      await noScript(page, job, result);
    } else {
      await read(page, job, result);
    }
    if (job.screenshot) {
      await page.screenshot({ path: job.screenshot, fullPage: true });
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error) => {
  process.stdout.write(`${JSON.stringify({ error: String(error?.stack ?? error) })}\n`);
  process.exit(1);
});
