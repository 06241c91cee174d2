// TEMPORARY stand-in for @nerutalk/sdk (web/sdk/src) until the web-sdk branch is merged.
// Follows the public API fixed in WEB.md; removed once the real SDK lands.
/* eslint-disable @typescript-eslint/no-explicit-any */
export class ProblemError extends Error {
  status: number; code: string; title: string; detail: string;
  errors?: { location?: string; message: string }[];
  constructor(b: any, status = 0) {
    super(b?.detail || b?.title || 'error');
    this.status = b?.status ?? status; this.code = b?.code ?? ''; this.title = b?.title ?? '';
    this.detail = b?.detail ?? ''; this.errors = b?.errors;
  }
}
export interface User { id: string; username: string; display_name: string; email?: string }
export interface Session { access_token: string; refresh_token: string; expires_in: number; user: User }
export interface TokenStore { load(): Session | null; save(s: Session | null): void }
const KEY = 'nerutalk.session';
const local: TokenStore = {
  load() { try { return JSON.parse(localStorage.getItem(KEY) || 'null'); } catch { return null; } },
  save(s) { if (s) localStorage.setItem(KEY, JSON.stringify(s)); else localStorage.removeItem(KEY); },
};
type Init = { path?: Record<string, string>; query?: Record<string, unknown>; body?: unknown };
export class NeruTalkClient {
  private base: string; private store: TokenStore; private s: Session | null; private subs = new Set<(s: Session | null) => void>();
  private refreshing: Promise<string> | null = null; private exp = 0;
  constructor(opts: { baseUrl?: string; store?: TokenStore } = {}) {
    this.base = opts.baseUrl ?? ''; this.store = opts.store ?? local; this.s = this.store.load();
    this.exp = this.s ? Date.now() + 30_000 : 0;
  }
  get session() { return this.s; }
  onSessionChange(cb: (s: Session | null) => void) { this.subs.add(cb); return () => { this.subs.delete(cb); }; }
  private set(s: Session | null) { this.s = s; this.exp = s ? Date.now() + s.expires_in * 1000 : 0; this.store.save(s); this.subs.forEach((f) => f(s)); }
  private async raw(method: string, path: string, body?: unknown, token?: string, form?: FormData) {
    const h: Record<string, string> = {};
    if (token) h.Authorization = 'Bearer ' + token;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const r = await fetch(this.base + path, { method, headers: h, body: form ?? (body === undefined ? undefined : JSON.stringify(body)) });
    const t = await r.text(); const j = t ? JSON.parse(t) : undefined;
    if (!r.ok) throw new ProblemError(j, r.status);
    return j;
  }
  async register(b: any) { const s = await this.raw('POST', '/api/v1/auth/register', b); this.set(s); return s as Session; }
  async login(b: any) { const s = await this.raw('POST', '/api/v1/auth/login', b); this.set(s); return s as Session; }
  async logout() { const s = this.s; this.set(null); if (s) await this.raw('POST', '/api/v1/auth/logout', { refresh_token: s.refresh_token }).catch(() => {}); }
  async accessToken(): Promise<string> {
    if (!this.s) throw new ProblemError({ status: 401, title: 'Unauthorized', detail: 'signed out' }, 401);
    if (Date.now() < this.exp - 20_000) return this.s.access_token;
    if (!this.refreshing) {
      const rt = this.s.refresh_token;
      this.refreshing = this.raw('POST', '/api/v1/auth/refresh', { refresh_token: rt })
        .then((s) => { this.set(s); return s.access_token; })
        .catch((e) => { if (e.status === 401) this.set(null); throw e; })
        .finally(() => { this.refreshing = null; });
    }
    return this.refreshing;
  }
  private async call(method: string, p: string, init: Init = {}) {
    let path = p.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(init.path?.[k] ?? ''));
    const q = Object.entries(init.query ?? {}).filter(([, v]) => v !== undefined && v !== '');
    if (q.length) path += '?' + new URLSearchParams(q.map(([k, v]) => [k, String(v)])).toString();
    return this.raw(method, path, init.body, await this.accessToken());
  }
  GET(p: string, i?: Init): Promise<any> { return this.call('GET', p, i); }
  POST(p: string, i?: Init): Promise<any> { return this.call('POST', p, i); }
  PUT(p: string, i?: Init): Promise<any> { return this.call('PUT', p, i); }
  PATCH(p: string, i?: Init): Promise<any> { return this.call('PATCH', p, i); }
  DELETE(p: string, i?: Init): Promise<any> { return this.call('DELETE', p, i); }
  async upload(file: Blob, name?: string): Promise<any> {
    const f = new FormData(); f.append('file', file, name ?? 'file');
    return this.raw('POST', '/api/v1/files', undefined, await this.accessToken(), f);
  }
}
type State = 'connecting' | 'open' | 'closed';
export class RealtimeSocket {
  private ws: WebSocket | null = null; private n = 0; private pend = new Map<string, [(v: any) => void, (e: any) => void]>();
  private cbs = new Map<string, Set<(d: any) => void>>(); private st = new Set<(s: State) => void>();
  private want = false; private tries = 0; state: State = 'closed';
  constructor(private client: NeruTalkClient) {}
  private setState(s: State) { this.state = s; this.st.forEach((f) => f(s)); }
  onState(cb: (s: State) => void) { this.st.add(cb); return () => { this.st.delete(cb); }; }
  on(type: string, cb: (d: any) => void) { let s = this.cbs.get(type); if (!s) this.cbs.set(type, (s = new Set())); s.add(cb); return () => { s!.delete(cb); }; }
  private emit(t: string, d: any) { this.cbs.get(t)?.forEach((f) => f(d)); this.cbs.get('*')?.forEach((f) => f({ type: t, data: d })); }
  connect() { this.want = true; this.dial(); }
  private async dial() {
    if (!this.want) return;
    this.setState('connecting');
    let tok: string;
    try { tok = await this.client.accessToken(); } catch { return this.retry(); }
    const u = new URL('/api/v1/ws', location.href); u.protocol = u.protocol.replace('http', 'ws'); u.searchParams.set('token', tok);
    const ws = (this.ws = new WebSocket(u));
    ws.onopen = () => { this.tries = 0; this.setState('open'); this.emit('resynced', {}); };
    ws.onmessage = (ev) => {
      const f = JSON.parse(ev.data);
      if (f.id && this.pend.has(f.id)) { const [ok, ko] = this.pend.get(f.id)!; this.pend.delete(f.id); f.type === 'error' ? ko(new ProblemError(f.data)) : ok(f.data); return; }
      this.emit(f.type, f.data);
    };
    ws.onclose = () => { this.ws = null; this.pend.forEach(([, ko]) => ko(new ProblemError({ detail: 'connection lost' }))); this.pend.clear(); this.retry(); };
  }
  private retry() { this.setState(this.want ? 'connecting' : 'closed'); if (!this.want) return; const d = Math.random() * Math.min(30000, 500 * 2 ** this.tries++); setTimeout(() => this.dial(), d); }
  close() { this.want = false; this.ws?.close(); this.setState('closed'); }
  request(type: string, data: unknown): Promise<unknown> {
    return new Promise((ok, ko) => {
      if (!this.ws || this.ws.readyState !== 1) return ko(new ProblemError({ detail: 'not connected' }));
      const id = 'c' + ++this.n; this.pend.set(id, [ok, ko]); this.ws.send(JSON.stringify({ type, id, data }));
    });
  }
  send(type: string, data: unknown) { if (this.ws?.readyState === 1) this.ws.send(JSON.stringify({ type, data })); }
  trackSeq(_c: string, _s: number) {}
}
export class P2PCall {
  private pc: RTCPeerConnection; private remote = new Set<(s: MediaStream) => void>(); private sts = new Set<(s: string) => void>();
  private off: (() => void)[] = []; private callId = ''; private peer = '';
  constructor(private socket: RealtimeSocket, iceServers: RTCIceServer[] = []) {
    this.pc = new RTCPeerConnection({ iceServers });
    this.pc.ontrack = (e) => this.remote.forEach((f) => f(e.streams[0]));
    this.pc.onconnectionstatechange = () => this.sts.forEach((f) => f(this.pc.connectionState));
    this.pc.onicecandidate = (e) => { if (e.candidate) this.socket.send('webrtc_ice_candidate', { call_id: this.callId, to_user_id: this.peer, candidate: e.candidate.toJSON() }); };
    this.off.push(socket.on('webrtc_ice_candidate', (d) => { if (d.call_id === this.callId) this.pc.addIceCandidate(d.candidate).catch(() => {}); }));
    this.off.push(socket.on('webrtc_answer', (d) => { if (d.call_id === this.callId) this.pc.setRemoteDescription({ type: 'answer', sdp: d.sdp }); }));
    this.off.push(socket.on('webrtc_offer', async (d) => {
      if (d.call_id !== this.callId) return;
      await this.pc.setRemoteDescription({ type: 'offer', sdp: d.sdp });
      const a = await this.pc.createAnswer(); await this.pc.setLocalDescription(a);
      this.socket.send('webrtc_answer', { call_id: this.callId, to_user_id: d.from_user_id, sdp: a.sdp });
    }));
  }
  onRemoteStream(cb: (s: MediaStream) => void) { this.remote.add(cb); }
  onState(cb: (s: string) => void) { this.sts.add(cb); }
  async start(callId: string, toUserId: string, local: MediaStream) {
    this.callId = callId; this.peer = toUserId; local.getTracks().forEach((t) => this.pc.addTrack(t, local));
    const o = await this.pc.createOffer(); await this.pc.setLocalDescription(o);
    this.socket.send('webrtc_offer', { call_id: callId, to_user_id: toUserId, sdp: o.sdp });
  }
  accept(callId: string, fromUserId: string, local: MediaStream) { this.callId = callId; this.peer = fromUserId; local.getTracks().forEach((t) => this.pc.addTrack(t, local)); }
  hangUp() { this.off.forEach((f) => f()); this.pc.close(); }
}
export function formatLatLng(lat: number, lng: number) { return lat.toFixed(5) + ', ' + lng.toFixed(5); }
