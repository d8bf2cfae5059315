// SPDX-License-Identifier: Apache-2.0
// driver.js: drives Debian's chromium for test/test_400_browser.py through playwright-core.
// Speaks JSON lines: each stdin line {"id", "op", ...args} gets one stdout line {"id",
// "result"} or {"id", "error"}; the python test holds the flow, this file only acts.
"use strict";
const readline = require("readline");
const { chromium } = require("playwright-core");

const pages = new Map();
let context = null;

// Characters typed with Shift held, by the key that carries them on a US keyboard: noVNC
// forwards physical key codes (QEMU extended key events), so Shift must really be down.
const SHIFTED = { ">": "Period", "<": "Comma", "|": "Backslash", "_": "Minus", ":": "Semicolon",
                  "\"": "Quote", "!": "Digit1", "&": "Digit7", "*": "Digit8", "+": "Equal" };
const PLAIN = { " ": "Space", "-": "Minus", ".": "Period", "/": "Slash", "=": "Equal",
                ",": "Comma", ";": "Semicolon", "\n": "Enter" };

function keyOf(ch) {
  if (/[a-z]/.test(ch)) return "Key" + ch.toUpperCase();
  if (/[A-Z]/.test(ch)) return "Shift+Key" + ch;
  if (/[0-9]/.test(ch)) return "Digit" + ch;
  if (SHIFTED[ch]) return "Shift+" + SHIFTED[ch];
  if (PLAIN[ch]) return PLAIN[ch];
  throw new Error("no key for " + JSON.stringify(ch));
}

const ops = {
  // args: more chromium switches (the TLS test trusts its server key with one)
  async launch({ userDataDir, executablePath, args }) {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: executablePath || "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             ...(args || [])],
      viewport: { width: 1280, height: 800 },
    });
    return { version: context.browser() ? context.browser().version() : "persistent" };
  },
  async newPage({ name, width, height }) {
    const page = await context.newPage();
    await page.setViewportSize({ width, height });
    page.on("console", (msg) => process.stderr.write(`[${name} console] ${msg.text()}\n`));
    pages.set(name, page);
    return true;
  },
  async viewport({ page, width, height }) {
    await pages.get(page).setViewportSize({ width, height });
    return true;
  },
  async goto({ page, url }) {
    const response = await pages.get(page).goto(url, { waitUntil: "load" });
    return { url: pages.get(page).url(), status: response ? response.status() : null };
  },
  async fill({ page, selector, value }) {
    await pages.get(page).fill(selector, value);
    return true;
  },
  async select({ page, selector, value }) {
    await pages.get(page).selectOption(selector, value);
    return true;
  },
  async submit({ page, selector }) {
    const p = pages.get(page);
    const [response] = await Promise.all([p.waitForNavigation({ waitUntil: "load" }),
                                          p.click(selector)]);
    return { url: p.url(), status: response ? response.status() : null };
  },
  // Answers requests matching pattern with a fixed JSON body (a server-side failure that is
  // hard to cause on purpose at the right moment).
  async route({ page, pattern, body }) {
    await pages.get(page).route(pattern, (route) =>
      route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(body) }));
    return true;
  },
  async click({ page, selector }) {
    await pages.get(page).click(selector);
    return true;
  },
  async waitFor({ page, selector, timeout }) {
    await pages.get(page).waitForSelector(selector, { timeout: timeout || 30000 });
    return true;
  },
  // Polls expression with evaluate (CDP, which a page's CSP does not govern): waitForFunction
  // would compile it inside the page, which our pages' CSP (no 'unsafe-eval') forbids.
  async waitFunction({ page, expression, timeout }) {
    const deadline = Date.now() + (timeout || 30000);
    for (;;) {
      if (await pages.get(page).evaluate(expression)) return true;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${expression}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  },
  async eval({ page, expression }) {
    return await pages.get(page).evaluate(expression);
  },
  async type({ page, text, delay }) {
    const keyboard = pages.get(page).keyboard;
    for (const ch of text) {
      await keyboard.press(keyOf(ch), { delay: delay || 30 });
    }
    return true;
  },
  async screenshot({ page, path, fullPage }) {
    await pages.get(page).screenshot({ path, fullPage: !!fullPage });
    return path;
  },
  async close() {
    if (context) await context.close();
    context = null;
    return true;
  },
};

const input = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
input.on("line", (line) => {
  queue = queue.then(async () => {
    const request = JSON.parse(line);
    let reply;
    try {
      reply = { id: request.id, result: await ops[request.op](request) };
    } catch (error) {
      reply = { id: request.id, error: String(error && error.stack || error) };
    }
    process.stdout.write(JSON.stringify(reply) + "\n");
    if (request.op === "close") process.exit(0);
  });
});
input.on("close", () => queue.then(() => ops.close()).then(() => process.exit(0)));
