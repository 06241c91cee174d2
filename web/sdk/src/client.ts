import type { components, paths } from './schema.js';
import { ProblemError } from './problem.ts';

export type Schemas = components['schemas'];
export type User = Schemas['Profile'];
export type FileInfo = Schemas['File'];

/** What the SDK keeps of a sign-in: the token pair and its user. */
export interface Session {
  access_token: string;
  refresh_token: string;
  /** Lifetime of the access token in seconds, as the server gave it. */
  expires_in: number;
  user: User;
  /** When the access token expires (ms since the epoch); set by the client when it saves the session. */
  expires_at?: number;
}

/** Where the session lives between page loads. */
export interface TokenStore {
  load(): Session | null;
  save(s: Session | null): void;
}

export const SESSION_KEY = 'nerutalk.session';

/** localStorage under "nerutalk.session" (shared by the tabs of an origin); memory when there is no localStorage. */
export function localStorageStore(key = SESSION_KEY): TokenStore {
  let mem: Session | null = null;
  const ls = (): Storage | null => {
    try {
      return typeof localStorage === 'undefined' ? null : localStorage;
    } catch {
      return null;
    }
  };
  return {
    load() {
      const s = ls();
      if (!s) return mem;
      try {
        const raw = s.getItem(key);
        return raw ? (JSON.parse(raw) as Session) : null;
      } catch {
        return null;
      }
    },
    save(v) {
      const s = ls();
      if (!s) {
        mem = v;
        return;
      }
      if (v) s.setItem(key, JSON.stringify(v));
      else s.removeItem(key);
    },
  };
}

/** A store that keeps the session in memory only (tests, Node, private windows). */
export function memoryStore(initial: Session | null = null): TokenStore {
  let s = initial;
  return { load: () => s, save: (v) => void (s = v) };
}

// ---- typing the OpenAPI paths -------------------------------------------------------------

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
/** The paths that have an operation for the method. */
export type PathsWith<M extends Method> = {
  [P in keyof paths]: [NonNullable<paths[P][M]>] extends [never] ? never : P;
}[keyof paths];
export type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;

type Param<O, K extends 'path' | 'query'> = O extends { parameters: infer X }
  ? X extends Record<K, infer V>
    ? V
    : X extends Partial<Record<K, infer V>>
      ? V
      : never
  : never;
type JsonBody<O> = O extends { requestBody: { content: { 'application/json': infer B } } }
  ? B
  : O extends { requestBody?: { content: { 'application/json': infer B } } }
    ? B
    : never;
type SuccessCode = 200 | 201 | 202 | 203 | 206;
type ContentOf<R> = R extends { content: { 'application/json': infer B } }
  ? B
  : R extends { content: Record<string, infer B> }
    ? B
    : void;
type ResponsesOf<O> = O extends { responses: infer R } ? R : never;
/** The body of the operation's success answer (void for 204). */
export type ResponseBody<O> =
  | ContentOf<ResponsesOf<O>[Extract<keyof ResponsesOf<O>, SuccessCode>]>
  | (204 extends keyof ResponsesOf<O> ? void : never);

/** What a call takes besides the path: path parameters, the query and the JSON body. */
export interface RequestInit_<O> {
  path?: Param<O, 'path'>;
  query?: Param<O, 'query'>;
  body?: JsonBody<O>;
  signal?: AbortSignal | undefined;
  headers?: Record<string, string> | undefined;
}
export type RequestOptions<O> = RequestInit_<O>;

export interface ClientOptions {
  /** The server's origin, '' (the default) for the page's own origin. */
  baseUrl?: string;
  store?: TokenStore;
  fetch?: typeof fetch;
  /** Refresh the access token when it expires within this many ms (default 30 s). */
  refreshMarginMs?: number;
}

type Listener = (s: Session | null) => void;

const NO_AUTH = new Set(['/api/v1/auth/register', '/api/v1/auth/login', '/api/v1/auth/refresh']);
const LOCK_NAME = 'nerutalk.refresh';

/**
 * The REST client: typed calls over the OpenAPI paths, the session (token pair) with its
 * refresh, and file uploads.
 */
export class NeruTalkClient {
  readonly baseUrl: string;
  private readonly store: TokenStore;
  private readonly fetchFn: typeof fetch;
  private readonly margin: number;
  private current: Session | null;
  private listeners = new Set<Listener>();
  private refreshing: Promise<Session> | null = null;
  /** How many POST /auth/refresh this client sent (for tests and diagnostics). */
  refreshCount = 0;

