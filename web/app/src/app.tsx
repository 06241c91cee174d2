import { useEffect, useRef, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import { formatLatLng } from '@nerutalk/sdk';
import {
  S, client, api, emit, subscribe, start, attempt, problemText, chatTitle, peerId, unread, nameOf, openChat,
  sendText, loadEarlier, markRead, signOut, wsSend, tick as tickOf, type Chat, type Message, type Profile,
} from './state';
import { active, startCall, acceptCall, declineCall, hangUp } from './calls';
import { sharing, startSharing, stopSharing } from './location';

function useStore() {
  const [, set] = useState(0);
  useEffect(() => subscribe(() => set((n) => n + 1)), []);
}

export function App() {
  useStore();
  const [signedIn, setSignedIn] = useState(!!client.session);
  useEffect(() => client.onSessionChange((s) => { if (!s && signedIn) location.reload(); setSignedIn(!!s); }), [signedIn]);
  if (!signedIn) return <SignIn />;
  start();
  return <Main />;
}

function SignIn() {
  const [mode, setMode] = useState<'in' | 'up'>('in');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const v = (k: string) => String(f.get(k) ?? '');
    setBusy(true);
    setErr('');
    try {
      if (mode === 'in') await client.login({ login: v('login'), password: v('password') });
      else await client.register({ username: v('username'), email: v('email'), password: v('password') });
    } catch (x) { setErr(problemText(x)); }
    setBusy(false);
  };
  return (
    <main class="signin">
      <h1>NeruTalk</h1>
      {mode === 'in' ? (
        <form aria-label="Sign in" onSubmit={submit} key="in">
          <Field label="Username or email" name="login" autoComplete="username" />
          <Field label="Password" name="password" type="password" autoComplete="current-password" />
          {err && <p role="alert" class="alert">{err}</p>}
          <button type="submit" class="primary" disabled={busy}>Sign in</button>
          <button type="button" class="link" onClick={() => { setErr(''); setMode('up'); }}>Create an account</button>
        </form>
      ) : (
        <form aria-label="Create account" onSubmit={submit} key="up">
          <Field label="Username" name="username" autoComplete="username" />
          <Field label="Email" name="email" type="email" autoComplete="email" />
          <Field label="Password" name="password" type="password" autoComplete="new-password" />
          {err && <p role="alert" class="alert">{err}</p>}
          <button type="submit" class="primary" disabled={busy}>Register</button>
          <button type="button" class="link" onClick={() => { setErr(''); setMode('in'); }}>I have an account</button>
        </form>
      )}
    </main>
  );
}

function Field(p: { label: string; name: string; type?: string; autoComplete?: string }) {
  const id = 'f-' + p.name;
  return (
    <p class="field">
      <label for={id}>{p.label}</label>
      <input id={id} name={p.name} type={p.type ?? 'text'} autoComplete={p.autoComplete} required />
    </p>
  );
}

const connText: Record<string, string> = { open: 'online', connecting: 'connecting…', closed: 'offline' };

function Main() {
  const [dlg, setDlg] = useState<'' | 'chat' | 'group'>('');
  const chat = S.openChat ? S.chats.get(S.openChat) : undefined;
  return (
    <div class={'shell' + (chat ? ' has-chat' : '')}>
      <header class="top">
        <h1 class="brand">NeruTalk</h1>
        <span class="me">{S.me?.display_name || S.me?.username}</span>
        <span role="status" aria-label="Connection" class={'conn ' + S.conn}>{connText[S.conn] ?? S.conn}</span>
        <button type="button" onClick={signOut}>Sign out</button>
      </header>
      {S.alert && (
        <div role="alert" class="alert bar">
          {S.alert} <button type="button" class="link" onClick={() => { S.alert = ''; emit(); }}>Dismiss</button>
        </div>
      )}
      <main class="body">
      <nav aria-label="Chats" class="list">
        <div class="actions">
          <button type="button" onClick={() => setDlg('chat')}>New chat</button>
          <button type="button" onClick={() => setDlg('group')}>New group</button>
        </div>
        <ChatList />
        <SharedLocations />
      </nav>
      {active && <CallRegion />}
      {chat && <ChatView chat={chat} key={chat.id} />}
      </main>
      {dlg === 'chat' && <NewChat onClose={() => setDlg('')} />}
      {dlg === 'group' && <NewGroup onClose={() => setDlg('')} />}
      {S.incoming && <Incoming />}
    </div>
  );
}

