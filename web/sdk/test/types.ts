import { NeruTalkClient } from '../src/index.ts';
const c = new NeruTalkClient();
async function f() {
  const chats = await c.GET('/api/v1/chats', { query: { limit: 10 } });
  const n: number = chats.items.length;
  const m = await c.POST('/api/v1/chats/{id}/messages', { path: { id: 'x' }, body: { client_id: 'a', text: 'hi' } });
  const s: number = m.seq;
  const r = await c.POST('/api/v1/chats/{id}/read', { path: { id: 'x' }, body: { seq: 1 } });
  // @ts-expect-error wrong path param
  await c.GET('/api/v1/chats/{id}', { path: { nope: 'x' } });
  // @ts-expect-error no such path
  await c.GET('/api/v1/nope');
  const me = await c.GET('/api/v1/users/me');
  const u: string = me.username;
  return [n, s, r, u];
}
void f;
