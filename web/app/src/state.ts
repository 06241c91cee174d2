// Application state and the logic that keeps it in step with the server (REST + WebSocket).
import { NeruTalkClient, RealtimeSocket, ProblemError, newClientId, type Credentials, type EventType, type EventData } from '@nerutalk/sdk';

/* The app reads server objects through these small local shapes. */
export interface Profile { id: string; username: string; display_name?: string }
export interface Member { user_id: string; username?: string; display_name?: string; role?: string }
export interface Attachment { id: string; kind: string; url: string; thumbnail_url?: string; name?: string }
export interface Message {
  id: string; chat_id: string; seq: number; sender_id: string; client_id?: string; kind: string;
  text: string; attachments?: Attachment[] | null; created_at: string; deleted?: boolean;
}
export interface Chat {
  id: string; type: string; title: string; last_seq: number; read_seq: number; delivered_seq?: number;
  members?: Member[] | null; peer?: { user_id: string; username: string; display_name?: string };
  last_message?: Message | null; active_call?: string | null;
}
export interface Presence { online: boolean; last_seen?: string | null }
export interface Call { id: string; chat_id: string; kind: string; status: string; initiator_id: string; version?: number;
  credentials?: Credentials | null }
export interface SharedLoc { share_id: string; user_id: string; lat: number; lng: number }
export type Pending = { client_id: string; chat_id: string; text: string; failed?: boolean };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
export const client = new NeruTalkClient();
export const socket = new RealtimeSocket(client);
/** The REST calls, typed by the OpenAPI paths (web/sdk/src/schema.d.ts). */
export const api = client;
export const wsRequest = (t: string, d: unknown) => socket.request(t, d) as Promise<Any>;
export const wsSend = (t: string, d: unknown) => { socket.send(t, d); };

export const S = {
  me: (client.session?.user ?? null) as Profile | null,
  conn: 'closed' as string,
  chats: new Map<string, Chat>(),
  msgs: new Map<string, Map<number, Message>>(),
  latestLoaded: new Set<string>(), // chats whose latest page of history is loaded
  pending: [] as Pending[],
  receipts: new Map<string, Map<string, { read_seq: number; delivered_seq: number }>>(),
  presence: new Map<string, Presence>(),
  typing: new Map<string, Set<string>>(), // chat -> users typing
  users: new Map<string, Profile>(),
  openChat: null as string | null,
  alert: '',
  incoming: null as Call | null,
  shared: new Map<string, SharedLoc>(), // by user id
};

let listeners = new Set<() => void>();
let queued = false;
export function emit() {
  if (queued) return;
  queued = true;
  queueMicrotask(() => { queued = false; listeners.forEach((f) => f()); });
}
export function subscribe(f: () => void) { listeners.add(f); return () => { listeners.delete(f); }; }

export function problemText(e: unknown): string {
  if (e instanceof ProblemError) {
    const fields = (e.errors ?? []).map((x) => x.message).filter((m) => m && !e.detail.includes(m));
    return (e.detail || e.title || e.message) + (fields.length ? ` (${fields.join('; ')})` : '');
  }
  if (e instanceof Error) return e.message;
  return String(e);
}
export function showError(e: unknown) { S.alert = problemText(e); emit(); }
/** Runs an action, showing its problem document in the alert area when it fails. */
export async function attempt<T>(f: () => Promise<T>): Promise<T | undefined> {
  try { return await f(); } catch (e) { showError(e); return undefined; }
}

export function nameOf(userId: string): string {
  const u = S.users.get(userId);
  return (u && (u.display_name || u.username)) || 'Someone';
}
export function chatTitle(c: Chat): string {
  if (c.type === 'direct') {
    if (c.peer) return c.peer.display_name || c.peer.username;
    const o = c.members?.find((m) => m.user_id !== S.me?.id);
    if (o) return o.display_name || o.username || nameOf(o.user_id);
  }
  return c.title || 'Chat';
}
export function peerId(c: Chat): string | undefined {
  return c.peer?.user_id ?? c.members?.find((m) => m.user_id !== S.me?.id)?.user_id;
}
export const unread = (c: Chat) => Math.max(0, c.last_seq - c.read_seq);

