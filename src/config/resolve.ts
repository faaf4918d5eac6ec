import { resolve as resolvePath } from 'node:path'
import { discoverCacheDirs, expandHome, resolveCacheDirs } from './cache-dirs.js'
import { loadConfigFile } from './config-file.js'
import { helpText, versionText } from './help.js'
import {
  DEFAULT_COMPACT_MAX_BYTES, DEFAULT_COMPACT_IMAGES, DEFAULT_COMPACT_MAX_WIDTH, DEFAULT_COMPACT_QUALITY,
  DEFAULT_DATA_IMAGE_MAX_BYTES, DEFAULT_HOST, DEFAULT_INLINE_MAX_BYTES, DEFAULT_KEEPALIVE, DEFAULT_LOG_LEVEL,
  DEFAULT_MODE, DEFAULT_PORT, DEFAULT_SHUTDOWN_GRACE, DEFAULT_STATE_DIR, DEFAULT_STORE_MAX_BYTES, DEFAULT_UPSTREAM,
  configError, expectString, invalid, parseApiKey, parseBoolean, parseBytes, parseCompactImages, parseHost, parseLogLevel, parseMode, parsePort,
  parsePublicUrl, parseQuality, parseSeconds, parseSigningKey, parseUpstream, parseWidth, type Options, type Raw
} from './options.js'
import { machineAddresses, reachesListener, selfUpstreamMessage } from './self-address.js'
import { readEnv, readFlags, type Key, type RawValues } from './sources.js'

/** What the process is started with; passed in so that tests need no real process. */
export interface ResolveInput {
  argv: readonly string[]
  env: Readonly<Record<string, string | undefined>>
  cwd: string
  homedir: string
}

/** What the command line asks for: run the server, or print a text and stop. */
export type Resolved =
  | { kind: 'run', options: Options, warnings: string[] }
  | { kind: 'help', text: string }
  | { kind: 'version', text: string }

/**
 * Merges flags > environment > config file > defaults and validates every value once.
 * Pure apart from reading the config file and checking that cache folders exist.
 * Throws a ConfigError with a one-line message naming the key and the value given.
 */
export function resolveOptions ({ argv, env, cwd, homedir }: ResolveInput): Resolved {
  const flags = readFlags(argv)
  // Before reading anything else, so that help works next to a broken config file.
  if (flags.help) return { kind: 'help', text: helpText() }
  if (flags.version) return { kind: 'version', text: versionText() }

  const fromEnv = readEnv(env)
  const configFile = flags.config ?? fromEnv.config
  const fromFile = configFile === undefined ? {} : loadConfigFile(configFile, cwd, homedir)
  const warnings = fromEnv.unknown.map(name => `unknown environment variable ${name} ignored`)
  const resolved = resolveSources([flags.values, fromEnv.values, fromFile], { env, cwd, homedir })
  return { kind: 'run', options: resolved.options, warnings: [...warnings, ...resolved.warnings] }
}

/** Where relative folders, `~` and hermes' folders are looked up. */
export interface ResolveContext {
  /** Read for HERMES_HOME and XDG_STATE_HOME only. */
  env: Readonly<Record<string, string | undefined>>
  cwd: string
  homedir: string
  /** This machine's addresses, which a wildcard listener answers on; os.networkInterfaces() by default. */
  localAddresses?: readonly string[]
}

/**
 * Validates raw values from several sources, the first that has a key winning, and
 * fills in the defaults. Every option reaches Options through here, whether it came
 * from the command line or from a program that embeds imagegate.
 */
