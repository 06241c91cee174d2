import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProblemError, formatLatLng } from '../src/index.ts';
import { NeruTalkClient } from '../src/index.ts';
import type { Session, TokenStore } from '../src/index.ts';
import { BASE, newClient, newUser, uniq } from './helpers.ts';

test('register, login, me, logout', async () => {
  const { client, session, password } = await newUser('reg');
  assert.ok(session.access_token && session.refresh_token);
  assert.ok(session.expires_at! > Date.now());
  const me = await client.GET('/api/v1/users/me');
  assert.equal(me.username, session.user.username);

  const other = newClient().client;
  const changes: unknown[] = [];
  other.onSessionChange((s) => changes.push(s));
  const s2 = await other.login({ login: session.user.username, password });
  assert.equal(s2.user.id, session.user.id);
  assert.equal(changes.length, 1);
  const me2 = await other.GET('/api/v1/users/{id}', { path: { id: session.user.id } });
  assert.equal(me2.id, session.user.id);
  await other.logout();
  assert.equal(other.session, null);
  assert.equal(changes.at(-1), null);
  await assert.rejects(other.GET('/api/v1/users/me'), (e: unknown) => e instanceof ProblemError && e.status === 401);
});

test('problem documents become ProblemError', async () => {
  const { session } = await newUser('dup');
  const { client } = newClient();
  // 409: the username is taken.
  await assert.rejects(
    client.register({ username: session.user.username, email: `${uniq('x')}@example.com`, password: 'correct horse battery staple' }),
    (e: unknown) => {
      assert.ok(e instanceof ProblemError);
      assert.equal(e.status, 409);
      assert.ok(e.code.length > 0);
      assert.equal(e.message, e.detail || e.title);
      return true;
    },
  );
  // 401 invalid_credentials.
  await assert.rejects(client.login({ login: session.user.username, password: 'wrong password!' }), (e: unknown) => {
    assert.ok(e instanceof ProblemError);
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_credentials');
    return true;
  });
  // 422 (or 400) validation_failed with the offending fields.
  await assert.rejects(client.register({ username: 'x', email: 'not-an-email', password: 'short' }), (e: unknown) => {
    assert.ok(e instanceof ProblemError);
    assert.ok(e.status === 422 || e.status === 400, `status ${e.status}`);
    assert.ok(e.errors && e.errors.length > 0, 'errors listed');
    return true;
  });
  assert.equal(client.session, null);
});

test('concurrent calls with an expired access token make ONE refresh', async () => {
  const { client, calls, session } = await newUser('exp');
  const before = calls.get('/api/v1/auth/refresh') ?? 0;
  client.setTokens({ ...session, expires_at: Date.now() - 1000 });
  const results = await Promise.all(Array.from({ length: 6 }, () => client.GET('/api/v1/users/me')));
  for (const r of results) assert.equal(r.id, session.user.id);
  assert.equal((calls.get('/api/v1/auth/refresh') ?? 0) - before, 1);
  assert.notEqual(client.session!.refresh_token, session.refresh_token);
  assert.ok(client.session!.expires_at! > Date.now());
});

test('a 401 refreshes once and retries, shared by concurrent calls', async () => {
  const { client, calls, session } = await newUser('bad');
  // A token the server refuses although the client believes it valid (e.g. the key rotated).
  client.setTokens({ ...session, access_token: session.access_token.slice(0, -4) + 'AAAA', expires_at: Date.now() + 600_000 });
  const results = await Promise.all(Array.from({ length: 4 }, () => client.GET('/api/v1/users/me')));
  for (const r of results) assert.equal(r.username, session.user.username);
  assert.equal(calls.get('/api/v1/auth/refresh'), 1);
  // A dead refresh token signs out: the error reaches the caller and the session is gone.
  client.setTokens({ ...client.session!, access_token: 'nope', refresh_token: 'dead' });
  await assert.rejects(client.GET('/api/v1/users/me'), (e: unknown) => e instanceof ProblemError && e.status === 401);
  assert.equal(client.session, null);
});

