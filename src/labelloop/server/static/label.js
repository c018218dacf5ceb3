/* labelloop: the labelling page. Hand-written, no framework, no network beyond this server.
 *
 * Every piece of item text is put on the page with textContent (never innerHTML), so markdown
 * or HTML in a post shows as the text it is.
 *
 * Prefetch. The server holds at most one lease per labeller and project, and /next returns
 * that same item while the lease lives, so the next item cannot be claimed before the current
 * one is finished. The page therefore pipelines: on a key press it posts the label and, right
 * behind it without waiting, asks for the next item. The server's single writer usually runs
 * both in the same group commit, so the next item arrives with the label's answer, one round
 * trip after the key press. If the /next request overtook the label (it then returns the item
 * just labelled), the page asks once more. Keys pressed while an item is being replaced are
 * ignored rather than applied to an item nobody has seen.
 *
 * Leases are renewed every half lease while the page shows an item, and at once when the tab
 * becomes visible again; a lost lease fetches the next item with a notice.
 *
 * The item's external id is shown only when the project's show_item_ids setting is on: an id
 * like "sports/152" gives the answer away. The card carries the database id in data-item (as
 * the API does) for scripts and tests; nothing on screen shows it.
 *
 * Undo is a stack of the user's labels and skips: the answer says which one came back.
 *
 * Multi-label projects (cfg.multi_label): a number key or a tap *toggles* a tag (aria-pressed
 * and a tick mark, not colour alone), Enter or the Submit button sends the chosen set, 0 or
 * "None of these" sends the empty set ("labelled: none applies"). Submitting with nothing chosen
 * is refused here with a hint; every new item starts with nothing chosen (a set that was not
 * saved stays chosen on the same item).
 *
 * Model suggestions (issue 14, static/suggest.js, only when the project's setting is on): each
 * item shown is handed to window.labelloopSuggest.onShow, which may reorder the buttons (their
 * number keys follow them: keys are looked up by data-key on each press) or mark and preselect
 * the model's answer.
 *
 * Comments, flags and skip reasons (issue 14) live in static/notes.js, through one hook,
 * window.labelloopNotes: `hook.fields(kind)` gives the fields to add to the next label ("label")
 * or skip ("skip"), or null; `hook.sent()` is told they were saved; `skip(body)` skips with a
 * body ({reason}). Without notes.js, or with nothing entered, every request is as before.
 */
