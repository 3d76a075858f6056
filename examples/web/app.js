// vodfc demo page: ask the API for an upload credential, upload the file straight to VOD's OSS
// with ali-oss (multipart, parallel parts), refresh the credential when it runs out, then follow
// the upload's status until VOD has processed it. An optional cover image goes first, through
// POST /images (ImageType cover); its ImageURL becomes the video's CoverURL. Plain browser
// JavaScript, no build step. Under `vodfc serve` the app's notifications (signed webhooks) land in
// the stack's own sink, GET /_vodfc/webhooks; the log shows each one as it arrives ("Your app was
// notified: ...").
//
// Test hook (used by tests/browser): if the page defines `window.vodfcTestAfterPart`, it is awaited
// after every uploaded part with {videoId, partNumber, doneParts, totalParts}.

const API = window.location.origin; // the page is served by the API itself (`vodfc serve`)
const PART_SIZE = 1024 * 1024; // 1 MiB parts (OSS allows 100 KB to 5 GB; ali-oss grows it for huge files)
const PARALLEL = 3; // parts in flight at once
const MAX_REFRESHES = 5; // credential refreshes per upload before giving up
const POLL_LIMIT_MS = 10 * 60 * 1000; // stop following the status after 10 minutes
const FINAL = new Set(["ready", "failed", "expired", "deleted"]);
const STEPS = ["created", "uploaded", "processing", "ready"];

const $ = (id) => document.getElementById(id);
const form = $("upload-form");
const fileInput = $("file");
const coverInput = $("cover");
const titleInput = $("title");
const tokenInput = $("token");
const startButton = $("start");
const cancelButton = $("cancel");

let current = null; // the running upload: {videoId, imageId, address, coverAddress, auth, client, cancelled, stored, abort}

// --- errors in words ---------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const code = (body && body.Code) || `HTTP ${status}`;
    const message = (body && body.Message) || "The API answered with an error.";
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.apiMessage = message;
    this.field = body && body.Field;
    this.requestId = body && body.RequestId;
  }
}

class Cancelled extends Error {}

function describeError(err) {
  if (err instanceof ApiError) {
    let text = `The API refused: ${err.code}: ${err.apiMessage}`;
    if (err.field) text += ` (field ${err.field})`;
    if (err.requestId) text += ` [request ${err.requestId}]`;
    return text;
  }
  if (err && err.name === "TypeError" && /fetch/i.test(err.message)) {
    return `Could not reach the API at ${API}. Is it running?`;
  }
  if (err && (err.code || err.status)) {
    // ali-oss errors carry OSS's Code and Message (or status -1/-2 for network failures).
    if (err.code === "ConnectionTimeoutError") {
      return "The upload to storage failed: the storage endpoint did not answer in time.";
    }
    const message = String(err.message || "").replace(/^Failed to upload some parts with error: /, "");
    return `The upload to storage failed: ${err.code || `HTTP ${err.status}`}: ${message.replace(/^\w*Error: /, "")}`;
  }
  return `Something went wrong: ${err && err.message ? err.message : String(err)}`;
}

// ali-oss's status -1/-2 and RequestError: the request got no readable answer at all.
function isNetworkFailure(err) {
  return Boolean(err) && !(err instanceof ApiError) && (err.status === -1 || err.status === -2 || err.code === "RequestError");
}

// To the page a refused CORS check and an unreachable server are the same "network error", but
// a no-cors request tells them apart: it resolves (with an opaque answer) whenever the server answers.
async function explainNetworkFailure(address) {
  const origin = endpointUrl(address).origin;
  try {
    await fetch(`${origin}/`, { mode: "no-cors", cache: "no-store" });
  } catch {
    return `The upload to storage failed: the storage endpoint ${origin} could not be reached (network error). Is it running?`;
  }
  return (
    `The upload to storage failed: CORS. The storage endpoint ${origin} answers, but not to this page's ` +
    `origin ${window.location.origin}: allow that origin in the bucket's CORS rules, or open the page ` +
    "at an address the bucket allows."
  );
}

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = !text;
}

// --- the API -----------------------------------------------------------------------------------

