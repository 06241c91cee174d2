// Sharing the own position with a chat: a share plus watchPosition reports.
import { api, emit, attempt } from './state';

export let sharing: { id: string; chatId: string; watch: number } | null = null;

export async function startSharing(chatId: string, durationS: number) {
  if (sharing) return;
  await attempt(async () => {
    if (!('geolocation' in navigator)) throw new Error('This browser cannot tell its location.');
    const share = await api.POST('/api/v1/location/shares', { body: { chat_id: chatId, duration_s: durationS, precision: 'exact' } });
    const watch = navigator.geolocation.watchPosition(
      (p) => {
        attempt(() => api.PUT('/api/v1/location', {
          body: { lat: p.coords.latitude, lng: p.coords.longitude, accuracy_m: Math.min(p.coords.accuracy, 100000), recorded_at: new Date(p.timestamp).toISOString() },
        }));
      },
      (e) => { attempt(() => Promise.reject(new Error('Location unavailable: ' + e.message))); },
      { enableHighAccuracy: true, maximumAge: 5000 },
    );
    sharing = { id: share.id, chatId, watch };
    emit();
    if (share.expires_at) {
      const left = Date.parse(share.expires_at) - Date.now();
      setTimeout(() => { if (sharing?.id === share.id) { navigator.geolocation.clearWatch(watch); sharing = null; emit(); } }, left);
    }
  });
}

export async function stopSharing() {
  if (!sharing) return;
  const s = sharing;
  sharing = null;
  navigator.geolocation.clearWatch(s.watch);
  emit();
  await attempt(() => api.DELETE('/api/v1/location/shares/{id}', { path: { id: s.id } }));
}