function learnChat(c: Chat) {
  const old = S.chats.get(c.id);
  const merged: Chat = { ...old, ...c };
  if (old) { // marks never move backwards
    merged.read_seq = Math.max(old.read_seq ?? 0, c.read_seq ?? 0);
    merged.last_seq = Math.max(old.last_seq ?? 0, c.last_seq ?? 0);
  }
  merged.read_seq ??= 0;
  S.chats.set(c.id, merged);
  if (c.peer) S.users.set(c.peer.user_id, { id: c.peer.user_id, username: c.peer.username, display_name: c.peer.display_name });
  for (const m of c.members ?? []) if (m.username) S.users.set(m.user_id, { id: m.user_id, username: m.username, display_name: m.display_name });
}

export function addMessages(list: Message[]) {
  for (const m of list) {
    let map = S.msgs.get(m.chat_id);
    if (!map) S.msgs.set(m.chat_id, (map = new Map()));
    map.set(m.seq, m);
    if (m.client_id) S.pending = S.pending.filter((p) => p.client_id !== m.client_id);
    const c = S.chats.get(m.chat_id);
    if (c) {
      c.last_seq = Math.max(c.last_seq, m.seq);
      if (!c.last_message || c.last_message.seq <= m.seq) c.last_message = m;
      if (m.sender_id === S.me?.id) c.read_seq = Math.max(c.read_seq, m.seq);
    }
    socket.trackSeq(m.chat_id, m.seq);
  }
  emit();
}

export async function loadChats() {
  const page = await api.GET('/api/v1/chats', { query: { limit: 200 } });
  for (const c of page.items as Chat[]) learnChat(c);
  reportDelivered();
  emit();
}
/** Reports what reached this device. */
function reportDelivered() {
  for (const c of S.chats.values()) {
    if ((c.delivered_seq ?? 0) < c.last_seq) {
      c.delivered_seq = c.last_seq;
      wsSend('message_delivered', { chat_id: c.id, seq: c.last_seq });
    }
  }
}

/** Loads the latest page of a chat's history unless that page is loaded already (not "unless a message
 * of the chat is known": a message_new that came before the chat was opened must not hide its history).
 * Later gaps (after a reconnect) are filled by the SDK's resync, which syncs from the last tracked seq. */
export async function loadHistory(chatId: string) {
  if (S.latestLoaded.has(chatId)) return;
  const page = await api.GET('/api/v1/chats/{id}/messages', { path: { id: chatId }, query: { limit: 50 } });
  addMessages(page.items);
  S.latestLoaded.add(chatId);
  emit();
}
export async function loadEarlier(chatId: string) {
  const have = S.msgs.get(chatId);
  if (!have?.size) return;
  const page = await api.GET('/api/v1/chats/{id}/messages', { path: { id: chatId }, query: { before_seq: Math.min(...have.keys()), limit: 50 } });
  addMessages(page.items);
}
export async function loadReceipts(chatId: string) {
  const page = await api.GET('/api/v1/chats/{id}/receipts', { path: { id: chatId } });
  const m = new Map<string, { read_seq: number; delivered_seq: number }>();
  for (const r of page.items) m.set(r.user_id, { read_seq: r.read_seq, delivered_seq: r.delivered_seq });
  S.receipts.set(chatId, m);
  emit();
}
function mark(chatId: string, userId: string, key: 'read_seq' | 'delivered_seq', seq: number) {
  let m = S.receipts.get(chatId);
  if (!m) S.receipts.set(chatId, (m = new Map()));
  const r = m.get(userId) ?? { read_seq: 0, delivered_seq: 0 };
  r[key] = Math.max(r[key], seq);
  if (key === 'read_seq') r.delivered_seq = Math.max(r.delivered_seq, seq);
  m.set(userId, r);
}
/** The tick of an own message: the lowest mark among the other members. */
export function tick(m: Message): 'Sent' | 'Delivered' | 'Read' {
  const c = S.chats.get(m.chat_id);
  const rs = S.receipts.get(m.chat_id);
  const others = (c?.members?.map((x) => x.user_id) ?? (c?.peer ? [c.peer.user_id] : [])).filter((u) => u !== S.me?.id);
  if (!rs || !others.length) return 'Sent';
  let read = true, delivered = true;
  for (const u of others) {
    const r = rs.get(u);
    if (!r || r.read_seq < m.seq) read = false;
    if (!r || r.delivered_seq < m.seq) delivered = false;
  }
  return read ? 'Read' : delivered ? 'Delivered' : 'Sent';
}

