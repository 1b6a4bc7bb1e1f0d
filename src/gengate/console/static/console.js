// gengate console: small progressive enhancements; every page works without them.
"use strict";

// a job that is still running: poll its progress, reload once it ends
function watchJob() {
  const card = document.getElementById("job");
  if (!card || card.dataset.terminal === "yes") return;
  const bar = document.getElementById("progress");
  const text = document.getElementById("progress-text");
  const status = document.getElementById("job-status");
  const url = "/console/jobs/" + encodeURIComponent(card.dataset.job) + "/progress";
  const tick = async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) {
        const job = await response.json();
        if (bar) bar.value = job.progress;
        if (text) text.textContent = job.progress + "%";
        if (status) status.textContent = job.status;
        if (job.terminal) { window.location.replace(window.location.pathname); return; }
      }
    } catch (err) { /* the network blinked: try again */ }
    window.setTimeout(tick, 1000);
  };
  window.setTimeout(tick, 700);
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
