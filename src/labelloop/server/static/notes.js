/* labelloop: comments, "unsure" flags and skip reasons on the labelling page (issue 14).
 *
 * Talks to label.js through window.labelloopNotes only (see the note at the top of label.js):
 * it fills `hook.fields(kind)` (what to add to the next label or skip) and `hook.sent()` (they
 * were saved: clear them), and calls `skip(body)` for a skip with a reason.
 *
 * - Comment (key c, or the Comment button): opens a box; what is typed there goes with the next
 *   label (or skip) and is cleared once saved. Esc leaves the box (the text stays). While typing,
 *   label.js ignores every key, so number keys type numbers.
 * - Unsure (key f, or the button): a toggle (aria-pressed) flagging the next label.
 * - Skip with a reason (key r, or the "Reason…" button): a small menu; 1-4 (or a tap) skips with that reason,
 *   Esc closes it. While it is open, number keys pick reasons, not tags (this listener runs first,
 *   in the capture phase, and keeps those keys from label.js).
 * A line under the box says what will be sent, so nothing goes out unseen.
 */
(function () {
  "use strict";

  const bridge = window.labelloopNotes;
  const $ = (id) => document.getElementById(id);
  const box = $("note-box");
  if (!bridge || !box) return;
  const comment = $("note-comment");
  const toggleBtn = $("note-toggle");
  const unsureBtn = $("note-unsure");
  const reasonBtn = $("skip-reason");
  const menu = $("skip-menu");
  const pending = $("note-pending");
  const reasons = Array.from(menu.querySelectorAll("button[data-reason]"));
  const queues = window.labelloopQueues; // label.js: which item is shown

  const isUnsure = () => unsureBtn.getAttribute("aria-pressed") === "true";
  const typed = () => comment.value.trim();
  const shown = () => Boolean(queues && queues.current());

  function update() {
    const parts = [];
    if (isUnsure()) parts.push("flagged unsure");
    if (typed()) parts.push("with your comment");
    pending.textContent = parts.length ? "Your next label goes " + parts.join(", ") + "." : "";
    pending.hidden = parts.length === 0;
    toggleBtn.setAttribute("aria-expanded", String(!box.hidden));
    toggleBtn.classList.toggle("has-text", Boolean(typed()));
  }

  function setUnsure(on) {
    unsureBtn.setAttribute("aria-pressed", on ? "true" : "false");
    unsureBtn.classList.toggle("chosen", on);
    update();
  }

  function openBox() {
    closeMenu();
    box.hidden = false;
    update();
    comment.focus();
  }

  function toggleBox() {
    if (box.hidden) openBox();
    else {
      box.hidden = true;
      comment.blur();
      update();
    }
  }

  function openMenu() {
    if (!shown()) return;
    menu.hidden = false;
    reasonBtn.setAttribute("aria-expanded", "true");
  }

  function closeMenu() {
    menu.hidden = true;
    reasonBtn.setAttribute("aria-expanded", "false");
  }

  function skipWith(reason) {
    closeMenu();
    if (shown()) bridge.skip({ reason });
  }

  bridge.hook.fields = (kind) => {
    const out = {};
    const text = typed();
    if (text) out.comment = text;
    if (kind === "label" && isUnsure()) out.unsure = true;
    return Object.keys(out).length ? out : null;
  };
  bridge.hook.sent = () => {
    comment.value = "";
    box.hidden = true;
    closeMenu();
    setUnsure(false);
  };

  toggleBtn.addEventListener("click", () => { toggleBtn.blur(); toggleBox(); });
  unsureBtn.addEventListener("click", () => { unsureBtn.blur(); setUnsure(!isUnsure()); });
  reasonBtn.addEventListener("click", () => { reasonBtn.blur(); if (menu.hidden) openMenu(); else closeMenu(); });
  reasons.forEach((b) => b.addEventListener("click", () => { b.blur(); skipWith(b.dataset.reason); }));
  $("skip-menu-close").addEventListener("click", closeMenu);
  comment.addEventListener("input", update);

  // Capture phase on window: before label.js and queues.js (document, bubbling) see the key.
  window.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const key = e.key;
    if (e.target === comment) {
      if (key === "Escape") { // leave the box, keep the text; not a queue switch
        e.preventDefault();
        e.stopPropagation();
        comment.blur();
      }
      return;
    }
    const t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    if (!menu.hidden && (/^[1-4]$/.test(key) || key === "Escape")) {
      e.preventDefault();
      e.stopPropagation();
      if (e.repeat) return;
      if (key === "Escape") closeMenu();
      else skipWith(reasons[Number(key) - 1].dataset.reason);
    } else if ((key === "r" || key === "R") && !e.repeat) {
      e.preventDefault();
      if (menu.hidden) openMenu();
      else closeMenu();
    } else if ((key === "c" || key === "C") && !e.repeat) {
      e.preventDefault(); // not typed into the box it opens
      openBox();
    } else if ((key === "f" || key === "F") && !e.repeat) {
      e.preventDefault();
      setUnsure(!isUnsure());
    }
  }, true);

  update();
})();