/** Marks the open chat read when the page is visible. */
export function markRead() {
  const id = S.openChat;
  if (!id || document.visibilityState !== 'visible') return;
  const c = S.chats.get(id);
  const have = S.msgs.get(id);
  if (!c || !have?.size) return;
  const top = Math.max(...have.keys());
  if (top > c.read_seq) {
    c.read_seq = top;
    wsRequest('message_read', { chat_id: id, seq: top }).catch(() => api.POST('/api/v1/chats/{id}/read', { path: { id }, body: { seq: top } }).catch(() => {}));
    emit();
  }
}

const chatInHash = () => /^#chat\/([\w-]+)$/.exec(location.hash)?.[1] ?? null;

/** Opens a chat (null: back to the list). The open chat is in the URL (#chat/ID): it survives a reload. */
export async function openChat(id: string | null, fromHistory = false) {
  const prev = S.openChat;
  if (!fromHistory && prev !== id) history.pushState(null, '', id ? '#chat/' + id : location.pathname + location.search);
  if (prev && prev !== id) wsSend('leave_chat', { chat_id: prev });
  S.openChat = id;
  emit();
  if (!id) return;
  wsSend('join_chat', { chat_id: id });
  const c = S.chats.get(id);
  const p = c && c.type === 'direct' ? peerId(c) : undefined;
  if (p) wsSend('presence_subscribe', { user_ids: [p] });
  await attempt(async () => { await loadHistory(id); await loadReceipts(id); });
  markRead();
}

export async function sendText(chatId: string, text: string, attachmentIds?: string[]) {
  const p: Pending = { client_id: newClientId(), chat_id: chatId, text };
  S.pending = [...S.pending, p];
  emit();
  const body = { client_id: p.client_id, text: text || undefined, attachment_ids: attachmentIds };
  try {
    const m = await wsRequest('send_message', { chat_id: chatId, ...body });
    addMessages([m]);
  } catch (e) {
    p.failed = true;
    showError(e);
  }
}

export async function ensureUser(id: string) {
  if (S.users.has(id) || id === S.me?.id) return;
  const u = await api.GET('/api/v1/users/{id}', { path: { id } }).catch(() => null);
  if (u) { S.users.set(id, u); emit(); }
}

export async function loadShared() {
  const page = await api.GET('/api/v1/location/shared');
  S.shared.clear();
  for (const l of page.items as SharedLoc[]) { S.shared.set(l.user_id, l); ensureUser(l.user_id); }
  emit();
}

