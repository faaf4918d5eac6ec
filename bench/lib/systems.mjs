/**
 * Starts each system under test in its own process and stops it again. Every child is
 * tracked, so whatever way the benchmark ends, it leaves no process of its own behind.
 */
import { execFileSync, fork, spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { sleep } from './clock.mjs'
import { listeningPort } from './proc.mjs'

const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
export const ROOT = path.dirname(BENCH_DIR)
const START_TIMEOUT_MS = 15_000
const STOP_TIMEOUT_MS = 5_000
const PROBE_TIMEOUT_MS = 3_000
const PROBE = pathToFileURL(path.join(BENCH_DIR, 'lib', 'heap-probe.mjs')).href

const children = new Set()
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

function track (child, name) {
  children.add(child)
  let output = ''
  const keep = (data) => { output = (output + data).slice(-4000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    children.delete(child)
    resolve({ code, signal })
  }))
  return { child, name, exited, output: () => output }
}

/** Waits for the port a child reports over IPC or, failing that, the one it listens on. */
async function portOf (handle) {
  const { child } = handle
  let reported
  child.on('message', (message) => { if (typeof message?.port === 'number') reported = message.port })
  let exited = false
  handle.exited.then(() => { exited = true })
  const deadline = Date.now() + START_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${handle.name} exited while starting:\n${handle.output()}`)
    const port = reported ?? listeningPort(child.pid)
    if (port !== undefined) return port
    await sleep(50)
  }
  throw new Error(`${handle.name} did not listen within ${START_TIMEOUT_MS} ms:\n${handle.output()}`)
}

async function stop (handle, signal = 'SIGTERM') {
  if (handle.child.exitCode !== null || handle.child.signalCode !== null) return
  handle.child.kill(signal)
  const timeout = sleep(STOP_TIMEOUT_MS).then(() => 'timeout')
  if (await Promise.race([handle.exited, timeout]) === 'timeout') {
    handle.child.kill('SIGKILL')
    await handle.exited
  }
}

/**
 * Node flags and environment that preload bench/lib/heap-probe.mjs, which reports GC
 * pauses and heap spaces to `probeDir` on SIGUSR2; none without a `probeDir`.
 */
function probeSetup (probeDir) {
  if (probeDir === undefined) return { flags: [], env: process.env }
  return { flags: ['--import', PROBE], env: { ...process.env, BENCH_PROBE_DIR: probeDir } }
}

/**
 * Asks a process started with the probe for its GC counts and heap spaces, after two
 * full collections with `fullGc`. SIGUSR2 would end a Node process that has no handler
 * for it, so there is no probe without a `probeDir`.
 */
async function readProbe (pid, probeDir, { fullGc = false } = {}) {
  const file = path.join(probeDir, `probe-${pid}.json`)
  fs.rmSync(file, { force: true })
  if (fullGc) fs.writeFileSync(path.join(probeDir, `gc-${pid}`), '')
  process.kill(pid, 'SIGUSR2')
  const deadline = Date.now() + PROBE_TIMEOUT_MS
  while (Date.now() < deadline) {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8'))
    } catch {}
    await sleep(10)
  }
  throw new Error(`process ${pid} did not answer the heap probe within ${PROBE_TIMEOUT_MS} ms`)
}

function system (name, handle, port, probeDir) {
  return {
    name,
    pid: handle.child.pid,
    origin: `http://127.0.0.1:${port}`,
    child: handle.child,
    probe: probeDir === undefined ? undefined : (options) => readProbe(handle.child.pid, probeDir, options),
    stop: (signal) => stop(handle, signal)
  }
}

const forkOptions = { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] }

export async function startMock (imagePath) {
  const handle = track(fork(path.join(BENCH_DIR, 'mock-upstream.mjs'), [imagePath], forkOptions), 'mock upstream')
  return system('direct', handle, await portOf(handle))
}

export async function startFastifyProxy (upstreamOrigin, { probeDir } = {}) {
  const probe = probeSetup(probeDir)
  const handle = track(fork(path.join(BENCH_DIR, 'fastify-proxy.mjs'), [upstreamOrigin], { ...forkOptions, execArgv: probe.flags, env: probe.env }), '@fastify/http-proxy')
  return system('fastify', handle, await portOf(handle), probeDir)
}

export async function startFloorProxy (upstreamOrigin, { probeDir } = {}) {
  const probe = probeSetup(probeDir)
  const handle = track(fork(path.join(BENCH_DIR, 'floor-proxy.mjs'), [upstreamOrigin], { ...forkOptions, execArgv: probe.flags, env: probe.env }), 'floor proxy')
  return system('floor', handle, await portOf(handle), probeDir)
}

