// Calls with the p2p provider: REST for the lifecycle, P2PCall (SDK) for WebRTC over the socket.
import { P2PCall } from '@nerutalk/sdk';
import { S, api, socket, emit, attempt, onCallEvent, openChat, type Call } from './state';

export interface ActiveCall {
  call: Call; status: 'ringing' | 'connecting' | 'connected' | 'ended';
  local?: MediaStream; remote?: MediaStream; p2p?: P2PCall; outgoing: boolean;
}
export let active: ActiveCall | null = null;

function finish() {
  if (!active) return;
  active.status = 'ended';
  active.p2p?.hangUp();
  active.local?.getTracks().forEach((t) => t.stop());
  const was = active;
  emit();
  setTimeout(() => { if (active === was) { active = null; emit(); } }, 4000);
}

function wire(p: P2PCall) {
  p.onRemoteStream((s) => { if (active) { active.remote = s; emit(); } });
  p.onState((st) => {
    if (!active || active.status === 'ended') return;
    if (st === 'connected') active.status = 'connected';
    else if (st === 'failed') return void hangUp();
    else if (st === 'connecting' || st === 'disconnected') active.status = 'connecting';
    emit();
  });
}

function media(kind: string) {
  return navigator.mediaDevices.getUserMedia({ audio: true, video: kind === 'video' });
}

export async function startCall(chatId: string, kind: 'audio' | 'video') {
  if (active && active.status !== 'ended') return;
  await attempt(async () => {
    const local = await media(kind);
    let call: Call;
    try {
      call = await api.POST('/api/v1/calls', { body: { chat_id: chatId, kind } });
    } catch (e) { local.getTracks().forEach((t) => t.stop()); throw e; }
    active = { call, status: 'ringing', local, outgoing: true };
    emit();
  });
}

export async function acceptCall() {
  const call = S.incoming;
  if (!call) return;
  S.incoming = null;
  emit();
  if (S.chats.has(call.chat_id)) openChat(call.chat_id);
  await attempt(async () => {
    const local = await media(call.kind);
    let answered: Call;
    try {
      answered = await api.POST('/api/v1/calls/{id}/answer', { path: { id: call.id } });
    } catch (e) { local.getTracks().forEach((t) => t.stop()); throw e; }
    // Created right after the answer, in the same task: the caller offers only once it learns of it.
    const p2p = new P2PCall(socket, { credentials: answered.credentials ?? null });
    active = { call: answered, status: 'connecting', local, p2p, outgoing: false };
    wire(p2p);
    emit();
    await p2p.accept(call.id, call.initiator_id, local);
  });
}

export async function declineCall() {
  const call = S.incoming;
  if (!call) return;
  S.incoming = null;
  emit();
  await attempt(() => api.POST('/api/v1/calls/{id}/decline', { path: { id: call.id } }));
}

export async function hangUp() {
  if (!active) return;
  const { call, outgoing, status } = active;
  finish();
  if (status === 'ended') return;
  const how = outgoing && status === 'ringing' ? 'end' : 'leave';
  await attempt(() => api.POST(`/api/v1/calls/{id}/${how}`, { path: { id: call.id } }));
}

onCallEvent(async (what, d) => {
  if (!active || d.call?.id !== active.call.id) return;
  if (what === 'ended' || (what === 'declined' && !d.call.group)) return finish();
  if (what === 'answered' && active.outgoing && d.user_id !== S.me?.id && !active.p2p) {
    // The callee answered: offer to that device.
    active.status = 'connecting';
    const p2p = new P2PCall(socket, { credentials: active.call.credentials ?? null });
    active.p2p = p2p;
    wire(p2p);
    emit();
    await attempt(() => p2p.start(active!.call.id, d.user_id, active!.local ?? null, d.session_id));
  }
});
