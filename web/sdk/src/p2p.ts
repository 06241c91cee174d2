import type { Schemas } from './client.ts';
import type { RealtimeSocket, WsSchemas } from './socket.ts';

export type Credentials = Schemas['Credentials'];
type Signal = WsSchemas['Signal'];

export type P2PState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'ended';

export interface P2PCallOptions {
  /** ICE servers, usually iceServersFrom(credentials) of POST /calls, answer, join or token. */
  iceServers?: RTCIceServer[];
  /** The credentials of the call (their ice_servers are used when iceServers is not given). */
  credentials?: Credentials | null;
  /** The RTCPeerConnection constructor (default: the global one). */
  RTCPeerConnection?: typeof RTCPeerConnection;
}

/** The RTCIceServer list of p2p credentials. */
export function iceServersFrom(c: Credentials | null | undefined): RTCIceServer[] {
  return (c?.ice_servers ?? []).map((s) => ({
    urls: s.urls ?? [],
    ...(s.username ? { username: s.username } : {}),
    ...(s.credential ? { credential: s.credential } : {}),
  }));
}

/**
 * One peer-to-peer call leg (provider `p2p`): an RTCPeerConnection whose offer, answer and ICE
 * candidates travel as webrtc_offer / webrtc_answer / webrtc_ice_candidate frames over the socket.
 *
 * Caller: POST /calls → wait for `call_answered` {user_id, session_id} → new P2PCall(socket, {credentials})
 *   → start(call.id, user_id, localStream, session_id).
 * Callee: on `call_initiated`, create the P2PCall first (it buffers an early offer), POST /calls/{id}/answer,
 *   then accept(call.id, caller_user_id, localStream).
 * Both: hangUp() (and POST /calls/{id}/leave or /end); a `call_ended` event should call hangUp().
 */
export class P2PCall {
  private readonly socket: RealtimeSocket;
  private iceServers: RTCIceServer[];
  private readonly PC: typeof RTCPeerConnection;
  private pc: RTCPeerConnection | null = null;
  private callId = '';
  private peerUserId = '';
  private peerSessionId: string | undefined;
  private remoteSet = false;
  private earlyCandidates: RTCIceCandidateInit[] = [];
  private buffered: Signal[] = [];
  private offs: (() => void)[] = [];
  private _state: P2PState = 'new';
  private stateListeners = new Set<(s: P2PState) => void>();
  private streamListeners = new Set<(s: MediaStream) => void>();
  private remote: MediaStream | null = null;

  constructor(socket: RealtimeSocket, opts: P2PCallOptions = {}) {
    this.socket = socket;
    this.iceServers = opts.iceServers ?? iceServersFrom(opts.credentials);
    const PC = opts.RTCPeerConnection ?? (globalThis as { RTCPeerConnection?: typeof RTCPeerConnection }).RTCPeerConnection;
    if (!PC) throw new Error('nerutalk: RTCPeerConnection is not available');
    this.PC = PC;
    // Signals that came before this P2PCall existed, then listen at once: an offer may come
    // before accept() (the caller is quick). handle() keeps only those of this call and peer.
    for (const f of socket.recentSignals()) this.buffered.push({ ...(f.data as Signal), __type: f.type } as Signal);
    for (const t of ['webrtc_offer', 'webrtc_answer', 'webrtc_ice_candidate'] as const) {
      this.offs.push(socket.on(t, (d) => this.onSignal(t, d as Signal)));
    }
  }

  get state(): P2PState {
    return this._state;
  }

  /** The remote stream, once a track arrived. */
  get remoteStream(): MediaStream | null {
    return this.remote;
  }

  onState(cb: (s: P2PState) => void): () => void {
    this.stateListeners.add(cb);
    return () => void this.stateListeners.delete(cb);
  }

  onRemoteStream(cb: (s: MediaStream) => void): () => void {
    this.streamListeners.add(cb);
    if (this.remote) cb(this.remote);
    return () => void this.streamListeners.delete(cb);
  }

  private setState(s: P2PState): void {
    if (this._state === s || this._state === 'ended') return;
    this._state = s;
    for (const l of [...this.stateListeners]) l(s);
  }

