import { discoverCacheDirs, resolveCacheDirs } from './cache-dirs.js'
import { loadConfigFile } from './config-file.js'
import { helpText, versionText } from './help.js'
import {
  DEFAULT_HOST, DEFAULT_LOG_LEVEL, DEFAULT_PORT, DEFAULT_UPSTREAM,
  parseApiKey, parseHost, parseLogLevel, parsePort, parsePublicUrl, parseUpstream, type Options, type Raw
} from './options.js'
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
  const sources: RawValues[] = [flags.values, fromEnv.values, fromFile]
  const pick = (key: Key): Raw | undefined => sources.map(source => source[key]).find(raw => raw !== undefined)
  const warnings = fromEnv.unknown.map(name => `unknown environment variable ${name} ignored`)

  const value = <T>(key: Key, parse: (raw: Raw) => T, fallback: () => T): T => {
    const raw = pick(key)
    return raw === undefined ? fallback() : parse(raw)
  }
  const discover = (): string[] => {
    const found = discoverCacheDirs(env, cwd, homedir)
    if (found.warning !== undefined) warnings.push(found.warning)
    return found.dirs
  }
  // In KEYS order, so that with several mistakes the first one reported is predictable.
  const options: Options = {
    upstream: value('upstream', parseUpstream, () => new URL(DEFAULT_UPSTREAM)),
    cacheDirs: value('cache-dir', raw => resolveCacheDirs(raw, cwd, homedir), discover),
    port: value('port', parsePort, () => DEFAULT_PORT),
    host: value('host', parseHost, () => DEFAULT_HOST),
    publicUrl: value('public-url', parsePublicUrl, () => undefined),
    upstreamApiKey: value('upstream-api-key', parseApiKey, () => undefined),
    logLevel: value('log-level', parseLogLevel, () => DEFAULT_LOG_LEVEL)
  }
  return { kind: 'run', options, warnings }
}
