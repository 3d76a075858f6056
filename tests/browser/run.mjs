// Browser test of examples/web against the whole local stack (`vodfc serve`), in Debian's Chromium.
//
//   node tests/browser/run.mjs          (what `make test-browser` runs, after `npm ci` here)
//
// Starts `vodfc serve` on a free loopback port with a temporary --data-dir (unless VODFC_API and
// VODFC_VOD_URL point at a running stack), opens /demo, and checks:
//   1. an API error is shown in words (Code: Message), not as a console trace;
//   2. a 4.5 MB file goes up in 1 MB parts, three at a time, with a cover image picked beside it: the
//      image goes first (POST /images, ImageType cover, one PUT) and its ImageURL is the CoverURL of
//      POST /uploads; after the video's first part the test makes the emulator expire the upload
//      credential (POST <VOD>/_emulator/expire), so a later part is refused with
//      SecurityTokenExpired; the page must call POST /uploads/{VideoId}/refresh, resume from its
//      checkpoint, and follow the status to "ready"; the cover image is "ready" too;
//   3. the objects in the emulated OSS are byte for byte the files that were picked;
//   4. the same page loaded as http://localhost:<port>/demo (the server listens on 127.0.0.1)
//      uploads a file to "ready" too: every loopback name of the server is an allowed origin;
//   5. at an origin the emulated bucket does not allow (http://demo.vodfc.test:<port>, mapped to
//      127.0.0.1 by Chromium), the upload fails and the page says CORS, naming the origin;
//   6. with the storage unreachable (requests aborted), the page says it could not be reached;
//      either way the unfinished upload is deleted, so that it does not count toward the quota.
// Saves test-artifacts/browser/finished.png (and failure.png when something goes wrong).
//
// Environment: CHROMIUM (default /usr/bin/chromium), VODFC (default <repo>/.venv/bin/vodfc),
// VODFC_API + VODFC_VOD_URL + VODFC_OSS_URL (use a running stack), TEST_TIMEOUT_MS (default 150000).

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { deflateSync } from "node:zlib";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const ARTIFACTS = join(ROOT, "test-artifacts", "browser");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const VODFC = process.env.VODFC || join(ROOT, ".venv", "bin", "vodfc");
const TIMEOUT_MS = Number(process.env.TEST_TIMEOUT_MS || 150_000);
// A name that is not loopback (so the emulated bucket's CORS rule refuses it), mapped to 127.0.0.1
// by the browser, and treated as a secure context like localhost (the page uses crypto.randomUUID).
const FOREIGN_HOST = "demo.vodfc.test";
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
// Emulator knobs for a quick run (read by devkit/serve.py): fake transcoding in 1 s (long enough for
// the page to show "uploaded" on the way, usually), callback retries 0.2 s apart.
const EMULATOR_SETTINGS = { transcode_delay_seconds: 1.0, callback_retry_interval_seconds: 0.2 };

let serveChild = null; // killed by the watchdog if the test hangs

const FILE_SIZE = 4.5 * 1024 * 1024; // 5 parts of 1 MiB (the page's part size), the last one half
const PART_SIZE = 1024 * 1024;

const T0 = Date.now();
function step(text) {
  console.log(`[browser-test ${((Date.now() - T0) / 1000).toFixed(1).padStart(5)} s] ${text}`);
}

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.unref();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

// Deterministic, incompressible-looking bytes (a hash chain), so every part differs.
function makeFile(size) {
  const out = Buffer.alloc(size);
  let block = createHash("sha256").update("vodfc browser test").digest();
  for (let offset = 0; offset < size; offset += block.length) {
    block.copy(out, offset);
    block = createHash("sha256").update(block).digest();
  }
  return out;
}

// A small valid PNG (solid colour), built here so the test needs no fixture file.
function makePng(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes) => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(width * 3, 0x3c)]);
  const pixels = deflateSync(Buffer.concat(Array.from({ length: height }, () => row)));
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk("IHDR", header), chunk("IDAT", pixels), chunk("IEND", Buffer.alloc(0))]);
}

function sha256(buffer) {
  return createHash("sha256").update(buffer).digest("hex");
}