  constructor(opts: ClientOptions = {}) {
    this.baseUrl = (opts.baseUrl ?? '').replace(/\/+$/, '');
    this.store = opts.store ?? localStorageStore();
    const f = opts.fetch ?? globalThis.fetch;
    this.fetchFn = (input, init) => f.call(globalThis, input, init);
    this.margin = opts.refreshMarginMs ?? 30_000;
    this.current = this.store.load();
    // Another tab signed in, refreshed or signed out: adopt its session.
    if (!opts.store && typeof window !== 'undefined' && typeof window.addEventListener === 'function') {
      window.addEventListener('storage', (e) => {
        if (e.key === SESSION_KEY) this.adopt(this.store.load());
      });
    }
  }

  get session(): Session | null {
    return this.current;
  }

  /** Calls cb on every sign-in, refresh and sign-out; returns the unsubscribe function. */
  onSessionChange(cb: Listener): () => void {
    this.listeners.add(cb);
    return () => void this.listeners.delete(cb);
  }

  private adopt(s: Session | null): void {
    const before = this.current;
    this.current = s;
    if (before?.access_token !== s?.access_token) for (const l of [...this.listeners]) l(s);
  }

  private setSession(s: Session | null): void {
    if (s && s.expires_at === undefined) s = { ...s, expires_at: Date.now() + s.expires_in * 1000 };
    this.store.save(s);
    this.adopt(s);
  }

  private fromPair(p: Schemas['TokenPair']): Session {
    return {
      access_token: p.access_token,
      refresh_token: p.refresh_token,
      expires_in: p.expires_in,
      user: p.user,
      expires_at: Date.now() + p.expires_in * 1000,
    };
  }

  async register(b: { username: string; email: string; password: string; display_name?: string }): Promise<Session> {
    const pair = (await this.POST('/api/v1/auth/register', { body: b as never })) as Schemas['TokenPair'];
    const s = this.fromPair(pair);
    this.setSession(s);
    return s;
  }

  async login(b: { login: string; password: string }): Promise<Session> {
    const pair = (await this.POST('/api/v1/auth/login', { body: b })) as Schemas['TokenPair'];
    const s = this.fromPair(pair);
    this.setSession(s);
    return s;
  }

