// The console's only script: the Copy button, the Show/Hide of a
// recoverable key, "Apply to all APIs", and keeping a shown key out of
// the history. Every form works without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // A page that shows a key replaces its history entry with the token
  // list, so reloading or coming back shows only the key's hint.
  const keyPage = document.body.dataset.keyPage;
  if (keyPage) {
    history.replaceState(null, "", keyPage);
    // Leaving the page drops the key, so that a page restored from the
    // back/forward cache shows it no more than a reload would.
    window.addEventListener("pagehide", () => {
      for (const el of document.querySelectorAll(".new-key")) {
        el.remove();
      }
    });
  }

  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      const status = document.getElementById(button.dataset.copy + "-status");
      try {
        await navigator.clipboard.writeText(field.value);
        status.textContent = "Copied to the clipboard.";
      } catch {
        field.focus();
        field.select();
        status.textContent = "Press Ctrl+C (⌘C) to copy the selected key.";
      }
    });
  }

  // "Apply to all APIs" sets every API's level to the one chosen; each
  // API can then be changed on its own.
  for (const radio of document.querySelectorAll("input[name='access.*']")) {
    radio.addEventListener("change", () => {
      for (const r of document.querySelectorAll("input[data-api-level='" + radio.value + "']")) {
        r.checked = true;
      }
    });
  }

  window.addEventListener("pagehide", () => {
    for (const out of document.querySelectorAll(".key.revealed")) {
      out.textContent = "";
      out.hidden = true;
    }
    for (const button of document.querySelectorAll("button[data-reveal]")) {
      button.firstChild.textContent = "Show";
      button.setAttribute("aria-expanded", "false");
    }
  });

  for (const button of document.querySelectorAll("button[data-reveal]")) {
    const out = document.getElementById(button.getAttribute("aria-controls"));
    const label = button.firstChild;
    button.addEventListener("click", async (event) => {
      event.preventDefault();
      if (button.getAttribute("aria-expanded") === "true") {
        out.textContent = "";
        out.hidden = true;
        label.textContent = "Show";
        button.setAttribute("aria-expanded", "false");
        return;
      }
      let text = "The key could not be shown.";
      try {
        const resp = await fetch(button.dataset.reveal, {
          method: "POST",
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        const body = await resp.json();
        if (resp.ok && body.key) {
          text = body.key;
          label.textContent = "Hide";
          button.setAttribute("aria-expanded", "true");
        } else if (body.error) {
          text = body.error;
        }
      } catch {
        // keep the message above
      }
      out.textContent = text;
      out.hidden = false;
    });
  }
});