async function api(method, path, body, extraHeaders = {}) {
  const headers = { Accept: "application/json", ...extraHeaders };
  const token = tokenInput.value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function decodeBase64Json(value, what) {
  try {
    const bytes = Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new Error(`the API's ${what} is not Base64-encoded JSON`);
  }
}

// {Endpoint, Bucket, FileName} and {AccessKeyId, AccessKeySecret, SecurityToken, ExpireUTCTime}
function decodeCredentials(answer) {
  const address = decodeBase64Json(answer.UploadAddress, "UploadAddress");
  const auth = decodeBase64Json(answer.UploadAuth, "UploadAuth");
  return { address, auth, expires: answer.ExpireUTCTime || auth.ExpireUTCTime };
}

// --- the page ----------------------------------------------------------------------------------

function log(text) {
  const item = document.createElement("li");
  const time = document.createElement("time");
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString();
  item.append(time, " ", text);
  $("log").append(item);
}

function setProgress(done, total, fileSize) {
  const percent = total ? Math.round((100 * done) / total) : 0;
  $("bar").value = percent;
  const mb = (fileSize / (1024 * 1024)).toFixed(1);
  $("bar-text").textContent =
    total > 1 ? `${percent}% (${done} of ${total} parts of ${mb} MB)` : `${percent}% of ${mb} MB`;
}

function setStatus(status, detail) {
  const el = $("status");
  el.dataset.status = status;
  el.textContent = detail ? `Status: ${status}. ${detail}` : `Status: ${status}.`;
  const reached = STEPS.indexOf(status);
  for (const li of $("steps").children) {
    const index = STEPS.indexOf(li.dataset.status);
    li.classList.toggle("done", reached >= 0 && index <= reached);
    li.classList.toggle("current", index === reached);
    if (index === reached) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  }
}

function setBusy(busy) {
  startButton.disabled = busy;
  fileInput.disabled = busy;
  coverInput.disabled = busy;
  titleInput.disabled = busy;
  cancelButton.hidden = !busy;
  form.setAttribute("aria-busy", String(busy));
}

function setExpiry(expires) {
  const when = expires ? new Date(expires) : null;
  const el = $("expires");
  el.textContent = when && !Number.isNaN(when.getTime()) ? when.toLocaleString() : "–";
}

fileInput.addEventListener("change", () => {
  const file = fileInput.files[0];
  if (file && !titleInput.value.trim()) titleInput.value = file.name.replace(/\.[^.]+$/, "");
});

// --- the upload to OSS -------------------------------------------------------------------------

function isExpired(err) {
  if (!err) return false;
  if (err.code === "SecurityTokenExpired" || err.code === "InvalidSecurityToken.Expired") return true;
  return (err.status === 403 || err.status === 400) && /expired/i.test(String(err.message));
}

function endpointUrl(address) {
  return new URL(address.Endpoint.includes("://") ? address.Endpoint : `https://${address.Endpoint}`);
}

function ossClient(address, auth, refresh) {
  const endpoint = endpointUrl(address);
  // An IP or localhost endpoint (the emulator) cannot take the bucket as a sub-domain: path style.
  const pathStyle = /^(\d{1,3}\.){3}\d{1,3}$|^\[.*\]$|^localhost$/.test(endpoint.hostname);
  // Lifetime as issued (Expiration, seconds) does not depend on this computer's clock.
  const lifetime = Number(auth.Expiration) * 1000 || Date.parse(auth.ExpireUTCTime) - Date.now();
  return new window.OSS({
    endpoint: endpoint.origin,
    bucket: address.Bucket,
    accessKeyId: auth.AccessKeyId,
    accessKeySecret: auth.AccessKeySecret,
    stsToken: auth.SecurityToken,
    secure: endpoint.protocol === "https:",
    sldEnable: pathStyle,
    // Proactive: ali-oss asks for new keys before a request once this interval has passed.
    // Reactive (an answer "expired"): uploadFile below refreshes and resumes from the checkpoint.
    refreshSTSToken: refresh,
    refreshSTSTokenInterval: Number.isFinite(lifetime) ? Math.max(1000, Math.floor(lifetime * 0.8)) : 300000,
    retryMax: 2, // network errors only
    timeout: 120000,
  });
}

async function uploadFile(upload, file) {
  let checkpoint = null;
  let refreshes = 0;
  let totalParts = Math.max(1, Math.ceil(file.size / PART_SIZE));

  const refresh = async (reason) => {
    refreshes += 1;
    if (refreshes > MAX_REFRESHES) throw new Error("the credential was refreshed too many times");
    const answer = await api("POST", `/uploads/${encodeURIComponent(upload.videoId)}/refresh`);
    const fresh = decodeCredentials(answer);
    upload.auth = fresh.auth;
    setExpiry(fresh.expires);
    log(`${reason}: got a fresh credential.`);
    return {
      accessKeyId: fresh.auth.AccessKeyId,
      accessKeySecret: fresh.auth.AccessKeySecret,
      stsToken: fresh.auth.SecurityToken,
    };
  };

  for (;;) {
    if (upload.cancelled) throw new Cancelled();
    const client = ossClient(upload.address, upload.auth, () => refresh("Credential about to expire"));
    upload.client = client;
    try {
      await client.multipartUpload(upload.address.FileName, file, {
        partSize: PART_SIZE,
        parallel: PARALLEL,
        checkpoint: checkpoint || undefined,
        progress: async (fraction, cpt) => {
          if (!cpt) {
            if (fraction === 1) setProgress(totalParts, totalParts, file.size);
            return;
          }
          const first = checkpoint === null;
          checkpoint = cpt;
          totalParts = Math.ceil(cpt.fileSize / cpt.partSize);
          setProgress(cpt.doneParts.length, totalParts, file.size);
          if (first) log(`Multipart upload started: ${totalParts} parts of ${(cpt.partSize / 1048576).toFixed(1)} MB, ${PARALLEL} at a time.`);
          const last = cpt.doneParts[cpt.doneParts.length - 1];
          if (fraction > 0 && last && typeof window.vodfcTestAfterPart === "function") {
            await window.vodfcTestAfterPart({
              videoId: upload.videoId,
              partNumber: last.number,
              doneParts: cpt.doneParts.length,
              totalParts,
            });
          }
        },
      });
      setProgress(totalParts, totalParts, file.size);
      return;
    } catch (err) {
      if (upload.cancelled || (err && err.name === "cancel")) throw new Cancelled();
      if (!isExpired(err)) throw err;
      const done = checkpoint ? checkpoint.doneParts.length : 0;
      log(`Storage said the credential has expired (${done} of ${totalParts} parts stored); refreshing.`);
      await refresh("Credential expired");
      log(checkpoint ? `Resuming from part ${done + 1}.` : "Starting again.");
    }
  }
}

// --- the cover image ----------------------------------------------------------------------------

// CreateUploadImage's ImageExt: png, jpg, jpeg or gif (VOD takes no other; the API says so in words).
function imageExt(file) {
  const match = /\.([A-Za-z0-9]+)$/.exec(file.name);
  if (match) return match[1].toLowerCase();
  return { "image/jpeg": "jpg", "image/gif": "gif" }[file.type] || "png";
}

// One PUT with the image's own credential. VOD cannot refresh an image credential (there is no
// RefreshUploadImage), and a cover is small enough to go up long before its 3,000 s run out.
async function uploadCover(upload, cover, title) {
  setStatus("requesting", "Asking the API for a cover image credential.");
  const image = await api(
    "POST",
    "/images",
    { ImageType: "cover", ImageExt: imageExt(cover), OriginalFileName: cover.name, Title: title },
    { "Idempotency-Key": crypto.randomUUID() },
  );
  upload.imageId = image.ImageId;
  $("image-id").textContent = image.ImageId;
  log(`Cover image created: ImageId ${image.ImageId}.`);
  const { address, auth } = decodeCredentials(image);
  upload.coverAddress = address;
  const client = ossClient(address, auth, async () => {
    throw new Error("an image credential cannot be refreshed; pick the cover again");
  });
  upload.client = client;
  await client.put(address.FileName, cover);
  if (upload.cancelled) throw new Cancelled();
  log(`Cover image stored; the video's CoverURL is its ImageURL.`);
  return image.ImageURL;
}

// --- the app's notifications (vodfc serve's sink) -----------------------------------------------

const SINK = "/_vodfc/webhooks";

// Polls the sink for the upload's notifications and logs each new one; stop() waits (briefly) for
// the one of the final status, which is sent right after the change the status route reports.
function watchNotifications(videoId) {
  const seen = new Set();
  let lastStatus = null;
  let available = true;
  const poll = async () => {
    if (!available) return;
    try {
      const response = await fetch(`${API}${SINK}?VideoId=${encodeURIComponent(videoId)}`, { cache: "no-store" });
      if (!response.ok) {
        available = false; // not vodfc serve's sink (a deployed API): nothing to show
        return;
      }
      for (const delivery of (await response.json()).Deliveries || []) {
        if (seen.has(delivery.WebhookId)) continue;
        seen.add(delivery.WebhookId);
        log(`Your app was notified: ${delivery.Type} (webhook ${delivery.WebhookId}, signature verified).`);
        lastStatus = delivery.Status;
      }
    } catch {
      available = false;
    }
  };
  const timer = setInterval(poll, 1000);
  return {
    async stop(finalStatus) {
      clearInterval(timer);
      for (let i = 0; i < 10 && available; i += 1) {
        await poll();
        if (!finalStatus || lastStatus === finalStatus) return;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    },
  };
}

// --- following the status ----------------------------------------------------------------------

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new Cancelled());
    }, { once: true });
  });
}

