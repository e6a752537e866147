// Scenario driver for the Microsoft 365 Agents Playground (headless Chromium via playwright-core).
//
//   node tests/e2e/driver.mjs <job.json>
//
// Normally started by harness.py (inside the loopback-only network namespace, after the bot and the Playground
// are up). The job file gives the Playground URL, the names from the Playground config, the artifacts folder
// and the list of steps; the result (one entry per step) is written to job.result_path as JSON.
// Exit code: 0 all steps passed, 1 a step failed, 2 the driver itself broke before/around the steps.
//
// Step reference: see README.md in this folder ("Scenario steps").
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { launch } from './browser.mjs';

const CARD = '.ac-preview-panel > .ac-adaptiveCard'; // top-level rendered Adaptive Card of one message
const EDITOR = '[data-lexical-editor="true"]'; // message composers (Lexical editors)
const NAV = '[role="region"][aria-label="Chat and Teams Channel"]';

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const ART = job.artifacts_dir;
fs.mkdirSync(ART, { recursive: true });
const DEFAULT_TIMEOUT = job.default_timeout_ms ?? 20000;
const vars = job.vars ?? {};
const usersById = new Map();
for (const u of job.users ?? []) usersById.set(u.id, u);

const result = {
  ok: false,
  playground_url: job.playground_url,
  artifacts_dir: ART,
  steps: [],
  failed_step: null,
  error: null,
  console_errors: 0,
};
const writeResult = () => fs.writeFileSync(job.result_path, JSON.stringify(result, null, 2));

const toList = (v) => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);
const slug = (s) => String(s).replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 60) || 'step';
const norm = (s) => String(s).replace(/\s+/g, ' ').trim();

function subst(value) {
  const names = Object.keys(vars);
  if (!names.length) return value;
  const re = new RegExp(`\\{(${names.map((n) => n.replace(/[^A-Za-z0-9_]/g, '')).join('|')})\\}`, 'g');
  const walk = (v) => {
    if (typeof v === 'string') return v.replace(re, (_, k) => String(vars[k]));
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value);
}

function resolveUser(spec) {
  if (!spec) return null;
  if (usersById.has(spec)) return usersById.get(spec);
  const s = String(spec).toLowerCase();
  for (const u of usersById.values()) {
    if ([u.name, u.email, u.userPrincipleName, u.aadObjectId, u.givenName].some((x) => x && x.toLowerCase() === s)) return u;
  }
  throw new Error(`as_user: unknown user ${JSON.stringify(spec)} (known: ${[...usersById.values()].map((u) => u.name).join(', ')})`);
}

// ---------------------------------------------------------------------------------------------------------------
const { page, close } = await launch({ viewport: job.viewport ?? { width: 1400, height: 1000 } });
page.setDefaultTimeout(DEFAULT_TIMEOUT);

const consoleLog = fs.createWriteStream(path.join(ART, 'browser-console.log'));
page.on('console', (m) => {
  if (m.type() === 'error') result.console_errors += 1;
  consoleLog.write(`[${m.type()}] ${m.text()}\n`);
});
page.on('pageerror', (e) => consoleLog.write(`[pageerror] ${e.stack || e}\n`));

// Everything the Playground logs (every activity in both directions, with request/response bodies) is streamed
// to the UI over a websocket; keep it as JSON lines for debugging and for the "Connected." check.
const pgLog = fs.createWriteStream(path.join(ART, 'playground-activities.jsonl'));
let connected = false;
page.on('websocket', (ws) => {
  if (!ws.url().includes('/_ws/log/stream')) return;
  ws.on('framereceived', (f) => {
    const text = String(f.payload);
    pgLog.write(text + '\n');
    if (text.includes('"displayText":"Connected."')) connected = true;
  });
});

// Number cards in order of appearance (data-e2e-seq) so "newest card containing X" is well defined even in
// channels, where threads are listed newest-first.
await page.addInitScript(() => {
  let seq = 0;
  const mark = () => {
    for (const el of document.querySelectorAll('.ac-preview-panel > .ac-adaptiveCard:not([data-e2e-seq])')) {
      el.setAttribute('data-e2e-seq', String(++seq));
    }
  };
  new MutationObserver(mark).observe(document, { childList: true, subtree: true });
});

