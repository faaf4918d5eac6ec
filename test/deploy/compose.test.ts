// docker-compose.yml checked against imagegate's real options and the Dockerfile: the
// three addresses (browser, Open WebUI and imagegate each reaching the next) must agree.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import { parse } from 'yaml'
import { resolveOptions } from '../../src/config/resolve.js'
import { KEYS, envName } from '../../src/config/sources.js'
import { envOf, parseDockerfile } from '../fixtures/dockerfile.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8')

interface Service {
  image?: string
  build?: string
  command?: unknown
  environment?: Record<string, unknown> | string[]
  ports?: string[]
  volumes?: string[]
  extra_hosts?: string[]
  depends_on?: string[] | Record<string, unknown>
  init?: boolean
  stop_grace_period?: string
}
interface Compose { services: Record<string, Service>, volumes?: Record<string, unknown> }

const compose = parse(read('docker-compose.yml')) as Compose
const imagegate = compose.services.imagegate as Service
const webui = compose.services['open-webui'] as Service

/** A service's environment as a record, from either of compose's two spellings. */
function environment (service: Service): Record<string, string> {
  const env = service.environment ?? {}
  if (Array.isArray(env)) return Object.fromEntries(env.map((item) => [item.slice(0, item.indexOf('=')), item.slice(item.indexOf('=') + 1)]))
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, String(value)]))
}

/**
 * `source:target[:mode]` of a short-syntax volume, read from the right: the source may
 * hold colons of its own (`${HERMES_HOME:-~/.hermes}`), the target is an absolute path.
 */
function mount (entry: string): { source: string, target: string, mode: string | undefined } {
  const match = /^(.+):(\/[^:]*)(?::(ro|rw))?$/.exec(entry)
  if (match === null) throw new Error(`not a volume: ${entry}`)
  return { source: match[1] as string, target: match[2] as string, mode: match[3] }
}

/** `[ip:]host:container` of a short-syntax port. */
function port (entry: string): { ip: string | undefined, host: number, container: number } {
  const parts = entry.split(':')
  const container = Number(parts.at(-1))
  const host = Number(parts.at(-2))
  return { ip: parts.length === 3 ? parts[0] : undefined, host, container }
}

const command = imagegate.command as string[]
const flagValue = (flag: string): string | undefined => {
  const at = command.indexOf(flag)
  return at === -1 ? undefined : command[at + 1]
}
const dockerfileEnv = Object.assign({}, ...parseDockerfile(read('Dockerfile')).filter((i) => i.keyword === 'ENV').map((i) => envOf(i.args))) as Record<string, string>

/** The agent's home inside the container, where the compose file mounts its cache. */
const CONTAINER_HERMES_HOME = environment(imagegate).HERMES_HOME ?? ''

/**
 * The options imagegate starts with in its container: the image's environment, the
 * service's, and the command's flags, with the agent's home (which exists only in the
 * container) swapped for a temp folder laid out as hermes lays out its own.
 */
function containerOptions (t: Test): { resolved: ReturnType<typeof resolveOptions>, home: string } {
  const home = path.join(t.testdir({
    hermes: {
      cache: { images: {}, screenshots: {}, audio: {}, documents: {} },
      profiles: { work: { cache: { images: {}, audio: {} } } }
    }
  }), 'hermes')
  const env = { ...dockerfileEnv, ...environment(imagegate), HERMES_HOME: home }
  return { resolved: resolveOptions({ argv: command, env, cwd: home, homedir: '/home/node' }), home }
}

