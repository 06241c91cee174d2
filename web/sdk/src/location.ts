import type { NeruTalkClient, Schemas } from './client.ts';

/** "52.52000, 13.40500": latitude and longitude with 5 decimals (about a metre). */
export function formatLatLng(lat: number, lng: number): string {
  return `${lat.toFixed(5)}, ${lng.toFixed(5)}`;
}

export type PositionReport = Schemas['PositionReport'];

export interface LocationHelperOptions {
  /** At most one PUT /location per this many ms (default 5 s); the latest position is sent when it ends. */
  minIntervalMs?: number;
  /** Skip positions closer than this to the last one sent, unless maxSilenceMs passed (default 5 m). */
  minDistanceM?: number;
  /** Send anyway after this long without a report (default 60 s), so shares stay fresh. */
  maxSilenceMs?: number;
  /** The geolocation to watch (default navigator.geolocation). */
  geolocation?: Geolocation;
  /** Options of watchPosition (default high accuracy, maximumAge 5 s). */
  positionOptions?: PositionOptions;
}

/** Distance in metres between two points (haversine). */
export function distanceM(aLat: number, aLng: number, bLat: number, bLng: number): number {
  const R = 6_371_000;
  const rad = Math.PI / 180;
  const dLat = (bLat - aLat) * rad;
  const dLng = (bLng - aLng) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(aLat * rad) * Math.cos(bLat * rad) * Math.sin(dLng / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
}

/**
 * Reports the device's position while it runs: navigator.geolocation.watchPosition → PUT /location,
 * throttled (at most one report per minIntervalMs, the latest position wins; tiny moves skipped).
 */
export class LocationHelper {
  private readonly client: NeruTalkClient;
  private readonly o: Required<Omit<LocationHelperOptions, 'geolocation'>> & { geolocation?: Geolocation };
  private watchId: number | null = null;
  private last: { lat: number; lng: number; at: number } | null = null;
  private queued: PositionReport | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight = false;
  private errorListeners = new Set<(e: unknown) => void>();
  private sentListeners = new Set<(p: PositionReport) => void>();

  constructor(client: NeruTalkClient, opts: LocationHelperOptions = {}) {
    this.client = client;
    this.o = {
      minIntervalMs: opts.minIntervalMs ?? 5_000,
      minDistanceM: opts.minDistanceM ?? 5,
      maxSilenceMs: opts.maxSilenceMs ?? 60_000,
      positionOptions: opts.positionOptions ?? { enableHighAccuracy: true, maximumAge: 5_000 },
      ...(opts.geolocation ? { geolocation: opts.geolocation } : {}),
    };
  }

  get running(): boolean {
    return this.watchId !== null;
  }

  /** Errors of geolocation (GeolocationPositionError) and of the reports (ProblemError). */
  onError(cb: (e: unknown) => void): () => void {
    this.errorListeners.add(cb);
    return () => void this.errorListeners.delete(cb);
  }

  /** Every report the server accepted. */
  onSent(cb: (p: PositionReport) => void): () => void {
    this.sentListeners.add(cb);
    return () => void this.sentListeners.delete(cb);
  }

  start(): void {
    if (this.watchId !== null) return;
    const geo = this.o.geolocation ?? (typeof navigator !== 'undefined' ? navigator.geolocation : undefined);
    if (!geo) {
      this.fail(new Error('geolocation is not available'));
      return;
    }
    this.watchId = geo.watchPosition(
      (pos) => this.report(fromPosition(pos)),
      (err) => this.fail(err),
      this.o.positionOptions,
    );
  }

  stop(): void {
    if (this.watchId !== null) {
      const geo = this.o.geolocation ?? navigator.geolocation;
      geo.clearWatch(this.watchId);
    }
    this.watchId = null;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queued = null;
  }

  /** Feeds one position (watchPosition does it; call it yourself for other sources). */
  report(p: PositionReport): void {
    const now = Date.now();
    if (this.last && now - this.last.at < this.o.maxSilenceMs && distanceM(this.last.lat, this.last.lng, p.lat, p.lng) < this.o.minDistanceM) {
      return;
    }
    this.queued = p;
    this.pump();
  }

  private pump(): void {
    if (this.inFlight || !this.queued || this.timer !== undefined) return;
    const wait = this.last ? this.last.at + this.o.minIntervalMs - Date.now() : 0;
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, wait);
      return;
    }
    const p = this.queued;
    this.queued = null;
    this.inFlight = true;
    this.last = { lat: p.lat, lng: p.lng, at: Date.now() };
    this.client
      .PUT('/api/v1/location', { body: p })
      .then(() => {
        for (const l of [...this.sentListeners]) l(p);
      })
      .catch((e: unknown) => this.fail(e))
      .finally(() => {
        this.inFlight = false;
        this.pump();
      });
  }

  private fail(e: unknown): void {
    for (const l of [...this.errorListeners]) l(e);
  }
}

/** The body of PUT /location from a GeolocationPosition (null fields left out). */
export function fromPosition(pos: GeolocationPosition): PositionReport {
  const c = pos.coords;
  const r: PositionReport = { lat: c.latitude, lng: c.longitude };
  if (Number.isFinite(c.accuracy)) r.accuracy_m = c.accuracy;
  if (c.heading !== null && Number.isFinite(c.heading)) r.heading = c.heading;
  if (c.speed !== null && Number.isFinite(c.speed)) r.speed = c.speed;
  if (Number.isFinite(pos.timestamp)) r.recorded_at = new Date(pos.timestamp).toISOString();
  return r;
}