function ChatList() {
  const at = (c: Chat & { created_at?: string }) => c.last_message?.created_at ?? c.created_at ?? '';
  const chats = [...S.chats.values()].sort((a, b) => at(b).localeCompare(at(a)));
  if (!chats.length) return <p class="empty">No chats yet. Start one with “New chat”.</p>;
  return (
    <ul class="chats">
      {chats.map((c) => {
        const n = unread(c);
        return (
          <li key={c.id}>
            <button type="button" class="chat" aria-current={c.id === S.openChat ? 'true' : undefined} onClick={() => openChat(c.id)}>
              <span class="title">{chatTitle(c)}</span>
              <span class="preview">{preview(c.last_message)}</span>
              {n > 0 && <span class="badge" aria-label={`${n} unread`}>{n}</span>}
            </button>
          </li>
        );
      })}
    </ul>
  );
}

function preview(m?: Message | null) {
  if (!m) return '';
  if (m.deleted) return 'Message deleted';
  if (m.kind === 'image') return 'Image';
  return m.text;
}

function SharedLocations() {
  const items = [...S.shared.values()];
  return (
    <section aria-label="Shared locations" class="shared">
      <h2>Shared locations</h2>
      {items.length ? (
        <ul>{items.map((l) => <li key={l.user_id}>{nameOf(l.user_id)}: {formatLatLng(l.lat, l.lng)}</li>)}</ul>
      ) : <p class="empty">Nobody shares a location with you.</p>}
    </section>
  );
}

function lastSeen(iso?: string | null) {
  if (!iso) return 'offline';
  const d = new Date(iso);
  const same = d.toDateString() === new Date().toDateString();
  return 'last seen ' + (same ? 'at ' + d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleString());
}

function ChatView({ chat }: { chat: Chat }) {
  const log = useRef<HTMLDivElement>(null);
  const [share, setShare] = useState(false);
  const msgs = [...(S.msgs.get(chat.id)?.values() ?? [])].sort((a, b) => a.seq - b.seq);
  const pend = S.pending.filter((p) => p.chat_id === chat.id);
  const peer = chat.type === 'direct' ? peerId(chat) : undefined;
  const pres = peer ? S.presence.get(peer) : undefined;
  const typers = [...(S.typing.get(chat.id)?.keys() ?? [])].filter((u) => u !== S.me?.id);
  const count = msgs.length + pend.length;
  useEffect(() => { const el = log.current; if (el) el.scrollTop = el.scrollHeight; }, [count]);
  // A new view: move focus to its heading (screen readers announce the chat; Tab goes on from there),
  // unless the user is typing in a field.
  const head = useRef<HTMLHeadingElement>(null);
  useEffect(() => { if (!document.activeElement?.matches('input, textarea, select')) head.current?.focus(); }, []);
  return (
    <section aria-label="Chat" class="chatview">
      <header class="chathead">
        <button type="button" class="back" onClick={() => openChat(null)}>Back to chats</button>
        <div class="who">
          <h2 ref={head} tabIndex={-1}>{chatTitle(chat)}</h2>
          {peer && <span aria-label="Presence" class="presence">{pres?.online ? 'online' : lastSeen(pres?.last_seen)}</span>}
        </div>
      </header>
      <div class="tools">
        <button type="button" onClick={() => startCall(chat.id, 'video')} disabled={!!active}>Start video call</button>
        <button type="button" onClick={() => startCall(chat.id, 'audio')} disabled={!!active}>Start voice call</button>
        {sharing ? <button type="button" onClick={stopSharing}>Stop sharing</button>
          : <button type="button" onClick={() => setShare(true)}>Share location</button>}
      </div>
      <div role="log" aria-label="Messages" class="log" ref={log} tabIndex={0}>
        {msgs.length > 0 && msgs[0].seq > 1 && <button type="button" class="link" onClick={() => attempt(() => loadEarlier(chat.id))}>Load earlier messages</button>}
        {msgs.map((m) => <Bubble m={m} group={chat.type !== 'direct'} key={m.seq} />)}
        {pend.map((p) => (
          <article class="msg mine" key={p.client_id}>
            <p>{p.text}</p>
            <span class="tick">{p.failed ? 'Not sent' : 'Sending…'}</span>
          </article>
        ))}
      </div>
      <p role="status" aria-label="Typing" class="typing">{typers.length ? `${typers.map(nameOf).join(', ')} ${typers.length > 1 ? 'are' : 'is'} typing…` : ''}</p>
      <Composer chatId={chat.id} />
      {share && <ShareDialog chatId={chat.id} onClose={() => setShare(false)} />}
    </section>
  );
}

function withToken(url: string, t = client.session?.access_token) {
  return t ? url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(t) : url;
}

