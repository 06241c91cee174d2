import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

// The API server the dev server proxies to (`npm run dev`).
const api = process.env.NERUTALK_URL ?? 'http://127.0.0.1:8080';

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
  "media-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

export default defineConfig({
  resolve: { alias: { '@nerutalk/sdk': fileURLToPath(new URL('../sdk/src/index.ts', import.meta.url)) } },
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact', legalComments: 'none' },
  // The SDK lives next door (web/sdk): let the dev server read it.
  server: { fs: { allow: ['..'] }, proxy: { '/api': { target: api, ws: true, changeOrigin: false } } },
  plugins: [{
    // `vite preview` answers with the policy internal/webui serves, so CSP mistakes show up before e2e.
    name: 'preview-csp',
    configurePreviewServer(server) {
      server.middlewares.use((_req, res, next) => { res.setHeader('Content-Security-Policy', CSP); next(); });
    },
  }],
  build: {
    outDir: '../../internal/webui/dist',
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: true,
  },
});
