/* labelloop: the codebook panel of the labelling page (and nothing else: label.js is untouched).
 *
 * Opened by the Codebook button or the keys ? and h, closed by Escape or the Close button. A side
 * panel on a wide screen, a bottom sheet on a phone (codebook.css). It is loaded lazily: the first
 * opening asks GET /api/projects/{p}/codebook, so the page and its key-to-next-item path carry no
 * extra request; every later opening shows what it has at once and refreshes it behind.
 *
 * The keys are read on window in the capture phase, before label.js and queues.js: ? and h are
 * this panel's; Escape, while the panel is open, closes it and goes no further (queues.js would
 * otherwise take it as "back to the default queue"). Every other key passes on, so labelling by
 * keys goes on with the panel open.
 *
 * Definitions arrive as HTML that the server rendered from Markdown with raw HTML off and then
 * sanitised (server/codebook/markdown.py); everything else (tag names, examples) goes in with
 * textContent.
 */
(function () {
  "use strict";

  const cfg = JSON.parse(document.getElementById("label-config").textContent);
  const $ = (id) => document.getElementById(id);
  const panel = $("codebook-panel");
  const body = $("codebook-body");
  const title = $("codebook-title");
  const openBtn = $("codebook-open");
  const closeBtn = $("codebook-close");
  let book = null;
  let loading = null;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function draw() {
    body.replaceChildren();
    title.textContent = book.version ? "Codebook · version " + book.version : "Codebook";
    const empty = book.tags.every((t) => !t.definition && !t.examples.length);
    if (empty) body.append(el("p", "muted", "This project has no codebook yet: an admin writes one on its codebook page."));
    book.tags.forEach((t, i) => {
      const sec = el("section", "cb-entry");
      sec.dataset.tag = t.tag;
      const h = el("h3");
      if (i < 9) h.append(el("kbd", null, String(i + 1)), " ");
      h.append(t.tag);
      sec.append(h);
      const def = el("div", "cb-definition");
      if (t.html) def.innerHTML = t.html; // sanitised by the server (see the note at the top)
      else def.append(el("p", "muted", "No definition yet."));
      sec.append(def);
      if (t.examples.length) {
        sec.append(el("h4", null, t.examples.length === 1 ? "Example" : "Examples"));
        const list = el("ul", "cb-examples");
        t.examples.forEach((x) => list.append(el("li", null, x.text)));
        sec.append(list);
      }
      body.append(sec);
    });
  }

  function load() {
    if (loading) return loading;
    loading = fetch(cfg.api + "/codebook", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
      .then((data) => { book = data; draw(); })
      .catch((err) => { if (!book) body.replaceChildren(el("p", "muted", "Could not load the codebook: " + err.message)); })
      .finally(() => { loading = null; });
    return loading;
  }

  function isOpen() { return !panel.hidden; }

  function open() {
    panel.hidden = false;
    document.body.classList.add("cb-open");
    openBtn.setAttribute("aria-expanded", "true");
    panel.focus({ preventScroll: true });
    load();
  }

  function close() {
    panel.hidden = true;
    document.body.classList.remove("cb-open");
    openBtn.setAttribute("aria-expanded", "false");
    if (panel.contains(document.activeElement)) document.activeElement.blur(); // keys go back to labelling
  }

  openBtn.addEventListener("click", () => { openBtn.blur(); if (isOpen()) close(); else open(); });
  closeBtn.addEventListener("click", close);

  window.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    if (e.key === "Escape" && isOpen()) {
      e.preventDefault();
      e.stopImmediatePropagation();
      close();
    } else if (e.key === "?" || e.key === "h" || e.key === "H") {
      e.preventDefault();
      e.stopImmediatePropagation();
      if (!e.repeat) { if (isOpen()) close(); else open(); }
    }
  }, true);

  window.labelloopCodebook = { open, close, isOpen };
})();
