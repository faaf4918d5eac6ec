/**
 * Options as a program that embeds imagegate gives them: a plain object with the YAML
 * keys in camelCase. They go through the same validation as flags, environment and
 * config file, so a mistake gets the same one-line ConfigError, naming `options.<key>`.
 */
import { homedir as osHomedir } from 'node:os'
import { ConfigError } from '../errors.js'
import { keyOf, type OptionField, type Same } from './option-table.js'
import type { CompactImages, LogLevel, Mode, Options } from './options.js'
import { resolveSources, type ResolveContext } from './resolve.js'
import type { RawValues } from './sources.js'

/** Every setting of the command line, by its camelCase name; all optional (undefined = left out). */
export interface ImagegateOptions {
  /** Base URL of the agent backend; `/v1` is added when missing. */
  upstream?: string | URL | undefined
  /** Folders whose files may be delivered; hermes' cache folders when absent. */
  cacheDirs?: string | readonly string[] | undefined
  /** 0 lets the system choose a free port. */
  port?: number | undefined
  host?: string | undefined
  publicUrl?: string | undefined
  upstreamApiKey?: string | undefined
  logLevel?: LogLevel | undefined
  signingKey?: string | undefined
  noSigning?: boolean | undefined
  stateDir?: string | undefined
  allowSvg?: boolean | undefined
  shutdownGrace?: number | undefined
  keepalive?: number | undefined
  mode?: Mode | undefined
  inlineMaxBytes?: number | undefined
  storeDir?: string | undefined
  dataImageMaxBytes?: number | undefined
  storeMaxBytes?: number | undefined
  compactImages?: CompactImages | undefined
  compactQuality?: number | undefined
  compactMaxWidth?: number | undefined
  compactMaxBytes?: number | undefined
  dropNamedEvents?: boolean | undefined
}

// ImagegateOptions has exactly Options' properties that are options: a row added to the
// option table without its property here fails to compile.
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- a compile-time check: only its type is read
const everyOptionNamed: Same<keyof ImagegateOptions, OptionField> = true

/**
 * Validates `given` and fills in the defaults. Relative folders are taken from
 * `context.cwd` (the process's by default); only HERMES_HOME and XDG_STATE_HOME are read
 * from `context.env`, never IMAGEGATE_* variables: the program decides what it passes.
 * Throws a ConfigError naming the key.
 */
export function resolveImagegateOptions (given: ImagegateOptions, context: Partial<ResolveContext> = {}): { options: Options, warnings: string[] } {
  if (given === null || typeof given !== 'object' || Array.isArray(given)) {
    throw new ConfigError('options: must be an object such as { upstream: "http://127.0.0.1:8642/v1" }')
  }
  const values: RawValues = {}
  for (const [name, value] of Object.entries(given)) {
    const key = keyOf(name)
    if (key === undefined) throw new ConfigError(`options: unknown key ${JSON.stringify(name)}`)
    // Left out and undefined mean the same, as `key:` with nothing after it does in YAML.
    if (value === undefined) continue
    values[key] = { value: value instanceof URL ? value.href : value, origin: { where: `options.${name}` } }
  }
  return resolveSources([values], {
    env: context.env ?? process.env,
    cwd: context.cwd ?? process.cwd(),
    homedir: context.homedir ?? osHomedir(),
    ...(context.localAddresses !== undefined ? { localAddresses: context.localAddresses } : {})
  })
}
