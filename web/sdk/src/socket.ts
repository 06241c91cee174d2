import type { components as ws } from './ws-schema.js';
import type { NeruTalkClient, Schemas } from './client.ts';
import { ProblemError } from './problem.ts';

type WS = ws['schemas'];
/** Server events by type, generated from the server's AsyncAPI document (web/sdk/asyncapi.json). */
export type ServerEventMap = WS['EventMap'];
/** Client commands by type, and the data of their acks. */
export type CommandMap = WS['CommandMap'];
export type AckMap = WS['AckMap'];
export type WsSchemas = WS;
export type Message = WS['Message'];
export type ChatView = Schemas['ChatView'];

/** An envelope as it travels. */
export interface Frame {
  type: string;
  id?: string;
  data?: unknown;
}

/** Events the socket itself emits, besides the server's. */
export interface LocalEventMap {
  /** After every (re)open: GET /chats was read and every chat seen was synced; `replayed` messages came through `sync` (also emitted as message_new). */
  resynced: { chats: ChatView[]; replayed: number };
  /** The server's `error` frames that answer no pending request (e.g. a failed frame without id). */
  error: WS['ErrorData'];
}
export type EventMap = ServerEventMap & LocalEventMap & { '*': Frame };
export type EventType = keyof EventMap;
export type EventData<T extends EventType> = EventMap[T];
export type SocketState = 'connecting' | 'open' | 'closed';

export interface SocketOptions {
  /** The WebSocket URL without token; default: the client's baseUrl (or the page's origin) + /api/v1/ws. */
  url?: string;
  /** Reconnect delays: exponential from minMs to maxMs, full jitter (default 500 ms … 30 s). */
  backoff?: { minMs: number; maxMs: number };
  /** How long a request waits for its ack (default 15 s). */
  timeoutMs?: number;
  /** Send a ping after this long without a frame from the server, close when it stays unanswered (default 30 s; 0 = off). */
  heartbeatMs?: number;
  /** The WebSocket constructor (default: the global one). */
  WebSocket?: typeof WebSocket;
}

interface Pending {
  frame: Frame;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** send_message: kept across reconnects until acked, resent with the same client_id. */
  durable: boolean;
  sent: boolean;
  timeoutMs: number;
}

const WS_PATH = '/api/v1/ws';

function closedError(code: string, detail: string): ProblemError {
  return new ProblemError({ status: 0, code, title: code, detail });
}

/**
 * The NeruTalk WebSocket: one per app instance. Reconnects by itself with exponential backoff and
 * full jitter, resyncs on every open (GET /chats, then `sync` from the last seq seen per chat),
 * resends unacknowledged `send_message` commands with their client_id (the server dedups them),
 * and correlates requests with their ack / error frames.
 */
export class RealtimeSocket {
  private readonly client: NeruTalkClient;
  private readonly opts: Required<Omit<SocketOptions, 'url' | 'WebSocket'>> & { url?: string };
  private readonly WS: typeof WebSocket;
  private ws: WebSocket | null = null;
  private wanted = false;
  private attempt = 0;
  private failedBeforeOpen = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  private nextId = 1;
  private pending = new Map<string, Pending>();
  private seqs = new Map<string, number>();
  private listeners = new Map<string, Set<(d: unknown) => void>>();
  private stateListeners = new Set<(s: SocketState) => void>();
  private _state: SocketState = 'closed';
  private generation = 0;
  private signals: { at: number; type: string; data: unknown }[] = [];

