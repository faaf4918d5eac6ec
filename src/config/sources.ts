import { delimiter } from 'node:path'
import { parseArgs } from 'node:util'
import { ConfigError } from '../errors.js'
import { KEYS, OPTIONS, type Key } from './option-table.js'
import type { Raw } from './options.js'
import { redactUrl } from './urls.js'

// Beside envName, for callers that name each key's variable.
export { KEYS, type Key }

/** Raw values by key, from one source. */
export type RawValues = Partial<Record<Key, Raw>>

const ENV_PREFIX = 'IMAGEGATE_'

/** `cache-dir` → `IMAGEGATE_CACHE_DIR`. */
export function envName (key: Key | 'config'): string {
  return ENV_PREFIX + key.toUpperCase().replaceAll('-', '_')
}

/** Flags that are not options: where the config file is, and what to print instead of running. */
const COMMANDS = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' }
} as const

// Every key is a flag: a switch takes no value, so parseArgs must not take the next word.
const FLAGS = {
  ...Object.fromEntries(KEYS.map(key => [key, { type: OPTIONS[key].kind.shape === 'switch' ? 'boolean' : 'string' } as const])),
  ...COMMANDS
}

/** What the command line asked for. */
export interface FlagValues {
  help: boolean
  version: boolean
  config: Raw | undefined
  values: RawValues
}

/**
 * Reads argv. parseArgs runs non-strict so that every mistake gets a message of our own
 * that names the flag; its strict messages are long and quote the value, which may be
 * the API key.
 */
export function readFlags (argv: readonly string[]): FlagValues {
  const { tokens } = parseArgs({ args: [...argv], options: FLAGS, strict: false, allowPositionals: true, tokens: true })
  const result: FlagValues = { help: false, version: false, config: undefined, values: {} }
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue
    if (token.kind === 'positional') {
      throw new ConfigError(`unexpected argument ${JSON.stringify(redactUrl(token.value))} (every setting is a --flag, see --help)`)
    }
    if (!Object.hasOwn(FLAGS, token.name)) throw new ConfigError(`unknown flag ${JSON.stringify(token.rawName)} (see --help)`)
    const name = token.name as Key | keyof typeof COMMANDS
    const where = `--${name}`
    if (name === 'help' || name === 'version') {
      if (token.value !== undefined) throw new ConfigError(`${where}: takes no value`)
      result[name] = true
      continue
    }
    const shape = name === 'config' ? 'text' : OPTIONS[name].kind.shape
    if (shape === 'switch') {
      if (token.value !== undefined) throw new ConfigError(`${where}: takes no value`)
      result.values[name as Key] = { value: true, origin: { where } }
      continue
    }
    // parseArgs takes the next word as the value even when it is the next flag
    // (`--port --host x`); a value that really starts with `--` can be given as `--flag=--x`.
    const value = token.value
    if (value === undefined || value === '' || (!token.inlineValue && value.startsWith('--'))) {
      throw new ConfigError(`${where}: needs a value`)
    }
    if (name === 'config') {
      result.config = { value, origin: { where } }
    } else if (shape === 'list') {
      const previous = result.values[name as Key]?.value as string[] | undefined
      result.values[name as Key] = { value: [...previous ?? [], value], origin: { where } }
    } else {
      result.values[name as Key] = { value, origin: { where } }
    }
  }
  return result
}

/** What the environment asked for. */
export interface EnvValues {
  config: Raw | undefined
  values: RawValues
  /** IMAGEGATE_* variables that match no key, most likely typos. */
  unknown: string[]
}

/**
 * Reads IMAGEGATE_* variables. An empty variable counts as unset: compose files and
 * shell scripts often export `VAR=` to mean "nothing". A list option's variable
 * (IMAGEGATE_CACHE_DIR) holds several values joined with the platform's path delimiter,
 * like PATH.
 */
export function readEnv (env: Readonly<Record<string, string | undefined>>): EnvValues {
  const result: EnvValues = { config: undefined, values: {}, unknown: [] }
  const known = new Set([...KEYS, 'config' as const].map(key => envName(key)))
  for (const name of Object.keys(env).sort()) {
    if (name.startsWith(ENV_PREFIX) && !known.has(name) && env[name] !== undefined) result.unknown.push(name)
  }
  const configPath = env[envName('config')]
  if (configPath !== undefined && configPath !== '') {
    result.config = { value: configPath, origin: { where: envName('config') } }
  }
  for (const key of KEYS) {
    const where = envName(key)
    const text = env[where]
    if (text === undefined || text === '') continue
    if (OPTIONS[key].kind.shape === 'list') {
      const list = text.split(delimiter).filter(item => item !== '')
      if (list.length > 0) result.values[key] = { value: list, origin: { where } }
    } else {
      result.values[key] = { value: text, origin: { where } }
    }
  }
  return result
}
