/* agentic playground: drives the API from the browser, without dependencies or a build step.
 *
 * A queued job comes with a job token (when the server has JOB_TOKEN_SECRET): the page follows it with
 * EventSource and `?token=`, which reconnects by itself with Last-Event-ID when the server ends a stream
 * early. Without a token, or once the token is refused (it expired), EventSource cannot send the API key,
 * so the stream is read with fetch() and a stream reader and parsed here, resuming after the last event;
 * when streaming is refused it falls back to polling the job.
 */
"use strict";

(function () {
  const STORAGE = { key: "agentic.apiKey", model: "agentic.model", maxTokens: "agentic.maxTokens" };
  const TERMINAL = new Set(["completed", "failed", "cancelled"]);
  const ACTIVE = new Set(["pending", "processing"]);
  const POLL_MS = 750;
  const MAX_RETRIES = 6;

  const $ = (id) => document.getElementById(id);
  const el = {
    form: $("ask-form"), key: $("api-key"), toggleKey: $("toggle-key"), forgetKey: $("forget-key"),
    model: $("model"), maxTokens: $("max-tokens"), prompt: $("prompt"), send: $("send"), cancel: $("cancel"),
    status: $("status"), jobId: $("job-id"), elapsed: $("elapsed"), timeline: $("timeline"),
    output: $("output"), usage: $("usage"), error: $("error"), errorTitle: $("error-title"),
    errorDetail: $("error-detail"), errorCode: $("error-code"), jobs: $("jobs"), refreshJobs: $("refresh-jobs"),
  };

  /* One run at a time: starting another (or opening a job) abandons the previous one's stream. */
  let run = null;

  function newRun(jobId) {
    if (run) run.abort.abort();
    clearInterval(run && run.timer);
    const current = {
      jobId: jobId, abort: new AbortController(), started: performance.now(), text: "", status: null,
      lastEventId: null, timer: null, node: document.createTextNode(""),
    };
    current.timer = setInterval(() => showElapsed(current), 100);
    run = current;
    el.output.replaceChildren(current.node);
    el.timeline.replaceChildren();
    el.usage.hidden = true;
    el.usage.textContent = "";
    el.jobId.textContent = jobId || "–";
    hideError();
    return current;
  }

  function isCurrent(r) { return run === r && !r.abort.signal.aborted; }

  function showElapsed(r) {
    if (run !== r) return;
    el.elapsed.textContent = seconds(performance.now() - r.started);
  }

  function seconds(ms) { return (ms / 1000).toFixed(1) + " s"; }

  function stopClock(r) {
    clearInterval(r.timer);
    showElapsed(r);
  }

  /* ---- rendering ------------------------------------------------------------------------------------ */

  function setStatus(r, status) {
    if (run !== r || !status || status === r.status) return;
    r.status = status;
    el.status.textContent = status;
    el.status.dataset.status = status;
    const item = document.createElement("li");
    item.dataset.status = status;
    item.textContent = status + " · " + seconds(performance.now() - r.started);
    el.timeline.append(item);
    el.cancel.disabled = !(r.jobId && ACTIVE.has(status));
    el.output.setAttribute("aria-busy", String(ACTIVE.has(status)));
    if (TERMINAL.has(status)) stopClock(r);
    updateJobRow(r.jobId, status);
  }

  /* An offloaded job (OFFLOAD_MODELS): the Inngest server makes the call, so no text streams before `done`. */
  function noteOffloaded(r) {
    if (run !== r || r.offloadNoted) return;
    r.offloadNoted = true;
    const item = document.createElement("li");
    item.dataset.status = "offloaded";
    item.textContent = "offloaded: no live text, the answer arrives when the model has finished";
    el.timeline.append(item);
  }

  /* Keep the recent-jobs row of the job on screen in step with it. */
  function updateJobRow(jobId, status) {
    if (!jobId || !(ACTIVE.has(status) || TERMINAL.has(status))) return;
    for (const row of el.jobs.tBodies[0].rows) {
      if (row.dataset.jobId !== jobId) continue;
      const badge = row.querySelector(".badge");
      badge.textContent = status;
      badge.dataset.status = status;
    }
  }

  function appendText(r, text) {
    if (run !== r || !text) return;
    const stick = el.output.scrollTop + el.output.clientHeight >= el.output.scrollHeight - 8;
    r.text += text;
    r.node.appendData(text);
    if (stick) el.output.scrollTop = el.output.scrollHeight;
  }

  /* A retried attempt starts its text over: the text so far belongs to a failed attempt. A reset may say
   * how much of it still stands (`offset`: keep that many characters); without one, all of it goes. */
  function resetText(r, attempts, offset) {
    if (run !== r) return;
    const keep = Number.isInteger(offset) && offset > 0 ? [...r.text].slice(0, offset).join("") : "";
    r.text = keep;
    r.node.data = keep;
    if (attempts) {
      const item = document.createElement("li");
      item.dataset.status = "retry";
      item.textContent = `attempt ${attempts} · ${seconds(performance.now() - r.started)}`;
      el.timeline.append(item);
    }
  }

  function showUsage(usage, extra) {
    const parts = [];
    if (usage && usage.total_tokens != null) {
      parts.push(`Tokens: ${usage.prompt_tokens ?? 0} prompt + ${usage.completion_tokens ?? 0} completion = ` +
                 `${usage.total_tokens} total`);
    }
    if (extra) parts.push(extra);
    el.usage.textContent = parts.join(" · ");
    el.usage.hidden = parts.length === 0;
  }

  function showError(problem) {
    el.errorTitle.textContent = problem.title || "Error";
    const status = problem.status ? ` (${problem.status})` : "";
    el.errorTitle.textContent += status;
    el.errorDetail.textContent = problem.detail && problem.detail !== problem.title ? problem.detail : "";
    const code = [problem.code && `code: ${problem.code}`, problem.field && `field: ${problem.field}`]
      .filter(Boolean).join(" · ");
    el.errorCode.textContent = code;
    el.errorCode.hidden = !code;
    el.error.dataset.code = problem.code || "";
    el.error.hidden = false;
  }

  function hideError() {
    el.error.hidden = true;
    el.error.dataset.code = "";
  }

  function viewText(view) {
    const response = view && view.response;
    if (response && typeof response.content === "string") return response.content;
    if (response && typeof response.preview === "string") return response.preview;
    return (view && view.partial_output) || "";
  }

  /* The final view: complete what streaming may have missed, then status, usage or error. */
  function finish(r, view) {
    if (run !== r) return;
    const text = viewText(view);
    if (text.startsWith(r.text)) appendText(r, text.slice(r.text.length));
    setStatus(r, view.status);
    stopClock(r);
    el.cancel.disabled = true;
    if (view.status === "completed") {
      const response = view.response || {};
      const by = [response.model || view.model, response.provider || view.provider].filter(Boolean);
      showUsage(view.usage || response.usage, by.length ? `${by[0]}${by[1] ? " (" + by[1] + ")" : ""}` : "");
    } else if (view.status === "failed") {
      const error = view.error || {};
      showError({ title: "The job failed", detail: error.message || "", code: error.code || "" });
    } else if (view.status === "cancelled") {
      showUsage(view.usage, "cancelled" + (r.text ? " (partial output kept)" : ""));
    }
    loadJobs();
  }

  /* ---- the API ---------------------------------------------------------------------------------------- */

  function apiKey() { return el.key.value.trim(); }

  async function api(path, options) {
    const headers = { Accept: "application/json", Authorization: "Bearer " + apiKey() };
    const init = { method: (options && options.method) || "GET", headers, signal: options && options.signal };
    if (options && options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    return fetch(path, init);
  }

  /* Problem details (RFC 9457) from an error response; anything else becomes a problem too. */
  async function problemOf(response) {
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (body && typeof body === "object" && (body.title || body.detail)) {
      return { status: response.status, ...body };
    }
    return { status: response.status, title: response.statusText || "Request failed",
             detail: "The server answered with an unexpected response." };
  }

  function networkProblem(error) {
    return { title: "Network error", detail: String(error && error.message ? error.message : error) };
  }

  /* ---- sending ---------------------------------------------------------------------------------------- */

  async function send(event) {
    if (event) event.preventDefault();
    const key = apiKey();
    const model = el.model.value.trim();
    const prompt = el.prompt.value;
    const r = newRun(null);
    el.status.textContent = "idle";
    el.status.dataset.status = "idle";
    if (!key || !model || !prompt.trim()) {
      const missing = [!key && "an API key", !model && "a model", !prompt.trim() && "a prompt"].filter(Boolean);
      showError({ title: "Missing input", detail: "Enter " + missing.join(", ") + "." });
      (!key ? el.key : !model ? el.model : el.prompt).focus();
      stopClock(r);
      return;
    }
    remember();
    const body = { messages: [{ role: "user", content: prompt }], model };
    const maxTokens = parseInt(el.maxTokens.value, 10);
    if (Number.isFinite(maxTokens) && maxTokens > 0) body.max_tokens = maxTokens;

    el.send.disabled = true;
    setStatus(r, "sending");
    let response;
    try {
      response = await api("/api/llm/generate", { method: "POST", body, signal: r.abort.signal });
    } catch (error) {
      if (isCurrent(r)) fail(r, networkProblem(error));
      return;
    } finally {
      el.send.disabled = false;
    }
    if (!isCurrent(r)) return;
    if (!response.ok) {
      fail(r, await problemOf(response));
      return;
    }
    const answer = await response.json();
    if (response.status === 200) {
      const result = answer.response || {};
      finish(r, { status: answer.status || "completed", response: result, usage: result.usage,
                  model: result.model, provider: result.provider });
      return;
    }
    r.jobId = answer.job_id;
    el.jobId.textContent = r.jobId;
    setStatus(r, answer.status || "pending");
    follow(r, answer.links || {}, answer.token);
    loadJobs();
  }

  function fail(r, problem) {
    setStatus(r, "error");
    stopClock(r);
    showError(problem);
  }

  /* ---- following a job -------------------------------------------------------------------------------- */

  function links(r, given) {
    return {
      self: given.self || `/api/jobs/${encodeURIComponent(r.jobId)}`,
      events: given.events || `/api/jobs/${encodeURIComponent(r.jobId)}/events`,
      cancel: given.cancel || `/api/jobs/${encodeURIComponent(r.jobId)}/cancel`,
    };
  }

  async function follow(r, given, token) {
    r.links = links(r, given);
    if (token && typeof EventSource === "function") {
      const outcome = await followWithToken(r, token);
      if (!isCurrent(r) || outcome.finished) return;
      // The token was refused (expired) or the stream could not open: go on with the API key, from here.
    }
    let failures = 0;
    while (isCurrent(r)) {
      let outcome;
      try {
        outcome = await streamOnce(r);
      } catch (error) {
        if (!isCurrent(r)) return;
        if (error && error.problem) {
          fail(r, error.problem);
          return;
        }
        failures += 1;
        if (failures > MAX_RETRIES) {
          fail(r, networkProblem(error));
          return;
        }
        await sleep(Math.min(250 * 2 ** failures, 5000));
        continue;
      }
      if (!isCurrent(r)) return;
      if (outcome.done) {
        finish(r, outcome.done);
        return;
      }
      if (outcome.poll) {
        await poll(r);
        return;
      }
      failures = 0;  // the stream ended early (duration cap): reconnect, resuming after the last event
    }
  }

  /* EventSource with the job token: resolves {finished: true} after `done`, {} when the stream is refused. */
  function followWithToken(r, token) {
    return new Promise((resolve) => {
      const query = new URLSearchParams({ token });
      // EventSource cannot be given a first Last-Event-ID; the query parameter does the same.
      if (r.lastEventId !== null) query.set("last_event_id", r.lastEventId);
      const separator = r.links.events.includes("?") ? "&" : "?";
      const source = new EventSource(r.links.events + separator + query.toString());
      r.source = source;
      const stop = (outcome) => {
        source.close();
        resolve(outcome);
      };
      r.abort.signal.addEventListener("abort", () => stop({ finished: true }));
      for (const type of ["status", "delta", "reset", "done"]) {
        source.addEventListener(type, (message) => {
          if (!isCurrent(r)) return stop({ finished: true });
          const done = handleEvent(r, { event: type, data: message.data, id: message.lastEventId || null });
          if (done) {
            stop({ finished: true });
            finish(r, done);
          }
        });
      }
      // A dropped or capped stream reconnects by itself (readyState CONNECTING); CLOSED means refused.
      source.onerror = () => {
        if (source.readyState === EventSource.CLOSED) stop({});
      };
    });
  }

  async function streamOnce(r) {
    const headers = { Accept: "text/event-stream", Authorization: "Bearer " + apiKey() };
    if (r.lastEventId !== null) headers["Last-Event-ID"] = r.lastEventId;
    const response = await fetch(r.links.events, { headers, signal: r.abort.signal, cache: "no-store" });
    const type = response.headers.get("Content-Type") || "";
    if (response.status === 401 || response.status === 403 || response.status === 404) {
      throw { problem: await problemOf(response) };
    }
    if (!response.ok || !type.startsWith("text/event-stream") || !response.body) {
      return { poll: true };  // too many streams, or a proxy in the way: polling still works
    }
    const parser = sseParser();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        const events = done ? parser.end() : parser.push(value);
        for (const ev of events) {
          const result = handleEvent(r, ev);
          if (result) return { done: result };
        }
        if (done) return {};
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  function handleEvent(r, ev) {
    if (ev.id !== null) r.lastEventId = ev.id;
    let data;
    try {
      data = ev.data ? JSON.parse(ev.data) : {};
    } catch (_) {
      return null;
    }
    if (ev.event === "status") {
      setStatus(r, data.status);
      if (data.live_text === false) noteOffloaded(r);
    }
    else if (ev.event === "delta") appendText(r, data.text || "");
    else if (ev.event === "reset") resetText(r, data.attempts, data.offset);
    else if (ev.event === "done") return data;
    return null;
  }

  /* A text/event-stream parser (the WHATWG rules that matter here): fields, multi-line data, comments. */
  function sseParser() {
    let buffer = "";
    let data = [];
    let eventName = "";
    let lastId = null;
    let sawCR = false;

    function line(text, out) {
      if (text === "") {
        if (data.length) out.push({ event: eventName || "message", data: data.join("\n"), id: lastId });
        data = [];
        eventName = "";
        return;
      }
      if (text[0] === ":") return;  // comment: heartbeat
      const colon = text.indexOf(":");
      const field = colon === -1 ? text : text.slice(0, colon);
      let value = colon === -1 ? "" : text.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "data") data.push(value);
      else if (field === "event") eventName = value;
      else if (field === "id" && value.indexOf("\0") === -1) lastId = value;
    }

    function drain(out) {
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const c = buffer[i];
        if (c === "\n" && sawCR) {  // second half of a \r\n split across chunks
          sawCR = false;
          start = i + 1;
          continue;
        }
        sawCR = false;
        if (c === "\r" || c === "\n") {
          line(buffer.slice(start, i), out);
          if (c === "\r") {
            if (buffer[i + 1] === "\n") i += 1;
            else if (i + 1 === buffer.length) sawCR = true;
          }
          start = i + 1;
        }
      }
      buffer = buffer.slice(start);
    }

    return {
      push(chunk) {
        const out = [];
        buffer += chunk;
        drain(out);
        return out;
      },
      end() {
        const out = [];
        if (buffer) line(buffer, out);
        buffer = "";
        line("", out);
        return out;
      },
    };
  }

  async function poll(r) {
    while (isCurrent(r)) {
      let response;
      try {
        response = await api(r.links.self, { signal: r.abort.signal });
      } catch (error) {
        if (!isCurrent(r)) return;
        await sleep(POLL_MS * 2);
        continue;
      }
      if (!isCurrent(r)) return;
      if (!response.ok) {
        fail(r, await problemOf(response));
        return;
      }
      const view = await response.json();
      if (TERMINAL.has(view.status)) {
        finish(r, view);
        return;
      }
      setStatus(r, view.status);
      const partial = view.partial_output || "";
      if (partial.startsWith(r.text)) appendText(r, partial.slice(r.text.length));
      await sleep(POLL_MS);
    }
  }

  function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

  /* ---- cancelling ------------------------------------------------------------------------------------- */

  async function cancel() {
    const r = run;
    if (!r || !r.jobId || !r.links) return;
    el.cancel.disabled = true;
    let response;
    try {
      response = await api(r.links.cancel, { method: "POST" });
    } catch (error) {
      showError(networkProblem(error));
      el.cancel.disabled = !ACTIVE.has(r.status);
      return;
    }
    if (run !== r) return;
    if (!response.ok) {
      showError(await problemOf(response));  // 409: it finished first; the stream delivers how
      return;
    }
    const view = await response.json();
    if (TERMINAL.has(view.status)) {
      r.abort.abort();
      finish(r, view);
    } else {
      setStatus(r, view.status);
      el.cancel.disabled = true;  // requested: the job stops at its next step or streamed chunk
    }
  }

  /* ---- recent jobs ------------------------------------------------------------------------------------ */

  async function loadJobs() {
    if (!apiKey()) return;
    const body = el.jobs.tBodies[0];
    let response;
    try {
      response = await api("/api/jobs?limit=10");
    } catch (_) {
      return;
    }
    if (!response.ok) {
      if (response.status === 401) body.replaceChildren(messageRow("Enter a valid API key to list jobs."));
      return;
    }
    const page = await response.json();
    const items = page.items || [];
    body.replaceChildren(...(items.length ? items.map(jobRow) : [messageRow("No jobs yet.")]));
  }

  function messageRow(text) {
    const row = document.createElement("tr");
    const cell = document.createElement("td");
    cell.colSpan = 5;
    cell.className = "muted";
    cell.textContent = text;
    row.append(cell);
    return row;
  }

  function jobRow(job) {
    const row = document.createElement("tr");
    row.dataset.jobId = job.id;
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    open.textContent = job.id;
    open.setAttribute("aria-label", `Open job ${job.id}`);
    open.addEventListener("click", () => openJob(job.id));
    const status = document.createElement("span");
    status.className = "badge";
    status.dataset.status = job.status;
    status.textContent = job.status;
    const usage = job.usage && job.usage.total_tokens != null ? String(job.usage.total_tokens) : "–";
    const created = job.created_at ? new Date(job.created_at).toLocaleString() : "–";
    for (const content of [open, status, job.model || "–", created, usage]) {
      const cell = document.createElement("td");
      cell.append(content);
      row.append(cell);
    }
    return row;
  }

  async function openJob(jobId) {
    const r = newRun(jobId);
    let response;
    try {
      response = await api(`/api/jobs/${encodeURIComponent(jobId)}`, { signal: r.abort.signal });
    } catch (error) {
      if (isCurrent(r)) fail(r, networkProblem(error));
      return;
    }
    if (!isCurrent(r)) return;
    if (!response.ok) {
      fail(r, await problemOf(response));
      return;
    }
    const view = await response.json();
    r.started = Date.parse(view.created_at) ? performance.now() - (Date.now() - Date.parse(view.created_at))
                                              : r.started;
    if (TERMINAL.has(view.status)) {
      finish(r, view);
      if (view.started_at && view.finished_at) {
        el.elapsed.textContent = seconds(Date.parse(view.finished_at) - Date.parse(view.created_at));
      }
      return;
    }
    setStatus(r, view.status);
    appendText(r, view.partial_output || "");
    // Resume after what the view already showed: the stream then sends only newer text.
    r.lastEventId = `${view.status}.${view.attempts || 0}.${[...(view.partial_output || "")].length}`;
    follow(r, view.links || {}, view.token);
  }

  /* ---- settings kept in the browser ------------------------------------------------------------------- */

  function remember() {
    try {
      localStorage.setItem(STORAGE.key, apiKey());
      localStorage.setItem(STORAGE.model, el.model.value.trim());
      localStorage.setItem(STORAGE.maxTokens, el.maxTokens.value);
    } catch (_) { /* storage disabled: the page still works for this visit */ }
  }

  function restore() {
    try {
      el.key.value = localStorage.getItem(STORAGE.key) || "";
      el.model.value = localStorage.getItem(STORAGE.model) || el.model.value;
      el.maxTokens.value = localStorage.getItem(STORAGE.maxTokens) || "";
    } catch (_) { /* storage disabled */ }
  }

  el.form.addEventListener("submit", send);
  el.cancel.addEventListener("click", cancel);
  el.refreshJobs.addEventListener("click", loadJobs);
  el.prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) send(event);
  });
  el.key.addEventListener("change", () => { remember(); loadJobs(); });
  el.toggleKey.addEventListener("click", () => {
    const shown = el.key.type === "text";
    el.key.type = shown ? "password" : "text";
    el.toggleKey.textContent = shown ? "Show" : "Hide";
    el.toggleKey.setAttribute("aria-pressed", String(!shown));
  });
  el.forgetKey.addEventListener("click", () => {
    el.key.value = "";
    try { localStorage.removeItem(STORAGE.key); } catch (_) { /* storage disabled */ }
    el.jobs.tBodies[0].replaceChildren();
    el.key.focus();
  });

  restore();
  loadJobs();
  document.documentElement.dataset.ready = "true";
})();
