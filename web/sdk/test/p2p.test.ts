import { test } from 'node:test';
import assert from 'node:assert/strict';
import { P2PCall, LocationHelper, iceServersFrom } from '../src/index.ts';
import type { P2PState } from '../src/index.ts';
import { newUser, openSocket, waitFor } from './helpers.ts';

/** Just enough of RTCPeerConnection to drive the signaling: fake SDP, one candidate per side. */
class FakePC {
  static all: FakePC[] = [];
  config: RTCConfiguration;
  localDescription: RTCSessionDescriptionInit | null = null;
  remoteDescription: RTCSessionDescriptionInit | null = null;
  candidates: RTCIceCandidateInit[] = [];
  connectionState: RTCPeerConnectionState = 'new';
  onicecandidate: ((ev: { candidate: { toJSON(): RTCIceCandidateInit } | null }) => void) | null = null;
  ontrack: ((ev: { streams: unknown[]; track: unknown }) => void) | null = null;
  onconnectionstatechange: (() => void) | null = null;
  closed = false;
  constructor(config: RTCConfiguration) {
    this.config = config;
    FakePC.all.push(this);
  }
  addTrack() {}
  addTransceiver() {}
  async createOffer() {
    return { type: 'offer' as const, sdp: 'v=0 fake-offer' };
  }
  async createAnswer() {
    return { type: 'answer' as const, sdp: 'v=0 fake-answer' };
  }
  async setLocalDescription(d: RTCSessionDescriptionInit) {
    this.localDescription = d;
    const cand = { candidate: `candidate:${d.type}`, sdpMid: '0', sdpMLineIndex: 0 };
    setTimeout(() => {
      this.onicecandidate?.({ candidate: { toJSON: () => cand } });
      this.onicecandidate?.({ candidate: null });
    }, 0);
    this.maybeConnected();
  }
  async setRemoteDescription(d: RTCSessionDescriptionInit) {
    this.remoteDescription = d;
    this.ontrack?.({ streams: [{ id: `remote-of-${d.type}` }], track: {} });
    this.maybeConnected();
  }
  async addIceCandidate(c: RTCIceCandidateInit) {
    this.candidates.push(c);
  }
  close() {
    this.closed = true;
  }
  private maybeConnected() {
    if (this.localDescription && this.remoteDescription && this.connectionState !== 'connected') {
      this.connectionState = 'connected';
      this.onconnectionstatechange?.();
    }
  }
}

