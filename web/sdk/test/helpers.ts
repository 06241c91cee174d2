import { NeruTalkClient, memoryStore, RealtimeSocket } from '../src/index.ts';
import type { EventType, EventData, Session } from '../src/index.ts';

export const BASE = process.env['NERUTALK_URL'] ?? 'http://127.0.0.1:8080';

let n = 0;
export function uniq(prefix: string): string {
  n++;
  return `${prefix}${Date.now().toString(36)}${n}${Math.floor(Math.random() * 1e6).toString(36)}`.slice(0, 30);
}

/** A client whose fetch counts the calls per path. */
export function newClient(): { client: NeruTalkClient; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const counting: typeof fetch = (input, init) => {
    const u = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    calls.set(u.pathname, (calls.get(u.pathname) ?? 0) + 1);
    return fetch(input, init);
  };
  const client = new NeruTalkClient({ baseUrl: BASE, store: memoryStore(), fetch: counting });
  return { client, calls };
}

export async function newUser(name = 'u'): Promise<{ client: NeruTalkClient; calls: Map<string, number>; session: Session; password: string }> {
  const { client, calls } = newClient();
  const username = uniq(name);
  const password = 'correct horse battery staple';
  const session = await client.register({ username, email: `${username}@example.com`, password, display_name: username });
  return { client, calls, session, password };
}

/** Resolves with the first event of type that matches pred (rejects after ms). */
export function waitFor<T extends EventType>(
  sock: RealtimeSocket,
  type: T,
  pred: (d: EventData<T>) => boolean = () => true,
  ms = 10_000,
): Promise<EventData<T>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${String(type)} event within ${ms} ms`));
    }, ms);
    const off = sock.on(type, (d) => {
      if (!pred(d)) return;
      clearTimeout(timer);
      off();
      resolve(d);
    });
  });
}

export function waitState(sock: RealtimeSocket, state: RealtimeSocket['state'], ms = 10_000): Promise<void> {
  if (sock.state === state) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`socket not ${state} within ${ms} ms (is ${sock.state})`));
    }, ms);
    const off = sock.onState((s) => {
      if (s !== state) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

/** A socket of the client, open and resynced once. */
export async function openSocket(client: NeruTalkClient): Promise<RealtimeSocket> {
  const sock = new RealtimeSocket(client, { backoff: { minMs: 50, maxMs: 500 }, timeoutMs: 10_000, heartbeatMs: 0 });
  const synced = waitFor(sock, 'resynced');
  sock.connect();
  await synced;
  return sock;
}