  constructor(client: NeruTalkClient, opts: SocketOptions = {}) {
    this.client = client;
    this.opts = {
      backoff: opts.backoff ?? { minMs: 500, maxMs: 30_000 },
      timeoutMs: opts.timeoutMs ?? 15_000,
      heartbeatMs: opts.heartbeatMs ?? 30_000,
      ...(opts.url ? { url: opts.url } : {}),
    };
    const W = opts.WebSocket ?? (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
    if (!W) throw new Error('nerutalk: no WebSocket implementation (Node 20: run with --experimental-websocket)');
    this.WS = W;
    // Back online: dial now instead of waiting for the backoff.
    if (typeof window !== 'undefined' && typeof window.addEventListener === 'function') {
      window.addEventListener('online', () => {
        if (this.wanted && this._state !== 'open') this.reconnect();
      });
    }
  }

  get state(): SocketState {
    return this._state;
  }

  onState(cb: (s: SocketState) => void): () => void {
    this.stateListeners.add(cb);
    return () => void this.stateListeners.delete(cb);
  }

  private setState(s: SocketState): void {
    if (this._state === s) return;
    this._state = s;
    for (const l of [...this.stateListeners]) l(s);
  }

  /** Subscribes to an event type ('*' gets every server frame that answers no request); returns the unsubscribe function. */
  on<T extends EventType>(type: T, cb: (data: EventData<T>) => void): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    const f = cb as (d: unknown) => void;
    set.add(f);
    return () => void set.delete(f);
  }

  private emit(type: string, data: unknown): void {
    for (const l of [...(this.listeners.get(type) ?? [])]) {
      try {
        l(data);
      } catch (e) {
        console.error('nerutalk: listener of', type, 'failed:', e);
      }
    }
  }

  /** Remembers that the app holds chatId up to seq: the resync after a reopen syncs from there. */
  trackSeq(chatId: string, seq: number): void {
    if (seq > (this.seqs.get(chatId) ?? -1)) this.seqs.set(chatId, seq);
  }

  /** The highest seq seen (or tracked) of a chat. */
  seenSeq(chatId: string): number | undefined {
    return this.seqs.get(chatId);
  }

  connect(): void {
    this.wanted = true;
    if (this.ws || this.reconnectTimer !== undefined) return;
    void this.open();
  }