let started = false;
const offs: (() => void)[] = [];
/** Starts the realtime side once signed in. */
export function start() {
  if (started) return;
  started = true;
  S.me = client.session?.user ?? S.me;
  if (S.me) S.users.set(S.me.id, S.me);
  const on = <T extends EventType>(t: T, f: (d: EventData<T>) => void) => offs.push(socket.on(t, (d) => { f(d); emit(); }));
  offs.push(socket.onState((s) => { S.conn = s; if (s !== 'open') S.typing.clear(); emit(); }));
  on('resynced', (d) => resynced(d.chats as Chat[]));
  on('message_new', (m: Message) => {
    addMessages([m]);
    if (m.sender_id !== S.me?.id) {
      wsSend('message_delivered', { chat_id: m.chat_id, seq: m.seq });
      if (!S.chats.has(m.chat_id)) attempt(loadChats);
    }
    if (m.chat_id === S.openChat) markRead();
  });
  on('message_updated', (m: Message) => addMessages([m]));
  on('message_deleted', (m: Message) => addMessages([m]));
  on('message_read', (d) => {
    mark(d.chat_id, d.user_id, 'read_seq', d.seq);
    const c = S.chats.get(d.chat_id);
    if (c && d.user_id === S.me?.id) c.read_seq = Math.max(c.read_seq, d.seq);
  });
  on('message_delivered', (d) => mark(d.chat_id, d.user_id, 'delivered_seq', d.seq));
  // The server is the source of truth for typing: it forwards changes (not repeated trues) and sends
  // typing:false itself 6 s after the last true, so the app keeps the state until told otherwise
  // (a message from the typist does not clear it: the server may not repeat a true that follows).
  on('typing_indicator', (d) => {
    let t = S.typing.get(d.chat_id);
    if (!t) S.typing.set(d.chat_id, (t = new Set()));
    if (d.typing) t.add(d.user_id);
    else t.delete(d.user_id);
    ensureUser(d.user_id);
  });
  const pres = (p: Any) => S.presence.set(p.user_id, { online: p.online, last_seen: p.last_seen });
  on('presence', pres);
  on('presence_snapshot', (d) => (d.items ?? []).forEach(pres));
  on('chat_updated', (d) => {
    const c = d as unknown as Chat & { partial?: boolean }; // no read_seq here; a large group's summary carries `partial` and deltas
    if (c.partial) { attempt(loadChats); return; }
    if (c.members && !c.members.some((m) => m.user_id === S.me?.id)) {
      S.chats.delete(c.id);
      if (S.openChat === c.id) S.openChat = null;
      return;
    }
    learnChat(c);
  });
  on('shared_location_update', (l: SharedLoc) => { S.shared.set(l.user_id, l); ensureUser(l.user_id); });
  // The share itself, with `location`: its owner's latest position as the share shows it (or null).
  on('location_share_start', (d) => { if (d.location) { S.shared.set(d.owner_id, { lat: d.location.lat, lng: d.location.lng, share_id: d.id, user_id: d.owner_id }); ensureUser(d.owner_id); } });
  on('location_share_stop', (d) => { for (const [u, l] of S.shared) if (l.share_id === d.share_id) S.shared.delete(u); attempt(loadShared); });
  on('call_initiated', (d) => { if (d.user_id !== S.me?.id) S.incoming = d.call; callEvent('initiated', d); });
  for (const t of ['call_answered', 'call_declined', 'call_ended', 'call_participant_left', 'call_participant_joined'] as const)
    on(t, (d) => {
      if (S.incoming?.id === d.call.id && (t !== 'call_participant_joined')) S.incoming = null;
      callEvent(t.slice(5), d);
    });
  document.addEventListener('visibilitychange', markRead);
  addEventListener('popstate', () => openChat(chatInHash(), true));
  socket.connect();
  const h = chatInHash();
  if (h) openChat(h, true);
}

/** After every (re)open the SDK has read GET /chats and replayed the missed messages (as message_new):
 * take the list, report deliveries, join the open chat again, refresh its receipts and the locations. */
async function resynced(chats: Chat[]) {
  for (const c of chats) learnChat(c);
  reportDelivered();
  emit();
  await attempt(async () => {
    if (S.openChat) {
      wsSend('join_chat', { chat_id: S.openChat });
      const c = S.chats.get(S.openChat);
      const p = c && c.type === 'direct' ? peerId(c) : undefined;
      if (p) wsSend('presence_subscribe', { user_ids: [p] });
      await loadReceipts(S.openChat);
      markRead();
    }
    await loadShared();
    // A call that rings for this user while the page was away (or reloaded).
    if (!S.incoming) {
      const calls = await api.GET('/api/v1/calls', { query: { status: 'ringing', limit: 10 } });
      const me = S.me?.id;
      const c = (calls.items as (Call & { participants?: { user_id: string; state: string }[] })[])
        .find((x) => x.initiator_id !== me && x.participants?.some((p) => p.user_id === me && p.state === 'invited'));
      if (c) { S.incoming = c; emit(); }
    }
  });
}

/* Calls register a handler here (calls.ts) so state.ts does not depend on WebRTC. */
let callHandler: (what: string, d: Any) => void = () => {};
export function onCallEvent(f: (what: string, d: Any) => void) { callHandler = f; }
function callEvent(what: string, d: Any) { callHandler(what, d); }

export async function signOut() {
  offs.splice(0).forEach((f) => f());
  started = false;
  socket.close();
  await client.logout().catch(() => {});
  location.reload();
}