// as_user: the web client sends {"from": {"id": "user-id-0"}} in its POSTs to /_conversation/v1/...; the
// Playground fills in the rest of the user (name, aadObjectId) from its config. Rewriting that id lets a step act
// as another configured user.
let asUser = null;
await page.route('**/_conversation/v1/**', async (route) => {
  const req = route.request();
  // (not typed messages: the Playground sends those as its current user whatever `from` says; see armAsUser)
  if (asUser && req.method() === 'POST' && !/\/messages$/.test(new URL(req.url()).pathname)) {
    try {
      const body = JSON.parse(req.postData() || '{}');
      if (body && typeof body === 'object') {
        body.from = { ...(body.from || {}), id: asUser.id };
        return route.continue({ postData: JSON.stringify(body) });
      }
    } catch {
      /* not JSON: pass through */
    }
  }
  return route.continue();
});

// as_user on `send`: the Playground ignores the client's `from` for typed messages, so the harness's relay between
// the Playground and the bot (AsUserRelay) rewrites the next message activity's `from`; armed here, per step.
async function armAsUser(user, text) {
  const r = await fetch(job.as_user_url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ id: user.id, name: user.name, aadObjectId: user.aadObjectId, text: String(text ?? '') }),
  });
  if (r.status !== 204) throw new Error(`as_user: the relay answered HTTP ${r.status}`);
}

// The Playground hands the message to the bot just after answering the client: wait until the relay has sent it on.
async function waitAsUserDelivered(timeout) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const r = await fetch(job.as_user_url);
    if (!(await r.json()).armed) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('as_user: the message never reached the bot (in a channel, mention it: mention is the default)');
}

async function disarmAsUser() {
  if (job.as_user_url) await fetch(job.as_user_url, { method: 'DELETE' }).catch(() => {});
}

let currentChat = null;

async function openChat(chat) {
  const c = String(chat);
  const lower = c.toLowerCase();
  let label;
  if (['personal', 'personal chat', 'personalchat'].includes(lower)) label = 'Personal Chat';
  else if (['group', 'group chat', 'groupchat'].includes(lower)) label = 'Group Chat';
  else if (c.includes(' - ')) label = c;
  else label = `${job.team_name} - ${c}`;
  await page.getByRole('treeitem', { name: label, exact: true }).click();
  currentChat = { label, isChannel: !['Personal Chat', 'Group Chat'].includes(label) };
  await page.locator(EDITOR).first().waitFor({ state: 'visible' });
  return { chat: label };
}

function cardLocator(contains, notContains) {
  let loc = page.locator(CARD);
  for (const t of toList(contains)) loc = loc.filter({ hasText: String(t) });
  for (const t of toList(notContains)) loc = loc.filter({ hasNotText: String(t) });
  return loc;
}

async function pickCard(step, timeout) {
  const contains = step.card ?? step.contains;
  const loc = cardLocator(contains, step.not_contains);
  await loc.first().waitFor({ state: 'visible', timeout });
  const n = await loc.count();
  let idx = 0;
  const pick = step.pick ?? 'newest';
  if (n > 1) {
    if (pick === 'first') idx = 0;
    else if (pick === 'last') idx = n - 1;
    else if (Number.isInteger(pick)) idx = pick;
    else {
      const seqs = await loc.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-e2e-seq') || 0)));
      idx = seqs.indexOf(Math.max(...seqs));
    }
  }
  return { card: loc.nth(idx), matches: n };
}

async function inputIn(card, label) {
  for (const cand of [card.getByLabel(label, { exact: true }), card.getByLabel(label), card.getByPlaceholder(label)]) {
    if ((await cand.count()) > 0) return cand.first();
  }
  throw new Error(`no input labelled or with placeholder ${JSON.stringify(label)} in the card`);
}

async function conversationText() {
  return page.evaluate((nav) => {
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || el.closest(`${nav}, [role="toolbar"], [data-e2e-logpanel], script, style, noscript`)) continue;
      out.push(n.nodeValue);
    }
    return out.join(' ').replace(/\s+/g, ' ');
  }, NAV);
}

async function waitText(text, timeout, present = true) {
  const needle = norm(text);
  const deadline = Date.now() + timeout;
  for (;;) {
    const has = (await conversationText()).includes(needle);
    if (has === present) return;
    if (Date.now() > deadline) {
      throw new Error(present ? `text ${JSON.stringify(needle)} did not appear within ${timeout} ms`
                              : `text ${JSON.stringify(needle)} is present`);
    }
    await page.waitForTimeout(200);
  }
}

