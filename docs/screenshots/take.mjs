// Screenshots of the pages a person sees while connecting an app to
// `remotemcp --auth proxy`: our consent page and the development sign-in
// page, in light and dark mode, taken in Debian's headless Chromium with
// playwright-core. Run by take.sh, which starts the server; see there.
//
// Input (environment): BASE the server (http://127.0.0.1:PORT), OUT the
// folder for the PNG files, CHROMIUM the browser executable.
import { chromium } from 'playwright-core';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';

const base = process.env.BASE;
const out = process.env.OUT;
const b64url = (b) => b.toString('base64url');

// A client as an MCP client would register itself (RFC 7591).
const reg = await fetch(base + '/register', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ client_name: 'Example Notes App', redirect_uris: ['http://127.0.0.1:33418/callback'], token_endpoint_auth_method: 'none' }),
});
if (reg.status !== 201) throw new Error(`register: ${reg.status} ${await reg.text()}`);
const client = await reg.json();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  for (const scheme of ['light', 'dark']) {
    const verifier = b64url(randomBytes(32));
    const q = new URLSearchParams({
      response_type: 'code', client_id: client.client_id, redirect_uri: client.redirect_uris[0],
      code_challenge: b64url(createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
      state: b64url(randomBytes(16)), scope: 'notes:read', resource: base + '/mcp',
    });
    const context = await browser.newContext({ viewport: { width: 720, height: 560 }, colorScheme: scheme });
    const page = await context.newPage();
    await page.goto(base + '/authorize?' + q);
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    await page.screenshot({ path: join(out, `consent-${scheme}.png`), fullPage: true });
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((u) => u.pathname.endsWith('/dev-idp/authorize'));
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.locator('#username').blur();
    await page.screenshot({ path: join(out, `signin-${scheme}.png`), fullPage: true });
    await context.close();
  }
} finally {
  await browser.close();
}
