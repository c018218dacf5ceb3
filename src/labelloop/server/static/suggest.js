/* labelloop: the model's suggestion on the labelling page (issue 14; loaded only when the
 * project's `suggestions` setting is on, after label.js).
 *
 * label.js calls window.labelloopSuggest.onShow(data) each time it shows an item (or null when
 * nothing is left). data.suggestion, when the server sent one (never on audit or overlap items):
 *   {mode: "order"|"preselect", top, tags: [names in the model's order], confidence}
 *   multi-label also {set: [the predicted set], proba: [aligned with tags]}.
 *
 * - order: the tag buttons follow the model's order and the number keys follow the buttons
 *   (1 is the first button shown); multi-label buttons show each tag's probability.
 * - preselect: the buttons keep their order; the model's tag is marked ("suggested") and Enter
 *   labels the item with it. Multi-label: the predicted set is chosen already (toggle to change
 *   it) and Enter submits the chosen set (an empty prediction: Enter sends "none of these").
 * - no suggestion: the buttons are exactly as the page drew them (display order, keys 1-9).
 *
 * Everything is put on the page with textContent; nothing here talks to the server.
 */
(function () {
  "use strict";

  const cfg = JSON.parse(document.getElementById("label-config").textContent);
  const area = document.getElementById("tag-buttons");
  const buttons = Array.from(area.querySelectorAll(".tag-btn")); // display order
  const byTag = new Map(buttons.map((b) => [b.dataset.tag, b]));
  const multi = Boolean(cfg.multi_label);
  const noneBtn = document.getElementById("none-set");
  let shown = null; // the suggestion of the item on screen
  // Room for the "suggested" notes on the buttons' top edge where the tags scroll (multi-label).
  if (cfg.suggestions === "preselect") area.classList.add("suggest-room");

  function setKeys(ordered) {
    ordered.forEach((b, i) => {
      let kbd = b.querySelector("kbd");
      if (i < 9) {
        if (!kbd) {
          kbd = document.createElement("kbd");
          b.insertBefore(kbd, b.firstChild);
        }
        kbd.textContent = String(i + 1);
        b.dataset.key = String(i + 1);
      } else {
        if (kbd) kbd.remove();
        delete b.dataset.key;
      }
    });
  }

  function arrange(ordered) {
    // Move only when the order changes (no layout work for the usual item).
    const now = Array.from(area.querySelectorAll(".tag-btn"));
    if (now.length !== ordered.length || now.some((b, i) => b !== ordered[i])) {
      ordered.forEach((b) => area.appendChild(b));
      setKeys(ordered);
    }
  }

  function probability(button, value) {
    let span = button.querySelector(".suggest-p");
    if (value === null) {
      if (span) span.remove();
      return;
    }
    if (!span) {
      span = document.createElement("span");
      span.className = "suggest-p";
      button.appendChild(span);
    }
    span.textContent = Math.round(100 * value) + "%";
  }

  function clear() {
    buttons.forEach((b) => {
      b.classList.remove("suggested");
      b.removeAttribute("title");
      probability(b, null);
    });
    if (noneBtn) noneBtn.classList.remove("suggested");
    area.classList.remove("suggesting");
  }

  function onShow(data) {
    const s = data && data.suggestion ? data.suggestion : null;
    shown = s;
    clear();
    if (!s) {
      arrange(buttons);
      return;
    }
    area.classList.add("suggesting");
    if (s.mode === "order") {
      const ordered = s.tags.map((t) => byTag.get(t)).filter(Boolean);
      buttons.forEach((b) => { if (!ordered.includes(b)) ordered.push(b); });
      arrange(ordered);
      if (multi && s.proba) s.tags.forEach((t, i) => { if (byTag.has(t)) probability(byTag.get(t), s.proba[i]); });
      return;
    }
    arrange(buttons);
    const marked = multi ? s.set || [] : [s.top];
    marked.forEach((t) => {
      const b = byTag.get(t);
      if (!b) return;
      b.classList.add("suggested");
      b.title = "The model's suggestion: press Enter to accept";
      if (multi) {
        b.setAttribute("aria-pressed", "true");
        b.classList.add("chosen");
      }
    });
    if (multi && marked.length === 0 && noneBtn) noneBtn.classList.add("suggested");
  }

  // Enter accepts a preselected suggestion. Capture phase: runs before label.js's own keys.
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || !shown || shown.mode !== "preselect") return;
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT|BUTTON|A)$/.test(t.tagName))) return;
    if (multi) {
      const chosen = buttons.some((b) => b.getAttribute("aria-pressed") === "true");
      if (chosen || !noneBtn || (shown.set || []).length) return; // label.js submits the chosen set
      e.preventDefault();
      e.stopPropagation();
      if (!e.repeat && !noneBtn.disabled) noneBtn.click(); // the model says: none of these
      return;
    }
    const top = byTag.get(shown.top);
    e.preventDefault();
    e.stopPropagation();
    if (!e.repeat && top && !top.disabled) top.click();
  }, true);

  window.labelloopSuggest = { onShow };
})();