async function typeText(text) {
  const lines = String(text).split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (i) await page.keyboard.press('Shift+Enter');
    if (lines[i]) await page.keyboard.type(lines[i]);
  }
}

async function chooseIn(card, input, value) {
  const values = toList(value).map(String);
  const combo = card.getByRole('combobox', { name: String(input) });
  if ((await combo.count()) > 0) {
    for (const v of values) {
      await combo.first().click();
      await page.getByRole('option', { name: v, exact: true }).click();
    }
    // A single choice closes the list itself. Escape only when it is still open (multi-select): inside a dialog
    // (a message action's task module) a stray Escape closes the whole dialog.
    if ((await combo.first().getAttribute('aria-expanded')) === 'true') await page.keyboard.press('Escape').catch(() => {});
    return { style: 'compact', value: await combo.first().inputValue() };
  }
  // expanded style: radio buttons (single) or checkboxes (isMultiSelect)
  for (const v of values) {
    const radio = card.getByRole('radio', { name: v, exact: true });
    if ((await radio.count()) > 0) await radio.first().check();
    else await card.getByRole('checkbox', { name: v, exact: true }).first().check();
  }
  return { style: 'expanded', value: values };
}

async function fillIn(card, label, value) {
  const input = await inputIn(card, String(label));
  await input.fill(String(value));
  return { value: await input.inputValue() };
}

async function toggleIn(card, label, checked) {
  const box = card.getByRole('checkbox', { name: String(label) }).first();
  await box.setChecked(checked);
  return { checked: await box.isChecked() };
}

// message_action: a message-extension action on a message, the way a person starts one in the Playground.
// Every message's header has a "Show more information" button; its menu's "Action Command" opens the
// Playground's own "Action-Based Message Extension" dialog (it does not read the app manifest), where one
// types the command id and keeps "Adaptive Cards" (fetch the dialog from the app): Create sends
// composeExtension/fetchTask with the message as `messagePayload`, the task module's card is rendered in the
// dialog, and its Action.Submit sends composeExtension/submitAction with the inputs as `data`. A
// `{task: {type: "message"}}` answer is shown in the dialog as text; a `continue` answer shows its card again.
const ME_TRIGGER = 'button[aria-label="Show more information"]';

async function markMessageTrigger(text) {
  // The first message (page order: in a channel, the newest post first) whose text contains `text`; its
  // trigger is the first one in the nearest ancestor that has any (a post's own header comes before its
  // replies' headers). Returns how many messages matched.
  return page.evaluate(({ needle, trigger, nav }) => {
    const norm = (s) => String(s).replace(/\s+/g, ' ').trim();
    for (const el of document.querySelectorAll('[data-e2e-me-trigger]')) el.removeAttribute('data-e2e-me-trigger');
    const skip = (el) => el.closest(`${nav}, [role="dialog"], [data-lexical-editor="true"], [data-e2e-logpanel]`);
    const deepest = [...document.body.querySelectorAll('*')].filter((el) => !skip(el)
      && norm(el.textContent).includes(needle)
      && ![...el.children].some((c) => norm(c.textContent).includes(needle)));
    const triggers = [];
    for (const el of deepest) {
      let up = el;
      while (up && !up.querySelector(trigger)) up = up.parentElement;
      const button = up && up.querySelector(trigger);
      if (button && !triggers.includes(button)) triggers.push(button);
    }
    if (triggers.length) triggers[0].setAttribute('data-e2e-me-trigger', '1');
    return triggers.length;
  }, { needle: norm(text), trigger: ME_TRIGGER, nav: NAV });
}

const isInvoke = (r) => r.request().method() === 'POST' && new URL(r.url()).pathname.endsWith('/_conversation/v1/invoke');

async function invokeBody(respP, what) {
  const resp = await respP;
  const body = await resp.json().catch(() => null);
  if (resp.status() >= 400) throw new Error(`${what} failed: HTTP ${resp.status()} body=${JSON.stringify(body).slice(0, 500)}`);
  return body;
}

