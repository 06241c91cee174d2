import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProblemError, RealtimeSocket, newClientId } from '../src/index.ts';
import type { Message } from '../src/index.ts';
import { newUser, openSocket, uniq, waitFor, waitState } from './helpers.ts';

async function directChat() {
  const a = await newUser('sa');
  const b = await newUser('sb');
  const chat = await a.client.POST('/api/v1/chats', { body: { type: 'direct', member_ids: [b.session.user.id] } });
  return { a, b, chat };
}

async function sendREST(u: Awaited<ReturnType<typeof newUser>>, chatId: string, text: string) {
  return u.client.POST('/api/v1/chats/{id}/messages', { path: { id: chatId }, body: { client_id: newClientId(), text } });
}

test('the socket receives message_new and tracks seqs', async () => {
  const { a, b, chat } = await directChat();
  const sock = await openSocket(b.client);
  try {
    assert.equal(sock.state, 'open');
    const got = waitFor(sock, 'message_new', (m) => m.chat_id === chat.id);
    const sent = await sendREST(a, chat.id, 'hi over the socket');
    const m = await got;
    assert.equal(m.id, sent.id);
    assert.equal(m.text, 'hi over the socket');
    assert.equal(sock.seenSeq(chat.id), sent.seq);
  } finally {
    sock.close();
  }
  assert.equal(sock.state, 'closed');
});

test('request/ack, error frames with and without id', async () => {
  const { b, chat } = await directChat();
  const sock = await openSocket(b.client);
  try {
    const pong = (await sock.request('ping', {})) as { ts?: string };
    assert.ok(pong.ts, 'ping ack carries ts');

    await assert.rejects(sock.request('join_chat', { chat_id: '00000000-0000-7000-8000-000000000000' }), (e: unknown) => {
      assert.ok(e instanceof ProblemError);
      assert.equal(e.code, 'not_found');
      return true;
    });
    await assert.rejects(sock.request('sync', { chat_id: chat.id, after_seq: -5 }), (e: unknown) => {
      assert.ok(e instanceof ProblemError);
      assert.equal(e.code, 'validation_failed');
      assert.ok(e.errors && e.errors.length > 0);
      return true;
    });

    const err = waitFor(sock, 'error');
    assert.equal(sock.send('no_such_command', {}), true);
    assert.equal((await err).code, 'unknown_type');

    const clientId = newClientId();
    const ack = await sock.request('send_message', { chat_id: chat.id, client_id: clientId, text: 'over ws' });
    assert.equal(ack.client_id, clientId);
    assert.equal(ack.seq, 1);
  } finally {
    sock.close();
  }
  await assert.rejects(sock.request('ping', {}), (e: unknown) => e instanceof ProblemError && e.code === 'closed');
});

test('reconnect resyncs the messages missed while disconnected', async () => {
  const { a, b, chat } = await directChat();
  const first = await sendREST(a, chat.id, 'before');
  // The sender's own socket: a REST send answers after the commit, and its message_new is
  // published just after, in one pass to every connection of the chat's members. Once the sender's
  // socket has a message, no later connection of b can get it live: only sync can replay it.
  const sa = await openSocket(a.client);
  const sock = new RealtimeSocket(b.client, { backoff: { minMs: 50, maxMs: 500 }, heartbeatMs: 0 });
  const seen = new Map<string, Message>();
  sock.on('message_new', (m) => seen.set(m.id, m));
  sock.trackSeq(chat.id, first.seq);
  let synced = waitFor(sock, 'resynced');
  sock.connect();
  await synced;
  try {
    // Closed from our side: the messages sent meanwhile come back through sync on the next open.
    sock.close();
    const missed = [];
    const published = waitFor(sa, 'message_new', (m) => m.chat_id === chat.id && m.text === 'three');
    for (const t of ['one', 'two', 'three']) missed.push(await sendREST(a, chat.id, t));
    await published;
    synced = waitFor(sock, 'resynced');
    sock.connect();
    const r = await synced;
    assert.equal(r.replayed, 3);
    assert.ok(r.chats.some((c) => c.id === chat.id));
    for (const m of missed) assert.equal(seen.get(m.id)?.text, m.text);
    assert.equal(seen.has(first.id), false, 'nothing replayed before the tracked seq');
    assert.equal(sock.seenSeq(chat.id), missed.at(-1)!.seq);

    // Dropped while it should stay up: it reconnects by itself (backoff) and resyncs again.
    const states: string[] = [];
    sock.onState((s) => states.push(s));
    synced = waitFor(sock, 'resynced');
    sock.reconnect();
    await synced;
    assert.equal(sock.state, 'open');
    assert.deepEqual(states, ['connecting', 'open']);
    const live = waitFor(sock, 'message_new', (m) => m.text === 'after the reconnect');
    await sendREST(a, chat.id, 'after the reconnect');
    await live;
  } finally {
    sock.close();
    sa.close();
  }
});

test('a send_message pending across a reconnect is resent once (same client_id, no duplicate)', async () => {
  const { a, b, chat } = await directChat();
  const sock = await openSocket(b.client);
  try {
    // Sent, then the connection drops before the ack can arrive.
    const cid1 = newClientId();
    const p1 = sock.request('send_message', { chat_id: chat.id, client_id: cid1, text: 'in flight' });
    sock.reconnect();
    // Sent while reconnecting: waits for the open.
    await waitState(sock, 'connecting');
    const cid2 = newClientId();
    const p2 = sock.request('send_message', { chat_id: chat.id, client_id: cid2, text: 'queued' });
    const [m1, m2] = await Promise.all([p1, p2]);
    assert.equal(m1.client_id, cid1);
    assert.equal(m2.client_id, cid2);
    await waitState(sock, 'open');

    const page = await a.client.GET('/api/v1/chats/{id}/messages', { path: { id: chat.id }, query: { limit: 50 } });
    const texts = page.items.map((m) => m.text);
    assert.deepEqual(texts.sort(), ['in flight', 'queued']);
    assert.deepEqual(page.items.map((m) => m.seq).sort(), [1, 2]);
  } finally {
    sock.close();
  }
});

test('the socket refreshes an expired access token before it dials', async () => {
  const { b, calls } = await newUser(uniq('rt')).then(async (b) => ({ b, calls: b.calls }));
  b.client.setTokens({ ...b.client.session!, expires_at: Date.now() - 1 });
  const sock = await openSocket(b.client);
  sock.close();
  assert.equal(calls.get('/api/v1/auth/refresh'), 1);
});

test('a revoked session (close 4003) stops reconnecting and signs out', async () => {
  const u = await newUser('rv');
  const sock = await openSocket(u.client);
  const sessions = (await u.client.GET('/api/v1/auth/sessions')) as { items: { id: string; current?: boolean }[] };
  assert.ok(sessions.items.length >= 1);
  const signedOut = new Promise<void>((resolve) => u.client.onSessionChange((s) => s === null && resolve()));
  const closed = waitState(sock, 'closed');
  // Revoke this very session from the server side (as another device of the user would).
  for (const s of sessions.items) await u.client.DELETE('/api/v1/auth/sessions/{id}', { path: { id: s.id } }).catch(() => undefined);
  await closed;
  await signedOut;
  assert.equal(u.client.session, null);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sock.state, 'closed', 'no reconnect after 4003');
});
