// The live stream (server-sent events, GET /api/v1/stream), opened once for the whole app and
// shared by every page and widget that shows live values.

const listeners = new Set();
const statusListeners = new Set();
const latest = {};
let source = null;
let online = false;

/** Open the stream (once); readings go to every subscriber. */
export function start() {
  if (source) return;
  source = new EventSource("/api/v1/stream");
  source.addEventListener("reading", (event) => {
    const reading = JSON.parse(event.data);
    latest[reading.load] = reading;
    setOnline(true);
    for (const fn of listeners) fn(reading);
  });
  source.onopen = () => setOnline(true);
  // EventSource retries by itself; the pages only show that the connection is lost meanwhile.
  source.onerror = () => setOnline(false);
}

/** Close the stream (on logout). */
export function stop() {
  source?.close();
  source = null;
  for (const key of Object.keys(latest)) delete latest[key];
  setOnline(false);
}

function setOnline(value) {
  if (value === online) return;
  online = value;
  for (const fn of statusListeners) fn(online);
}

/** Call ``fn(reading)`` for every reading of any load; returns the function that stops it. */
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Call ``fn(online)`` when the stream connects or is lost; returns the function that stops it. */
export function onStatus(fn) {
  statusListeners.add(fn);
  return () => statusListeners.delete(fn);
}

/** The latest reading of ``load`` received (of any load when none is named), or undefined. */
export function latestOf(load) {
  if (load !== undefined && load !== null) return latest[load];
  return Object.values(latest).reduce((a, b) => (a && a.timestamp_s >= b.timestamp_s ? a : b), undefined);
}

/** Whether the stream is connected. */
export function isOnline() {
  return online;
}