function Bubble({ m, group }: { m: Message; group: boolean }) {
  const mine = m.sender_id === S.me?.id;
  const [full, setFull] = useState(false);
  // The token is fixed when the message is first shown: a refreshed token must not reload the images.
  const [token] = useState(() => client.session?.access_token);
  const sign = (u: string) => withToken(u, token);
  const time = new Date(m.created_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return (
    <article class={'msg' + (mine ? ' mine' : '') + (m.kind === 'system' ? ' system' : '')}>
      {group && !mine && <span class="from">{nameOf(m.sender_id)}</span>}
      {m.deleted ? <p class="gone">Message deleted</p> : (
        <>
          {(m.attachments ?? []).map((a) => a.kind === 'image' ? (
            <button type="button" class="img" key={a.id} aria-expanded={full} onClick={() => setFull(!full)} aria-label={full ? 'Show thumbnail' : 'Show full image'}>
              <img alt="Image" src={sign(full ? a.url : a.thumbnail_url || a.url)} />
            </button>
          ) : <a key={a.id} href={withToken(a.url)} target="_blank" rel="noopener">{a.name || 'Attachment'}</a>)}
          {m.text && <p>{m.text}</p>}
        </>
      )}
      <span class="meta">
        <time dateTime={m.created_at}>{time}</time>
        {mine && !m.deleted && <Tick m={m} />}
      </span>
    </article>
  );
}

function Tick({ m }: { m: Message }) {
  const t = (() => { try { return tickOf(m); } catch { return 'Sent'; } })();
  return <span class={'tick ' + t.toLowerCase()} aria-label={t} role="img">{t === 'Sent' ? '✓' : '✓✓'}</span>;
}

function Composer({ chatId }: { chatId: string }) {
  const [text, setText] = useState('');
  const file = useRef<HTMLInputElement>(null);
  const typing = useRef({ last: 0, timer: 0 });
  const stopTyping = () => {
    clearTimeout(typing.current.timer);
    if (typing.current.last) { typing.current.last = 0; wsSend('typing_indicator', { chat_id: chatId, typing: false }); }
  };
  useEffect(() => stopTyping, [chatId]);
  const onInput = (v: string) => {
    setText(v);
    const now = Date.now();
    if (v && now - typing.current.last > 3000) { typing.current.last = now; wsSend('typing_indicator', { chat_id: chatId, typing: true }); }
    clearTimeout(typing.current.timer);
    typing.current.timer = window.setTimeout(stopTyping, v ? 4000 : 0);
  };
  const send = () => {
    const t = text.trim();
    if (!t) return;
    setText('');
    stopTyping();
    sendText(chatId, t);
  };
  const pick = async () => {
    const f = file.current?.files?.[0];
    if (!f) return;
    file.current!.value = '';
    await attempt(async () => {
      const info = await client.upload(f, f.name);
      await sendText(chatId, '', [info.id]);
    });
  };
  return (
    <form class="composer" onSubmit={(e) => { e.preventDefault(); send(); }}>
      <button type="button" onClick={() => file.current?.click()}>Attach image</button>
      <input type="file" accept="image/*" aria-label="Image file" class="sr-only" ref={file} onChange={pick} tabIndex={-1} />
      <label for="msg" class="sr-only">Message</label>
      <textarea id="msg" rows={1} value={text} placeholder="Message" onInput={(e) => onInput((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e) => { if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); } }} onFocus={markRead} />
      <button type="submit" class="primary">Send</button>
    </form>
  );
}

/** A modal dialog: focus moves in, Escape closes it, focus returns afterwards. */
function Dialog(p: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current!;
    const back = document.activeElement as HTMLElement | null;
    d.showModal();
    return () => { d.open && d.close(); back?.focus?.(); };
  }, []);
  const id = 'dlg-' + p.title.replace(/\W/g, '');
  return (
    <dialog ref={ref} aria-labelledby={id} onCancel={(e) => { e.preventDefault(); p.onClose(); }} onClose={p.onClose}>
      <h2 id={id}>{p.title}</h2>
      {p.children}
      <button type="button" class="link close" onClick={p.onClose}>Close</button>
    </dialog>
  );
}

function useUserSearch(focus: boolean) {
  const [q, setQ] = useState('');
  const [found, setFound] = useState<Profile[]>([]);
  useEffect(() => {
    if (!q.trim()) { setFound([]); return; }
    const t = setTimeout(() => attempt(async () => {
      const page = await api.GET('/api/v1/users', { query: { q: q.trim(), limit: 20 } });
      setFound((page.items as Profile[]).filter((u) => u.id !== S.me?.id));
    }), 200);
    return () => clearTimeout(t);
  }, [q]);
  const box = (
    <p class="field">
      <label for="user-q">Search users</label>
      <input id="user-q" type="search" autoFocus={focus} value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} autoComplete="off" />
    </p>
  );
  return { box, found };
}

async function created(c: Chat) {
  await attempt(async () => {
    const full = await api.GET('/api/v1/chats', { query: { limit: 200 } }).catch(() => null);
    const item = full?.items?.find((x: Chat) => x.id === c.id);
    S.chats.set(c.id, { ...c, ...item, read_seq: item?.read_seq ?? 0 });
    for (const m of item?.members ?? []) if (m.username) S.users.set(m.user_id, { id: m.user_id, username: m.username, display_name: m.display_name });
    emit();
    await openChat(c.id);
  });
}