  private setup(callId: string, peerUserId: string, local: MediaStream | null, peerSessionId?: string): RTCPeerConnection {
    if (this.pc) throw new Error('nerutalk: call already started');
    this.callId = callId;
    this.peerUserId = peerUserId;
    this.peerSessionId = peerSessionId;
    const pc = new this.PC({ iceServers: this.iceServers });
    this.pc = pc;
    this.setState('connecting');
    if (local) for (const track of local.getTracks()) pc.addTrack(track, local);
    pc.onicecandidate = (ev) => {
      if (!ev.candidate) return;
      this.signal('webrtc_ice_candidate', { candidate: ev.candidate.toJSON() });
    };
    pc.ontrack = (ev) => {
      const stream = ev.streams[0] ?? this.remote ?? new MediaStream();
      if (!ev.streams[0]) stream.addTrack(ev.track);
      if (this.remote !== stream) {
        this.remote = stream;
        for (const l of [...this.streamListeners]) l(stream);
      }
    };
    pc.onconnectionstatechange = () => {
      const s = pc.connectionState;
      if (s === 'connected') this.setState('connected');
      else if (s === 'disconnected') this.setState('disconnected');
      else if (s === 'failed') this.setState('failed');
      else if (s === 'connecting' || s === 'new') this.setState('connecting');
    };
    return pc;
  }

  private signal(type: 'webrtc_offer' | 'webrtc_answer' | 'webrtc_ice_candidate', extra: { sdp?: string; candidate?: unknown }): void {
    const data = {
      call_id: this.callId,
      to_user_id: this.peerUserId,
      ...(this.peerSessionId ? { to_session_id: this.peerSessionId } : {}),
      ...extra,
    };
    this.socket.request(type, data).catch((e: unknown) => {
      if (type !== 'webrtc_ice_candidate') console.warn(`nerutalk: ${type} failed:`, e);
    });
  }

  /** Caller: offers to the callee (toSessionId: the session_id of call_answered, so only that device gets it). */
  async start(callId: string, toUserId: string, localStream: MediaStream | null, toSessionId?: string): Promise<void> {
    const pc = this.setup(callId, toUserId, localStream, toSessionId);
    if (!localStream) {
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
    }
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.signal('webrtc_offer', { sdp: pc.localDescription?.sdp ?? offer.sdp ?? '' });
    this.replay();
  }

  /**
   * Callee: answers the caller's offer (now, or when it comes). iceServers: those of the answer's
   * credentials (iceServersFrom(answer.credentials)), when the P2PCall was made before the answer.
   */
  async accept(callId: string, fromUserId: string, localStream: MediaStream | null, iceServers?: RTCIceServer[]): Promise<void> {
    if (iceServers) this.iceServers = iceServers;
    this.setup(callId, fromUserId, localStream);
    this.replay();
  }

  private replay(): void {
    const b = this.buffered;
    this.buffered = [];
    for (const s of b) void this.handle(s);
  }

  private onSignal(type: string, d: Signal): void {
    const s = { ...d, __type: type } as Signal & { __type: string };
    if (!this.pc) {
      this.buffered.push(s);
      return;
    }
    if (d.call_id !== this.callId) return;
    void this.handle(s);
  }

  private async handle(s: Signal & { __type?: string }): Promise<void> {
    const pc = this.pc;
    if (!pc || s.call_id !== this.callId || this._state === 'ended') return;
    if (s.from_user_id !== this.peerUserId) return;
    try {
      switch (s.__type) {
        case 'webrtc_offer': {
          // Answer the device that offered.
          if (s.from_session_id) this.peerSessionId = s.from_session_id;
          await pc.setRemoteDescription({ type: 'offer', sdp: s.sdp ?? '' });
          await this.flushCandidates();
          const answer = await pc.createAnswer();
          await pc.setLocalDescription(answer);
          this.signal('webrtc_answer', { sdp: pc.localDescription?.sdp ?? answer.sdp ?? '' });
          break;
        }
        case 'webrtc_answer':
          if (s.from_session_id) this.peerSessionId = s.from_session_id;
          await pc.setRemoteDescription({ type: 'answer', sdp: s.sdp ?? '' });
          await this.flushCandidates();
          break;
        case 'webrtc_ice_candidate':
          if (!s.candidate) break;
          if (!this.remoteSet) this.earlyCandidates.push(s.candidate as RTCIceCandidateInit);
          else await pc.addIceCandidate(s.candidate as RTCIceCandidateInit);
          break;
      }
    } catch (e) {
      console.warn('nerutalk: signaling failed:', e);
    }
  }

  private async flushCandidates(): Promise<void> {
    this.remoteSet = true;
    const c = this.earlyCandidates;
    this.earlyCandidates = [];
    for (const x of c) await this.pc?.addIceCandidate(x).catch(() => undefined);
  }

  /** Closes the peer connection and stops listening (the REST leave/end is the app's). */
  hangUp(): void {
    for (const off of this.offs) off();
    this.offs = [];
    this.pc?.close();
    this.setState('ended');
  }
}