export function resolveSources (sources: readonly RawValues[], { env, cwd, homedir, localAddresses }: ResolveContext): { options: Options, warnings: string[] } {
  const pick = (key: Key): Raw | undefined => sources.map(source => source[key]).find(raw => raw !== undefined)
  const warnings: string[] = []

  const value = <T>(key: Key, parse: (raw: Raw) => T, fallback: () => T): T => {
    const raw = pick(key)
    return raw === undefined ? fallback() : parse(raw)
  }
  let hermesHome: string | undefined
  const discover = (): string[] => {
    const found = discoverCacheDirs(env, cwd, homedir)
    if (found.warning !== undefined) warnings.push(found.warning)
    hermesHome = found.home
    return found.dirs
  }
  // Folders that imagegate creates itself when missing: `~` expanded, relative to cwd.
  // Empty flags and variables never get here, but YAML can say `state-dir: ""`, which
  // would otherwise resolve to cwd itself.
  const folder = (raw: Raw): string => {
    const text = expectString(raw)
    if (text === '') throw invalid(raw.origin, 'must be a folder path', '""')
    return resolvePath(cwd, expandHome(text, homedir))
  }
  const xdgState = env.XDG_STATE_HOME
  const defaultStateDir = (): string => xdgState !== undefined && xdgState.startsWith('/')
    ? resolvePath(xdgState, 'imagegate')
    : resolvePath(cwd, expandHome(DEFAULT_STATE_DIR, homedir))
  const stateDir = value('state-dir', folder, defaultStateDir)
  // In KEYS order, so that with several mistakes the first one reported is predictable.
  const options: Options = {
    upstream: value('upstream', parseUpstream, () => new URL(DEFAULT_UPSTREAM)),
    cacheDirs: value('cache-dir', raw => resolveCacheDirs(raw, cwd, homedir), discover),
    port: value('port', parsePort, () => DEFAULT_PORT),
    host: value('host', parseHost, () => DEFAULT_HOST),
    publicUrl: value('public-url', parsePublicUrl, () => undefined),
    upstreamApiKey: value('upstream-api-key', parseApiKey, () => undefined),
    logLevel: value('log-level', parseLogLevel, () => DEFAULT_LOG_LEVEL),
    signingKey: value('signing-key', parseSigningKey, () => undefined),
    noSigning: value('no-signing', parseBoolean, () => false),
    stateDir,
    allowSvg: value('allow-svg', parseBoolean, () => false),
    shutdownGrace: value('shutdown-grace', parseSeconds, () => DEFAULT_SHUTDOWN_GRACE),
    keepalive: value('keepalive', parseSeconds, () => DEFAULT_KEEPALIVE),
    mode: value('mode', parseMode, () => DEFAULT_MODE),
    inlineMaxBytes: value('inline-max-bytes', parseBytes, () => DEFAULT_INLINE_MAX_BYTES),
    storeDir: value('store-dir', folder, () => resolvePath(stateDir, 'store')),
    dataImageMaxBytes: value('data-image-max-bytes', parseBytes, () => DEFAULT_DATA_IMAGE_MAX_BYTES),
    storeMaxBytes: value('store-max-bytes', parseBytes, () => DEFAULT_STORE_MAX_BYTES),
    compactImages: value('compact-images', parseCompactImages, () => DEFAULT_COMPACT_IMAGES),
    compactQuality: value('compact-quality', parseQuality, () => DEFAULT_COMPACT_QUALITY),
    compactMaxWidth: value('compact-max-width', parseWidth, () => DEFAULT_COMPACT_MAX_WIDTH),
    compactMaxBytes: value('compact-max-bytes', parseBytes, () => DEFAULT_COMPACT_MAX_BYTES),
    dropNamedEvents: value('drop-named-events', parseBoolean, () => false),
    hermesHome
  }
  // Port 0 is chosen only at listen; the server checks again then.
  const listen = { host: options.host, port: options.port }
  if (reachesListener(options.upstream, listen, localAddresses ?? machineAddresses())) {
    // The default upstream (port 8642) and the default port (8090) differ, so at least
    // one of the two was given.
    const given = pick('upstream') ?? pick('port') as Raw
    throw configError(given.origin, selfUpstreamMessage(options.upstream, listen))
  }
  return { options, warnings }
}
