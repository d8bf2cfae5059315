// SPDX-License-Identifier: Apache-2.0
/* qwd-progress.js: the result page's boot progress. Polls the session's JSON status
 * (data-status-url, the browser's identity cookie authenticates) until the VM's display
 * answers, then shows the link and QR code; shows the reason when the VM ended instead.
 * Without this script the page simply shows the link. No dependencies, no inline code. */
(function () {
  "use strict";
  var progress = document.getElementById("progress");
  var ready = document.getElementById("ready");
  if (!progress || !ready || !window.fetch) {
    return;
  }
  var stateText = document.getElementById("state");
  var detail = document.getElementById("state-detail");
  var url = progress.getAttribute("data-status-url");
  var delay = 1000;

  function show(state, message) {
    progress.setAttribute("data-state", state);
    stateText.textContent = state;
    detail.textContent = message;
  }

  function update(session) {
    if (session.state === "running") {
      ready.classList.remove("qwd-waiting");
      progress.classList.remove("qwd-busy");
      show("running", "Ready: the desktop is waiting for you.");
      return true;
    }
    if (session.state === "ended") {
      ready.classList.add("qwd-waiting");
      progress.classList.remove("qwd-busy");
      progress.classList.add("qwd-error");
      show("ended", "The machine stopped while starting: " +
           (session.ended_reason || "unknown reason") + ".");
      return true;
    }
    if (session.state === "queued") {
      /* a cluster's batch job waiting for room: not an error, just a wait */
      show("queued", "Waiting for a free node on the cluster (" +
           (session.queued_reason || "queued") + "); the link appears once the machine runs.");
      return false;
    }
    show(session.state, "The machine is booting; the link appears when its display answers.");
    return false;
  }

  function poll() {
    fetch(url, {credentials: "same-origin", cache: "no-store",
                headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (session) {
        delay = 1000;
        if (!update(session)) {
          setTimeout(poll, delay);
        }
      })
      .catch(function () {
        delay = Math.min(delay * 2, 10000); /* the server is busy or restarting: back off */
        setTimeout(poll, delay);
      });
  }

  if (progress.getAttribute("data-state") !== "running") {
    ready.classList.add("qwd-waiting");
    progress.classList.add("qwd-busy");
    poll();
  }
}());