async function messageAction(step, timeout, prefix) {
  if (step.chat) await openChat(step.chat);
  if (!step.message || !step.command_id) throw new Error('message_action needs `message` (text on the message) and `command_id`');
  const deadline = Date.now() + timeout;
  let matches = 0;
  while (!(matches = await markMessageTrigger(step.message))) {
    if (Date.now() > deadline) throw new Error(`no message containing ${JSON.stringify(step.message)} (with a message-extension trigger)`);
    await page.waitForTimeout(200);
  }
  await page.locator('[data-e2e-me-trigger]').click();
  await page.getByRole('menuitem', { name: 'Action Command', exact: true }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByPlaceholder('Input command id or leave blanks').fill(String(step.command_id));
  const fetchP = page.waitForResponse(isInvoke, { timeout });
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  const data = { matches, fetch_task: await invokeBody(fetchP, 'composeExtension/fetchTask') };
  const form = dialog.locator('.ac-adaptiveCard').first();
  await form.waitFor({ state: 'visible', timeout });
  data.form_text = norm(await form.innerText());
  for (const [label, value] of Object.entries(step.fill || {})) await fillIn(form, label, value);
  for (const [label, value] of Object.entries(step.choose || {})) await chooseIn(form, label, value);
  for (const [label, checked] of Object.entries(step.toggle || {})) await toggleIn(form, label, checked);
  data.form_screenshot = path.join(ART, `${prefix}-form.png`);
  await page.screenshot({ path: data.form_screenshot });
  if (step.submit) await submitTaskModule(step, dialog, form, data, timeout, prefix);
  await dialog.getByRole('button', { name: 'Close', exact: true }).first().click();
  await dialog.waitFor({ state: 'hidden', timeout });
  return data;
}

async function submitTaskModule(step, dialog, form, data, timeout, prefix) {
  const submitP = page.waitForResponse(isInvoke, { timeout });
  await form.getByRole('button', { name: String(step.submit), exact: true }).click();
  data.submit_action = await invokeBody(submitP, 'composeExtension/submitAction');
  const expected = toList(step.expect).map((t) => norm(t));
  const until = Date.now() + timeout;
  for (;;) {
    data.dialog_text = norm(await dialog.innerText().catch(() => ''));
    if (expected.every((t) => data.dialog_text.includes(t))) break;
    if (Date.now() > until) throw new Error(`the dialog does not say ${JSON.stringify(expected)}; it says ${JSON.stringify(data.dialog_text.slice(0, 600))}`);
    await page.waitForTimeout(200);
  }
  data.result_screenshot = path.join(ART, `${prefix}-result.png`);
  await page.screenshot({ path: data.result_screenshot });
}

const actions = {
  async open_chat(step) {
    return openChat(step.chat);
  },

  async send(step, timeout) {
    if (step.chat) await openChat(step.chat);
    if (!currentChat) await openChat('personal');
    let editor;
    if (currentChat.isChannel && step.thread) {
      const thread = page
        .locator('[role="group"].fui-Card')
        .filter({ hasNotText: 'Start a new post' })
        .filter({ hasText: String(step.thread) })
        .last();
      editor = thread.locator(EDITOR).last();
    } else if (currentChat.isChannel) {
      editor = page.locator(EDITOR).first(); // "Start a new post"
    } else {
      editor = page.locator(EDITOR).last(); // "Type a message..."
    }
    await editor.click();
    const mention = step.mention ?? currentChat.label !== 'Personal Chat';
    if (mention) {
      await page.keyboard.type('@');
      const item = page.locator('#typeahead-menu [role="menuitem"]').filter({ hasText: job.bot_name }).first();
      await item.waitFor({ state: 'visible', timeout });
      await item.click();
      if (step.text && !String(step.text).startsWith(' ')) await page.keyboard.type(' ');
    }
    if (step.text) await typeText(step.text);
    const respP = page.waitForResponse(
      (r) => r.request().method() === 'POST' && /\/_conversation\/v1\/conversations\/[^/]+\/messages$/.test(new URL(r.url()).pathname),
      { timeout },
    );
    if (asUser) await armAsUser(asUser, step.text); // the Playground sends typed messages as its current user
    await page.keyboard.press('Enter');
    const resp = await respP;
    if (asUser) await waitAsUserDelivered(timeout);
    const m = /\/conversations\/([^/]+)\/messages$/.exec(new URL(resp.url()).pathname);
    const body = await resp.json().catch(() => null);
    if (resp.status() >= 400) throw new Error(`Playground refused the message: HTTP ${resp.status()} ${JSON.stringify(body)}`);
    return { chat: currentChat.label, mention, conversation_id: decodeURIComponent(m[1]), message_id: body?.messageId ?? null };
  },

  async wait_card(step, timeout) {
    const { card, matches } = await pickCard(step, timeout);
    return { text: norm(await card.innerText()), matches };
  },

  async expect_card_count(step, timeout) {
    const loc = cardLocator(step.card ?? step.contains, step.not_contains);
    const want = step.count;
    const deadline = Date.now() + timeout;
    let n;
    for (;;) {
      n = await loc.count();
      if (n === want) return { count: n };
      if (Date.now() > deadline) throw new Error(`expected ${want} card(s) containing ${JSON.stringify(step.card ?? step.contains)}, found ${n}`);
      await page.waitForTimeout(200);
    }
  },

  async expect_no_card(step) {
    const loc = cardLocator(step.card ?? step.contains, step.not_contains);
    const deadline = Date.now() + (step.wait_ms ?? 3000);
    do {
      const n = await loc.count();
      if (n) throw new Error(`found ${n} card(s) containing ${JSON.stringify(step.card ?? step.contains)}: ${norm(await loc.first().innerText()).slice(0, 300)}`);
      await page.waitForTimeout(200);
    } while (Date.now() < deadline);
    return { count: 0 };
  },

  async click(step, timeout) {
    const { card, matches } = await pickCard(step, timeout);
    const button = card.getByRole('button', { name: String(step.button), exact: true });
    if ((await button.count()) === 0) {
      const titles = await card.locator('.ac-actionSet button, button[title]').evaluateAll((els) => els.map((e) => e.getAttribute('title') || e.innerText));
      throw new Error(`no button ${JSON.stringify(step.button)} on the card (buttons: ${JSON.stringify(titles)})`);
    }
    const expectInvoke = step.expect_invoke ?? true;
    const respP = expectInvoke
      ? page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname.endsWith('/_conversation/v1/invoke'), { timeout })
      : null;
    await button.first().click();
    if (!respP) return { matches };
    const resp = await respP;
    const body = await resp.json().catch(() => null);
    const data = { matches, http_status: resp.status(), invoke_response: body };
    const bad = resp.status() >= 400 || (body && typeof body.statusCode === 'number' && body.statusCode >= 400);
    if (bad && !step.allow_error) throw new Error(`invoke failed: HTTP ${resp.status()} body=${JSON.stringify(body).slice(0, 500)}`);
    return data;
  },

  async choose(step, timeout) {
    const { card } = await pickCard(step, timeout);
    return chooseIn(card, step.input, step.value);
  },

  async fill(step, timeout) {
    const { card } = await pickCard(step, timeout);
    return fillIn(card, step.input, step.value);
  },

  async toggle(step, timeout) {
    const { card } = await pickCard(step, timeout);
    return toggleIn(card, step.input, step.checked ?? true);
  },

  async message_action(step, timeout, prefix) {
    return messageAction(step, timeout, prefix);
  },

  async wait_text(step, timeout) {
    await waitText(step.text, timeout, true);
    return {};
  },

  async expect_no_text(step) {
    const deadline = Date.now() + (step.wait_ms ?? 3000);
    do {
      await waitText(step.text, 0, false);
      await page.waitForTimeout(200);
    } while (Date.now() < deadline);
    return {};
  },

  async http(step, timeout) {
    const headers = { ...(step.headers || {}) };
    let body;
    if (step.json !== undefined) {
      body = JSON.stringify(step.json);
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
    } else if (step.body_base64 !== undefined) body = Buffer.from(step.body_base64, 'base64');
    else if (step.body_file !== undefined) body = fs.readFileSync(step.body_file);
    else if (step.body !== undefined) body = String(step.body);
    const resp = await fetch(step.url, { method: step.method || 'POST', headers, body, signal: AbortSignal.timeout(timeout) });
    const text = await resp.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    const data = { status: resp.status, headers: Object.fromEntries(resp.headers), body: text.slice(0, 4000), json };
    const expected = toList(step.expect_status ?? [200, 201, 202, 204]);
    if (!expected.includes(resp.status)) throw new Error(`HTTP ${resp.status} (expected ${expected.join('/')}) from ${step.url}: ${text.slice(0, 500)}`);
    return data;
  },

  async run(step, timeout) {
    const argv = toList(step.argv).map(String);
    const r = spawnSync(argv[0], argv.slice(1), {
      cwd: step.cwd, env: { ...process.env, ...(step.env || {}) }, timeout, encoding: 'utf8', maxBuffer: 16 << 20,
    });
    const data = { rc: r.status, signal: r.signal, stdout: (r.stdout || '').slice(-4000), stderr: (r.stderr || '').slice(-4000) };
    if (r.error) throw new Error(`run ${argv[0]}: ${r.error.message}`);
    const want = step.expect_rc ?? 0;
    if (want !== null && r.status !== want) throw new Error(`run ${JSON.stringify(argv)} exited ${r.status} (expected ${want}); stderr: ${data.stderr.slice(-800)}`);
    return data;
  },

  async screenshot(step) {
    return {}; // the per-step screenshot (always taken for this action) is the point
  },

  async sleep(step) {
    await page.waitForTimeout(step.ms ?? 1000);
    return {};
  },
};
actions.expect_card = actions.wait_card;
actions.http_post = (step, t) => actions.http({ method: 'POST', ...step }, t);
actions.submit = actions.click;