/** A compose duration (`15s`, `1m30s`) in seconds. */
function seconds (duration: string | undefined): number {
  const match = /^(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(duration ?? '')
  if (match === null || duration === '') throw new Error(`not a duration: ${String(duration)}`)
  return Number(match[1] ?? 0) * 60 + Number(match[2] ?? 0)
}

t.test('two services: the official Open WebUI image, and imagegate built from here', async t => {
  t.same(Object.keys(compose.services).sort(), ['imagegate', 'open-webui'], 'open-webui and imagegate')
  t.equal(webui.image, 'ghcr.io/open-webui/open-webui:main', 'Open WebUI\'s official image')
  t.equal(imagegate.build, '.', 'imagegate from this folder\'s Dockerfile')
  const dependsOn = Array.isArray(webui.depends_on) ? webui.depends_on : Object.keys(webui.depends_on ?? {})
  t.same(dependsOn, ['imagegate'], 'Open WebUI starts after imagegate')
})

t.test('every flag passed to imagegate is a real flag, and imagegate starts with them', async t => {
  t.ok(Array.isArray(command) && command.every((arg) => typeof arg === 'string'), 'command is a list of words (no shell)')
  const flags = command.filter((arg) => arg.startsWith('--'))
  t.same(flags, ['--upstream', '--public-url'], 'the agent\'s address and the browser\'s; the cache folders are found, not named')
  for (const flag of flags) t.ok((KEYS as readonly string[]).includes(flag.slice(2)), `${flag} is a key imagegate knows`)
  for (const name of Object.keys(environment(imagegate)).filter((key) => key.startsWith('IMAGEGATE_'))) {
    t.ok(KEYS.some((key) => envName(key) === name), `${name} is a key imagegate knows`)
  }
  const { resolved } = containerOptions(t)
  t.equal(resolved.kind, 'run', 'the options resolve')
  if (resolved.kind !== 'run') return
  t.same(resolved.warnings, [], 'without warnings')
  t.equal(resolved.options.host, '0.0.0.0', 'listening on every interface of the container (from the image)')
  t.equal(resolved.options.upstream.href, 'http://host.docker.internal:8642/v1', 'the agent on the host, at its default port')
})

t.test('imagegate reaches the agent on the host', async t => {
  const upstream = new URL(flagValue('--upstream') ?? '')
  t.equal(upstream.hostname, 'host.docker.internal', 'the host as seen from a container')
  t.ok((imagegate.extra_hosts ?? []).includes('host.docker.internal:host-gateway'), 'a name Linux engines resolve only with extra_hosts')
})

t.test('the agent\'s cache folders, and only those, are mounted read-only where imagegate looks', async t => {
  t.equal(CONTAINER_HERMES_HOME, '/hermes', 'HERMES_HOME=/hermes in the container')
  t.notOk(command.includes('--cache-dir'), 'no --cache-dir: imagegate discovers the folders under HERMES_HOME')
  const mounts = (imagegate.volumes ?? []).map(mount)
  const cache = mounts.filter((m) => m.target === `${CONTAINER_HERMES_HOME}/cache`)
  t.equal(cache.length, 1, 'one mount at /hermes/cache')
  t.equal(cache[0]?.mode, 'ro', 'read-only: imagegate only reads the cache')
  /* eslint-disable no-template-curly-in-string -- Compose's own variable syntax, as the file holds it */
  t.equal(cache[0]?.source, '${HERMES_HOME:-~/.hermes}/cache', 'the cache of the agent\'s home, ~/.hermes unless HERMES_HOME says otherwise')
  t.notOk(mounts.some((m) => m.target === CONTAINER_HERMES_HOME || m.source === '${HERMES_HOME:-~/.hermes}'), 'not the whole home, whose .env holds API keys')
  /* eslint-enable no-template-curly-in-string */
  // How to avoid Docker making a missing host folder as root, which the agent then
  // cannot write into: the file says so where the mount is.
  const text = read('docker-compose.yml')
  t.match(text, /mkdir -p ~\/\.hermes\/cache/, 'the compose file says to create the cache folder first')
  t.match(text, /# - \$\{HERMES_HOME:-~\/\.hermes\}\/profiles\/\w+\/cache:\/hermes\/profiles\/\w+\/cache:ro/, 'and shows the line that mounts a profile\'s cache')

  const { resolved, home } = containerOptions(t)
  if (resolved.kind !== 'run') throw new Error('options do not resolve')
  t.same(resolved.options.cacheDirs, [
    path.join(home, 'cache/images'), path.join(home, 'cache/screenshots'), path.join(home, 'cache/audio'), path.join(home, 'cache/documents'),
    path.join(home, 'profiles/work/cache/images'), path.join(home, 'profiles/work/cache/audio')
  ], 'imagegate finds images, screenshots, audio and documents in the cache, and in each mounted profile\'s')
})

t.test('stopping: an init forwards SIGTERM, and the engine waits longer than imagegate\'s grace', async t => {
  t.equal(imagegate.init, true, 'init: true, so PID 1 forwards signals and reaps children')
  const { resolved } = containerOptions(t)
  if (resolved.kind !== 'run') throw new Error('options do not resolve')
  const grace = resolved.options.shutdownGrace
  t.ok(seconds(imagegate.stop_grace_period) > grace, `stop_grace_period ${String(imagegate.stop_grace_period)} is longer than the ${grace} s imagegate gives running streams`)
})

t.test('Open WebUI reaches imagegate by its service name and port', async t => {
  const { resolved } = containerOptions(t)
  if (resolved.kind !== 'run') throw new Error('options do not resolve')
  const env = environment(webui)
  const base = new URL(env.OPENAI_API_BASE_URL ?? '')
  t.equal(base.hostname, 'imagegate', 'the service name, not localhost')
  t.equal(Number(base.port), resolved.options.port, 'the port imagegate listens on')
  t.equal(base.pathname, '/v1', 'with /v1, as for any OpenAI base URL')
  // eslint-disable-next-line no-template-curly-in-string -- Compose's own variable syntax, as the file holds it
  t.equal(env.OPENAI_API_KEY, '${OPENAI_API_KEY}', 'the key comes from the environment, not the file')
})

t.test('the browser reaches imagegate at --public-url, through the published port', async t => {
  const { resolved } = containerOptions(t)
  if (resolved.kind !== 'run') throw new Error('options do not resolve')
  const published = (imagegate.ports ?? []).map(port).filter((p) => p.container === resolved.options.port)
  t.equal(published.length, 1, 'the listening port is published once')
  const publicUrl = new URL(resolved.options.publicUrl ?? '')
  t.equal(Number(publicUrl.port), published[0]?.host, '--public-url uses the published host port')
  t.equal(publicUrl.hostname, 'localhost', 'on this machine')
  t.ok(published[0]?.ip === undefined || published[0].ip === '127.0.0.1', 'published where localhost reaches it')
})

t.test('state lives in named volumes', async t => {
  const declared = Object.keys(compose.volumes ?? {})
  const named = Object.values(compose.services)
    .flatMap((service) => (service.volumes ?? []).map(mount))
    .filter((m) => /^[a-z0-9][a-z0-9_.-]*$/i.test(m.source))
  t.same(named.map((m) => m.source).sort(), [...declared].sort(), 'every named volume is declared, and used')
  const stateDir = dockerfileEnv[envName('state-dir')]
  t.ok((imagegate.volumes ?? []).map(mount).some((m) => declared.includes(m.source) && m.target === stateDir), 'imagegate\'s state folder (the signing key) is a named volume')
  t.ok((webui.volumes ?? []).map(mount).some((m) => declared.includes(m.source) && m.target === '/app/backend/data'), 'Open WebUI\'s data is a named volume')
})

// Debian's docker-compose (1.29) reads the file as the engine's client would, with no
// daemon: variables, ~ and the long and short syntaxes are its to resolve, not ours.
const noCompose = spawnSync('sh', ['-c', 'command -v docker-compose'], { stdio: 'ignore' }).status !== 0

t.test('docker-compose config accepts the file and resolves its variables', { skip: noCompose ? 'docker-compose is not installed' : false }, async t => {
  const config = (env: Record<string, string>): { status: number | null, stderr: string, parsed: Compose } => {
    const result = spawnSync('docker-compose', ['--file', 'docker-compose.yml', 'config'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', OPENAI_API_KEY: 'sk-from-the-environment', ...env }
    })
    return { status: result.status, stderr: result.stderr, parsed: parse(result.stdout) as Compose }
  }
  const home = t.testdir({ hermes: { cache: { images: {} } }, user: {} })
  const given = config({ HOME: path.join(home, 'user'), HERMES_HOME: path.join(home, 'hermes') })
  t.equal(given.status, 0, 'valid')
  t.equal(given.stderr, '', 'without warnings')
  const service = given.parsed.services.imagegate as Service
  t.ok((service.volumes ?? []).includes(`${path.join(home, 'hermes')}/cache:/hermes/cache:ro`), 'HERMES_HOME\'s cache, read-only')
  t.equal(service.init, true, 'init')
  t.equal(service.stop_grace_period, imagegate.stop_grace_period, 'stop_grace_period')
  t.equal(environment(service).HERMES_HOME, '/hermes', 'HERMES_HOME inside the container')
  t.equal(environment(given.parsed.services['open-webui'] as Service).OPENAI_API_KEY, 'sk-from-the-environment', 'the key from the environment')

  const unset = config({ HOME: path.join(home, 'user') })
  t.equal(unset.status, 0, 'valid without HERMES_HOME')
  t.ok(((unset.parsed.services.imagegate as Service).volumes ?? []).includes(`${path.join(home, 'user')}/.hermes/cache:/hermes/cache:ro`), '~/.hermes/cache of the user running compose')
})
