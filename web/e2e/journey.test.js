// The journey of issue 18 in Debian's Chromium: two people (two browser contexts) register, sign
// in, find each other, talk in a direct chat and a group, send an image, call each other over
// peer-to-peer WebRTC with fake media devices and share a location that moves. The app is driven
// only through the accessible names of the UI contract (/work/wt/WEB.md, "UI contract"), so the
// test is also a check of its accessibility. Every step leaves screenshots in artifacts/.
//
// Run by scripts/test-web-e2e.sh, which starts the server; alone:
//   NERUTALK_E2E_URL=http://127.0.0.1:8080 npm test
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { deflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const BASE = process.env.NERUTALK_E2E_URL ?? 'http://127.0.0.1:8080';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('./artifacts/', import.meta.url).pathname;
const TIMEOUT = 15_000; // the longest wait for anything the app shows
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

// Against the fresh server of scripts/test-web-e2e.sh the names are plain (they show in the README's
// screenshot); against any other server they get a suffix of this run.
const run = process.env.NERUTALK_E2E_FRESH === '1' ? '' : '_' + Date.now().toString(36).slice(-5);
const PASSWORD = 'correct horse battery staple';
const GROUP = `Trip${run.replace('_', ' ')}`;
const PARIS = { latitude: 48.8566, longitude: 2.3522 };
const PARIS_MOVED = { latitude: 48.8606, longitude: 2.3376 };
const BERLIN = { latitude: 52.52, longitude: 13.405 };

/** People: each has a browser context, a page and what the page's console said against the CSP. */
const alice = { name: `alice${run}`, geo: BERLIN };
const bob = { name: `bob${run}`, geo: PARIS };
let browser;

// ---- helpers ------------------------------------------------------------------------------

/** Polls until fn() returns a truthy value (its result) or fails with what it saw last. */
async function until(what, fn, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${last instanceof Error ? last.message.split('\n')[0] : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const visible = (loc, timeout = TIMEOUT) => loc.first().waitFor({ state: 'visible', timeout });
const hidden = (loc, timeout = TIMEOUT) => loc.first().waitFor({ state: 'hidden', timeout });

/** Waits for loc's text to match re (a RegExp or a string it must contain). */
async function text(loc, re, timeout = TIMEOUT) {
  const test = typeof re === 'string' ? (s) => s.includes(re) : (s) => re.test(s);
  return until(`${loc} to show ${re}`, async () => {
    const s = (await loc.first().innerText({ timeout: 1000 })).trim();
    return test(s) ? s : false;
  }, timeout);
}

let shot = 0;
async function screenshot(p, label) {
  const file = `${ARTIFACTS}${String(++shot).padStart(2, '0')}-${label}.png`;
  await p.page.screenshot({ path: file });
  return file;
}

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const chatView = (p) => p.page.getByRole('region', { name: 'Chat', exact: true });
const messages = (p) => chatView(p).getByRole('log', { name: 'Messages' });
const message = (p, t) => messages(p).getByRole('article').filter({ hasText: t });
const chatButton = (p, title) => p.page.getByRole('navigation', { name: 'Chats' }).getByRole('button', { name: new RegExp('^' + esc(title)) });
const composer = (p) => chatView(p).getByRole('textbox', { name: 'Message', exact: true });

async function send(p, t, how = 'enter') {
  await composer(p).fill(t);
  if (how === 'enter') await composer(p).press('Enter');
  else await chatView(p).getByRole('button', { name: 'Send', exact: true }).click();
  await visible(message(p, t));
}

/** Opens the chat titled title from the list (a phone-sized window shows the list first). */
async function open(p, title) {
  const heading = chatView(p).getByRole('heading', { level: 2, name: title, exact: true });
  if (await heading.isVisible()) return;
  const back = p.page.getByRole('button', { name: 'Back to chats' });
  if (await back.isVisible()) await back.click();
  await chatButton(p, title).first().click();
  await visible(heading);
}

async function signedIn(p) {
  await visible(p.page.getByRole('banner').getByText(p.name, { exact: true }));
  await text(p.page.getByRole('status', { name: 'Connection' }), /^online$/);
}

/** A PNG of w×h pixels, a colour gradient, made here so the test needs no file. */
function png(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = (x * 255) / w;
      raw[o + 1] = (y * 255) / h;
      raw[o + 2] = 160;
    }
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** Runs axe-core in the page (through the DevTools protocol: the page's CSP stays on) and fails on
 * serious or critical violations. */
async function axe(p, what) {
  await p.page.evaluate(AXE + '\n;0');
  const res = await p.page.evaluate(() => globalThis.axe.run(document, { resultTypes: ['violations'] }));
  const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${what}: ${v.id} (${v.impact}): ${v.help}; ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`), []);
}

async function newPerson(p, viewport = { width: 1280, height: 800 }) {
  p.context = await browser.newContext({ viewport, geolocation: p.geo, permissions: ['geolocation', 'camera', 'microphone'], locale: 'en-GB' });
  p.context.setDefaultTimeout(TIMEOUT);
  p.page = await p.context.newPage();
  p.cspViolations = [];
  p.errors = [];
  p.page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) p.cspViolations.push(m.text());
  });
  p.page.on('pageerror', (e) => p.errors.push(String(e)));
  await p.page.goto(BASE + '/');
}

// ---- the journey ------------------------------------------------------------------------------

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      // Host ICE candidates as addresses, not mDNS names: a container may resolve no .local name.
      '--disable-features=WebRtcHideLocalIpsWithMdns'],
  });
});

after(async () => {
  await browser?.close();
});

test('the journey of issue 18 in Chromium', { timeout: 900_000 }, async (t) => {
  // Steps depend on the earlier ones; after a failure the rest still run (and say what they see).
  const step = (name, fn) => t.test(name, { timeout: 120_000 }, fn);

  await step('register both', async () => {
    for (const p of [alice, bob]) {
      await newPerson(p);
      await visible(p.page.getByRole('heading', { name: 'NeruTalk' }));
      await p.page.getByRole('button', { name: 'Create an account' }).click();
      const form = p.page.getByRole('form', { name: 'Create account' });
      await form.getByLabel('Username', { exact: true }).fill(p.name);
      await form.getByLabel('Email', { exact: true }).fill(`${p.name}@example.com`);
      await form.getByLabel('Password', { exact: true }).fill(PASSWORD);
      await form.getByRole('button', { name: 'Register' }).click();
      await signedIn(p);
      await screenshot(p, `registered-${p.name.split('_')[0]}`);
    }
  });

  await step('a wrong password shows the problem, then sign out and sign in', async () => {
    await alice.page.getByRole('button', { name: 'Sign out' }).click();
    const form = alice.page.getByRole('form', { name: 'Sign in' });
    await visible(form);
    await form.getByLabel('Username or email').fill(alice.name);
    await form.getByLabel('Password', { exact: true }).fill('not the password');
    await form.getByRole('button', { name: 'Sign in' }).click();
    await visible(alice.page.getByRole('alert'));
    await screenshot(alice, 'sign-in-error');
    await form.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await signedIn(alice);
    await screenshot(alice, 'signed-in');
  });

  await step('find a user', async () => {
    await alice.page.getByRole('button', { name: 'New chat' }).click();
    const dlg = alice.page.getByRole('dialog', { name: 'New chat' });
    await dlg.getByRole('searchbox', { name: 'Search users' }).fill(bob.name.slice(0, 6));
    await visible(dlg.getByRole('button', { name: `Message ${bob.name}` }));
    await screenshot(alice, 'find-user');
  });

  await step('open the direct chat', async () => {
    await alice.page.getByRole('dialog', { name: 'New chat' }).getByRole('button', { name: `Message ${bob.name}` }).click();
    await hidden(alice.page.getByRole('dialog', { name: 'New chat' }));
    await visible(chatView(alice).getByRole('heading', { level: 2, name: bob.name, exact: true }));
    await screenshot(alice, 'direct-chat');
  });

  await step('real-time messages both ways', async () => {
    await send(alice, 'Hello Bob, this is Alice');
    // Bob's list learns of the chat and its unread message without a reload.
    await visible(chatButton(bob, alice.name));
    await visible(chatButton(bob, alice.name).getByLabel('1 unread'));
    await screenshot(bob, 'unread');
    await chatButton(bob, alice.name).click();
    await visible(message(bob, 'Hello Bob, this is Alice'));
    await send(bob, 'Hi Alice! Bob here.', 'button');
    await visible(message(alice, 'Hi Alice! Bob here.'));
    await screenshot(alice, 'messages');
  });

  await step('typing is shown', async () => {
    await composer(bob).pressSequentially('I am typing', { delay: 30 });
    await text(chatView(alice).getByRole('status', { name: 'Typing' }), new RegExp(`${esc(bob.name)} is typing`));
    await screenshot(alice, 'typing');
    await composer(bob).fill('');
  });

  await step('presence: online', async () => {
    await text(chatView(alice).getByLabel('Presence'), /^online$/);
    await text(chatView(bob).getByLabel('Presence'), /^online$/);
  });

  await step('read ticks reach "Read"', async () => {
    await send(alice, 'Did you read this?');
    await visible(message(bob, 'Did you read this?'));
    await visible(message(alice, 'Did you read this?').getByLabel('Read', { exact: true }));
    await visible(message(alice, 'Hello Bob, this is Alice').getByLabel('Read', { exact: true }));
    await screenshot(alice, 'read-ticks');
  });

  await step('send an image and see its thumbnail', async () => {
    await alice.page.getByLabel('Image file').setInputFiles({ name: 'gradient.png', mimeType: 'image/png', buffer: png(320, 200) });
    for (const p of [alice, bob]) {
      const img = messages(p).getByRole('img', { name: 'Image' });
      await visible(img);
      await until(`${p.name}'s thumbnail to load`, () => img.last().evaluate((el) => el.complete && el.naturalWidth > 0));
    }
    await screenshot(bob, 'image');
  });

  await step('the chat view (README screenshot)', async () => {
    await alice.page.evaluate(() => document.activeElement?.blur()); // no focus ring in the picture
    const file = await screenshot(alice, 'chat-view');
    await alice.page.screenshot({ path: `${ARTIFACTS}web-client.png` });
    assert.ok(file);
  });

  await step('create a group with both and talk', async () => {
    await alice.page.getByRole('button', { name: 'New group' }).click();
    const dlg = alice.page.getByRole('dialog', { name: 'New group' });
    await dlg.getByRole('textbox', { name: 'Group title' }).fill(GROUP);
    await dlg.getByRole('searchbox', { name: 'Search users' }).fill(bob.name);
    await dlg.getByRole('checkbox', { name: bob.name }).check();
    await screenshot(alice, 'new-group');
    await dlg.getByRole('button', { name: 'Create group' }).click();
    await visible(chatView(alice).getByRole('heading', { level: 2, name: GROUP, exact: true }));
    await send(alice, 'Welcome to the group');
    await chatButton(bob, GROUP).click();
    await visible(message(bob, 'Welcome to the group'));
    await send(bob, 'Glad to be here');
    await visible(message(alice, 'Glad to be here'));
    await screenshot(bob, 'group');
  });

  await step('reload mid-conversation: nothing is lost', async () => {
    await send(alice, 'Before the reload');
    // Bob writes while Alice's page reloads.
    await Promise.all([alice.page.reload(), send(bob, 'Written during the reload')]);
    await signedIn(alice);
    await open(alice, GROUP);
    for (const m of ['Welcome to the group', 'Glad to be here', 'Before the reload', 'Written during the reload']) {
      await visible(message(alice, m));
    }
    await send(alice, 'After the reload');
    await visible(message(bob, 'After the reload'));
    await screenshot(alice, 'after-reload');
  });

  await step('video call (p2p): accept, both connected, hang up', async () => {
    await open(alice, bob.name);
    await open(bob, alice.name);
    await chatView(alice).getByRole('button', { name: 'Start video call' }).click();
    const aliceCall = alice.page.getByRole('region', { name: 'Call' });
    await text(aliceCall.getByRole('status', { name: 'Call status' }), /ringing|connecting|connected/);
    const incoming = bob.page.getByRole('dialog', { name: 'Incoming call' });
    await visible(incoming);
    await screenshot(bob, 'incoming-call');
    await incoming.getByRole('button', { name: 'Accept' }).click();
    const bobCall = bob.page.getByRole('region', { name: 'Call' });
    for (const [p, call] of [[alice, aliceCall], [bob, bobCall]]) {
      await text(call.getByRole('status', { name: 'Call status' }), /^connected$/, 30_000);
      // Media flows: the fake camera's frames reach the other side.
      await until(`${p.name}'s remote video to play`, () => call.getByLabel('Remote video').evaluate((v) => v.readyState >= 2 && v.videoWidth > 0), 20_000);
    }
    await screenshot(alice, 'call-connected');
    await screenshot(bob, 'call-connected');
    await aliceCall.getByRole('button', { name: 'Hang up' }).click();
    for (const [p, call] of [[alice, aliceCall], [bob, bobCall]]) {
      await until(`${p.name}'s call to end`, async () => !(await call.isVisible()) || /ended/.test(await call.getByRole('status', { name: 'Call status' }).innerText()));
    }
    await screenshot(bob, 'call-ended');
  });

  await step('share location: the other sees it, and sees it move', async () => {
    await open(bob, alice.name);
    await chatView(bob).getByRole('button', { name: 'Share location' }).click();
    const dlg = bob.page.getByRole('dialog', { name: 'Share location' });
    await dlg.getByRole('combobox', { name: 'Duration' }).selectOption({ label: '15 min' });
    await dlg.getByRole('button', { name: 'Start sharing' }).click();
    await visible(chatView(bob).getByRole('button', { name: 'Stop sharing' }));
    const shared = alice.page.getByRole('region', { name: 'Shared locations' }).getByRole('listitem').filter({ hasText: bob.name });
    await text(shared, `${bob.name}: 48.85660, 2.35220`);
    await screenshot(alice, 'location');
    await bob.context.setGeolocation(PARIS_MOVED);
    await text(shared, `${bob.name}: 48.86060, 2.33760`);
    await screenshot(alice, 'location-moved');
    await chatView(bob).getByRole('button', { name: 'Stop sharing' }).click();
    await visible(chatView(bob).getByRole('button', { name: 'Share location' }));
  });

  await step('accessibility: axe-core finds no serious or critical violation', async () => {
    const guest = { name: 'guest', geo: BERLIN };
    await newPerson(guest);
    await visible(guest.page.getByRole('form', { name: 'Sign in' }));
    await axe(guest, 'sign-in');
    await guest.page.getByRole('button', { name: 'Create an account' }).click();
    await axe(guest, 'create account');
    await guest.context.close();
    await open(alice, bob.name);
    await axe(alice, 'chat view');
    await alice.page.getByRole('button', { name: 'New chat' }).click();
    await visible(alice.page.getByRole('dialog', { name: 'New chat' }));
    await axe(alice, 'new chat dialog');
    await alice.page.keyboard.press('Escape');
    await hidden(alice.page.getByRole('dialog', { name: 'New chat' }));
    await open(alice, GROUP);
    await axe(alice, 'group chat view');
  });

  await step('phone-sized window (360×740)', async () => {
    await bob.page.setViewportSize({ width: 360, height: 740 });
    await bob.page.goto(BASE + '/');
    await signedIn(bob);
    const fits = () => bob.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    assert.ok(await fits(), 'the chat list is wider than the window');
    await visible(chatButton(bob, alice.name));
    await screenshot(bob, 'phone-list');
    await chatButton(bob, alice.name).click();
    await visible(chatView(bob).getByRole('heading', { level: 2, name: alice.name, exact: true }));
    assert.ok(!(await bob.page.getByRole('navigation', { name: 'Chats' }).isVisible()), 'the phone shows the list and the chat at once');
    await visible(composer(bob));
    await visible(message(bob, 'Did you read this?'));
    assert.ok(await fits(), 'the chat view is wider than the window');
    await open(alice, bob.name);
    await send(bob, 'Sent from a phone');
    await visible(message(alice, 'Sent from a phone'));
    await screenshot(bob, 'phone-chat');
    await axe(bob, 'phone chat view');
    await bob.page.getByRole('button', { name: 'Back to chats' }).click();
    await visible(chatButton(bob, GROUP));
  });

  await step('no Content-Security-Policy violation and no uncaught error', async () => {
    assert.deepEqual([...alice.cspViolations, ...bob.cspViolations], []);
    assert.deepEqual([...alice.errors, ...bob.errors], []);
  });
});