  /** Closes for good (until connect()): no reconnect; pending requests other than send_message fail. */
  close(): void {
    this.wanted = false;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.generation++;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      detach(ws);
      try {
        ws.close(1000);
      } catch {
        // already closed
      }
    }
    this.onDown(closedError('closed', 'the socket was closed'));
    this.setState('closed');
  }

  /** Drops the current connection and reconnects (with backoff), e.g. when the network came back. */
  reconnect(): void {
    const ws = this.ws;
    if (ws) {
      try {
        ws.close(4000, 'reconnect');
      } catch {
        // ignore
      }
    } else if (this.wanted && this.reconnectTimer !== undefined) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      void this.open();
    }
  }

  private wsUrl(token: string): string {
    let base = this.opts.url;
    if (!base) {
      const origin = this.client.baseUrl || (typeof location !== 'undefined' ? location.origin : '');
      base = origin.replace(/^http/, 'ws') + WS_PATH;
    }
    return base + (base.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
  }

  private async open(): Promise<void> {
    const gen = ++this.generation;
    this.setState('connecting');
    let token: string;
    try {
      if (this.failedBeforeOpen >= 2 && this.client.session) {
        // The handshake keeps failing: the token may have been refused (a browser cannot see the 401).
        await this.client.refresh(this.client.session.access_token);
        this.failedBeforeOpen = 0;
      }
      token = await this.client.accessToken();
    } catch (e) {
      if (gen !== this.generation) return;
      if (e instanceof ProblemError && e.status === 401) {
        // Signed out: nothing to reconnect with.
        this.wanted = false;
        this.onDown(e);
        this.setState('closed');
        return;
      }
      this.scheduleReconnect();
      return;
    }
    if (gen !== this.generation || !this.wanted) return;
    let ws: WebSocket;
    try {
      ws = new this.WS(this.wsUrl(token));
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.failedBeforeOpen = 0;
      this.setState('open');
      this.armHeartbeat();
      void this.afterOpen(gen);
    };
    ws.onmessage = (ev: MessageEvent) => {
      this.armHeartbeat();
      if (typeof ev.data === 'string') this.onFrame(ev.data);
    };
    ws.onerror = () => {
      // onclose follows
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearTimeout(this.heartbeatTimer);
      if (!opened) this.failedBeforeOpen++;
      this.onDown(closedError('disconnected', `the socket closed (${ev.code}${ev.reason ? ' ' + ev.reason : ''})`));
      if (ev.code === 4003) {
        // Session revoked: the refresh token is dead too; refresh fails and clears the session.
        this.wanted = false;
        this.setState('closed');
        this.client.refresh().catch(() => undefined);
        return;
      }
      if (!this.wanted) {
        this.setState('closed');
        return;
      }
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    if (!this.wanted) return;
    this.setState('connecting');
    const { minMs, maxMs } = this.opts.backoff;
    const cap = Math.min(maxMs, minMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    const delay = Math.random() * cap; // full jitter
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.wanted) void this.open();
    }, delay);
  }

  private armHeartbeat(): void {
    clearTimeout(this.heartbeatTimer);
    if (!this.opts.heartbeatMs) return;
    const ws = this.ws;
    this.heartbeatTimer = setTimeout(() => {
      if (this.ws !== ws || !ws) return;
      this.request('ping', {}, { timeoutMs: 10_000 }).catch(() => {
        if (this.ws === ws) ws.close(4000, 'heartbeat timeout');
      });
    }, this.opts.heartbeatMs);
  }

  /** A connection went away: in-flight requests fail, except send_message, which waits to be resent. */
  private onDown(err: ProblemError): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.timer = undefined;
      p.sent = false;
      if (p.durable && this.wanted) continue;
      this.pending.delete(id);
      p.reject(err);
    }
  }

  private async afterOpen(gen: number): Promise<void> {
    // Frames queued while connecting (send_message resends first: they keep their client_id).
    for (const p of this.pending.values()) if (!p.sent) this.transmit(p);
    try {
      await this.resync(gen);
    } catch (e) {
      if (gen === this.generation) console.warn('nerutalk: resync failed:', e);
    }
  }

  /** GET /chats, then `sync` each chat seen whose last_seq is beyond what we hold; emits 'resynced'. */
  private async resync(gen: number): Promise<void> {
    const chats: ChatView[] = [];
    let cursor = '';
    for (let page = 0; page < 20; page++) {
      const res = (await this.client.GET('/api/v1/chats', { query: { limit: 200, ...(cursor ? { cursor } : {}) } })) as {
        items: ChatView[];
        next_cursor?: string;
      };
      chats.push(...res.items);
      cursor = res.next_cursor ?? '';
      if (!cursor) break;
    }
    let replayed = 0;
    for (const chat of chats) {
      const seen = this.seqs.get(chat.id);
      if (seen === undefined || chat.last_seq <= seen) continue;
      let after = seen;
      for (let i = 0; i < 1000; i++) {
        if (gen !== this.generation) return;
        const page = (await this.request('sync', { chat_id: chat.id, after_seq: after, limit: 200 })) as AckMap['sync'];
        for (const m of page.items ?? []) {
          replayed++;
          this.trackSeq(m.chat_id, m.seq);
          this.emit('message_new', m);
          this.emit('*', { type: 'message_new', data: m });
          after = Math.max(after, m.seq);
        }
        if (!page.has_more || !page.items?.length) break;
      }
    }
    if (gen !== this.generation) return;
    this.emit('resynced', { chats, replayed });
  }

  private onFrame(raw: string): void {
    let f: Frame;
    try {
      f = JSON.parse(raw) as Frame;
    } catch {
      return;
    }
    if (!f || typeof f.type !== 'string') return;
    if ((f.type === 'ack' || f.type === 'error') && f.id !== undefined) {
      const p = this.pending.get(f.id);
      if (p) {
        this.pending.delete(f.id);
        clearTimeout(p.timer);
        if (f.type === 'ack') p.resolve(f.data ?? {});
        else p.reject(wsProblem(f.data));
        return;
      }
    }
    if (f.type === 'error') {
      this.emit('error', f.data);
      this.emit('*', f);
      return;
    }
    if (f.type === 'message_new' || f.type === 'message_updated' || f.type === 'message_deleted') {
      const m = f.data as Message | undefined;
      if (m && typeof m.chat_id === 'string' && typeof m.seq === 'number' && f.type === 'message_new') this.trackSeq(m.chat_id, m.seq);
    }
    if (f.type.startsWith('webrtc_')) {
      const now = Date.now();
      this.signals = this.signals.filter((x) => now - x.at < 60_000).slice(-63);
      this.signals.push({ at: now, type: f.type, data: f.data });
    }
    this.emit(f.type, f.data);
    this.emit('*', f);
  }

  /**
   * The WebRTC signaling frames (webrtc_offer/answer/ice_candidate) of the last minute, oldest
   * first: a P2PCall made after an offer arrived (e.g. right after POST /calls/{id}/answer) still
   * finds it.
   */
  recentSignals(): { type: string; data: unknown }[] {
    const now = Date.now();
    return this.signals.filter((x) => now - x.at < 60_000).map(({ type, data }) => ({ type, data }));
  }

  private transmit(p: Pending): void {
    const ws = this.ws;
    if (!ws || this._state !== 'open' || ws.readyState !== 1) return;
    ws.send(JSON.stringify(p.frame));
    p.sent = true;
    const id = p.frame.id!;
    clearTimeout(p.timer);
    p.timer = setTimeout(() => {
      if (this.pending.get(id) !== p) return;
      this.pending.delete(id);
      p.reject(new ProblemError({ status: 0, code: 'timeout', title: 'timeout', detail: `no answer to ${p.frame.type}` }));
    }, p.timeoutMs);
  }

  /**
   * Sends a command with an id and resolves with its ack data, or rejects with a ProblemError
   * (the error frame's code, detail and errors; `timeout`, `disconnected` or `closed` otherwise).
   * While the socket is connecting the command waits for the open. `send_message` survives
   * reconnects: it is resent with the same client_id (set one yourself, or one is generated) until
   * acked, and the server stores it once.
   */
  request<T extends keyof CommandMap>(type: T, data: CommandMap[T], opts?: { timeoutMs?: number }): Promise<T extends keyof AckMap ? AckMap[T] : unknown>;
  request(type: string, data: unknown, opts?: { timeoutMs?: number }): Promise<unknown>;
  request(type: string, data: unknown, opts: { timeoutMs?: number } = {}): Promise<unknown> {
    if (!this.wanted && this._state === 'closed') {
      return Promise.reject(closedError('closed', 'the socket is closed: call connect() first'));
    }
    let d = data;
    const durable = type === 'send_message';
    if (durable && d && typeof d === 'object' && !(d as { client_id?: string }).client_id) {
      d = { ...(d as object), client_id: newClientId() };
    }
    const id = `c${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timeout = opts.timeoutMs ?? this.opts.timeoutMs;
      const p: Pending = { frame: { type, id, data: d }, resolve, reject, timer: undefined, durable, sent: false, timeoutMs: timeout };
      this.pending.set(id, p);
      if (this._state === 'open') {
        this.transmit(p);
      } else if (!durable) {
        // Waits for the open, but not forever.
        p.timer = setTimeout(() => {
          if (this.pending.get(id) !== p) return;
          this.pending.delete(id);
          reject(new ProblemError({ status: 0, code: 'timeout', title: 'timeout', detail: `not connected: ${type} not sent` }));
        }, timeout);
      }
    });
  }

  /** Fire and forget (no id: no ack; a failure still comes as an 'error' event). Dropped when not open. */
  send(type: string, data: unknown): boolean {
    const ws = this.ws;
    if (!ws || this._state !== 'open' || ws.readyState !== 1) return false;
    ws.send(JSON.stringify({ type, data }));
    return true;
  }
}

function detach(ws: WebSocket): void {
  ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
}

function wsProblem(data: unknown): ProblemError {
  const d = (data ?? {}) as { code?: string; detail?: string; errors?: { location?: string; message: string }[] };
  const code = d.code ?? 'error';
  return new ProblemError({ status: 0, code, title: code, detail: d.detail ?? '', ...(d.errors ? { errors: d.errors } : {}) });
}

/** A random client_id for send_message (UUID v4 when crypto.randomUUID exists). */
export function newClientId(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}
