import { readFileSync } from 'node:fs'
import { delimiter } from 'node:path'
import { DEFAULT_HERMES_HOME, HERMES_CACHE_KINDS } from './cache-dirs.js'
import { DEFAULT_HOST, DEFAULT_LOG_LEVEL, DEFAULT_PORT, DEFAULT_UPSTREAM, LOG_LEVELS } from './options.js'
import { envName, type Key } from './sources.js'

interface FlagHelp {
  flag: Key | 'config'
  arg: string
  about: string
  /** Said after the variable's name. */
  envNote?: string
  /** The default in words; `\n` continues it on the next line. */
  fallback: string
}

// One row per key, so that a key added to KEYS without help fails the help test.
const ROWS: readonly FlagHelp[] = [
  { flag: 'upstream', arg: 'URL', about: 'agent backend base URL; /v1 is appended when missing', fallback: DEFAULT_UPSTREAM },
  {
    flag: 'cache-dir',
    arg: 'DIR',
    about: 'folder whose files may be served; repeatable',
    envNote: ` ("${delimiter}"-separated)`,
    fallback: `every existing\ncache/{${HERMES_CACHE_KINDS.join(',')}} in\n$HERMES_HOME (${DEFAULT_HERMES_HOME}) and its profiles/*`
  },
  { flag: 'port', arg: 'N', about: 'port to listen on (0: any free port)', fallback: String(DEFAULT_PORT) },
  { flag: 'host', arg: 'ADDR', about: 'address to listen on (0.0.0.0 or :: for all)', fallback: DEFAULT_HOST },
  { flag: 'public-url', arg: 'URL', about: 'base URL of image links, as browsers reach imagegate', fallback: 'http://<host>:<port>' },
  { flag: 'upstream-api-key', arg: 'KEY', about: 'bearer token sent upstream instead of the client\'s', fallback: 'none' },
  { flag: 'config', arg: 'FILE', about: 'YAML file with the same keys (see config.example.yaml)', fallback: 'none' },
  { flag: 'log-level', arg: 'LEVEL', about: LOG_LEVELS.join('|'), fallback: DEFAULT_LOG_LEVEL }
]

const COLUMN = 24
const INDENT = `  ${''.padEnd(COLUMN)}`
const WIDTH = 80

/** `--help` output: every flag with its environment variable and default. */
export function helpText (): string {
  const rows = ROWS.flatMap(({ flag, arg, about, envNote = '', fallback }) => {
    const env = `${INDENT}env ${envName(flag)}${envNote}`
    const [first = '', ...more] = `default ${fallback}`.split('\n').map(line => INDENT + line)
    const oneLine = `${env}, ${first.trimStart()}`
    return [`  ${`--${flag} ${arg}`.padEnd(COLUMN)}${about}`, ...oneLine.length <= WIDTH ? [oneLine] : [env, first], ...more]
  })
  return [
    'Usage: imagegate [flags]',
    '',
    'OpenAI-compatible proxy that turns image file paths in an agent\'s answers into',
    'links under /images/ that chat clients such as Open WebUI can show.',
    '',
    ...rows,
    `  ${'-h, --help'.padEnd(COLUMN)}show this help`,
    `  ${'--version'.padEnd(COLUMN)}show the version`,
    '',
    'Flags override environment variables, which override the config file.'
  ].join('\n')
}

/** `--version` output, from package.json (two levels up from both src/config and dist/config). */
export function versionText (): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return `imagegate ${pkg.version}`
}