async function startServe() {
  if (process.env.VODFC_API) {
    assert.ok(process.env.VODFC_VOD_URL && process.env.VODFC_OSS_URL, "VODFC_VOD_URL and VODFC_OSS_URL must be set with VODFC_API");
    const trim = (url) => url.replace(/\/$/, "");
    return { api: trim(process.env.VODFC_API), vod: trim(process.env.VODFC_VOD_URL), oss: trim(process.env.VODFC_OSS_URL), stop: async () => {} };
  }
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "vodfc-browser-"));
  const api = `http://127.0.0.1:${port}`;
  step(`starting vodfc serve on ${api} (data in ${dataDir})`);
  const args = ["serve", "--host", "127.0.0.1", "--port", String(port), "--vod-port", "0", "--oss-port", "0", "--data-dir", dataDir];
  const child = spawn(VODFC, args, {
    cwd: ROOT,
    env: { ...process.env, VODFC_EMULATOR_SETTINGS: JSON.stringify(EMULATOR_SETTINGS), PYTHONUNBUFFERED: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  serveChild = child;
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const exited = new Promise((ok) => child.on("exit", (code, signal) => ok({ code, signal })));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGINT"); // serve shuts down cleanly on KeyboardInterrupt
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 30_000;
  let vod = null;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`vodfc serve exited with ${child.exitCode}:\n${output}`);
    }
    vod = vod || (output.match(/emulated VOD\s+(http:\/\/\S+)/) || [])[1];
    const oss = (output.match(/emulated OSS\s+(http:\/\/\S+)/) || [])[1];
    if (vod && oss && /vodfc ready/.test(output)) {
      try {
        const res = await fetch(`${api}/healthz`);
        if (res.ok) return { api, vod: vod.replace(/\/$/, ""), oss: oss.replace(/\/$/, ""), stop, output: () => output };
      } catch {
        // not listening yet
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`vodfc serve did not come up within 30 s:\n${output}`);
}

async function shownError(page) {
  return ((await page.locator("#error").textContent()) || "").trim();
}

// Pick a file, start, and wait for the outcome: "ready" or "error" (the error box shown).
async function uploadOnPage(page, name, buffer, title) {
  await page.setInputFiles("#file", { name, mimeType: "video/mp4", buffer });
  await page.fill("#title", title);
  await page.click("#start");
  await page.locator("#error").waitFor({ state: "hidden" });
  const outcome = await Promise.race([
    page.waitForSelector('#status[data-status="ready"]', { timeout: 60_000 }).then(() => "ready"),
    page.locator("#error").waitFor({ state: "visible", timeout: 60_000 }).then(() => "error"),
  ]);
  await page.locator("#start:not([disabled])").waitFor();
  return outcome;
}

async function assertDeleted(page, stack) {
  const videoId = (await page.textContent("#video-id")).trim();
  const record = await (await fetch(`${stack.api}/uploads/${videoId}`)).json();
  assert.equal(record.Status, "deleted", `the unfinished upload ${videoId} was left ${record.Status}`);
  assert.match(await page.locator("#log").innerText(), /deleted the unfinished upload/);
}

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const stack = await startServe();
  let browser;
  let page;
  const problems = []; // page errors and console errors: the page must not leak traces
  try {
    const foreignOrigin = `http://${FOREIGN_HOST}:${new URL(stack.api).port}`;
    const args = [...CHROMIUM_ARGS, `--host-resolver-rules=MAP ${FOREIGN_HOST} 127.0.0.1`, `--unsafely-treat-insecure-origin-as-secure=${foreignOrigin}`];
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
    const context = await browser.newContext({ viewport: { width: 900, height: 1000 } });
    page = await context.newPage();
    page.setDefaultTimeout(30_000);
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() === "error" && !/Failed to load resource/.test(msg.text())) problems.push(`console: ${msg.text()}`);
    });

    const refreshes = [];
    const ossRequests = [];
    const apiCalls = []; // "POST /images", "POST /uploads", ... in the order the page made them
    let imageAnswer = null;
    let createBody = null;
    page.on("request", (req) => {
      const url = new URL(req.url());
      if (url.origin !== stack.api) return;
      apiCalls.push(`${req.method()} ${url.pathname}`);
      if (req.method() === "POST" && url.pathname === "/uploads") createBody = JSON.parse(req.postData() || "{}");
    });
    page.on("response", async (res) => {
      const req = res.request();
      if (req.method() === "POST" && new URL(req.url()).pathname === "/images" && res.ok()) {
        imageAnswer = await res.json();
      }
      if (req.method() === "POST" && /\/uploads\/[^/]+\/refresh$/.test(new URL(req.url()).pathname)) {
        refreshes.push(res.status());
      }
      if (/[?&]partNumber=/.test(req.url())) ossRequests.push({ url: req.url(), status: res.status() });
    });

    let expiredFor = null;
    await page.exposeFunction("vodfcTestAfterPart", async ({ videoId, partNumber }) => {
      if (expiredFor) return;
      expiredFor = videoId;
      const res = await fetch(`${stack.vod}/_emulator/expire`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ VideoId: videoId }),
      });
      const body = await res.json();
      step(`part ${partNumber} stored; emulator expired ${body.expired} credential(s) of ${videoId}`);
      assert.equal(res.status, 200);
      assert.ok(body.expired >= 1, "the emulator expired no credential");
    });

    step(`opening ${stack.api}/demo`);
    await page.goto(`${stack.api}/demo`);
    await page.getByRole("heading", { name: "Upload a video" }).waitFor();

    // 1. an API error, in words
    await page.setInputFiles("#file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not a video") });
    await page.fill("#title", "Not a video");
    await page.click("#start");
    const error = page.locator("#error");
    await error.waitFor({ state: "visible" });
    const errorText = (await error.textContent()).trim();
    step(`error shown: ${errorText}`);
    assert.match(errorText, /^The API refused: [A-Za-z.]+: \S.*/);
    assert.doesNotMatch(errorText, /undefined|\[object|at \w+ \(/);
    await page.locator("#start:not([disabled])").waitFor();

    // 2. the real upload with a cover image, with a credential expiring after the video's first part
    const file = makeFile(FILE_SIZE);
    const cover = makePng(64, 36);
    await page.setInputFiles("#file", { name: "clip.mp4", mimeType: "video/mp4", buffer: file });
    await page.setInputFiles("#cover", { name: "cover.png", mimeType: "image/png", buffer: cover });
    step("file and cover image picked");
    await page.fill("#title", "Browser test clip");
    await page.click("#start");
    await error.waitFor({ state: "hidden" });

    const status = page.locator("#status");
    const seen = [];
    const outcome = await Promise.race([
      page.waitForSelector('#status[data-status="ready"]', { timeout: 60_000 }).then(() => "ready"),
      error.waitFor({ state: "visible", timeout: 60_000 }).then(() => "error"),
      (async () => {
        // record the status moving, for the log
        for (;;) {
          const s = await status.getAttribute("data-status").catch(() => null);
          if (s && seen[seen.length - 1] !== s) seen.push(s);
          if (s === "ready") return "ready";
          await new Promise((r) => setTimeout(r, 50));
        }
      })(),
    ]);
    step(`statuses seen: ${seen.join(" -> ")}`);
    if (outcome !== "ready") {
      throw new Error(`the page stopped with an error: ${(await error.textContent()).trim()}`);
    }
    await page.locator("#start:not([disabled])").waitFor();

    const videoId = (await page.textContent("#video-id")).trim();
    step(`VideoId ${videoId}, refresh answers ${JSON.stringify(refreshes)}`);
    assert.equal(expiredFor, videoId, "the credential was never expired mid-upload");
    assert.ok(refreshes.length >= 1, "the page never called POST /uploads/{VideoId}/refresh");
    assert.ok(refreshes.every((s) => s === 200), `a refresh failed: ${refreshes}`);
    const refused = ossRequests.filter((r) => r.status === 403);
    assert.ok(refused.length >= 1, "no part was refused for an expired credential");
    step(`OSS part requests: ${ossRequests.length}, refused as expired: ${refused.length}`);

    const bar = await page.locator("#bar").getAttribute("value");
    assert.equal(Number(bar), 100);
    const logText = await page.locator("#log").innerText();
    assert.match(logText, /credential has expired/);
    assert.match(logText, /Resuming from part \d/);
    assert.match(logText, /Status: ready/);
    assert.match(logText, /Your app was notified: upload\.ready/); // vodfc serve's own webhook sink

    // the API agrees
    const record = await (await fetch(`${stack.api}/uploads/${videoId}`)).json();
    assert.equal(record.Status, "ready");
    assert.equal(record.FileSize, FILE_SIZE);

    // the cover: uploaded first through /images, its ImageURL the video's CoverURL, ready at VOD
    const imageId = (await page.textContent("#image-id")).trim();
    assert.ok(imageAnswer, "the page never created a cover image (POST /images)");
    assert.equal(imageAnswer.ImageId, imageId);
    assert.ok(apiCalls.indexOf("POST /images") >= 0 && apiCalls.indexOf("POST /images") < apiCalls.lastIndexOf("POST /uploads"),
      `the cover image must be created before the video: ${apiCalls.join(", ")}`);
    assert.equal(createBody.CoverURL, imageAnswer.ImageURL, "the video's CoverURL is not the image's ImageURL");
    step(`cover ImageId ${imageId}, CoverURL ${createBody.CoverURL}`);
    let image = null;
    for (let i = 0; i < 50; i += 1) {
      image = await (await fetch(`${stack.api}/images/${imageId}`)).json();
      if (image.Status === "ready") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(image.Status, "ready", `the cover image is ${image.Status}`);
    assert.equal(image.ImageType, "cover");
    assert.equal(image.Size, cover.length);
    const storedCover = Buffer.from(await (await fetch(imageAnswer.ImageURL)).arrayBuffer());
    assert.equal(sha256(storedCover), sha256(cover), "the stored cover differs from the picked image");
    assert.match(logText, /Cover image stored/);

    // 3. the stored object is the file
    const ossObject = ossRequests[0].url.split("?")[0];
    const stored = Buffer.from(await (await fetch(ossObject)).arrayBuffer());
    assert.equal(stored.length, FILE_SIZE, "stored object has the wrong size");
    assert.equal(sha256(stored), sha256(file), "stored object differs from the file");
    step(`stored object matches (${stored.length} bytes, ${Math.ceil(FILE_SIZE / PART_SIZE)} parts)`);

    assert.deepEqual(problems, [], "the page logged errors");
    await page.screenshot({ path: join(ARTIFACTS, "finished.png"), fullPage: true });
    step(`screenshot: ${join(ARTIFACTS, "finished.png")}`);

    // 4. the page at http://localhost:<port>: an upload to "ready" from that origin
    const local = await context.newPage();
    page = local; // the failure screenshot shows this page from now on
    local.setDefaultTimeout(30_000);
    local.on("pageerror", (err) => problems.push(`page error (localhost): ${err.message}`));
    const localhostDemo = `${stack.api.replace("//127.0.0.1:", "//localhost:")}/demo`;
    step(`opening ${localhostDemo}`);
    await local.goto(localhostDemo);
    await local.getByRole("heading", { name: "Upload a video" }).waitFor();
    const small = makeFile(1.5 * PART_SIZE);
    assert.equal(await uploadOnPage(local, "local.mp4", small, "From localhost"), "ready", await shownError(local));
    const localId = (await local.textContent("#video-id")).trim();
    const localRecord = await (await fetch(`${stack.api}/uploads/${localId}`)).json();
    assert.equal(localRecord.Status, "ready");
    step(`uploaded from ${new URL(localhostDemo).origin}: ${localId} is ready`);

    // 5. the page at an origin the emulated bucket does not allow (a name that is not loopback,
    //    mapped to 127.0.0.1 by the browser): a real CORS refusal, said as such; the upload deleted
    const foreign = await context.newPage();
    page = foreign;
    foreign.setDefaultTimeout(30_000);
    foreign.on("pageerror", (err) => problems.push(`page error (${FOREIGN_HOST}): ${err.message}`));
    const foreignDemo = `${stack.api.replace("//127.0.0.1:", `//${FOREIGN_HOST}:`)}/demo`;
    step(`opening ${foreignDemo}`);
    await foreign.goto(foreignDemo);
    assert.equal(await uploadOnPage(foreign, "cors.mp4", small, "Refused by CORS"), "error");
    const corsText = await shownError(foreign);
    step(`CORS refusal shown: ${corsText}`);
    assert.match(corsText, /CORS/);
    assert.ok(corsText.includes(new URL(foreignDemo).origin), corsText);
    await assertDeleted(foreign, stack);

    // 6. storage that cannot be reached at all: said as such (not CORS); the upload deleted
    page = local;
    const unreachable = (url) => url.href.startsWith(`${stack.oss}/`);
    await local.route(unreachable, (route) => route.abort("connectionrefused"));
    assert.equal(await uploadOnPage(local, "gone.mp4", small, "Storage unreachable"), "error");
    const goneText = await shownError(local);
    step(`unreachable storage shown: ${goneText}`);
    assert.match(goneText, /could not be reached/);
    assert.doesNotMatch(goneText, /CORS/);
    await assertDeleted(local, stack);
    assert.deepEqual(problems, [], "the page threw");
  } catch (err) {
    if (page) await page.screenshot({ path: join(ARTIFACTS, "failure.png"), fullPage: true }).catch(() => {});
    if (problems.length) console.error(problems.join("\n"));
    if (stack.output) console.error(`--- vodfc serve output ---\n${stack.output().slice(-4000)}`);
    throw err;
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stack.stop();
  }
}

const watchdog = setTimeout(() => {
  console.error(`[browser-test] FAILED: no result within ${TIMEOUT_MS / 1000} s`);
  if (serveChild && serveChild.exitCode === null) serveChild.kill("SIGKILL");
  process.exit(1);
}, TIMEOUT_MS);

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (serveChild && serveChild.exitCode === null) serveChild.kill("SIGKILL");
    process.exit(130);
  });
}

main().then(
  () => {
    clearTimeout(watchdog);
    step("PASSED");
  },
  (err) => {
    clearTimeout(watchdog);
    console.error(`[browser-test] FAILED: ${err.stack || err}`);
    process.exitCode = 1;
  },
);
