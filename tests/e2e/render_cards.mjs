// Adaptive Card checker: Microsoft's adaptivecards SDK + the Teams host config, in headless Chromium.
//
//   node tests/e2e/render_cards.mjs <cards.json> <screenshots-dir> <report.json> [--host-config light|dark|<file>]
//
// cards.json: {"<name>": <Adaptive Card JSON>, ...}. Run it inside the loopback-only namespace (harness.py
// render_cards() does). For every card it:
//   * parses it with SerializationContext(targetVersion = 1.5) (Teams supports Adaptive Cards <= 1.5) and
//     collects the SDK's parse events, then card.validateProperties() events;
//   * renders it with the Teams host config shipped by adaptivecards-designer and screenshots it to
//     <screenshots-dir>/<name>.png;
//   * checks Teams rules the SDK does not enforce (see teamsRules below; "dialog-…" cards are dialogs' forms):
//     verbs, <= 6 actions per set, unique
//     ids, inputs with ids, version <= 1.5, size < 28 KB, no HTML-like tags in Markdown text.
// Report: {"ok", "sdk_version", "host_config", "cards": {name: {"ok", "errors", "warnings", "size_bytes",
//          "screenshot", "rendered", "actions": [{type, title, verb, id}]}}}; exit code 0 when every card is ok,
// 1 when some card has errors, 2 on a crash.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { launch } from './browser.mjs';

const require = createRequire(import.meta.url);
const TEAMS_MAX_ACTIONS = 6; // Teams host config "actions.maxActions"; Teams design guidance: at most six primary actions
const TEAMS_MAX_BYTES = 28 * 1024; // Teams bot message size limit (28 KB) - the card alone must stay under it
const TEAMS_MAX_VERSION = [1, 5]; // Teams: Adaptive Cards v1.5 or earlier for bot-sent cards

const [cardsPath, shotsDir, reportPath, ...rest] = process.argv.slice(2);
if (!cardsPath || !shotsDir || !reportPath) {
  console.error('usage: render_cards.mjs <cards.json> <screenshots-dir> <report.json> [--host-config light|dark|<file>]');
  process.exit(2);
}
let hostConfigArg = 'light';
for (let i = 0; i < rest.length; i++) if (rest[i] === '--host-config') hostConfigArg = rest[++i];

const acDir = path.dirname(require.resolve('adaptivecards/package.json'));
const designerDir = path.dirname(require.resolve('adaptivecards-designer/package.json'));
const hostConfigPath = ['light', 'dark'].includes(hostConfigArg)
  ? path.join(designerDir, 'lib', 'hostConfigs', `microsoft-teams-${hostConfigArg}.json`)
  : path.resolve(hostConfigArg);
const hostConfig = JSON.parse(fs.readFileSync(hostConfigPath, 'utf8'));
const teamsCss = path.join(designerDir, 'dist', 'containers', `teams-container-${hostConfigArg === 'dark' ? 'dark' : 'light'}.css`);
const cards = JSON.parse(fs.readFileSync(cardsPath, 'utf8'));
fs.mkdirSync(shotsDir, { recursive: true });

