import { hermesHomeOf } from './cache-dirs.js'
import { loadConfigFile } from './config-file.js'
import { helpText, versionText } from './help.js'
import { resolveValues, type Key } from './option-table.js'
import { configError, type Options, type Raw } from './options.js'
import { machineAddresses, reachesListener, selfUpstreamMessage } from './self-address.js'
import { readEnv, readFlags, type RawValues } from './sources.js'

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
  const options: Options = {
    ...resolveValues(pick, { env, cwd, homedir, warn: text => { warnings.push(text) } }),
    // Folders found in HERMES_HOME are looked for again later; folders named are not.
    hermesHome: pick('cache-dir') === undefined ? hermesHomeOf(env, cwd, homedir) : undefined
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
