#!/usr/bin/env node
// @ts-check
// The demo pool app: the contract every pool image must honour (README "How it works", `app/`).
// Zero dependencies so the same file runs in the host's container and as a local process.
'use strict';

const http = require('node:http');

const POOLS = ['blue', 'green'];
const CHAOS_MODES = ['error', 'timeout'];
/** The /slow/ route's wait when no ms is given, and the longest it waits. */
const SLOW_DEFAULT_MS = 3000;
const SLOW_MAX_MS = 60_000;

/**
 * @typedef {{ pool: string, release: string, port: number, host: string, faultRate?: number, delayMs?: number, failHealthz?: boolean, startDelayMs?: number }} AppConfig
 * @typedef {{ mode: 'error' | 'timeout' | null, since: string | null }} ChaosState
 */

/**
 * Reads and validates the app's configuration; throws with the variable's name when it is wrong.
 * @param {NodeJS.ProcessEnv} env
 * @returns {AppConfig}
 */
function configFromEnv(env) {
  const pool = env.APP_POOL ?? 'blue';
  if (!POOLS.includes(pool)) {
    throw new Error(`APP_POOL must be one of ${POOLS.join('|')}, got "${pool}"`);
  }
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be an integer 0-65535, got "${env.PORT}"`);
  }
  // A bad release on purpose (releases, rollback tests): that share of ordinary requests fails.
  const faultText = env.FAULT_RATE ?? '';
  const faultRate = faultText === '' ? 0 : Number(faultText);
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(faultText || '0') || faultRate > 1) {
    throw new Error(`FAULT_RATE must be a number from 0 to 1 (share of requests answered 500), got "${env.FAULT_RATE}"`);
  }
  // A slow release on purpose (the latency gate's tests): ordinary requests answer this much later.
  const delayText = env.DELAY_MS ?? '';
  const delayMs = delayText === '' ? 0 : Number(delayText);
  if (!/^\d{1,6}$/.test(delayText || '0') || delayMs > 600000) {
    throw new Error(`DELAY_MS must be a whole number of milliseconds from 0 to 600000, got "${env.DELAY_MS}"`);
  }
  // A slow start on purpose (the gate's start period): /healthz and every ordinary request answer 503
  // for this long after the start.
  const startText = env.START_DELAY_MS ?? '';
  const startDelayMs = startText === '' ? 0 : Number(startText);
  if (!/^\d{1,6}$/.test(startText || '0') || startDelayMs > 600000) {
    throw new Error(`START_DELAY_MS must be a whole number of milliseconds from 0 to 600000, got "${env.START_DELAY_MS}"`);
  }
  const failText = env.FAIL_HEALTHZ ?? '';
  if (!['', '0', '1'].includes(failText)) {
    throw new Error(`FAIL_HEALTHZ must be 1 (/healthz answers 503) or 0, got "${env.FAIL_HEALTHZ}"`);
  }
  return {
    pool,
    release: env.RELEASE_ID ?? `${pool}-dev`,
    port,
    host: env.HOST ?? '0.0.0.0',
    faultRate,
    delayMs,
    failHealthz: failText === '1',
    startDelayMs,
  };
}

/**
 * @param {AppConfig} config
 * @param {{ random?: () => number }} [options] random: where fault decisions come from (tests seed it)
 * @returns {http.Server & { drain: (done: () => void) => void }}
 */
function createApp(config, options = {}) {
  const random = options.random ?? Math.random;
  const faultRate = config.faultRate ?? 0;
  /** @type {ChaosState} */
  const chaos = { mode: null, since: null };
  /** Requests held open by timeout chaos; released when chaos stops or the server closes. */
  /** @type {Set<http.ServerResponse>} */
  const held = new Set();
  const startedAt = Date.now();

  /**
   * @param {http.ServerResponse} res
   * @param {number} status
   * @param {unknown} body
   */
  function sendJson(res, status, body) {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
      'X-App-Pool': config.pool,
      'X-Release-Id': config.release,
    });
    res.end(text);
  }

  /**
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   * @param {URL} url
   */
  function handleChaos(req, res, url) {
    if (req.method !== 'POST') {
      return sendJson(res, 405, { error: 'method not allowed', allowed: 'POST' });
    }
    if (url.pathname === '/chaos/start') {
      const mode = url.searchParams.get('mode') ?? 'error';
      if (mode !== 'error' && mode !== 'timeout') {
        return sendJson(res, 400, { error: `mode must be one of ${CHAOS_MODES.join('|')}`, got: mode });
      }
      chaos.mode = mode;
      chaos.since = new Date().toISOString();
      return sendJson(res, 200, { pool: config.pool, chaos: chaos.mode, since: chaos.since });
    }
    if (url.pathname === '/chaos/stop') {
      chaos.mode = null;
      chaos.since = null;
      releaseHeld();
      return sendJson(res, 200, { pool: config.pool, chaos: null });
    }
    return sendJson(res, 404, { error: 'not found' });
  }

  function releaseHeld() {
    for (const res of held) res.destroy();
    held.clear();
  }

  /** Requests being answered: a graceful stop lets them finish (the pool's drain). */
  /** @type {Set<http.ServerResponse>} */
  const inFlight = new Set();
  let stopping = false;

  const server = http.createServer((req, res) => {
    inFlight.add(res);
    res.on('close', () => inFlight.delete(res));
    // Stopping: this connection closes after its answer, so the process can exit once it is sent.
    if (stopping) res.shouldKeepAlive = false;
    const url = new URL(req.url ?? '/', 'http://app.invalid');
    // Chaos endpoints always answer, whatever mode is on: they are how an operator ends chaos.
    if (url.pathname === '/chaos' || url.pathname.startsWith('/chaos/')) {
      return handleChaos(req, res, url);
    }
    if (chaos.mode === 'error') {
      return sendJson(res, 500, { error: 'chaos: simulated failure', pool: config.pool });
    }
    if (chaos.mode === 'timeout') {
      // Hold the request open without answering; the proxy's read timeout is what ends it.
      held.add(res);
      res.on('close', () => held.delete(res));
      return;
    }
    const startingMs = (config.startDelayMs ?? 0) - (Date.now() - startedAt);
    if (startingMs > 0) {
      return sendJson(res, 503, { status: 'starting', pool: config.pool, readyInMs: startingMs });
    }
    if (url.pathname === '/healthz') {
      if (config.failHealthz) return sendJson(res, 503, { status: 'failing', pool: config.pool, reason: 'FAIL_HEALTHZ=1' });
      return sendJson(res, 200, { status: 'ok', pool: config.pool });
    }
    if (config.delayMs && config.delayMs > 0) {
      // /healthz above stays fast: a slow release is still healthy, only the latency gate sees it.
      setTimeout(() => answer(res, url), config.delayMs);
      return;
    }
    return answer(res, url);
  });

  /**
   * An ordinary request (not chaos, not /healthz), answered now or after DELAY_MS.
   * @param {http.ServerResponse} res
   * @param {URL} url
   */
  function answer(res, url) {
    // Drawn only when a rate is set, so a healthy app consumes no randomness.
    if (faultRate > 0 && random() < faultRate) {
      return sendJson(res, 500, { error: 'injected fault (FAULT_RATE)', pool: config.pool, release: config.release });
    }
    if (url.pathname === '/version') {
      return sendJson(res, 200, {
        pool: config.pool,
        release: config.release,
        uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
        node: process.version,
        faultRate,
        delayMs: config.delayMs ?? 0,
        failHealthz: Boolean(config.failHealthz),
      });
    }
    if (url.pathname === '/') {
      return sendJson(res, 200, { pool: config.pool, release: config.release, message: 'hello from bluegreen' });
    }
    // A legitimately slow route (a report, an upload): /slow/<anything>?ms=N answers after N ms
    // (default 3000, at most SLOW_MAX_MS), for trying SLOW_PATHS. A client that goes away ends the wait.
    if (url.pathname.startsWith('/slow/')) {
      const msText = url.searchParams.get('ms') ?? String(SLOW_DEFAULT_MS);
      const ms = Number(msText);
      if (!/^\d{1,6}$/.test(msText) || ms > SLOW_MAX_MS) {
        return sendJson(res, 400, { error: `ms must be a whole number of milliseconds 0-${SLOW_MAX_MS}`, got: msText });
      }
      const timer = setTimeout(() => sendJson(res, 200, { pool: config.pool, release: config.release, path: url.pathname, waitedMs: ms }), ms);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    return sendJson(res, 404, { error: 'not found', path: url.pathname });
  }
  // Keep-alive longer than the proxy's idle keepalive so nginx, not the app, closes idle connections
  // (an app closing first races with a request nginx is sending on that connection).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.on('close', releaseHeld);

  /**
   * A graceful stop: no new connections, idle keep-alive connections closed, requests in flight
   * answered (each connection closes after its answer), requests held by timeout chaos dropped (they
   * never end); `done` once the last connection is gone. No deadline of its own: whoever stops the
   * pool gives it one (Docker's stop_grace_period, the pool's drain; local mode's supervisor).
   * @param {() => void} done
   */
  function drain(done) {
    stopping = true;
    releaseHeld();
    for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
    server.close(() => done());
    server.closeIdleConnections();
  }
  return Object.assign(server, { drain });
}

function main() {
  const config = configFromEnv(process.env);
  const server = createApp(config);
  server.listen(config.port, config.host, () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    process.stdout.write(
      `${JSON.stringify({ msg: 'listening', pool: config.pool, release: config.release, port, faultRate: config.faultRate, failHealthz: config.failHealthz })}\n`,
    );
  });
  // Graceful (a release recreates a pool this way): requests in flight are answered, then exit. The
  // drain's deadline is the stopper's: Docker's stop_grace_period (`bluegreen release --drain`).
  const stop = () => server.drain(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`pool app: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
}

module.exports = { createApp, configFromEnv };
