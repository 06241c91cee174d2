// Sharing the own position with a chat: a share (POST /location/shares) plus the SDK's
// LocationHelper (watchPosition → PUT /location, throttled).
import { LocationHelper } from '@nerutalk/sdk';
import { api, client, emit, attempt, showError } from './state';

export let sharing: { id: string; chatId: string; helper: LocationHelper; timer?: number } | null = null;

export async function startSharing(chatId: string, durationS: number) {
  if (sharing) return;
  await attempt(async () => {
    if (!('geolocation' in navigator)) throw new Error('This browser cannot tell its location.');
    const share = await api.POST('/api/v1/location/shares', { body: { chat_id: chatId, duration_s: durationS, precision: 'exact' } });
    const helper = new LocationHelper(client, { minIntervalMs: 2000 });
    helper.onError((e) => {
      // A position that is momentarily unavailable is retried by watchPosition; only a refusal is final.
      if (e instanceof GeolocationPositionError) {
        if (e.code === e.PERMISSION_DENIED) { showError(new Error('Location permission denied: sharing stopped.')); stopSharing(); }
        return;
      }
      showError(e);
    });
    helper.start();
    sharing = { id: share.id, chatId, helper };
    if (share.expires_at) {
      const s = sharing;
      s.timer = window.setTimeout(() => { if (sharing === s) end(); }, Date.parse(share.expires_at) - Date.now());
    }
    emit();
  });
}

function end() {
  if (!sharing) return null;
  const s = sharing;
  sharing = null;
  s.helper.stop();
  clearTimeout(s.timer);
  emit();
  return s;
}

export async function stopSharing() {
  const s = end();
  if (s) await attempt(() => api.DELETE('/api/v1/location/shares/{id}', { path: { id: s.id } }));
}