// ------------------------------------------------------------------------------------------ Teams rules (raw JSON)
function walkCard(card, visit, where = '$') {
  // visit(kind, obj, path) for kind in element|action|actions(array)|card
  if (!card || typeof card !== 'object') return;
  visit('card', card, where);
  const walkActions = (arr, p) => {
    if (!Array.isArray(arr)) return;
    visit('actions', arr, p);
    arr.forEach((a, i) => walkAction(a, `${p}[${i}]`));
  };
  const walkAction = (a, p) => {
    if (!a || typeof a !== 'object') return;
    visit('action', a, p);
    if (a.type === 'Action.ShowCard' && a.card) walkCard(a.card, visit, `${p}.card`);
  };
  const walkElements = (arr, p) => {
    if (!Array.isArray(arr)) return;
    arr.forEach((e, i) => walkElement(e, `${p}[${i}]`));
  };
  const walkElement = (e, p) => {
    if (!e || typeof e !== 'object') return;
    visit('element', e, p);
    if (e.selectAction) walkAction(e.selectAction, `${p}.selectAction`);
    if (e.inlineAction) walkAction(e.inlineAction, `${p}.inlineAction`);
    if (e.type === 'ActionSet') walkActions(e.actions, `${p}.actions`);
    walkElements(e.items, `${p}.items`);
    if (Array.isArray(e.columns)) e.columns.forEach((c, i) => walkElement(c, `${p}.columns[${i}]`));
    if (Array.isArray(e.rows)) e.rows.forEach((r, i) => walkElement(r, `${p}.rows[${i}]`));
    if (Array.isArray(e.cells)) e.cells.forEach((c, i) => walkElement(c, `${p}.cells[${i}]`));
    if (e.fallback && typeof e.fallback === 'object') walkElement(e.fallback, `${p}.fallback`);
  };
  walkElements(card.body, `${where}.body`);
  walkActions(card.actions, `${where}.actions`);
  if (card.selectAction) walkAction(card.selectAction, `${where}.selectAction`);
  if (card.refresh && card.refresh.action) walkAction(card.refresh.action, `${where}.refresh.action`);
}

// Something the Markdown of TextBlock / FactSet would take for an HTML tag: Teams (and the Playground, whose
// react-markdown keeps only an allow-list of elements) drop it, e.g. "incident ack <INC-n>" shows as
// "incident ack". <at>Name</at> mentions are the one tag Teams wants.
function htmlLikeTag(text) {
  const re = /<\/?[A-Za-z][^<>]*>/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (!/^<\/?at>$/i.test(m[0])) return m[0];
  }
  return null;
}

// A dialog's card (task module, e.g. a message action's form; named "dialog-…" in cards.json) submits with
// Action.Submit: Teams dialogs send their inputs on Action.Submit only, so it is not a warning there.
function teamsRules(card, { dialog = false } = {}) {
  const errors = [];
  const warnings = [];
  const actions = [];
  const ids = new Map();
  const err = (rule, message, at) => errors.push({ source: 'teams', rule, message, path: at });
  const warn = (rule, message, at) => warnings.push({ source: 'teams', rule, message, path: at });
  if (!card || typeof card !== 'object' || Array.isArray(card)) {
    err('card-object', 'card is not a JSON object', '$');
    return { errors, warnings, actions };
  }
  if (card.type !== 'AdaptiveCard') err('card-type', `top-level "type" must be "AdaptiveCard" (got ${JSON.stringify(card.type)})`, '$.type');
  const m = /^(\d+)\.(\d+)$/.exec(String(card.version ?? ''));
  if (!m) err('card-version', `"version" missing or malformed (${JSON.stringify(card.version)}); Teams needs "1.5" or lower`, '$.version');
  else if (+m[1] > TEAMS_MAX_VERSION[0] || (+m[1] === TEAMS_MAX_VERSION[0] && +m[2] > TEAMS_MAX_VERSION[1])) {
    err('card-version', `version ${card.version} is above what Teams supports (${TEAMS_MAX_VERSION.join('.')})`, '$.version');
  }
  const size = Buffer.byteLength(JSON.stringify(card), 'utf8');
  if (size >= TEAMS_MAX_BYTES) err('size', `card JSON is ${size} bytes; Teams limit is ${TEAMS_MAX_BYTES} bytes (28 KB) for the whole message`, '$');
  walkCard(card, (kind, obj, at) => {
    if (kind === 'actions' && obj.length > TEAMS_MAX_ACTIONS) {
      err('max-actions', `${obj.length} actions in one actions set; Teams shows at most ${TEAMS_MAX_ACTIONS}`, at);
    }
    if (kind === 'action') {
      actions.push({ type: obj.type, title: obj.title, verb: obj.verb, id: obj.id, path: at });
      if (obj.type === 'Action.Execute' && !(typeof obj.verb === 'string' && obj.verb.trim())) {
        err('execute-verb', `Action.Execute ${JSON.stringify(obj.title ?? '')} has no "verb"`, at);
      }
      if (obj.type === 'Action.Submit' && !dialog) warn('prefer-execute', `Action.Submit ${JSON.stringify(obj.title ?? '')}: prefer Action.Execute (Universal Actions)`, at);
      if (!obj.title && !obj.iconUrl && !at.endsWith('selectAction') && !at.endsWith('refresh.action')) {
        warn('action-title', 'action without a title renders as an empty button', at);
      }
    }
    if ((kind === 'element' || kind === 'action') && obj.id !== undefined) {
      const id = String(obj.id);
      if (ids.has(id)) err('unique-id', `id ${JSON.stringify(id)} used more than once (${ids.get(id)} and ${at})`, at);
      else ids.set(id, at);
    }
    if (kind === 'element') {
      const texts = [];
      if (obj.type === 'TextBlock') texts.push(['text', obj.text]);
      if (obj.type === 'FactSet' && Array.isArray(obj.facts)) {
        obj.facts.forEach((f, k) => { texts.push([`facts[${k}].title`, f && f.title], [`facts[${k}].value`, f && f.value]); });
      }
      for (const [field, text] of texts) {
        const tag = typeof text === 'string' ? htmlLikeTag(text) : null;
        if (tag) {
          err('markdown-html', `${obj.type} ${field} has ${JSON.stringify(tag)}: Markdown text in Teams drops anything that `
            + 'looks like an HTML tag (only <at>…</at> mentions are allowed); put user text in a TextRun, or avoid < >', `${at}.${field}`);
        }
      }
    }
    if (kind === 'element' && typeof obj.type === 'string' && obj.type.startsWith('Input.') && !obj.id) {
      err('input-id', `${obj.type} without an "id" (its value can never reach the bot)`, at);
    }
  });
  return { errors, warnings, actions, size };
}