async function follow(upload) {
  const started = Date.now();
  let last = "";
  let delay = 500;
  while (Date.now() - started < POLL_LIMIT_MS) {
    const record = await api("GET", `/uploads/${encodeURIComponent(upload.videoId)}`);
    if (record.Status !== last) {
      last = record.Status;
      const detail = record.Status === "ready" && record.Duration ? `Duration ${record.Duration} s.` : record.Error || "";
      setStatus(record.Status, detail);
      log(`Status: ${record.Status}${record.LastEvent ? ` (after ${record.LastEvent})` : ""}.`);
      delay = 500;
    }
    if (FINAL.has(record.Status)) return record;
    await sleep(delay, upload.abort.signal);
    delay = Math.min(delay * 1.5, 5000);
  }
  throw new Error("VOD did not finish processing within 10 minutes; check again later.");
}

// --- the whole flow ----------------------------------------------------------------------------

async function start(file, title, cover) {
  showError("");
  $("log").replaceChildren();
  $("progress-section").hidden = false;
  $("video-id").textContent = "–";
  $("image-id").textContent = "–";
  setExpiry(null);
  setProgress(0, 0, file.size);

  const upload = {
    videoId: null,
    imageId: null,
    client: null,
    cancelled: false,
    stored: false,
    abort: new AbortController(),
  };
  current = upload;
  let notifications = null;
  let finalStatus = null;
  setBusy(true);
  try {
    const coverURL = cover ? await uploadCover(upload, cover, title) : null;
    setStatus("requesting", "Asking the API for an upload credential.");
    const body = { Title: title, FileName: file.name, FileSize: file.size };
    if (coverURL) body.CoverURL = coverURL;
    const answer = await api("POST", "/uploads", body, { "Idempotency-Key": crypto.randomUUID() });
    const { address, auth, expires } = decodeCredentials(answer);
    Object.assign(upload, { videoId: answer.VideoId, address, auth });
    $("video-id").textContent = answer.VideoId;
    setExpiry(expires);
    setStatus("created", "Uploading to storage.");
    log(`Upload created: VideoId ${answer.VideoId}.`);
    notifications = watchNotifications(answer.VideoId);

    await uploadFile(upload, file);
    upload.stored = true;
    log("All parts stored; VOD takes it from here.");
    setStatus("created", "Uploaded; waiting for VOD to confirm.");

    const record = await follow(upload);
    finalStatus = record.Status;
    await notifications.stop(finalStatus);
    if (record.Status === "ready") log("Done: the video is ready to play.");
    else showError(`The upload ended "${record.Status}"${record.Error ? `: ${record.Error}` : "."}`);
    if (upload.imageId) {
      const image = await api("GET", `/images/${encodeURIComponent(upload.imageId)}`);
      log(`Cover image: ${image.Status}.`);
    }
  } catch (err) {
    if (err instanceof Cancelled) {
      log("Cancelled.");
      return;
    }
    // Stopped before the video was stored: what was made (the upload, its cover) is deleted, as it
    // would count toward the quota (or, a stored cover, be of no use without its video).
    const unfinished = (upload.videoId || upload.imageId) && !upload.stored;
    const address = upload.address || upload.coverAddress;
    showError(isNetworkFailure(err) && address ? await explainNetworkFailure(address) : describeError(err));
    if (unfinished) await forget(upload);
    else if (upload.videoId || upload.imageId) log("Stopped by an error (see above).");
    else $("progress-section").hidden = true; // nothing was created: the error says it all
  } finally {
    if (notifications && finalStatus === null) notifications.stop(null);
    if (current === upload) current = null;
    setBusy(false);
  }
}

