// batchscribe web page: upload or record audio as a job (POST /batch/jobs), follow its progress
// (GET /batch/jobs/{id}), show both transcripts (the cleaned one with times), the event's
// delivery, and download the transcript as TXT, SRT or VTT (GET /batch/jobs/{id}?format=).
// Plain JavaScript, no build step, no third-party code; every request goes to this origin.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  const els = {
    dropzone: $("dropzone"),
    chooseButton: $("choose-button"),
    fileInput: $("file-input"),
    recorder: $("recorder"),
    recordStart: $("record-start"),
    recordStop: $("record-stop"),
    recElapsed: $("rec-elapsed"),
    recordHint: $("record-hint"),
    identity: $("identity"),
    tenant: $("tenant-id"),
    user: $("user-id"),
    account: $("account-id"),
    identityError: $("identity-error"),
    identityClear: $("identity-clear"),
    statusCard: $("status-card"),
    statusText: $("status-text"),
    statusClock: $("status-clock"),
    spinner: $("spinner"),
    progress: $("progress"),
    progressBar: $("progress-bar"),
    fileSummary: $("file-summary"),
    errorBox: $("error-box"),
    errorTitle: $("error-title"),
    errorAdvice: $("error-advice"),
    errorDetail: $("error-detail"),
    retryButton: $("retry-button"),
    retryRow: $("retry-row"),
    cancelButton: $("cancel-button"),
    cancelRow: $("cancel-row"),
    status: $("status"),
    statusLine: document.querySelector(".status-line"),
    statusHeading: $("status-heading"),
    results: $("results"),
    resultsHeading: $("results-heading"),
    warningBox: $("warning-box"),
    metaDuration: $("meta-duration"),
    metaCleaning: $("meta-cleaning"),
    metaEngine: $("meta-engine"),
    downloadStatus: $("download-status"),
    metaInteraction: $("meta-interaction"),
    copyId: $("copy-id"),
    eventBadge: $("event-badge"),
    eventDetail: $("event-detail"),
    eventLive: $("event-live"),
    rawTranscript: $("raw-transcript"),
    cleanedTranscript: $("cleaned-transcript"),
    copyLive: $("copy-live"),
    keyCard: $("key-card"),
    keyForm: $("key-form"),
    keyInput: $("api-key"),
    keyForget: $("key-forget"),
    keyStatus: $("key-status"),
    tenantField: $("tenant-field"),
  };

  const STORAGE_KEY = "batchscribe.identity.v1";
  // AUTH_MODE, written into the page by the server. In api_key mode the page asks for a key,
  // keeps it in sessionStorage (this tab only, gone when it closes) and sends it as a Bearer
  // token; the key names the tenant, so the tenant field is not used.
  const AUTH_MODE = document.body.dataset.authMode || "none";
  const NEEDS_KEY = AUTH_MODE === "api_key";
  const KEY_STORAGE = "batchscribe.apiKey.v1";
  const MIB = 1024 * 1024;
  const maxUploadMb = Number.parseFloat(document.body.dataset.maxUploadMb || "");
  const FINAL_EVENT_STATES = new Set(["sent", "held", "failed", "too_large"]);
  // States after which there is nothing to ask the server: no event was stored.
  const UNTRACKED_EVENT_STATES = new Set(["disabled", "not_stored"]);
  // Event polling: start quickly, back off, give up after a bounded number of tries.
  const POLL_FIRST_DELAY_MS = 400;
  const POLL_MAX_DELAY_MS = 5000;
  const POLL_MAX_TRIES = 40;
  // Job polling: a job ends when its worker is done, however long that takes.
  const JOB_POLL_FIRST_MS = 500;
  const JOB_POLL_MAX_MS = 2000;
  const FINAL_JOB_STATES = new Set(["completed", "failed", "cancelled"]);
  const DOWNLOADS = {
    text: { ext: "txt", type: "text/plain" },
    srt: { ext: "srt", type: "application/x-subrip" },
    vtt: { ext: "vtt", type: "text/vtt" },
  };

  const state = {
    busy: false,
    xhr: null,
    lastUpload: null, // { blob, name } so "Try again" can resend it
    clockTimer: null,
    pollGeneration: 0,
    pollTimer: null,
    transcripts: { raw: "", cleaned: "" },
    job: null, // { id, tenant, name }: the job being followed or shown
    jobGeneration: 0,
    jobTimer: null,
    recording: null, // { recorder, stream, chunks, started, timer, ext }
    apiKey: "", // api_key mode: the key of this tab (also in sessionStorage)
  };

  // ---------- small helpers ----------

  function formatClock(ms) {
    const total = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = String(total % 60).padStart(2, "0");
    return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function formatDuration(seconds) {
    if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "–";
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    return formatClock(seconds * 1000);
  }

  function formatBytes(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < MIB) return `${(bytes / 1024).toFixed(0)} KB`;
    return `${(bytes / MIB).toFixed(1)} MB`;
  }

  function startClock(prefixText, startedAt) {
    stopClock();
    els.statusText.textContent = prefixText;
    const tick = () => { els.statusClock.textContent = formatClock(Date.now() - startedAt); };
    tick();
    state.clockTimer = window.setInterval(tick, 500);
  }

  function stopClock() {
    if (state.clockTimer !== null) window.clearInterval(state.clockTimer);
    state.clockTimer = null;
    els.statusClock.textContent = "";
  }

  function setSpinner(on) {
    els.spinner.classList.toggle("is-idle", !on);
    if (on) els.statusLine.classList.remove("is-done");
  }

  function setProgress(percent) {
    const value = Math.max(0, Math.min(100, Math.round(percent)));
    els.progress.hidden = false;
    els.progress.setAttribute("aria-valuenow", String(value));
    els.progressBar.style.width = `${value}%`;
  }

  // ---------- identity fields (sent as headers, remembered in this browser) ----------

  const identityFields = [
    { input: els.tenant, header: "X-Tenant-ID", key: "tenant", label: "Tenant ID" },
    { input: els.user, header: "X-User-ID", key: "user", label: "User ID" },
    { input: els.account, header: "X-Account-ID", key: "account", label: "Account ID" },
  ];

  function loadIdentity() {
    let saved = {};
    try {
      saved = JSON.parse(window.localStorage.getItem(STORAGE_KEY) || "{}") || {};
    } catch (_) {
      saved = {};
    }
    let any = false;
    for (const f of identityFields) {
      if (typeof saved[f.key] === "string" && saved[f.key]) {
        f.input.value = saved[f.key];
        any = true;
      }
    }
    if (any) els.identity.open = true;
  }

  function saveIdentity() {
    const data = {};
    for (const f of identityFields) data[f.key] = f.input.value.trim();
    try {
      window.localStorage.setItem(STORAGE_KEY, JSON.stringify(data));
    } catch (_) {
      // Private browsing or storage disabled: the fields still work for this visit.
    }
  }

  // Header values must be printable ASCII: the browser refuses anything else in a header.
  const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

  function identityHeaders() {
    const headers = {};
    for (const f of identityFields) {
      f.input.removeAttribute("aria-invalid");
    }
    els.identityError.hidden = true;
    for (const f of identityFields) {
      const value = f.input.value.trim();
      if (!value) continue;
      if (NEEDS_KEY && f.key === "tenant") continue; // the key names the tenant
      if (!PRINTABLE_ASCII.test(value)) {
        f.input.setAttribute("aria-invalid", "true");
        els.identityError.textContent =
          `${f.label} can only contain letters, digits and basic punctuation (no accents or symbols).`;
        els.identityError.hidden = false;
        els.identity.open = true;
        f.input.focus();
        return null;
      }
      headers[f.header] = value;
    }
    return headers;
  }

  // ---------- API key (api_key mode) ----------

  function storedKey() {
    try {
      return window.sessionStorage.getItem(KEY_STORAGE) || "";
    } catch (_) {
      return state.apiKey || "";
    }
  }

  function keyLabel(key) {
    return `${key.slice(0, 12)}…`;
  }

  function showKeyState(kind, text) {
    els.keyStatus.textContent = text;
    els.keyStatus.dataset.state = kind;
    els.keyForget.hidden = !storedKey();
  }

  function rememberKey(key) {
    state.apiKey = key;
    try {
      if (key) window.sessionStorage.setItem(KEY_STORAGE, key);
      else window.sessionStorage.removeItem(KEY_STORAGE);
    } catch (_) {
      // Storage disabled: the key lives in this page until it is reloaded.
    }
  }

  function currentKey() {
    return state.apiKey || storedKey();
  }

  function askForKey(kind, text) {
    els.keyCard.hidden = false;
    showKeyState(kind, text);
    els.keyInput.value = "";
    els.keyInput.setAttribute("aria-invalid", kind === "refused" ? "true" : "false");
    els.keyInput.focus();
  }

  function authHeaders() {
    const key = NEEDS_KEY ? currentKey() : "";
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  function setUpKeyPrompt() {
    if (!NEEDS_KEY) return;
    els.keyCard.hidden = false;
    els.tenantField.hidden = true;
    const key = currentKey();
    if (key) {
      showKeyState("set", `Using the key ${keyLabel(key)} in this tab.`);
    } else {
      showKeyState("missing", "Enter your API key to upload.");
    }
    els.keyForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const key = els.keyInput.value.trim();
      if (!key) {
        askForKey("missing", "Paste your API key first: it starts with bsk_.");
        return;
      }
      if (!PRINTABLE_ASCII.test(key)) {
        askForKey("refused", "That is not an API key: keys are letters, digits, - and _ after bsk_.");
        return;
      }
      rememberKey(key);
      els.keyInput.value = "";
      els.keyInput.removeAttribute("aria-invalid");
      showKeyState("set", `Using the key ${keyLabel(key)} in this tab.`);
      // A refused upload can go again with the new key.
      if (!els.errorBox.hidden && state.lastUpload) els.retryRow.hidden = false;
    });
    els.keyForget.addEventListener("click", () => {
      rememberKey("");
      askForKey("missing", "The key was forgotten. Enter a key to upload again.");
    });
  }

  // ---------- busy state ----------

  function setBusy(busy) {
    state.busy = busy;
    els.chooseButton.disabled = busy;
    els.recordStart.disabled = busy || !recordingSupported();
    els.dropzone.classList.toggle("is-disabled", busy);
    els.cancelRow.hidden = !busy;
  }

  // ---------- errors in plain words ----------

  function clearError() {
    els.errorBox.hidden = true;
    els.retryRow.hidden = true;
    els.status.hidden = false;
    els.errorTitle.textContent = "";
    els.errorAdvice.textContent = "";
    els.errorDetail.textContent = "";
  }

  function showError({ title, advice, detail = "", retry = false }) {
    stopClock();
    setSpinner(false);
    els.progress.hidden = true;
    els.statusCard.hidden = false;
    // The alert box says it all; the status line would only repeat the title.
    els.status.hidden = true;
    els.statusText.textContent = "";
    els.errorTitle.textContent = title;
    els.errorAdvice.textContent = advice;
    els.errorDetail.textContent = detail;
    els.retryRow.hidden = !(retry && state.lastUpload);
    els.errorBox.hidden = false;
  }

  function parseErrorBody(text) {
    try {
      const body = JSON.parse(text);
      if (body && body.error && typeof body.error === "object") {
        return { code: String(body.error.code || ""), message: String(body.error.message || "") };
      }
      if (body && typeof body.detail === "string") return { code: "", message: body.detail };
    } catch (_) {
      // Not JSON (a proxy's HTML page, for example): fall back to the status alone.
    }
    return { code: "", message: "" };
  }

  // The server writes its list of accepted formats into the page.
  const ACCEPTED = document.body.dataset.acceptedFormats || "";

  function explainHttpError(status, body, retryAfter, interactionId) {
    const { code, message } = parseErrorBody(body);
    const ref = interactionId ? ` Reference: ${interactionId}.` : "";
    const detail = (message ? `Server said: ${message}` : "") + ref;
    switch (status) {
      case 401: {
        if (code === "gateway_secret_required") {
          return {
            title: "This server only accepts requests through its gateway",
            advice: "Open the page through the address your organisation gave you, not the server's own address.",
            detail,
          };
        }
        const why = {
          authentication_required: "This server needs an API key. Enter yours above, then press Try again.",
          invalid_api_key: "The server did not recognise the key. Check that you pasted the whole key (it starts with bsk_), or ask whoever runs this server for a new one; enter it above, then press Try again.",
          api_key_revoked: "This key was revoked. Ask whoever runs this server for a new one; enter it above, then press Try again.",
        };
        return {
          title: "The API key was not accepted",
          advice: why[code] || why.invalid_api_key,
          detail,
          retry: true,
          refusedKey: true,
        };
      }
      case 403:
        if (code === "tenant_mismatch") {
          return {
            title: "The tenant does not match your API key",
            advice: "Your key already names your tenant: clear the Tenant ID field, then try again.",
            detail,
            retry: true,
          };
        }
        return {
          title: "The server refused this request",
          advice: "Open the page from the server's own address, then try again.",
          detail,
        };
      case 400:
        if (code === "invalid_header") {
          return {
            title: "One of the optional fields was refused",
            advice: "Check the tenant, user and account fields: at most 256 characters, no line breaks. Clear them to use the server's defaults.",
            detail,
          };
        }
        return {
          title: "This file can't be used",
          advice: ACCEPTED
            ? `Choose a non-empty audio file in one of these formats: ${ACCEPTED}.`
            : "Choose a non-empty audio file.",
          detail,
        };
      case 413:
        return {
          title: "The file is too large",
          advice: Number.isFinite(maxUploadMb)
            ? `The limit is ${maxUploadMb} MB. Trim the recording or export it as MP3 or Opus, then upload it again.`
            : "Trim the recording or export it as MP3 or Opus, then upload it again.",
          detail,
        };
      case 415:
      case 422:
        return {
          title: "This doesn't look like audio we can read",
          advice: `The file could not be decoded as sound. Check that it plays in a media player, or export it again as ${ACCEPTED}.`,
          detail,
        };
      case 429:
      case 503: {
        const seconds = Number.parseInt(retryAfter || "", 10);
        const wait = Number.isFinite(seconds) && seconds > 0
          ? `Wait about ${seconds} second${seconds === 1 ? "" : "s"}, then try again.`
          : "Wait a little, then try again.";
        const reasons = {
          rate_limited: ["Too many requests", "Your tenant sent more requests this minute than the server allows."],
          too_many_active_jobs: ["Too many transcriptions at once", "Your tenant already has as many transcriptions queued or running as the server allows."],
          engine_unavailable: ["The speech engine is not available", "The server cannot transcribe right now."],
          transcription_failed: ["Transcription failed on the server", "The speech engine stopped before finishing this file."],
        };
        const [title, why] = reasons[code] || ["The server is busy", "It is transcribing other audio right now."];
        return { title, advice: `${why} ${wait}`, detail, retry: true };
      }
      default:
        return {
          title: status >= 500 ? "Something went wrong on the server" : `The request was refused (${status})`,
          advice: status >= 500
            ? "Try again in a moment. If it keeps happening, tell whoever runs this server and quote the reference below."
            : "Check the file and the optional fields above, then try again.",
          detail: detail || (code ? `Error code: ${code}.` : ""),
          retry: status >= 500,
        };
    }
  }

  // ---------- upload ----------

  function upload(blob, name) {
    if (state.busy) return;
    const headers = identityHeaders();
    if (headers === null) return;
    saveIdentity();
    if (NEEDS_KEY && !currentKey()) {
      state.lastUpload = { blob, name };
      els.statusCard.hidden = false;
      showError({
        title: "An API key is needed",
        advice: "Enter the API key you were given in the API key field above, then press Try again.",
        retry: true,
      });
      askForKey("missing", "Enter your API key to upload.");
      return;
    }
    Object.assign(headers, authHeaders());

    clearError();
    stopPolling();
    stopFollowing();
    els.results.hidden = true;
    els.statusCard.hidden = false;
    els.fileSummary.textContent = `${name} · ${formatBytes(blob.size)}`;
    state.lastUpload = { blob, name };

    if (blob.size === 0) {
      showError({
        title: "This file is empty",
        advice: "Choose a file that contains audio, or record again for a little longer.",
      });
      return;
    }
    if (Number.isFinite(maxUploadMb) && blob.size > maxUploadMb * MIB) {
      showError({
        title: "The file is too large",
        advice: `The limit is ${maxUploadMb} MB and this file is ${formatBytes(blob.size)}. Trim the recording or export it as MP3 or Opus, then upload it again.`,
      });
      return;
    }

    setBusy(true);
    // Keep keyboard focus somewhere sensible when the control that started this gets disabled.
    const active = document.activeElement;
    if (!active || active === document.body || active.disabled || active.hidden) {
      els.statusHeading.focus({ preventScroll: true });
    }
    const reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    els.statusCard.scrollIntoView({ block: "nearest", behavior: reduceMotion ? "auto" : "smooth" });
    setSpinner(true);
    setProgress(0);
    els.statusText.textContent = "Uploading…";
    els.statusClock.textContent = "0%";

    const xhr = new XMLHttpRequest();
    state.xhr = xhr;
    xhr.open("POST", "/batch/jobs");
    for (const [header, value] of Object.entries(headers)) xhr.setRequestHeader(header, value);
    xhr.setRequestHeader("Accept", "application/json");
    const submittedAt = Date.now();

    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const percent = (e.loaded / e.total) * 100;
      setProgress(percent);
      els.statusClock.textContent = `${Math.round(percent)}%`;
    });
    xhr.upload.addEventListener("load", () => {
      setProgress(100);
      els.statusText.textContent = "Uploaded. Storing the recording…";
      els.statusClock.textContent = "";
    });

    xhr.addEventListener("load", () => {
      state.xhr = null;
      const interactionId = xhr.getResponseHeader("X-Interaction-ID") || "";
      if (xhr.status === 202 || xhr.status === 200) {
        let accepted = null;
        try {
          accepted = JSON.parse(xhr.responseText);
        } catch (_) {
          accepted = null;
        }
        if (!accepted || typeof accepted.job_id !== "string") {
          finishRequest();
          showError({
            title: "The server's answer could not be read",
            advice: "Try again. If it keeps happening, tell whoever runs this server.",
            detail: interactionId ? `Reference: ${interactionId}.` : "",
            retry: true,
          });
          return;
        }
        // The server warns when it made up a tenant; the page reads the job back with it, so
        // only a replaced tenant the user typed is worth a note.
        const warning = headers["X-Tenant-ID"] ? xhr.getResponseHeader("X-Warning") : null;
        followJob(
          { id: accepted.job_id, tenant: accepted.tenant_id || "", name },
          warning,
          submittedAt,
        );
      } else {
        finishRequest();
        const explained = explainHttpError(
          xhr.status, xhr.responseText, xhr.getResponseHeader("Retry-After"), interactionId,
        );
        showError(explained);
        if (explained.refusedKey && NEEDS_KEY) {
          rememberKey("");
          askForKey("refused", "That key was not accepted. Enter a valid key, then press Try again.");
        }
      }
    });
    xhr.addEventListener("error", () => {
      finishRequest();
      showError({
        title: "Could not reach the server",
        advice: "Check your connection and that the batchscribe server is running, then try again.",
        retry: true,
      });
    });
    xhr.addEventListener("abort", () => {
      finishRequest();
      showCancelled();
    });

    const form = new FormData();
    form.append("file", blob, name);
    xhr.send(form);
  }

  function finishRequest() {
    state.xhr = null;
    stopClock();
    setBusy(false);
  }

  function showCancelled() {
    stopClock();
    setSpinner(false);
    els.progress.hidden = true;
    els.statusText.textContent = "Cancelled. Choose a file or record to start again.";
  }

  // ---------- following a job ----------

  // Headers that read a job back: the key, or (without keys) the tenant the job belongs to.
  function jobHeaders(job) {
    const headers = { Accept: "application/json", ...authHeaders() };
    if (job.tenant && !NEEDS_KEY) headers["X-Tenant-ID"] = job.tenant;
    return headers;
  }

  function stopFollowing() {
    state.jobGeneration += 1;
    if (state.jobTimer !== null) window.clearTimeout(state.jobTimer);
    state.jobTimer = null;
  }

  function followJob(job, warning, submittedAt) {
    stopFollowing();
    state.job = job;
    const generation = state.jobGeneration;
    let delay = JOB_POLL_FIRST_MS;
    let failures = 0;
    let startedAt = null;
    els.statusText.textContent = "Queued: waiting for a free worker…";
    els.statusClock.textContent = "";
    setProgress(0);

    const poll = async () => {
      if (generation !== state.jobGeneration) return;
      let response;
      try {
        response = await fetch(`/batch/jobs/${encodeURIComponent(job.id)}`, {
          headers: jobHeaders(job),
          cache: "no-store",
        });
      } catch (_) {
        failures += 1;
        if (failures >= 5) {
          finishRequest();
          showError({
            title: "Lost contact with the server",
            advice: `The transcription goes on there. Check your connection, then reload the page; the job is ${job.id}.`,
          });
          return;
        }
        state.jobTimer = window.setTimeout(poll, delay);
        return;
      }
      if (generation !== state.jobGeneration) return;
      if (!response.ok) {
        finishRequest();
        const explained = explainHttpError(
          response.status, await response.text(), response.headers.get("Retry-After"), job.id,
        );
        showError(explained);
        if (explained.refusedKey && NEEDS_KEY) {
          rememberKey("");
          askForKey("refused", "That key was not accepted. Enter a valid key, then press Try again.");
        }
        return;
      }
      failures = 0;
      const view = await response.json();
      if (generation !== state.jobGeneration) return;
      const status = String(view.status || "");
      if (status === "running") {
        if (startedAt === null) {
          startedAt = Date.now();
          startClock("Transcribing…", startedAt);
        }
        const percent = Math.round(Math.max(0, Math.min(1, Number(view.progress) || 0)) * 100);
        setProgress(percent);
        els.statusText.textContent = `Transcribing… ${percent}%`;
      }
      if (FINAL_JOB_STATES.has(status)) {
        finishRequest();
        jobEnded(job, view, warning, Date.now() - (startedAt || submittedAt));
        return;
      }
      state.jobTimer = window.setTimeout(poll, delay);
      delay = Math.min(JOB_POLL_MAX_MS, Math.round(delay * 1.4));
    };
    state.jobTimer = window.setTimeout(poll, 0);
  }

  // A failed job's error code, explained like the HTTP errors the same problems once were.
  const JOB_ERROR_STATUS = {
    invalid_audio: 422,
    audio_too_long: 413,
    engine_unavailable: 503,
    engine_timeout: 503,
    transcription_failed: 503,
    storage_unavailable: 503,
    worker_lost: 503,
  };

  function jobEnded(job, view, warning, elapsedMs) {
    if (view.status === "completed" && view.result) {
      renderResult(view.result, warning, elapsedMs);
      return;
    }
    if (view.status === "cancelled") {
      showCancelled();
      return;
    }
    const error = view.error || {};
    const code = String(error.code || "");
    const status = JOB_ERROR_STATUS[code] || 500;
    const body = JSON.stringify({ error: { code, message: String(error.message || "") } });
    const explained = explainHttpError(status, body, "", job.id);
    if (code === "audio_too_long") {
      explained.title = "The recording is too long";
      explained.advice = "Split it into shorter parts, then upload them one by one.";
    }
    showError(explained);
  }

  // ---------- results ----------

  const TURN = /^(SPEAKER_(\d+))\s*:\s?(.*)$/;

  function renderTranscript(container, text) {
    container.replaceChildren();
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    if (lines.length === 0) {
      const p = document.createElement("p");
      p.className = "empty-transcript";
      p.textContent = "No speech was recognised in this audio.";
      container.append(p);
      return;
    }
    for (const line of lines) {
      const turn = document.createElement("div");
      turn.className = "turn";
      const match = TURN.exec(line);
      const body = document.createElement("p");
      body.className = "turn-text";
      if (match) {
        const label = document.createElement("span");
        label.className = "speaker";
        label.dataset.speaker = String(Number.parseInt(match[2], 10) % 6);
        label.textContent = match[1].replace("_", " ");
        turn.append(label);
        body.textContent = match[3];
      } else {
        body.textContent = line;
      }
      turn.append(body);
      container.append(turn);
    }
  }

  // Seconds as a clock a reader scans: 0:07.4, 12:03.0, 1:02:03.5.
  function formatTime(seconds) {
    const value = Math.max(0, Number(seconds) || 0);
    const tenths = Math.floor((value % 1) * 10);
    return `${formatClock(Math.floor(value) * 1000)}.${tenths}`;
  }

  // The cleaned transcript as its timed segments: time, speaker (when it changes), text.
  function renderSegments(container, segments, fallbackText) {
    if (!Array.isArray(segments) || segments.length === 0) {
      renderTranscript(container, fallbackText);
      return;
    }
    container.replaceChildren();
    let previousSpeaker = null;
    for (const segment of segments) {
      const turn = document.createElement("div");
      turn.className = "turn";
      const head = document.createElement("p");
      head.className = "turn-head";
      const time = document.createElement("span");
      time.className = "time";
      const timed = typeof segment.start === "number" && typeof segment.end === "number";
      time.textContent = timed ? `${formatTime(segment.start)} – ${formatTime(segment.end)}` : "";
      const match = /^SPEAKER_(\d+)$/.exec(String(segment.speaker || ""));
      if (segment.speaker !== previousSpeaker || !timed) {
        const label = document.createElement("span");
        label.className = "speaker";
        label.dataset.speaker = String((match ? Number.parseInt(match[1], 10) : 0) % 6);
        label.textContent = String(segment.speaker || "").replace("_", " ");
        head.append(label);
      }
      if (timed) head.append(time);
      previousSpeaker = segment.speaker;
      const body = document.createElement("p");
      body.className = "turn-text";
      body.textContent = String(segment.text || "");
      turn.append(head, body);
      container.append(turn);
    }
  }

  function describeCleaning(cleaning) {
    els.metaCleaning.replaceChildren();
    const engine = cleaning && typeof cleaning.engine === "string" ? cleaning.engine : "unknown";
    const names = { rules: "Built-in rules", openai: "OpenAI" };
    els.metaCleaning.append(document.createTextNode(names[engine] || engine));
    if (cleaning && cleaning.degraded) {
      const tag = document.createElement("span");
      tag.className = "tag-degraded";
      tag.textContent = "degraded";
      els.metaCleaning.append(tag);
      const why = document.createElement("span");
      why.className = "muted small";
      why.textContent = ` Part of the text is uncleaned${cleaning.reason ? `: ${cleaning.reason}` : "."}`;
      els.metaCleaning.append(document.createElement("br"), why);
    }
  }

  function renderResult(data, warning, elapsedMs) {
    setSpinner(false);
    els.progress.hidden = true;
    els.statusText.textContent = `Done. Transcribed in ${formatClock(elapsedMs)}.`;
    els.statusLine.classList.add("is-done");

    state.transcripts.raw = data.raw_transcript || "";
    state.transcripts.cleaned = typeof data.cleaned_transcript === "string" ? data.cleaned_transcript : "";
    renderTranscript(els.rawTranscript, state.transcripts.raw);
    renderSegments(els.cleanedTranscript, data.segments, state.transcripts.cleaned);

    els.metaDuration.textContent = formatDuration(data.duration_seconds);
    els.metaEngine.textContent = [data.engine, data.language].filter(Boolean).join(" · ") || "–";
    els.downloadStatus.textContent = "";
    els.metaInteraction.textContent = data.interaction_id || "–";
    describeCleaning(data.cleaning);

    if (warning) {
      els.warningBox.textContent = `Note: ${warning}`;
      els.warningBox.hidden = false;
    } else {
      els.warningBox.hidden = true;
    }

    const initial = data.event && typeof data.event.status === "string" ? data.event : { status: "pending" };
    showEventState(initial, false);
    els.results.hidden = false;
    els.resultsHeading.focus({ preventScroll: false });
    if (data.interaction_id && !UNTRACKED_EVENT_STATES.has(initial.status)) {
      pollEvent(data.interaction_id, data.tenant_id || "");
    }
  }

  // ---------- event delivery ----------

  const EVENT_TEXT = {
    pending: ["Waiting to send", "Stored safely; the relay sends it in a moment."],
    queued: ["Waiting to send", "Stored safely; the relay sends it in a moment."],
    sending: ["Sending", "Being sent to EventBridge now."],
    sent: ["Sent", "Delivered to EventBridge."],
    held: ["Held", "Kept on the server: publishing is off here (no AWS credentials). It is sent once AWS is configured and the outbox is replayed."],
    failed: ["Failed", "EventBridge refused the event."],
    too_large: ["Not sent: too large", "The event is over EventBridge's size limit, so it was not sent."],
    not_stored: ["Not stored", "The server could not store the event; the failure is in its logs."],
    disabled: ["Off", "Event publishing is not configured on this server."],
  };

  function eventExtra(ev) {
    const status = ev.status;
    if (status === "sent" && typeof ev.event_id === "string" && ev.event_id) {
      return ` Event ID ${ev.event_id}.`;
    }
    if (status === "pending" && Number(ev.attempts) > 0) {
      return ` Retrying: EventBridge has not accepted it yet (attempt ${Number(ev.attempts)}).`;
    }
    if (status === "too_large" && Number(ev.size_bytes) > 0) {
      return ` Size ${formatBytes(Number(ev.size_bytes))}.`;
    }
    if (status === "failed" || status === "not_stored") {
      const why = [ev.error_code, ev.error_message, ev.reason].filter((v) => typeof v === "string" && v);
      if (why.length) return ` (${why.join(": ")})`;
    }
    return "";
  }

  function showEventState(ev, announce) {
    const status = String(ev.status || "unknown");
    const [label, text] = EVENT_TEXT[status] || [status.replace(/_/g, " "), ""];
    els.eventBadge.textContent = label;
    els.eventBadge.dataset.state = EVENT_TEXT[status] ? status : "unknown";
    els.eventDetail.textContent = text + eventExtra(ev);
    if (announce) els.eventLive.textContent = `Event delivery: ${label}.`;
  }

  function stopPolling() {
    state.pollGeneration += 1;
    if (state.pollTimer !== null) window.clearTimeout(state.pollTimer);
    state.pollTimer = null;
  }

  function pollEvent(interactionId, tenantId) {
    stopPolling();
    const generation = state.pollGeneration;
    let tries = 0;
    let delay = POLL_FIRST_DELAY_MS;
    let lastStatus = "";

    const schedule = () => {
      if (generation !== state.pollGeneration) return;
      if (tries >= POLL_MAX_TRIES) {
        els.eventDetail.textContent +=
          ` Still not final; check later with GET /events/${interactionId}.`;
        return;
      }
      state.pollTimer = window.setTimeout(poll, delay);
      delay = Math.min(POLL_MAX_DELAY_MS, Math.round(delay * 1.6));
    };

    const poll = async () => {
      tries += 1;
      try {
        const headers = { Accept: "application/json", ...authHeaders() };
        if (tenantId && !NEEDS_KEY) headers["X-Tenant-ID"] = tenantId;
        const response = await fetch(`/events/${encodeURIComponent(interactionId)}`, {
          headers,
          cache: "no-store",
        });
        if (generation !== state.pollGeneration) return;
        if (response.status === 401) {
          els.eventDetail.textContent = "The delivery state cannot be read: the API key is no longer accepted.";
          return;
        }
        if (response.status === 404) {
          showEventState({ status: "unknown" }, true);
          els.eventBadge.textContent = "Unknown";
          els.eventDetail.textContent = "No delivery record was found for this interaction.";
          return;
        }
        if (response.ok) {
          const ev = await response.json();
          if (generation !== state.pollGeneration) return;
          const status = String(ev.status || "unknown");
          showEventState(ev, status !== lastStatus);
          lastStatus = status;
          if (FINAL_EVENT_STATES.has(status)) return;
        }
      } catch (_) {
        // A network blip: keep trying with the same backoff.
      }
      schedule();
    };

    state.pollTimer = window.setTimeout(poll, 0);
  }

  // ---------- copy buttons ----------

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (_) {
        // Fall through to the older way (permission denied, for example).
      }
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (_) {
      ok = false;
    }
    area.remove();
    return ok;
  }

  async function handleCopy(button, text, what) {
    const ok = await copyText(text);
    const original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = ok ? "Copied" : "Copy failed";
    els.copyLive.textContent = ok ? `${what} copied to the clipboard.` : `Could not copy the ${what.toLowerCase()}; select the text and copy it by hand.`;
    window.setTimeout(() => { button.textContent = original; }, 1800);
  }

  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", () => {
      const which = button.dataset.copy;
      handleCopy(button, state.transcripts[which] || "", which === "raw" ? "Raw transcript" : "Cleaned transcript");
    });
  }
  els.copyId.addEventListener("click", () => {
    handleCopy(els.copyId, els.metaInteraction.textContent || "", "Interaction ID");
  });

  // ---------- file choosing and drag and drop ----------

  els.chooseButton.addEventListener("click", () => els.fileInput.click());
  els.fileInput.addEventListener("change", () => {
    const file = els.fileInput.files && els.fileInput.files[0];
    if (file) upload(file, file.name);
    els.fileInput.value = ""; // choosing the same file again still triggers a change
  });

  let dragDepth = 0;
  els.dropzone.addEventListener("dragenter", (e) => {
    e.preventDefault();
    dragDepth += 1;
    if (!state.busy) els.dropzone.classList.add("is-dragover");
  });
  els.dropzone.addEventListener("dragover", (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = state.busy ? "none" : "copy";
  });
  els.dropzone.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) els.dropzone.classList.remove("is-dragover");
  });
  els.dropzone.addEventListener("drop", (e) => {
    e.preventDefault();
    dragDepth = 0;
    els.dropzone.classList.remove("is-dragover");
    const file = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (file && !state.busy) upload(file, file.name);
  });
  // A file dropped beside the drop zone must not make the browser navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  // ---------- recording ----------

  const RECORDING_TYPES = [
    ["audio/webm;codecs=opus", "webm"],
    ["audio/ogg;codecs=opus", "ogg"],
    ["audio/webm", "webm"],
    ["audio/ogg", "ogg"],
    ["audio/mp4", "m4a"],
  ];

  function recordingSupported() {
    return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder);
  }

  function pickRecordingType() {
    for (const [mime, ext] of RECORDING_TYPES) {
      if (window.MediaRecorder.isTypeSupported && window.MediaRecorder.isTypeSupported(mime)) {
        return { mime, ext };
      }
    }
    return { mime: "", ext: "webm" }; // let the browser choose; WebM is the common default
  }

  function explainMicrophoneError(err) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "Microphone access was refused. Allow it in your browser's site settings, then press Start recording again.";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      return "No microphone was found. Connect one, or upload a file instead.";
    }
    if (name === "NotReadableError") {
      return "The microphone is in use by another application. Close it, then try again.";
    }
    return "The microphone could not be started. Upload a file instead.";
  }

  async function startRecording() {
    if (state.busy || state.recording) return;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      els.recordHint.textContent = explainMicrophoneError(err);
      return;
    }
    const { mime, ext } = pickRecordingType();
    let recorder;
    try {
      recorder = mime ? new MediaRecorder(stream, { mimeType: mime }) : new MediaRecorder(stream);
    } catch (_) {
      stream.getTracks().forEach((t) => t.stop());
      els.recordHint.textContent = "This browser cannot record audio. Upload a file instead.";
      return;
    }
    const rec = { recorder, stream, chunks: [], started: Date.now(), timer: null, ext };
    state.recording = rec;
    recorder.addEventListener("dataavailable", (e) => {
      if (e.data && e.data.size > 0) rec.chunks.push(e.data);
    });
    recorder.addEventListener("stop", () => finishRecording(rec));
    recorder.start(1000);

    els.recorder.classList.add("is-recording");
    els.recordStart.hidden = true;
    els.chooseButton.disabled = true;
    els.recordStop.hidden = false;
    els.recordStop.disabled = false;
    els.recordStop.focus();
    els.recordHint.textContent = "Recording… press Stop and transcribe when you are done.";
    const tick = () => { els.recElapsed.textContent = formatClock(Date.now() - rec.started); };
    tick();
    rec.timer = window.setInterval(tick, 250);
  }

  function stopRecording() {
    const rec = state.recording;
    if (!rec) return;
    els.recordStop.disabled = true;
    if (rec.recorder.state !== "inactive") rec.recorder.stop();
  }

  function finishRecording(rec) {
    window.clearInterval(rec.timer);
    rec.stream.getTracks().forEach((t) => t.stop());
    state.recording = null;
    els.recorder.classList.remove("is-recording");
    els.recordStop.hidden = true;
    els.recordStart.hidden = false;
    els.recordStart.disabled = false;
    els.chooseButton.disabled = false;
    const took = formatClock(Date.now() - rec.started);
    els.recordHint.textContent = `Recorded ${took}. Press Start recording to record again.`;
    const type = rec.recorder.mimeType || (rec.chunks[0] && rec.chunks[0].type) || "audio/webm";
    const blob = new Blob(rec.chunks, { type });
    upload(blob, `recording.${rec.ext}`);
  }

  if (recordingSupported()) {
    els.recordStart.addEventListener("click", startRecording);
    els.recordStop.addEventListener("click", stopRecording);
  } else {
    els.recordStart.disabled = true;
    els.recordHint.textContent = window.isSecureContext
      ? "This browser cannot record audio. Upload a file instead."
      : "Recording needs a secure page (https, or http://localhost). Upload a file instead.";
  }

  // ---------- the rest ----------

  els.retryButton.addEventListener("click", () => {
    if (state.lastUpload) upload(state.lastUpload.blob, state.lastUpload.name);
  });
  els.cancelButton.addEventListener("click", async () => {
    if (state.xhr) {
      state.xhr.abort();
      return;
    }
    const job = state.job;
    if (!job || !state.busy) return;
    stopFollowing();
    els.cancelButton.disabled = true;
    try {
      await fetch(`/batch/jobs/${encodeURIComponent(job.id)}`, {
        method: "DELETE",
        headers: jobHeaders(job),
      });
    } catch (_) {
      // The job may still finish on the server; nothing else to do here.
    }
    els.cancelButton.disabled = false;
    finishRequest();
    showCancelled();
  });

  // ---------- downloads ----------

  function downloadName(job, ext) {
    const base = (job.name || "transcript").replace(/\.[^./]+$/, "") || "transcript";
    return `${base}.${ext}`;
  }

  async function download(button, format) {
    const job = state.job;
    const spec = DOWNLOADS[format];
    if (!job || !spec) return;
    button.disabled = true;
    els.downloadStatus.textContent = "";
    try {
      const response = await fetch(
        `/batch/jobs/${encodeURIComponent(job.id)}?format=${encodeURIComponent(format)}`,
        { headers: { ...jobHeaders(job), Accept: spec.type }, cache: "no-store" },
      );
      if (!response.ok) {
        const { message } = parseErrorBody(await response.text());
        els.downloadStatus.textContent = `Could not download: ${message || `the server answered ${response.status}`}`;
        return;
      }
      const blob = new Blob([await response.text()], { type: `${spec.type};charset=utf-8` });
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = downloadName(job, spec.ext);
      link.hidden = true;
      document.body.append(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 10000);
      els.downloadStatus.textContent = `Saved ${link.download}.`;
    } catch (_) {
      els.downloadStatus.textContent = "Could not reach the server to download; try again.";
    } finally {
      button.disabled = false;
    }
  }

  for (const button of document.querySelectorAll("[data-download]")) {
    button.addEventListener("click", () => download(button, button.dataset.download));
  }
  els.identityClear.addEventListener("click", () => {
    for (const f of identityFields) {
      f.input.value = "";
      f.input.removeAttribute("aria-invalid");
    }
    els.identityError.hidden = true;
    saveIdentity();
    els.tenant.focus();
  });
  for (const f of identityFields) f.input.addEventListener("change", saveIdentity);

  loadIdentity();
  setUpKeyPrompt();
  setSpinner(false);
})();
