// The consent page of remotemcp --auth proxy in a real browser: Debian's
// headless Chromium, driven by playwright-core. Run by
// cmd/remotemcp/consent_browser_test.go (TestConsentPageInChromium), which
// serves everything and asserts on what this prints.
//
// Input: the environment variable CONSENT_TEST, a JSON object:
//   chromium      the browser executable (/usr/bin/chromium)
//   outDir        where screenshots go
//   base          the authorization server (http://127.0.0.1:PORT)
//   redirect      the client's registered redirect URI (a loopback server)
//   approveURL    an authorization URL to approve and sign in through
//   denyURL       an authorization URL to deny
//   victimURL     an authorization URL whose consent page a forged post targets
//   framePage     a page on another site that frames an authorization URL
//   forgePage     a page on another site that auto-posts a form to
//                 <base>/authorize/consent (the script appends tx and csrf)
//   username      whom to sign in as at the development identity provider
//   stepMs        the time limit of each wait
// Playwright's own fresh profile (--user-data-dir) goes under TMPDIR, which
// the test sets to a temporary folder of its own.
//
// Output on stdout, one JSON line each:
//   {"chromiumPid": N, "cmdline": [...]}   as soon as the browser runs, so
//                                          that the test can kill it by PID
//   {"results": {...}}                     at the end: per scenario (consent,
//                                          deny, frame, forge) what was seen,
//                                          and "error" and "failedAt" where
//                                          the scenario broke off
// A scenario that breaks off does not stop the others. Exit status 1 if
// the browser could not be driven at all.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const cfg = JSON.parse(process.env.CONSENT_TEST ?? '{}');
for (const k of ['chromium', 'outDir', 'base', 'redirect', 'approveURL', 'denyURL', 'victimURL', 'framePage', 'forgePage', 'username']) {
  if (!cfg[k]) {
    process.stderr.write(`consent.mjs: CONSENT_TEST.${k} must be set\n`);
    process.exit(2);
  }
}
const step = cfg.stepMs ?? 10000;
const consentAction = cfg.base + '/authorize/consent';
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const results = {};

// The flags of this machine's notes: no sandbox as root, and no background
// traffic to hosts the closed network refuses.
const server = await chromium.launchServer({
  executablePath: cfg.chromium,
  headless: true,
  host: '127.0.0.1',
  timeout: step * 2,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const pid = server.process().pid;
let cmdline = [];
try {
  cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
} catch {}
emit({ chromiumPid: pid, cmdline });

let browser;
let failed = false;
try {
  browser = await chromium.connect(server.wsEndpoint(), { timeout: step });
  results.browserVersion = browser.version();
  for (const [name, scenario] of [['consent', consentAndApprove], ['deny', deny], ['frame', framed], ['forge', forged]]) {
    const out = (results[name] = {});
    const context = await browser.newContext({ viewport: { width: 1000, height: 800 }, colorScheme: 'light' });
    const s = { context, page: null };
    try {
      await scenario(out, await track(s, out));
    } catch (e) {
      out.error = String((e && e.message) || e).split('\n')[0];
      try {
        out.failedAt = { url: s.page.url(), title: await s.page.title(), text: (await s.page.locator('body').innerText()).slice(0, 1000) };
      } catch {}
    }
    await context.close().catch(() => {});
  }
} catch (e) {
  results.error = String((e && e.stack) || e);
  failed = true;
}
await browser?.close().catch(() => {});
await server.close();
emit({ results });
if (failed) {
  process.stderr.write(`consent.mjs: ${results.error}\n`);
  process.exit(1);
}

// track opens a page of s.context (s.page is the page in use, for the error
// message) and records in out its document responses and console.
async function track(s, out) {
  const page = await s.context.newPage();
  s.page = page;
  page.setDefaultTimeout(step);
  page.setDefaultNavigationTimeout(step);
  out.docs = [];
  page.on('response', (r) => {
    const q = r.request();
    if (q.resourceType() === 'document') {
      out.docs.push({ method: q.method(), url: r.url(), status: r.status(), top: r.frame() === page.mainFrame() });
    }
  });
  out.console = [];
  page.on('console', (m) => out.console.push({ type: m.type(), text: m.text() }));
  page.s = s;
  return page;
}

// hostCookies is what the browser stored: names and attributes, no values.
async function hostCookies(context) {
  return (await context.cookies()).map(({ name, domain, path, secure, httpOnly, sameSite }) => ({ name, domain, path, secure, httpOnly, sameSite }));
}

// consentView reads the consent page as a person (and a screen reader) would.
async function consentView(page) {
  const allow = page.getByRole('button', { name: 'Allow', exact: true });
  const deny = page.getByRole('button', { name: 'Deny', exact: true });
  return {
    url: page.url(),
    title: await page.title(),
    heading: (await page.getByRole('heading', { level: 1 }).allInnerTexts()).join(' | '),
    text: await page.locator('main').innerText(),
    allowButtons: await allow.count(),
    denyButtons: await deny.count(),
    allowVisible: await allow.isVisible(),
    denyVisible: await deny.isVisible(),
  };
}

// tabOrder presses Tab from the top of the page and records which controls
// get the keyboard focus, and how the focus shows.
async function tabOrder(page) {
  await page.evaluate(() => document.activeElement?.blur());
  const order = [];
  for (let i = 0; i < 8; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const cs = getComputedStyle(el);
      return { tag: el.tagName.toLowerCase(), name: (el.innerText || el.getAttribute('aria-label') || el.name || '').trim(),
        value: el.value ?? '', focusVisible: el.matches(':focus-visible'), outline: `${cs.outlineStyle} ${cs.outlineWidth}` };
    });
    if (!f) break;
    if (order.length && order[0].tag === f.tag && order[0].name === f.name) break; // wrapped around
    order.push(f);
  }
  return order;
}

