/* Service worker: keeps the app shell (pages, scripts, styles) on the device so the app opens offline.
 *
 * It never touches /api/ requests: answers and screens are personal data and are kept in IndexedDB by
 * the pages themselves, and API calls must fail visibly when offline so the answer queue takes over.
 */
"use strict";
const VERSION = "__SHELL_VERSION__";
const CACHE = "ld-shell-" + VERSION;
const SHELL = "__SHELL_URLS__";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("ld-shell-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || !url.pathname.startsWith("/app/")) return;
  // Network first, so a connected tablet always runs the current release; the cached shell when offline.
  // Pages are matched without their query string: one shell serves every screen.
  event.respondWith(
    fetch(event.request).catch(() =>
      caches.open(CACHE).then((c) =>
        c.match(event.request).then((hit) => hit || c.match(event.request, { ignoreSearch: true }))
      ).then((hit) => hit || new Response("Offline, and this page is not stored on this device.", {
        status: 503, headers: { "Content-Type": "text/plain; charset=utf-8" },
      }))
    )
  );
});
