/* My history's key: on the labelling page and on the history page, "y" follows the link marked
 * data-history-key (to the history, and back). No other key, so the labelling keys stay as they are. */
(() => {
  "use strict";
  const link = document.querySelector("a[data-history-key]");
  if (!link) return;
  const key = link.dataset.historyKey;
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing || e.repeat) return;
    const t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    if (e.key === key || e.key === key.toUpperCase()) {
      e.preventDefault();
      window.location.assign(link.href);
    }
  });
})();
