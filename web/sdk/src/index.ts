// @nerutalk/sdk: the NeruTalk TypeScript SDK (no runtime dependencies).
export { ProblemError } from './problem.ts';
export type { FieldError } from './problem.ts';
export { NeruTalkClient, localStorageStore, memoryStore, SESSION_KEY } from './client.ts';
export type {
  Session,
  TokenStore,
  User,
  FileInfo,
  Schemas,
  ClientOptions,
  Method,
  PathsWith,
  Operation,
  RequestOptions,
  ResponseBody,
} from './client.ts';
export type { paths, components, operations } from './schema.js';
export { RealtimeSocket, newClientId } from './socket.ts';
export type {
  SocketOptions,
  SocketState,
  EventMap,
  EventType,
  EventData,
  ServerEventMap,
  LocalEventMap,
  CommandMap,
  AckMap,
  WsSchemas,
  Message,
  ChatView,
  Frame,
} from './socket.ts';
export { P2PCall, iceServersFrom } from './p2p.ts';
export type { P2PCallOptions, P2PState, Credentials } from './p2p.ts';
export { LocationHelper, formatLatLng, distanceM, fromPosition } from './location.ts';
export type { LocationHelperOptions, PositionReport } from './location.ts';