test('typed calls: path parameters, query and body', async () => {
  const a = await newUser('ta');
  const b = await newUser('tb');
  const chat = await a.client.POST('/api/v1/chats', { body: { type: 'direct', member_ids: [b.session.user.id] } });
  assert.equal(chat.type, 'direct');
  const m = await a.client.POST('/api/v1/chats/{id}/messages', { path: { id: chat.id }, body: { client_id: uniq('c'), text: 'hello there' } });
  assert.equal(m.seq, 1);
  const page = await b.client.GET('/api/v1/chats/{id}/messages', { path: { id: chat.id }, query: { after_seq: 0, limit: 10 } });
  assert.deepEqual(page.items.map((x) => x.text), ['hello there']);
  const read = await b.client.POST('/api/v1/chats/{id}/read', { path: { id: chat.id }, body: { seq: 1 } });
  assert.equal(read, undefined);
  const found = await a.client.GET('/api/v1/users', { query: { q: b.session.user.username } });
  assert.ok(found.items.some((u) => u.id === b.session.user.id));
});

// A 1x1 PNG.
const PNG = Uint8Array.from(
  atob('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='),
  (c) => c.charCodeAt(0),
);

test('upload: multipart POST /files', async () => {
  const { client } = await newUser('up');
  const f = await client.upload(new Blob([PNG], { type: 'image/png' }), 'dot.png');
  assert.ok(f.id);
  assert.equal(f.kind, 'image');
  assert.ok(f.url);
});

test('formatLatLng', () => {
  assert.equal(formatLatLng(52.52, 13.405), '52.52000, 13.40500');
  assert.equal(formatLatLng(-33.8688197, 151.2092955), '-33.86882, 151.20930');
});

test('two tabs sharing one store and navigator.locks make ONE refresh', async () => {
  const { session, password } = await newUser('tab');
  // A shared "localStorage" and a Web Locks stand-in that runs holders one after the other.
  let stored: Session | null = null;
  const shared: TokenStore = { load: () => (stored ? { ...stored } : null), save: (s) => void (stored = s ? { ...s } : null) };
  let chain: Promise<unknown> = Promise.resolve();
  let held = 0;
  const locks = {
    request: (_name: string, fn: () => Promise<unknown>) => {
      const run = chain.then(async () => {
        held++;
        try {
          return await fn();
        } finally {
          held--;
        }
      });
      chain = run.catch(() => undefined);
      return run;
    },
  };
  const had = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  Object.defineProperty(globalThis, 'navigator', { value: { locks }, configurable: true, writable: true });
  try {
    let refreshes = 0;
    const counting: typeof fetch = (input, init) => {
      if (String(input).endsWith('/api/v1/auth/refresh')) {
        refreshes++;
        assert.equal(held, 1, 'refresh runs under the lock');
      }
      return fetch(input, init);
    };
    const login = new NeruTalkClient({ baseUrl: BASE, store: shared, fetch: counting });
    await login.login({ login: session.user.username, password });
    // Both tabs load the same (about to expire) session.
    shared.save({ ...stored!, expires_at: Date.now() - 1 });
    const tab1 = new NeruTalkClient({ baseUrl: BASE, store: shared, fetch: counting });
    const tab2 = new NeruTalkClient({ baseUrl: BASE, store: shared, fetch: counting });
    const [t1, t2] = await Promise.all([tab1.accessToken(), tab2.accessToken()]);
    assert.equal(refreshes, 1);
    assert.equal(t1, t2);
    assert.equal(tab2.session!.refresh_token, tab1.session!.refresh_token);
    const me = await tab2.GET('/api/v1/users/me');
    assert.equal(me.id, session.user.id);
  } finally {
    if (had) Object.defineProperty(globalThis, 'navigator', had);
    else delete (globalThis as { navigator?: unknown }).navigator;
  }
});