  /** Ends the session on the server (best effort) and forgets it here. */
  async logout(): Promise<void> {
    const s = this.current;
    this.setSession(null);
    if (!s) return;
    try {
      const res = await this.fetchFn(this.baseUrl + '/api/v1/auth/logout', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${s.access_token}` },
        body: JSON.stringify({ refresh_token: s.refresh_token }),
      });
      await res.body?.cancel();
    } catch {
      // signed out locally; the refresh token expires by itself
    }
  }

  /** Sets the session directly (e.g. restored by the app); null signs out locally. */
  setTokens(s: Session | null): void {
    this.setSession(s);
  }

  /**
   * A valid access token: refreshes first when it expires within the margin. One refresh at a
   * time (single-flight in this client, and across tabs with navigator.locks when available).
   */
  async accessToken(): Promise<string> {
    const s = this.current;
    if (!s) throw new ProblemError({ status: 401, code: 'unauthenticated', title: 'Unauthorized', detail: 'not signed in' });
    if (s.expires_at !== undefined && s.expires_at - this.margin <= Date.now()) {
      return (await this.refresh(s.access_token)).access_token;
    }
    return s.access_token;
  }

  /**
   * Exchanges the refresh token for a new pair. `stale`, when given, is the access token the
   * caller found wanting: if the session has moved on since (another call or tab refreshed),
   * the current session is returned without a new refresh.
   */
  refresh(stale?: string): Promise<Session> {
    if (this.refreshing) return this.refreshing;
    const cur = this.current;
    if (cur && stale !== undefined && cur.access_token !== stale) return Promise.resolve(cur);
    const p = this.withLock(() => this.doRefresh(stale)).finally(() => {
      if (this.refreshing === p) this.refreshing = null;
    });
    this.refreshing = p;
    return p;
  }

  private async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const locks = typeof navigator !== 'undefined' ? (navigator as Navigator & { locks?: LockManager }).locks : undefined;
    if (locks && typeof locks.request === 'function') return locks.request(LOCK_NAME, fn) as Promise<T>;
    return fn();
  }

  private async doRefresh(stale?: string): Promise<Session> {
    // Another tab may have refreshed while we waited for the lock: its pair is in the store.
    const stored = this.store.load();
    const cur = this.current;
    if (stored && cur && stored.refresh_token !== cur.refresh_token) {
      this.adopt(stored);
      if (stored.expires_at === undefined || stored.expires_at - this.margin > Date.now()) return stored;
    }
    const s = this.current;
    if (!s) throw new ProblemError({ status: 401, code: 'unauthenticated', title: 'Unauthorized', detail: 'not signed in' });
    if (stale !== undefined && s.access_token !== stale && (s.expires_at ?? Infinity) - this.margin > Date.now()) return s;
    this.refreshCount++;
    let res: Response;
    try {
      res = await this.fetchFn(this.baseUrl + '/api/v1/auth/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ refresh_token: s.refresh_token }),
      });
    } catch (e) {
      throw new ProblemError({ status: 0, code: 'network_error', title: 'Network error', detail: String((e as Error)?.message ?? e) });
    }
    if (!res.ok) {
      const err = await ProblemError.fromResponse(res);
      // The refresh token is dead (expired, revoked, reused): the user must sign in again.
      if (res.status === 401) this.setSession(null);
      throw err;
    }
    const next = this.fromPair((await res.json()) as Schemas['TokenPair']);
    this.setSession(next);
    return next;
  }

  /** The URL of a path with its path parameters and query filled in. */
  url(path: string, params?: { path?: unknown; query?: unknown }): string {
    let p = path;
    const pp = (params?.path ?? {}) as Record<string, unknown>;
    p = p.replace(/\{([^}]+)\}/g, (_, k: string) => {
      const v = pp[k];
      if (v === undefined || v === null) throw new Error(`nerutalk: missing path parameter ${k} for ${path}`);
      return encodeURIComponent(String(v));
    });
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries((params?.query ?? {}) as Record<string, unknown>)) {
      if (v === undefined || v === null) continue;
      if (Array.isArray(v)) for (const x of v) q.append(k, String(x));
      else q.append(k, String(v));
    }
    const qs = q.toString();
    return this.baseUrl + p + (qs ? `?${qs}` : '');
  }

  /** Any call: method, OpenAPI path, options. Typed wrappers below. */
  async request<T = unknown>(
    method: string,
    path: string,
    init: {
      path?: unknown;
      query?: unknown;
      body?: unknown;
      signal?: AbortSignal | undefined;
      headers?: Record<string, string> | undefined;
      form?: FormData;
    } = {},
  ): Promise<T> {
    const url = this.url(path, init);
    const auth = !NO_AUTH.has(path) && this.current !== null;
    const send = async (token: string | null): Promise<Response> => {
      const headers: Record<string, string> = { Accept: 'application/json', ...(init.headers ?? {}) };
      let body: BodyInit | null = null;
      if (init.form) body = init.form;
      else if (init.body !== undefined) {
        headers['Content-Type'] = 'application/json';
        body = JSON.stringify(init.body);
      }
      if (token) headers['Authorization'] = `Bearer ${token}`;
      try {
        return await this.fetchFn(url, { method, headers, body, signal: init.signal ?? null });
      } catch (e) {
        if ((e as Error)?.name === 'AbortError') throw e;
        throw new ProblemError({ status: 0, code: 'network_error', title: 'Network error', detail: String((e as Error)?.message ?? e) });
      }
    };
    let token = auth ? await this.accessToken() : null;
    let res = await send(token);
    if (res.status === 401 && token) {
      await res.body?.cancel();
      // One refresh (shared with concurrent callers), then one retry.
      token = (await this.refresh(token)).access_token;
      res = await send(token);
    }
    if (!res.ok) throw await ProblemError.fromResponse(res);
    if (res.status === 204 || res.status === 205) {
      await res.body?.cancel();
      return undefined as T;
    }
    const text = await res.text();
    if (!text) return undefined as T;
    const ct = res.headers.get('Content-Type') ?? '';
    return (ct.includes('json') ? JSON.parse(text) : text) as T;
  }

  GET<P extends PathsWith<'get'>>(path: P, init?: RequestOptions<Operation<P, 'get'>>): Promise<ResponseBody<Operation<P, 'get'>>> {
    return this.request('GET', path, init);
  }
  POST<P extends PathsWith<'post'>>(path: P, init?: RequestOptions<Operation<P, 'post'>>): Promise<ResponseBody<Operation<P, 'post'>>> {
    return this.request('POST', path, init);
  }
  PUT<P extends PathsWith<'put'>>(path: P, init?: RequestOptions<Operation<P, 'put'>>): Promise<ResponseBody<Operation<P, 'put'>>> {
    return this.request('PUT', path, init);
  }
  PATCH<P extends PathsWith<'patch'>>(path: P, init?: RequestOptions<Operation<P, 'patch'>>): Promise<ResponseBody<Operation<P, 'patch'>>> {
    return this.request('PATCH', path, init);
  }
  DELETE<P extends PathsWith<'delete'>>(path: P, init?: RequestOptions<Operation<P, 'delete'>>): Promise<ResponseBody<Operation<P, 'delete'>>> {
    return this.request('DELETE', path, init);
  }

  /** POST /files (multipart field `file`) → the stored file (id, url, thumbnail_url, …). */
  upload(file: Blob, name?: string, signal?: AbortSignal): Promise<FileInfo> {
    const form = new FormData();
    const fname = name ?? ((file as File).name || 'upload');
    form.append('file', file, fname);
    return this.request<FileInfo>('POST', '/api/v1/files', { form, signal });
  }
}