(function () {
  "use strict";

  const cfg = JSON.parse(document.getElementById("label-config").textContent);
  const $ = (id) => document.getElementById(id);
  const card = $("item-card");
  const scroller = $("item-scroll");
  const titleEl = $("item-title");
  const fieldsEl = $("item-fields");
  const refEl = $("item-ref");
  const stateEl = $("item-state");
  const statusEl = $("status");
  const doneEl = $("done");
  const controls = $("controls");
  const skipBtn = $("skip");
  const undoBtn = $("undo");
  const tagButtons = Array.from(document.querySelectorAll(".tag-btn"));
  const multi = Boolean(cfg.multi_label);
  const submitBtn = $("submit-set"); // multi-label only
  const noneBtn = $("none-set"); // multi-label only
  const touch = window.matchMedia && window.matchMedia("(hover: none), (pointer: coarse)").matches;

  let current = null; // {item: {id, external_id, display}, lease: {expires_at}}
  let busy = false; // a request that replaces the current item is in flight
  let loadingTimer = null;
  let renewTimer = null;
  let statsTimer = null;
  let lastRenew = 0;
  const stats = Object.assign({ items: 0, labelled: 0, yours_today: 0, yours_total: 0 }, cfg.stats);

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = cfg.csrf;
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(cfg.api + path, init);
    } catch (err) {
      throw new ApiError(0, "network error: is the server reachable?");
    }
    if (response.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
      throw new ApiError(401, "logged out");
    }
    if (response.status === 204) return null;
    let data = {};
    try {
      data = await response.json();
    } catch (err) {
      data = {};
    }
    if (!response.ok) {
      const detail = typeof data.detail === "string" ? data.detail : "request refused (" + response.status + ")";
      throw new ApiError(response.status, detail);
    }
    return data;
  }

  // ---- showing things ---------------------------------------------------------------------
  function say(text, kind) {
    statusEl.textContent = text || "";
    statusEl.className = "status" + (kind ? " " + kind : "");
  }

  function text(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "string" ? value : String(value);
  }

  function fieldOrder(display) {
    const keys = Object.keys(display);
    const cols = cfg.columns.filter((c) => keys.includes(c));
    keys.forEach((k) => { if (!cols.includes(k)) cols.push(k); });
    return cols;
  }

  function addField(name, value) {
    const section = document.createElement("section");
    section.className = "field";
    if (name !== null) {
      const heading = document.createElement("h3");
      heading.className = "field-name";
      heading.textContent = name;
      section.appendChild(heading);
    }
    const body = document.createElement("div");
    body.className = "field-text";
    if (value) {
      body.textContent = value;
    } else {
      body.textContent = "(empty)";
      body.classList.add("empty");
    }
    section.appendChild(body);
    fieldsEl.appendChild(section);
  }

  function setLoading(on) {
    clearTimeout(loadingTimer);
    if (on) {
      loadingTimer = setTimeout(() => { card.classList.add("loading"); card.setAttribute("aria-busy", "true"); }, 120);
    } else {
      card.classList.remove("loading");
      card.setAttribute("aria-busy", "false");
    }
  }

  function enable(on) {
    tagButtons.forEach((b) => { b.disabled = !on; });
    skipBtn.disabled = !on;
    if (multi) {
      submitBtn.disabled = !on;
      noneBtn.disabled = !on;
    }
  }

  // ---- multi-label: the chosen set --------------------------------------------------------
  function press(button, on) {
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.classList.toggle("chosen", on);
  }

  function chosenTags() {
    return tagButtons.filter((b) => b.getAttribute("aria-pressed") === "true").map((b) => b.dataset.tag);
  }

  function clearChoice() {
    tagButtons.forEach((b) => press(b, false));
  }

  function toggle(button) {
    if (busy || !current || button.disabled) return;
    press(button, button.getAttribute("aria-pressed") !== "true");
    if (statusEl.classList.contains("hint")) say("");
  }

  // "#<external id>" when the project shows ids, else "" (for the item line and the notices).
  function ref(item) {
    return cfg.show_ids ? "#" + item.external_id : "";
  }

  function show(data) {
    current = data;
    const display = data.item.display || {};
    const cols = fieldOrder(display);
    fieldsEl.replaceChildren();
    if (cols.length > 1) {
      const title = text(display[cols[0]]);
      titleEl.textContent = title || "(no title)";
      titleEl.classList.toggle("untitled", !title);
      titleEl.hidden = false;
      cols.slice(1).forEach((c) => addField(c, text(display[c])));
    } else {
      // A single display field is the text itself: shown as a body, not as a bold title.
      titleEl.textContent = "";
      titleEl.hidden = true;
      addField(null, cols.length ? text(display[cols[0]]) : "");
    }
    refEl.textContent = ref(data.item);
    refEl.title = cfg.show_ids ? "external id " + data.item.external_id : "";
    card.dataset.item = String(data.item.id);
    stateEl.textContent = "";
    if (multi) clearChoice();
    else tagButtons.forEach((b) => b.classList.remove("chosen"));
    scroller.scrollTop = 0;
    card.hidden = false;
    controls.hidden = false;
    doneEl.hidden = true;
    setLoading(false);
    enable(true);
    if (window.labelloopSuggest) window.labelloopSuggest.onShow(data); // issue 14: static/suggest.js
    scheduleRenew();
  }

  function showDone() {
    current = null;
    refEl.textContent = "";
    delete card.dataset.item;
    clearTimeout(renewTimer);
    setLoading(false);
    card.hidden = true;
    doneEl.hidden = false;
    enable(false);
    if (window.labelloopSuggest) window.labelloopSuggest.onShow(null);
    say("");
  }

  function renderStats() {
    const pct = stats.items ? (100 * stats.labelled) / stats.items : 0;
    $("progress-fill").style.width = Math.min(100, pct).toFixed(1) + "%";
    const fmt = (n) => Number(n).toLocaleString("en-US");
    $("progress-text").textContent =
      fmt(stats.labelled) + " / " + fmt(stats.items) + " labelled (" + Math.floor(pct) + "%)";
    $("progress-mine").textContent =
      "you: " + fmt(stats.yours_today) + " today · " + fmt(stats.yours_total) + " total";
  }

  // Local counts move at once; the server's own figures (which include everyone else's
  // labels) replace them at most every STATS_EVERY ms: counting a project of a million items
  // costs the database up to a second, so the page does not ask after every key press.
  const STATS_EVERY = 30000;
  function bump(delta) {
    stats.labelled = Math.max(0, stats.labelled + delta);
    stats.yours_today = Math.max(0, stats.yours_today + delta);
    stats.yours_total = Math.max(0, stats.yours_total + delta);
    renderStats();
    if (!statsTimer) statsTimer = setTimeout(refreshStats, STATS_EVERY);
  }

  async function refreshStats() {
    statsTimer = null;
    try {
      const s = await api("GET", "/stats");
      ["items", "labelled", "yours_today", "yours_total"].forEach((k) => { if (k in s) stats[k] = s[k]; });
      renderStats();
    } catch (err) {
      /* progress is informative only; the next action tries again */
    }
  }

  // ---- the queue (issue 13): "" is the default queue; else "?queue=...&..." (static/queues.js) --
  let queueQuery = "";
  function nextPath() {
    return "/next" + queueQuery;
  }
  // Switch queues: the next item comes from the new one (the server gives the held lease back).
  async function setQueue(query) {
    if (busy) return;
    queueQuery = query;
    await loadNext();
    if (query === "?queue=default") queueQuery = ""; // then exactly today's /next
  }
  window.labelloopQueues = {
    set: setQueue,
    current: () => (current ? current.item.id : null),
    onShow: null, // queues.js: told which queue served the item shown
  };

  // ---- comments, flags and skip reasons (static/notes.js fills the hook) --------------------
  const notes = { fields: () => null, sent: () => {} };
  window.labelloopNotes = { hook: notes, skip: (body) => skip(body) };

  // ---- actions ------------------------------------------------------------------------------
  function handleNext(data) {
    if (data === null) showDone();
    else show(data);
    if (window.labelloopQueues.onShow) window.labelloopQueues.onShow(data);
  }

  async function loadNext() {
    busy = true;
    setLoading(true);
    try {
      handleNext(await api("POST", nextPath()));
    } catch (err) {
      say("Could not load the next item: " + err.message, "error");
      setLoading(false);
    } finally {
      busy = false;
    }
  }

  // Finish the current item with `finish` (a request) and show the next one: the /next
  // request leaves right behind the finishing one (see the prefetch note at the top).
  async function finishAndAdvance(finish, doneText) {
    if (busy || !current) return false;
    busy = true;
    const item = current.item;
    setLoading(true);
    const finished = finish(item).then(() => null, (err) => err);
    const next = api("POST", nextPath()).then((data) => ({ data }), (error) => ({ error }));
    const finishError = await finished;
    try {
      const answer = await next;
      if (answer.error) throw answer.error;
      let data = answer.data;
      if (!finishError && data !== null && data.item.id === item.id) {
        data = await api("POST", nextPath()); // the /next request overtook the finishing one
      }
      if (finishError) say("Not saved: " + finishError.message, "error");
      else say(doneText(item), "ok");
      handleNext(data);
    } catch (err) {
      say((finishError ? "Not saved: " + finishError.message + ". " : "") +
          "Could not load the next item: " + err.message, "error");
      setLoading(false);
      if (!multi) tagButtons.forEach((b) => b.classList.remove("chosen"));
    } finally {
      busy = false;
    }
    return finishError === null;
  }

  async function label(tag, button) {
    if (busy || !current) return;
    if (button) button.classList.add("chosen");
    const extra = notes.fields("label");
    const saved = await finishAndAdvance(
      (item) => api("POST", "/items/" + item.id + "/labels", Object.assign({ label: tag }, extra)),
      (item) => (cfg.show_ids ? "Saved " + ref(item) + " as " : "Saved as ") + tag
    );
    if (saved) bump(+1);
    if (saved && extra) notes.sent();
  }

  // Multi-label: send the chosen set (`tags` given: that set; [] is "none of these").
  async function labelSet(tags) {
    if (busy || !current) return;
    const chosen = tags === undefined ? chosenTags() : tags;
    if (tags === undefined && chosen.length === 0) {
      say(touch ? "Choose tags, or tap None of these" : "Choose tags, or press 0 for none of these", "error hint");
      return;
    }
    const itemId = current.item.id;
    const extra = notes.fields("label");
    const saved = await finishAndAdvance(
      (item) => api("POST", "/items/" + item.id + "/labels", Object.assign({ labels: chosen }, extra)),
      (item) => (cfg.show_ids ? "Saved " + ref(item) + " as " : "Saved as ") +
        (chosen.length ? chosen.join(", ") : "none of these")
    );
    if (saved) bump(+1);
    if (saved && extra) notes.sent();
    else if (!saved && current && current.item.id === itemId) {
      // not saved, the same item back: keep what was chosen
      tagButtons.forEach((b) => press(b, chosen.includes(b.dataset.tag)));
    }
  }

  async function skip(body) {
    if (busy || !current) return;
    const extra = notes.fields("skip"); // a comment typed before the skip goes with it
    const sent = extra || body ? Object.assign({}, extra, body) : undefined; // undefined: no body, as before
    const saved = await finishAndAdvance(
      (item) => api("POST", "/items/" + item.id + "/skip", sent),
      (item) => (cfg.show_ids ? "Skipped " + ref(item) : "Skipped")
    );
    if (saved && sent) notes.sent();
  }

  async function undo() {
    if (busy) return;
    busy = true;
    setLoading(true);
    try {
      const data = await api("POST", "/undo");
      const what = data.undone === "skip" ? "skip" : "label";
      if (what === "label") bump(-1);
      show(data);
      stateEl.textContent = what === "label" ? "label undone: choose again" : "skip undone: label it now";
      say(what === "label" ? "Label undone" : "Skip undone", "ok");
    } catch (err) {
      setLoading(false);
      if (err.status === 404) say("Nothing to undo", "error");
      else if (err.status === 409) say("Cannot undo: " + err.message, "error");
      else say("Undo failed: " + err.message, "error");
    } finally {
      busy = false;
    }
  }

  // ---- lease renewal ----------------------------------------------------------------------
  function scheduleRenew() {
    clearTimeout(renewTimer);
    lastRenew = Date.now();
    const every = Math.max(5, cfg.lease_seconds / 2) * 1000;
    renewTimer = setTimeout(renew, every);
  }

  async function renew() {
    if (!current) return;
    if (busy) {
      scheduleRenew();
      return;
    }
    const item = current.item;
    try {
      const lease = await api("POST", "/items/" + item.id + "/renew");
      if (current && current.item.id === item.id) current.lease = lease;
      scheduleRenew();
    } catch (err) {
      if (err.status === 409 && current && current.item.id === item.id) {
        say("Your hold on " + (cfg.show_ids ? ref(item) : "this item") + " ran out and it went to someone else.", "error");
        await loadNext();
      } else {
        scheduleRenew();
      }
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && current && Date.now() - lastRenew > 30000) renew();
  });

  // ---- input --------------------------------------------------------------------------------
  // A clicked button gives its focus back, so that Enter or Space never label the next item.
  if (multi) {
    tagButtons.forEach((b) => b.addEventListener("click", () => { b.blur(); toggle(b); }));
    submitBtn.addEventListener("click", () => { submitBtn.blur(); labelSet(); });
    noneBtn.addEventListener("click", () => { noneBtn.blur(); labelSet([]); });
  } else {
    tagButtons.forEach((b) => b.addEventListener("click", () => { b.blur(); label(b.dataset.tag, b); }));
  }
  skipBtn.addEventListener("click", () => { skipBtn.blur(); skip(); });
  undoBtn.addEventListener("click", () => { undoBtn.blur(); undo(); });
  $("check-again").addEventListener("click", loadNext);

  // A number key is the button showing it (suggest.js may reorder the buttons and their keys).
  const keyed = (key) => tagButtons.find((b) => b.dataset.key === key);

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    const key = e.key;
    const byKey = /^[1-9]$/.test(key) ? keyed(key) : undefined;
    if (byKey && multi) {
      e.preventDefault();
      if (!e.repeat) toggle(byKey);
    } else if (byKey) {
      e.preventDefault();
      if (!e.repeat && current && !byKey.disabled) label(byKey.dataset.tag, byKey);
    } else if (multi && key === "Enter" && !(t && /^(BUTTON|A)$/.test(t.tagName))) {
      e.preventDefault(); // a focused button or link keeps Enter for itself
      if (!e.repeat) labelSet();
    } else if (multi && key === "0") {
      e.preventDefault();
      if (!e.repeat) labelSet([]);
    } else if (key === "s" || key === "S") {
      e.preventDefault();
      if (!e.repeat) skip();
    } else if (key === "u" || key === "U" || key === "Backspace") {
      e.preventDefault();
      if (!e.repeat) undo();
    } else if (key === "ArrowDown" || key === "ArrowUp" || key === "PageDown" || key === "PageUp" || key === " ") {
      // scroll the item, not the (fixed) page
      e.preventDefault();
      const page = scroller.clientHeight * 0.85;
      const step = { ArrowDown: 60, ArrowUp: -60, PageDown: page, PageUp: -page, " ": e.shiftKey ? -page : page }[key];
      scroller.scrollBy({ top: step });
    }
  });

  // Multi-label: many tags scroll within their area, which then shows its edges.
  if (multi) {
    const area = $("tag-buttons");
    const edges = () => area.classList.toggle("scrolls", area.scrollHeight > area.clientHeight + 1);
    window.addEventListener("resize", edges);
    edges();
  }

  renderStats();
  loadNext();
})();
