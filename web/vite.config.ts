/// <reference types="vitest/config" />
import tailwindcss from "@tailwindcss/vite";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The server the dev proxy forwards to; `STROEM_DEV_SERVER` points it elsewhere.
const target = process.env.STROEM_DEV_SERVER ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react(), tailwindcss()],
  server: {
    proxy: {
      // `ws: true` also forwards the log stream's WebSocket upgrade (/api/jobs/{id}/logs/stream).
      "/api": { target, changeOrigin: true, ws: true },
      "/hooks": { target, changeOrigin: true },
      "/healthz": { target, changeOrigin: true },
    },
  },
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    // The bundle is embedded in the binary; source maps would double its size.
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  test: {
    environment: "jsdom",
    setupFiles: ["./src/test/setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
    css: false,
    // Tests wait on conditions (findBy…, waitFor); this is only the bound after which a test
    // that never gets there fails. Vitest's 5 s default failed healthy tests on a loaded
    // 2-core machine, where rendering the whole run form alone can take seconds.
    testTimeout: 30_000,
  },
});