function NewChat({ onClose }: { onClose: () => void }) {
  const { box, found } = useUserSearch(true);
  const start = async (u: Profile) => {
    const c = await attempt(() => api.POST('/api/v1/chats', { body: { type: 'direct', member_ids: [u.id] } }));
    if (!c) return;
    S.users.set(u.id, u);
    onClose();
    await created(c);
  };
  return (
    <Dialog title="New chat" onClose={onClose}>
      {box}
      <ul class="results">{found.map((u) => (
        <li key={u.id}><button type="button" aria-label={`Message ${u.username}`} onClick={() => start(u)}>
          Message {u.username}{u.display_name && u.display_name !== u.username ? ` (${u.display_name})` : ''}
        </button></li>
      ))}</ul>
      {S.alert && <p role="alert" class="alert">{S.alert}</p>}
    </Dialog>
  );
}

function NewGroup({ onClose }: { onClose: () => void }) {
  const { box, found } = useUserSearch(false);
  const [title, setTitle] = useState('');
  const [picked, setPicked] = useState<Map<string, Profile>>(new Map());
  const shown = [...picked.values(), ...found.filter((u) => !picked.has(u.id))];
  const toggle = (u: Profile) => { const m = new Map(picked); m.has(u.id) ? m.delete(u.id) : m.set(u.id, u); setPicked(m); };
  const create = async (e: Event) => {
    e.preventDefault();
    const c = await attempt(() => api.POST('/api/v1/chats', { body: { type: 'group', title: title.trim(), member_ids: [...picked.keys()] } }));
    if (!c) return;
    picked.forEach((u) => S.users.set(u.id, u));
    onClose();
    await created(c);
  };
  return (
    <Dialog title="New group" onClose={onClose}>
      <form onSubmit={create}>
        <p class="field">
          <label for="g-title">Group title</label>
          <input id="g-title" autoFocus value={title} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} required />
        </p>
        {box}
        <ul class="results">{shown.map((u) => (
          <li key={u.id}><label class="check"><input type="checkbox" checked={picked.has(u.id)} onChange={() => toggle(u)} />{u.username}</label></li>
        ))}</ul>
        {S.alert && <p role="alert" class="alert">{S.alert}</p>}
        <button type="submit" class="primary">Create group</button>
      </form>
    </Dialog>
  );
}

function ShareDialog({ chatId, onClose }: { chatId: string; onClose: () => void }) {
  const [dur, setDur] = useState('900');
  const go = async (e: Event) => {
    e.preventDefault();
    onClose();
    await attempt(() => startSharing(chatId, Number(dur)));
  };
  return (
    <Dialog title="Share location" onClose={onClose}>
      <form onSubmit={go}>
        <p class="field">
          <label for="dur">Duration</label>
          <select id="dur" autoFocus value={dur} onChange={(e) => setDur((e.target as HTMLSelectElement).value)}>
            <option value="900">15 min</option>
            <option value="3600">1 hour</option>
            <option value="28800">8 hours</option>
          </select>
        </p>
        <button type="submit" class="primary">Start sharing</button>
      </form>
    </Dialog>
  );
}

function Incoming() {
  const c = S.incoming!;
  const chat = S.chats.get(c.chat_id);
  return (
    <Dialog title="Incoming call" onClose={declineCall}>
      <p>{nameOf(c.initiator_id)} is calling{chat && chat.type !== 'direct' ? ` in ${chatTitle(chat)}` : ''} ({c.kind === 'video' ? 'video' : 'voice'}).</p>
      <div class="actions">
        <button type="button" class="primary" autoFocus onClick={acceptCall}>Accept</button>
        <button type="button" class="danger" onClick={declineCall}>Decline</button>
      </div>
    </Dialog>
  );
}

function Video(p: { stream?: MediaStream; label: string; muted?: boolean }) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const v = ref.current;
    if (!v || v.srcObject === (p.stream ?? null)) return;
    v.srcObject = p.stream ?? null;
    if (p.stream) v.play().catch(() => undefined); // autoplay may wait for a gesture: the attribute retries
  }, [p.stream]);
  return <video ref={ref} aria-label={p.label} autoplay playsInline muted={p.muted} />;
}

function CallRegion() {
  const a = active!;
  return (
    <section aria-label="Call" class="call">
      <p role="status" aria-label="Call status" class="callstatus">{a.status}</p>
      <div class="videos">
        <Video stream={a.remote} label="Remote video" />
        <Video stream={a.local} label="Local video" muted />
      </div>
      {a.status !== 'ended' && <button type="button" class="danger" onClick={hangUp}>Hang up</button>}
    </section>
  );
}