// press clicks a consent button and records the form post: what Chromium
// sent with it and how the server answered. A refusal ends the scenario.
async function press(page, name, out) {
  const answered = page.waitForResponse((r) => r.url() === consentAction && r.request().method() === 'POST');
  await page.getByRole('button', { name, exact: true }).click();
  const r = await answered;
  const h = await r.request().allHeaders();
  out.post = { status: r.status(), secFetchSite: h['sec-fetch-site'] ?? '', origin: h['origin'] ?? '', referer: h['referer'] ?? '',
    cookieSent: (h['cookie'] ?? '').includes('__Host-remotemcp-browser') };
  if (r.status() >= 400) {
    await page.waitForLoadState('load');
    throw new Error(`${name} was answered ${r.status()} "${await page.title()}" (Sec-Fetch-Site ${out.post.secFetchSite}, Origin ${out.post.origin})`);
  }
}

// 1 and 2: the consent page, then Allow, the development provider's login
// and back to the client with a code.
async function consentAndApprove(out, page) {
  const resp = await page.goto(cfg.approveURL, { waitUntil: 'load' });
  const h = resp.headers();
  out.status = resp.status();
  out.headers = { csp: h['content-security-policy'] ?? '', xfo: h['x-frame-options'] ?? '', referrerPolicy: h['referrer-policy'] ?? '' };
  out.page = await consentView(page);
  out.cookiesAtConsent = await hostCookies(page.s.context);
  out.tabOrder = await tabOrder(page);
  out.screenshot = join(cfg.outDir, 'consent.png');
  await page.screenshot({ path: out.screenshot, fullPage: true });

  await press(page, 'Allow', out);
  await page.waitForURL((u) => u.href.startsWith(cfg.base + '/dev-idp/authorize'));
  out.loginURL = page.url();
  out.loginTitle = await page.title();
  await page.screenshot({ path: join(cfg.outDir, 'login.png'), fullPage: true });
  await page.getByLabel('Username').fill(cfg.username);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.href.startsWith(cfg.redirect), { waitUntil: 'load' });
  out.finalURL = page.url();
  out.finalTitle = await page.title();
  out.cookiesAfter = await hostCookies(page.s.context);
}

// 3: Deny sends the browser back to the client with access_denied.
async function deny(out, page) {
  await page.goto(cfg.denyURL, { waitUntil: 'load' });
  out.page = await consentView(page);
  await press(page, 'Deny', out);
  await page.waitForURL((u) => u.href.startsWith(cfg.redirect), { waitUntil: 'load' });
  out.finalURL = page.url();
}

// 4: another site frames an authorization URL: the browser must not render
// the consent page in the frame.
async function framed(out, page) {
  await page.goto(cfg.framePage, { waitUntil: 'load' });
  // The framing page sets its title when the iframe's load event fires
  // (it fires for a blocked frame too, with an error document).
  await page.waitForFunction(() => document.title === 'frame loaded', null, { timeout: step }).catch(() => {});
  await page.waitForTimeout(300); // let the refusal reach the console
  out.parentTitle = await page.title();
  out.frames = [];
  for (const f of page.frames()) {
    if (f === page.mainFrame()) continue;
    const fr = { url: f.url(), name: f.name() };
    try {
      fr.allowButtons = await f.getByRole('button', { name: 'Allow' }).count();
    } catch (e) {
      fr.allowButtons = 0;
      fr.allowError = String(e.message || e).split('\n')[0];
    }
    try {
      fr.text = (await f.evaluate(() => (document.body ? document.body.innerText : ''))).slice(0, 300);
    } catch (e) {
      fr.textError = String(e.message || e).split('\n')[0];
    }
    out.frames.push(fr);
  }
  out.screenshot = join(cfg.outDir, 'framed.png');
  await page.screenshot({ path: out.screenshot, fullPage: true });
}

// 5: a victim has a consent page open; another site posts the consent form
// cross-site, even with the page's real tx and csrf. The server must refuse
// it (403, no login), and the victim's own Allow must still work after.
async function forged(out, page) {
  await page.goto(cfg.victimURL, { waitUntil: 'load' });
  const tx = await page.locator('input[name=tx]').getAttribute('value');
  const csrf = await page.locator('input[name=csrf]').getAttribute('value');
  out.hadFields = Boolean(tx && csrf);

  const victim = page;
  const attacker = await track(page.s, (out.attacker = {}));
  const posted = attacker.waitForResponse((r) => r.url() === consentAction && r.request().method() === 'POST');
  await attacker.goto(`${cfg.forgePage}?${new URLSearchParams({ tx, csrf })}`, { waitUntil: 'commit' });
  const r = await posted;
  await attacker.waitForLoadState('load');
  const h = await r.request().allHeaders();
  out.status = r.status();
  out.requestHeaders = { secFetchSite: h['sec-fetch-site'] ?? '', origin: h['origin'] ?? '' };
  out.cookieSent = (h['cookie'] ?? '').includes('__Host-remotemcp-browser');
  out.title = await attacker.title();
  out.text = await attacker.locator('main').innerText().catch(() => '');
  out.finalURL = attacker.url();
  out.screenshot = join(cfg.outDir, 'refused.png');
  await attacker.screenshot({ path: out.screenshot, fullPage: true });
  await attacker.close();

  // The victim's own page still works: its Allow reaches the login.
  page.s.page = victim;
  await press(victim, 'Allow', (out.victim = {}));
  await victim.waitForURL((u) => u.href.startsWith(cfg.base + '/dev-idp/authorize'));
  out.victim.thenURL = victim.url();
}
