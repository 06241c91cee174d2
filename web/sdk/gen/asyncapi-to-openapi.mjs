// Turns web/sdk/asyncapi.json (the server's AsyncAPI 3.0 document of the WebSocket) into a small
// OpenAPI 3.1 document whose components.schemas are the AsyncAPI schemas plus three maps:
//   EventMap   event type   -> its data    (server -> client frames without id)
//   CommandMap command type -> its data    (client -> server)
//   AckMap     command type -> its ack data
// so openapi-typescript can generate src/ws-schema.d.ts from it. Usage: node gen/asyncapi-to-openapi.mjs IN OUT
import { readFileSync, writeFileSync } from 'node:fs';

const [inPath, outPath] = process.argv.slice(2);
const doc = JSON.parse(readFileSync(inPath, 'utf8'));
const schemas = { ...doc.components.schemas };
const maps = { EventMap: {}, CommandMap: {}, AckMap: {} };
const prefix = { 'event.': 'EventMap', 'command.': 'CommandMap', 'ack.': 'AckMap' };
for (const [key, msg] of Object.entries(doc.components.messages).sort(([a], [b]) => a.localeCompare(b))) {
  const p = Object.keys(prefix).find((x) => key.startsWith(x));
  if (!p) continue;
  const name = key.slice(p.length);
  const data = msg.payload?.properties?.data ?? { type: 'object', additionalProperties: false };
  maps[prefix[p]][name] = { ...data, ...(msg.summary ? { description: msg.summary } : {}) };
}
for (const [name, props] of Object.entries(maps)) {
  schemas[name] = { type: 'object', properties: props, required: Object.keys(props) };
}
const out = {
  openapi: '3.1.0',
  info: { title: doc.info?.title ?? 'WebSocket', version: doc.info?.version ?? 'dev' },
  paths: {},
  components: { schemas },
};
writeFileSync(outPath, JSON.stringify(out, null, 2) + '\n');
