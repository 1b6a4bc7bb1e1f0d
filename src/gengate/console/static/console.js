// gengate console: small progressive enhancements; every page works without them.
"use strict";

// a job that is still running: follow its progress as server-sent events (or, where the
// stream cannot be had, by polling), and reload the page once it ends
function watchJob() {
  const card = document.getElementById("job");
  if (!card || card.dataset.terminal === "yes") return;
  const bar = document.getElementById("progress");
  const text = document.getElementById("progress-text");
  const status = document.getElementById("job-status");
  const base = "/console/jobs/" + encodeURIComponent(card.dataset.job);
  let done = false;
  const show = (job) => {
    if (bar) bar.value = job.progress;
    if (text) text.textContent = job.progress + "%";
    if (status) status.textContent = job.status;
    card.dataset.progress = String(job.progress);
  };
  const finish = () => {
    if (done) return;
    done = true;
    const url = new URL(window.location.href);
    url.searchParams.delete("ok");
    url.searchParams.delete("error");
    window.location.replace(url.pathname + url.search);
  };
  const poll = () => {
    card.dataset.live = "polling";
    const tick = async () => {
      try {
        const response = await fetch(base + "/progress", { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (response.ok) {
          const job = await response.json();
          show(job);
          if (job.terminal) { finish(); return; }
        }
      } catch (err) { /* the network blinked: try again */ }
      window.setTimeout(tick, 1000);
    };
    window.setTimeout(tick, 700);
  };
  if (!("EventSource" in window) || card.dataset.stream === "off") { poll(); return; }
  const source = new EventSource(base + "/events");
  let opened = false;
  source.addEventListener("open", () => { opened = true; card.dataset.live = "events"; });
  source.addEventListener("progress", (event) => show(JSON.parse(event.data)));
  source.addEventListener("end", (event) => { source.close(); show(JSON.parse(event.data)); finish(); });
  source.addEventListener("gone", () => { source.close(); finish(); });
  source.addEventListener("error", () => {
    // never connected (a proxy that buffers, an old server), or refused on reconnecting:
    // poll instead; a stream that ended reconnects by itself
    if (done) return;
    if (!opened || source.readyState === EventSource.CLOSED) { source.close(); poll(); }
  });
}

// forms that ask before doing something hard to undo
function confirmForms() {
  document.querySelectorAll("form.confirm").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm || "Are you sure?")) event.preventDefault();
    });
  });
}

// copy a shown-once secret
function copyButtons() {
  document.querySelectorAll("button.copy").forEach((button) => {
    button.addEventListener("click", async () => {
      const target = document.getElementById(button.dataset.copy);
      if (!target) return;
      try {
        await navigator.clipboard.writeText(target.textContent.trim());
        button.textContent = "Copied";
      } catch (err) {
        const range = document.createRange();
        range.selectNodeContents(target);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
    });
  });
}

// a submit button says it is working, and is not pressed twice
function busyButtons() {
  document.querySelectorAll("form[method=post]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (event.defaultPrevented) return;
      const button = form.querySelector("button[type=submit]");
      if (button) { window.setTimeout(() => { button.disabled = true; }, 0); }
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  watchJob();
  confirmForms();
  copyButtons();
  busyButtons();
});
