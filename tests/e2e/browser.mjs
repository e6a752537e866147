// Shared headless-Chromium launcher for the e2e tools (driver.mjs, render_cards.mjs).
// MUST run inside a loopback-only network namespace (see harness.py run_in_loopback_namespace):
// Chromium phones home (component updates, fonts, metadata) even with all the flags below.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--no-sandbox', // we run as root; playwright adds --headless itself (headless: true)
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-dev-shm-usage',
  '--disable-features=Translate,MediaRouter,OptimizationHints',
];

export function chromiumPath() {
  return process.env.FIREBELL_E2E_CHROMIUM || '/usr/bin/chromium';
}

/** Launch a persistent context on a fresh temp profile; every non-loopback request is aborted. */
export async function launch({ viewport = { width: 1400, height: 1000 }, deviceScaleFactor = 1 } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'firebell-e2e-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
    deviceScaleFactor,
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  // Belt and braces on top of the namespace: never even try to leave loopback (fonts from the CDN etc.).
  await context.route(/^(https?|wss?):\/\/(?!127\.0\.0\.1|localhost|\[::1\])/, (route) => route.abort());
  const page = context.pages()[0] || (await context.newPage());
  const close = async () => {
    try {
      await context.close();
    } finally {
      fs.rmSync(profile, { recursive: true, force: true });
    }
  };
  return { context, page, close, profile };
}
