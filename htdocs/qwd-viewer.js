// SPDX-License-Identifier: Apache-2.0
/* qwd-viewer.js: the viewer of a session link (/s/ID), on Debian's noVNC core/rfb.js. Before
 * every connect and reconnect it asks the link for a fresh one-use ticket (POST
 * data-ticket-url) and hands it to the websocket gate as a subprotocol, never in a URL. A lost
 * connection shows "reconnecting" and comes back by itself; a session that ended says so and
 * stops trying. A view share's viewer (data-view-only) sends no input and never resizes the
 * desktop: the helper's relay would drop the one and close the viewer for the other. */
"use strict";

const body = document.body;
const statusText = document.getElementById("qwd-viewer-status");
const retryButton = document.getElementById("qwd-viewer-retry");
const screen = document.getElementById("qwd-viewer-screen");
const ticketURL = body.dataset.ticketUrl;
const viewOnly = body.dataset.viewOnly === "1";

const FIRST_DELAY_MS = 500; // a starting display usually accepts within a second
const MAX_DELAY_MS = 10000;
const GIVE_UP_AFTER_MS = 10 * 60 * 1000; // of failing in a row: the network is gone

let RFB = null;
let rfb = null;
let connected = false; // ever connected: later tries are reconnects
let failingSince = 0;
let delay = FIRST_DELAY_MS;
let sessionExpires = 0; // Unix seconds, from the last ticket
let tickets = 0;

function show(state, text) {
  body.dataset.state = state;
  body.dataset.tickets = String(tickets);
  statusText.textContent = text;
  retryButton.hidden = state !== "lost";
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// The end: the session stopped, expired or never existed. Nothing more to try.
function end(message) {
  show("ended", "Ended");
  const notice = document.createElement("p");
  notice.className = "qwd-viewer-end";
  notice.textContent = message;
  screen.replaceChildren(notice);
}

async function askTicket() {
  try {
    const response = await fetch(ticketURL, { method: "POST", cache: "no-store",
                                              credentials: "same-origin" });
    let answer = {};
    try {
      answer = await response.json();
    } catch (error) {
      answer = {};
    }
    return { status: response.status, answer };
  } catch (error) {
    return { status: 0, answer: {} }; // the server is out of reach
  }
}

// Asks for tickets until one is given (then connects), the session is over, or the network
// stayed away too long.
async function connect() {
  for (;;) {
    show(connected ? "reconnecting" : "connecting",
         connected ? "Reconnecting\u2026" : "Connecting\u2026");
    const { status, answer } = await askTicket();
    if (status === 200) {
      tickets += 1;
      sessionExpires = answer.session_expires || 0;
      try {
        open(answer);
      } catch (error) {
        end("The viewer cannot open the desktop: " + error.message);
      }
      return;
    }
    if (status === 404 || status === 410) {
      end(answer.message || "This session has ended.");
      return;
    }
    const now = Date.now();
    if (sessionExpires && now / 1000 > sessionExpires) {
      end("This session has expired.");
      return;
    }
    failingSince = failingSince || now;
    if (now - failingSince > GIVE_UP_AFTER_MS) {
      show("lost", "The desktop cannot be reached.");
      return;
    }
    if (status === 503 && answer.error === "not_ready") {
      statusText.textContent = "The desktop is starting\u2026";
      await sleep(FIRST_DELAY_MS);
    } else {
      await sleep(delay);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }
}

function open(answer) {
  let reached = false;
  rfb = new RFB(screen, answer.url, { wsProtocols: ["binary", answer.subprotocol] });
  rfb.viewOnly = viewOnly;
  rfb.resizeSession = !viewOnly;
  rfb.scaleViewport = viewOnly; // a watcher sees the whole desktop in the window
  rfb.addEventListener("connect", () => {
    reached = true;
    connected = true;
    failingSince = 0;
    delay = FIRST_DELAY_MS;
    show("connected", viewOnly ? "Connected (view only)" : "Connected");
  });
  rfb.addEventListener("disconnect", async () => {
    rfb = null;
    if (!reached) {
      // refused or cut before the display answered: wait before the next ticket
      failingSince = failingSince || Date.now();
      await sleep(delay);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
    // a ticket opens the display once: the next try asks for a new one
    connect();
  });
  rfb.addEventListener("desktopname", (event) => {
    document.title = event.detail.name + " - virtual desktops";
  });
}

retryButton.addEventListener("click", () => {
  failingSince = 0;
  delay = FIRST_DELAY_MS;
  connect();
});

import(body.dataset.novnc + "core/rfb.js").then((module) => {
  RFB = module.default;
  connect();
}, () => {
  end("The viewer (noVNC) could not be loaded.");
});
