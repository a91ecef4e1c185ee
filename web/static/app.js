// Enhancements only: every page works without this file.
// Downloads: live rows and toasts over server-sent events. Item pages: arrow keys.
"use strict";

function toast(text) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const div = document.createElement("div");
  div.className = "toast";
  div.textContent = text;
  box.appendChild(div);
  setTimeout(() => div.remove(), 8000);
}

function placeRow(data) {
  // The row's HTML comes rendered (and escaped) by the server's templates.
  const template = document.createElement("template");
  template.innerHTML = data.html.trim();
  const row = template.content.firstElementChild;
  const old = document.getElementById("job-" + data.id);
  const active = document.getElementById("active");
  const finished = !/state-(queued|running|paused|interrupted)/.test(row.className);
  if (finished && data.parent) { if (old) old.remove(); }
  else if (finished) {
    if (old) old.remove();
    const recent = document.getElementById("recent");
    if (recent) recent.prepend(row);
  } else if (old) old.replaceWith(row);
  else if (active) active.prepend(row);
  const idle = document.getElementById("idle");
  if (idle && active) idle.hidden = active.children.length > 0;
}

function live() {
  const source = new EventSource("/events");
  source.addEventListener("job", (e) => placeRow(JSON.parse(e.data)));
  source.addEventListener("toast", (e) => toast(JSON.parse(e.data).text));
}

function arrows() {
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, textarea, video") || e.altKey || e.ctrlKey || e.metaKey) return;
    const link = document.getElementById(e.key === "ArrowLeft" ? "newer" : e.key === "ArrowRight" ? "older" : "");
    if (link) location.href = link.href;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.live) live();
  arrows();
});