// An upload that stopped before its file was stored would count toward the user's pending uploads
// until cleanup expires it: delete it now.
async function forget(upload) {
  const made = [
    ["/uploads", upload.videoId, "upload"],
    ["/images", upload.imageId, "cover image"],
  ].filter(([, id]) => id);
  for (const [route, id, what] of made) {
    try {
      await api("DELETE", `${route}/${encodeURIComponent(id)}`);
      if (route === "/uploads") setStatus("deleted", "Stopped by an error; the upload was deleted.");
      log(`Stopped by an error (see above); deleted the unfinished ${what} ${id}.`);
    } catch (err) {
      log(`Stopped by an error (see above). The unfinished ${what} ${id} could not be deleted (${describeError(err)}); cancel it with DELETE ${route}/${id}.`);
    }
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const file = fileInput.files[0];
  const title = titleInput.value.trim();
  if (!file) {
    showError("Choose a video file first.");
    fileInput.focus();
    return;
  }
  if (!title) {
    showError("Give the video a title.");
    titleInput.focus();
    return;
  }
  start(file, title, coverInput.files[0] || null);
});

cancelButton.addEventListener("click", async () => {
  const upload = current;
  if (!upload) return;
  upload.cancelled = true;
  upload.abort.abort();
  if (upload.client) upload.client.cancel();
  try {
    if (upload.imageId) {
      await api("DELETE", `/images/${encodeURIComponent(upload.imageId)}`);
      log("Cover image deleted.");
    }
    if (upload.videoId) {
      await api("DELETE", `/uploads/${encodeURIComponent(upload.videoId)}`);
      setStatus("deleted", "Cancelled; the upload was deleted.");
      log("Upload deleted.");
    }
  } catch (err) {
    showError(describeError(err));
  }
});