// ---------------------------------------------------------------------------------------------------------------
let exitCode = 2;
try {
  await page.goto(job.playground_url, { waitUntil: 'domcontentloaded' });
  await page.getByRole('treeitem', { name: 'Personal Chat', exact: true }).waitFor({ state: 'visible' });
  const connectDeadline = Date.now() + (job.connect_timeout_ms ?? 30000);
  while (!connected && Date.now() < connectDeadline) await page.waitForTimeout(100);
  if (!connected) {
    throw new Error('the Playground UI never reported "Connected." to the bot endpoint (bot down, or a bad '
      + '.m365agentsplayground.yml: see the Playground log file)');
  }
  if (!job.keep_log_panel) {
    const toggle = page.locator('button[title="Toggle Log Panel"]');
    if (await page.getByText('Log Panel', { exact: true }).isVisible().catch(() => false)) await toggle.click();
  }

  exitCode = 0;
  const steps = job.steps || [];
  for (let i = 0; i < steps.length; i++) {
    const step = subst(steps[i]);
    const action = step.action;
    const name = step.name || `${action}`;
    const prefix = `${String(i + 1).padStart(2, '0')}-${slug(name)}`;
    const entry = { index: i + 1, name, action, ok: false, ms: 0, data: null, error: null, screenshot: null };
    result.steps.push(entry);
    const t0 = Date.now();
    try {
      if (!actions[action]) throw new Error(`unknown action ${JSON.stringify(action)} (known: ${Object.keys(actions).join(', ')})`);
      asUser = resolveUser(step.as_user);
      entry.data = await actions[action](step, step.timeout_ms ?? DEFAULT_TIMEOUT, prefix);
      entry.ok = true;
      if (job.screenshot_each || action === 'screenshot') {
        entry.screenshot = path.join(ART, `${prefix}.png`);
        await page.screenshot({ path: entry.screenshot, fullPage: !!step.full_page });
      }
    } catch (err) {
      entry.error = String(err && err.message ? err.message : err).split('\n').slice(0, 12).join('\n');
      entry.screenshot = path.join(ART, `${prefix}-FAILED.png`);
      await page.screenshot({ path: entry.screenshot }).catch(() => { entry.screenshot = null; });
      fs.writeFileSync(path.join(ART, `${prefix}-FAILED.html`), await page.content().catch(() => ''));
      result.failed_step = { index: entry.index, name, action, error: entry.error, screenshot: entry.screenshot };
      exitCode = 1;
    } finally {
      if (asUser && action === 'send') await disarmAsUser();
      asUser = null;
      entry.ms = Date.now() - t0;
      writeResult();
    }
    if (exitCode) break;
  }
  result.ok = exitCode === 0;
} catch (err) {
  result.error = String(err && err.stack ? err.stack : err);
  const shot = path.join(ART, '00-driver-FAILED.png');
  await page.screenshot({ path: shot }).then(() => { result.failed_step = result.failed_step || { index: 0, name: 'startup', action: 'startup', error: String(err.message || err), screenshot: shot }; }).catch(() => {});
  exitCode = 2;
} finally {
  writeResult();
  await close().catch(() => {});
  consoleLog.end();
  pgLog.end();
}
process.exit(exitCode);