test('P2PCall: offer, answer and ICE candidates travel between two users through the server', async () => {
  const a = await newUser('ca');
  const b = await newUser('cb');
  const chat = await a.client.POST('/api/v1/chats', { body: { type: 'direct', member_ids: [b.session.user.id] } });
  const sa = await openSocket(a.client);
  const sb = await openSocket(b.client);
  try {
    const ringing = waitFor(sb, 'call_initiated');
    const call = await a.client.POST('/api/v1/calls', { body: { chat_id: chat.id, kind: 'video' } });
    assert.equal(call.provider, 'p2p');
    const ice = iceServersFrom(call.credentials);

    // The callee answers; its P2PCall is made only after the offer arrived (socket.recentSignals keeps it).
    const incoming = await ringing;
    assert.equal(incoming.call.id, call.id);
    const answered = waitFor(sa, 'call_answered', (e) => e.call.id === call.id);
    const mine = await b.client.POST('/api/v1/calls/{id}/answer', { path: { id: call.id } });
    const ev = await answered;

    const callerLeg = new P2PCall(sa, { iceServers: ice, RTCPeerConnection: FakePC as unknown as typeof RTCPeerConnection });
    const callerStates: P2PState[] = [];
    callerLeg.onState((s) => callerStates.push(s));
    const offered = waitFor(sb, 'webrtc_offer', (o) => o.call_id === call.id);
    await callerLeg.start(call.id, b.session.user.id, null, ev.session_id);
    assert.equal((await offered).from_user_id, a.session.user.id);
    const calleeLeg = new P2PCall(sb, { credentials: mine.credentials, RTCPeerConnection: FakePC as unknown as typeof RTCPeerConnection });
    const bothConnected = Promise.all(
      [callerLeg, calleeLeg].map(
        (leg) => new Promise<void>((resolve) => {
          if (leg.state === 'connected') resolve();
          leg.onState((s) => s === 'connected' && resolve());
        }),
      ),
    );
    const remote = new Promise((resolve) => callerLeg.onRemoteStream(resolve));
    await calleeLeg.accept(call.id, a.session.user.id, null);
    await bothConnected;
    assert.ok(await remote);

    const [pcA, pcB] = FakePC.all.slice(-2);
    assert.deepEqual(pcA!.config.iceServers, ice);
    assert.deepEqual(pcB!.config.iceServers, iceServersFrom(mine.credentials));
    assert.ok(ice.length > 0, 'p2p credentials carry ice_servers (NERUTALK_STUN_URLS)');
    assert.equal(pcB!.remoteDescription?.sdp, 'v=0 fake-offer');
    assert.equal(pcA!.remoteDescription?.sdp, 'v=0 fake-answer');
    // Each side got the other's candidate.
    const waitCand = async (pc: FakePC, want: string) => {
      for (let i = 0; i < 100 && !pc.candidates.some((c) => c.candidate === want); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(pc.candidates.some((c) => c.candidate === want), `candidate ${want}`);
    };
    await waitCand(pcA!, 'candidate:answer');
    await waitCand(pcB!, 'candidate:offer');
    assert.deepEqual(callerStates, ['connecting', 'connected']);

    callerLeg.hangUp();
    calleeLeg.hangUp();
    assert.equal(callerLeg.state, 'ended');
    assert.ok(pcA!.closed && pcB!.closed);
  } finally {
    sa.close();
    sb.close();
  }
});

test('LocationHelper: watchPosition → PUT /location, throttled, seen by a viewer', async () => {
  const a = await newUser('la');
  const b = await newUser('lb');
  await a.client.POST('/api/v1/location/shares', { body: { user_id: b.session.user.id, duration_s: 900, precision: 'exact' } });
  const sb = await openSocket(b.client);
  let watcher = null as PositionCallback | null;
  const geo = {
    watchPosition: (ok: PositionCallback) => {
      watcher = ok;
      return 7;
    },
    clearWatch: (id: number) => assert.equal(id, 7),
    getCurrentPosition: () => undefined,
  } as unknown as Geolocation;
  const helper = new LocationHelper(a.client, { geolocation: geo, minIntervalMs: 300 });
  const sent: number[] = [];
  helper.onSent((p) => sent.push(p.lat));
  const errors: unknown[] = [];
  helper.onError((e) => errors.push(e));
  // Each fix a millisecond after the previous one: the server keeps only a fix newer than the one
  // it has (recorded_at strictly greater), and three calls in a row often share Date.now().
  const t0 = Date.now();
  let fixes = 0;
  const pos = (lat: number, lng: number) =>
    ({ coords: { latitude: lat, longitude: lng, accuracy: 8, heading: null, speed: null }, timestamp: t0 + fixes++ }) as unknown as GeolocationPosition;
  try {
    helper.start();
    assert.ok(helper.running && watcher);
    const seen = waitFor(sb, 'shared_location_update', (u) => u.lat > 52.52 && u.lat < 52.53);
    watcher!(pos(52.52, 13.405));
    watcher!(pos(52.5201, 13.405)); // within the interval: replaces nothing yet, queued
    watcher!(pos(52.5202, 13.405)); // the latest wins
    const u = await seen;
    assert.equal(u.user_id, a.session.user.id);
    for (let i = 0; i < 100 && sent.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(sent, [52.52, 52.5202]);
    assert.deepEqual(errors, []);
  } finally {
    helper.stop();
    sb.close();
  }
});