// ------------------------------------------------------------------------------------------ SDK in Chromium
const WARNING_EVENTS = new Set(['Hint', 'Deprecated', 'RequiredInputsShouldHaveLabel', 'RequiredInputsShouldHaveErrorMessage', 'Other']);
const report = {
  ok: true,
  sdk_version: JSON.parse(fs.readFileSync(path.join(acDir, 'package.json'), 'utf8')).version,
  host_config: hostConfigPath,
  target_version: '1.5',
  cards: {},
};
let exitCode = 0;
const { page, close } = await launch({ viewport: { width: 900, height: 1200 }, deviceScaleFactor: 1 });
try {
  await page.setContent('<!doctype html><html><head><meta charset="utf-8"></head>'
    + '<body style="margin:0;background:#F5F5F5;font-family:\'Segoe UI\',system-ui,sans-serif"><div id="stage"></div></body></html>');
  await page.addStyleTag({ path: path.join(acDir, 'dist', 'adaptivecards.css') });
  if (fs.existsSync(teamsCss)) await page.addStyleTag({ path: teamsCss });
  await page.addScriptTag({ path: path.join(acDir, 'dist', 'adaptivecards.min.js') });
  // Teams renders the Markdown subset of Adaptive Cards (bold, italic, links, lists; <at> mentions show as the
  // name) and never raw HTML. The SDK alone shows Markdown as typed, so give it the same small subset.
  await page.evaluate(() => {
    const esc = (t) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
    const inline = (t) => esc(t)
      .replace(/&lt;at&gt;(.*?)&lt;\/at&gt;/g, '<span class="e2e-mention" style="font-weight:600;color:#5B5FC7">$1</span>')
      .replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>')
      .replace(/(^|[^\w*])[*_](?!\s)(.+?)(?<!\s)[*_](?![\w*])/g, '$1<em>$2</em>')
      .replace(/\[([^\]]+)\]\((https?:[^)\s]+)\)/g, '<a href="$2">$1</a>');
    window.AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => {
      const out = [];
      let list = null;
      for (const line of String(text).split('\n')) {
        const m = /^\s*(?:([-*])|(\d+)\.)\s+(.*)$/.exec(line);
        const kind = m ? (m[1] ? 'ul' : 'ol') : null;
        if (list && kind !== list) { out.push(`</${list}>`); list = null; }
        if (kind && !list) { out.push(`<${kind} style="margin:0;padding-left:20px">`); list = kind; }
        if (kind) out.push(`<li>${inline(m[3])}</li>`);
        else out.push(line.trim() ? `${inline(line)}<br>` : '<br>');
      }
      if (list) out.push(`</${list}>`);
      result.outputHtml = out.join('').replace(/(<br>)+$/, '');
      result.didProcess = true;
    };
  });

  const names = Object.keys(cards);
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const json = cards[name];
    const teams = teamsRules(json, { dialog: name.startsWith('dialog-') });
    const sdk = await page.evaluate(({ json, hostConfig, idx, warningEvents }) => {
      const AC = window.AdaptiveCards;
      const out = { errors: [], warnings: [], rendered: false };
      const push = (ev, phase) => {
        const item = {
          source: 'sdk',
          phase,
          event: AC.ValidationEvent[ev.event] ?? String(ev.event),
          message: ev.message,
          element: ev.source && typeof ev.source.getJsonTypeName === 'function' ? ev.source.getJsonTypeName() : undefined,
          id: ev.source && ev.source.id ? ev.source.id : undefined,
        };
        (warningEvents.includes(item.event) ? out.warnings : out.errors).push(item);
      };
      const stage = document.getElementById('stage');
      const host = document.createElement('div');
      host.id = `card-${idx}`;
      host.style.cssText = 'display:inline-block;padding:12px;background:#F5F5F5';
      host.innerHTML = '<div class="teams-inner-frame" style="min-width:0;width:460px;padding:12px"><div class="teams-card"></div></div>';
      stage.appendChild(host);
      const card = new AC.AdaptiveCard();
      card.hostConfig = new AC.HostConfig(hostConfig);
      const ctx = new AC.SerializationContext(AC.Versions.v1_5);
      try {
        card.parse(json, ctx);
      } catch (e) {
        out.errors.push({ source: 'sdk', phase: 'Parse', event: 'Exception', message: String(e && e.message ? e.message : e) });
        return out;
      }
      for (let k = 0; k < ctx.eventCount; k++) push(ctx.getEventAt(k), 'Parse');
      try {
        const v = card.validateProperties();
        for (const ev of v.validationEvents) push(ev, 'Validation');
      } catch (e) {
        out.errors.push({ source: 'sdk', phase: 'Validation', event: 'Exception', message: String(e) });
      }
      try {
        const el = card.render();
        if (el) {
          host.querySelector('.teams-card').appendChild(el);
          out.rendered = true;
        } else {
          out.errors.push({ source: 'sdk', phase: 'Render', event: 'RenderFailed', message: 'card.render() returned nothing' });
        }
      } catch (e) {
        out.errors.push({ source: 'sdk', phase: 'Render', event: 'Exception', message: String(e && e.message ? e.message : e) });
      }
      return out;
    }, { json, hostConfig, idx: i, warningEvents: [...WARNING_EVENTS] });

    const safe = String(name).replace(/[^A-Za-z0-9._-]+/g, '_') || `card-${i}`;
    const shot = path.join(shotsDir, `${safe}.png`);
    await page.locator(`#card-${i}`).screenshot({ path: shot }).catch(() => {});
    await page.evaluate((idx) => { document.getElementById(`card-${idx}`).style.display = 'none'; }, i);
    const errors = [...sdk.errors, ...teams.errors];
    const entry = {
      ok: errors.length === 0,
      errors,
      warnings: [...sdk.warnings, ...teams.warnings],
      size_bytes: teams.size ?? null,
      rendered: sdk.rendered,
      screenshot: fs.existsSync(shot) ? shot : null,
      actions: teams.actions,
    };
    report.cards[name] = entry;
    if (!entry.ok) {
      report.ok = false;
      exitCode = 1;
    }
  }
} catch (e) {
  report.ok = false;
  report.error = String(e && e.stack ? e.stack : e);
  exitCode = 2;
} finally {
  fs.writeFileSync(reportPath, JSON.stringify(report, null, 2));
  await close().catch(() => {});
}
process.exit(exitCode);
