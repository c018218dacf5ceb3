/* The queue picker of the labelling page (issue 13): search (key "/"), likely / unsure for a tag,
 * "more like this" on the current item (key "m"), random; Escape returns to the default queue.
 * It only builds the query of POST .../next (label.js's window.labelloopQueues.set): the server
 * checks everything (422 for a bad query, 403 when steering is off for labellers). */
(function () {
  "use strict";

  const q = window.labelloopQueues;
  const $ = (id) => document.getElementById(id);
  const picker = $("queue-picker");
  if (!q || !picker) return;
  const active = $("queue-active");
  const search = $("queue-q");
  const tagSel = $("queue-tag");
  let label = "default";
  let isDefault = true;

  function params(obj) {
    return "?" + Object.keys(obj).map((k) => k + "=" + encodeURIComponent(obj[k])).join("&");
  }

  function use(obj, text) {
    label = text;
    isDefault = obj.queue === "default";
    picker.classList.toggle("steered", !isDefault);
    active.textContent = "Queue: " + text;
    q.set(params(obj));
  }

  q.onShow = function (data) {
    if (data && data.queue) label = data.queue.label;
    if (isDefault) active.textContent = "Queue: default";
    else active.textContent = "Queue: " + label + (data === null ? " (empty: Esc for the default queue)" : "");
  };

  $("queue-search").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = search.value.trim();
    if (!text) return;
    search.blur();
    use({ queue: "search", q: text }, 'search "' + text + '"');
  });
  $("queue-likely").addEventListener("click", (e) => {
    e.currentTarget.blur();
    use({ queue: "likely", tag: tagSel.value }, "likely " + tagSel.value);
  });
  $("queue-unsure").addEventListener("click", (e) => {
    e.currentTarget.blur();
    use({ queue: "unsure", tag: tagSel.value }, "unsure " + tagSel.value);
  });
  function moreLikeThis() {
    const id = q.current();
    if (id !== null) use({ queue: "similar", item: String(id) }, "similar to item " + id);
  }
  $("queue-similar").addEventListener("click", (e) => { e.currentTarget.blur(); moreLikeThis(); });
  $("queue-random").addEventListener("click", (e) => { e.currentTarget.blur(); use({ queue: "random" }, "random"); });
  $("queue-default").addEventListener("click", (e) => { e.currentTarget.blur(); use({ queue: "default" }, "default"); });

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const t = e.target;
    const typing = t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
    if (e.key === "Escape") {
      e.preventDefault();
      if (typing) t.blur();
      if (!isDefault) use({ queue: "default" }, "default");
    } else if (typing) {
      return;
    } else if (e.key === "/") {
      e.preventDefault();
      search.focus();
      search.select();
    } else if ((e.key === "m" || e.key === "M") && !e.repeat) {
      e.preventDefault();
      moreLikeThis();
    }
  });
})();