export async function startLoadGenerator () {
  const child = fork(path.join(BENCH_DIR, 'load.mjs'), [], { ...forkOptions, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const handle = track(child, 'load generator')
  await new Promise((resolve, reject) => {
    child.once('message', resolve)
    handle.exited.then(() => reject(new Error('load generator exited while starting')))
  })
  let next = 0
  const waiting = new Map()
  child.on('message', ({ id, result, error }) => {
    const entry = waiting.get(id)
    if (entry === undefined) return
    waiting.delete(id)
    if (error !== undefined) entry.reject(new Error(error))
    else entry.resolve(result)
  })
  handle.exited.then(() => {
    for (const entry of waiting.values()) entry.reject(new Error('load generator exited'))
  })
  return {
    pid: child.pid,
    call: (type, args) => new Promise((resolve, reject) => {
      const id = next++
      waiting.set(id, { resolve, reject })
      child.send({ id, type, args })
    }),
    stop: () => stop(handle)
  }
}

/**
 * imagegate as users start it: `node dist/cli.js …` at log level warn (the port is read
 * from /proc). If this build's CLI cannot start, the programmatic API is used instead
 * and the returned `via` says so.
 */
/**
 * The Node flags `npm start` runs imagegate with (`node <flags> dist/cli.js`), which the
 * container image passes too: the benchmark measures imagegate as it is run.
 */
export function startFlags () {
  const start = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.start.split(' ')
  return start.slice(1, start.indexOf('dist/cli.js'))
}

export async function startImagegate ({ upstreamBase, cacheDir, stateDir, nodeFlags = [], probeDir }) {
  // The state folder holds the generated signing key (and the store of decoded data:
  // images): one inside the bench's temporary folder, so no run touches the user's, and
  // every imagegate of a run signs with the same key.
  const flags = ['--upstream', upstreamBase, '--cache-dir', cacheDir, '--state-dir', stateDir, '--port', '0', '--log-level', 'warn']
  const probe = probeSetup(probeDir)
  const node = [...startFlags(), ...probe.flags, ...nodeFlags]
  const handle = track(spawn(process.execPath, [...node, 'dist/cli.js', ...flags], { cwd: ROOT, env: probe.env, stdio: ['ignore', 'pipe', 'pipe'] }), 'imagegate (dist/cli.js)')
  try {
    return { ...system('imagegate', handle, await portOf(handle), probeDir), via: 'dist/cli.js' }
  } catch (err) {
    await stop(handle, 'SIGKILL')
    console.warn(`imagegate CLI did not start, using startServer() instead: ${err.message.split('\n')[0]}`)
  }
  const fallback = track(fork(path.join(BENCH_DIR, 'imagegate-server.mjs'), flags, { ...forkOptions, execArgv: node, env: probe.env }), 'imagegate (startServer)')
  return { ...system('imagegate', fallback, await portOf(fallback), probeDir), via: 'startServer()' }
}

/** An unused loopback port, for servers that cannot listen on port 0 and report it. */
function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** The nginx binary, installing Debian's nginx-light when running as root; else undefined. */
export function findNginx () {
  const candidates = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']
  const found = () => candidates.find((file) => fs.existsSync(file))
  if (found() !== undefined) return { path: found() }
  if (process.getuid?.() !== 0) return { skipped: 'nginx is not installed and the benchmark is not root: install nginx-light to get the nginx column' }
  console.log('nginx not found: apt-get install -y nginx-light')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  try {
    execFileSync('apt-get', ['install', '-y', 'nginx-light'], { stdio: 'inherit', env })
  } catch {
    try {
      execFileSync('apt-get', ['update'], { stdio: 'inherit', env })
      execFileSync('apt-get', ['install', '-y', 'nginx-light'], { stdio: 'inherit', env })
    } catch {}
  }
  return found() === undefined ? { skipped: 'nginx is not installed and `apt-get install -y nginx-light` failed' } : { path: found() }
}

/**
 * nginx as a streaming reverse proxy for the chat path and a static server for the
 * same image folder, one worker (one process doing the work, like each Node process).
 */
function nginxConfig ({ dir, port, upstreamOrigin, cacheDir }) {
  const upstream = new URL(upstreamOrigin)
  return `daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events {
  worker_connections 8192;
}
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  types {
    image/png png;
  }
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  upstream agent {
    server ${upstream.hostname}:${upstream.port};
    keepalive 1024;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location /images/ {
      alias ${cacheDir}/;
    }
    location / {
      proxy_pass http://agent;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
`
}

export async function startNginx ({ binary, dir, upstreamOrigin, cacheDir }) {
  fs.mkdirSync(dir, { recursive: true })
  const port = await freePort()
  const config = path.join(dir, 'nginx.conf')
  fs.writeFileSync(config, nginxConfig({ dir, port, upstreamOrigin, cacheDir }))
  const handle = track(spawn(binary, ['-p', dir, '-c', config, '-e', path.join(dir, 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'] }), 'nginx')
  const listening = await portOf(handle)
  if (listening !== port) throw new Error(`nginx listens on ${listening}, expected ${port}`)
  return system('nginx', handle, port)
}
