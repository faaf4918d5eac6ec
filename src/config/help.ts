import { readFileSync } from 'node:fs'
import { delimiter } from 'node:path'
import { DEFAULT_HERMES_HOME, HERMES_CACHE_KINDS } from './cache-dirs.js'
import {
  COMPACT_IMAGES, DEFAULT_COMPACT_MAX_BYTES, DEFAULT_COMPACT_IMAGES, DEFAULT_COMPACT_MAX_WIDTH, DEFAULT_COMPACT_QUALITY,
  DEFAULT_DATA_IMAGE_MAX_BYTES, DEFAULT_HOST, DEFAULT_INLINE_MAX_BYTES, DEFAULT_KEEPALIVE, DEFAULT_LOG_LEVEL, DEFAULT_MODE,
  DEFAULT_PORT, DEFAULT_SHUTDOWN_GRACE, DEFAULT_STATE_DIR, DEFAULT_STORE_MAX_BYTES, DEFAULT_UPSTREAM, LOG_LEVELS, MODES
} from './options.js'
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
  { flag: 'public-url', arg: 'URL', about: 'base URL browsers load images from; a path works', fallback: 'http://<host>:<port>' },
  { flag: 'upstream-api-key', arg: 'KEY', about: 'bearer token sent upstream instead of the client\'s', fallback: 'none' },
  { flag: 'config', arg: 'FILE', about: 'YAML file with the same keys (config.example.yaml)', fallback: 'none' },
  { flag: 'log-level', arg: 'LEVEL', about: LOG_LEVELS.join('|'), fallback: DEFAULT_LOG_LEVEL },
  { flag: 'signing-key', arg: 'KEY', about: 'secret for signing image links (32+ characters)', fallback: 'generated, kept in\nstate-dir' },
  { flag: 'no-signing', arg: '', about: 'serve plain image names without a signature', fallback: 'signed' },
  { flag: 'state-dir', arg: 'DIR', about: 'folder for the generated signing key', fallback: `$XDG_STATE_HOME/imagegate\nor ${DEFAULT_STATE_DIR}` },
  { flag: 'allow-svg', arg: '', about: 'also deliver SVG files (served sandboxed)', fallback: 'off' },
  { flag: 'shutdown-grace', arg: 'SEC', about: 'time running requests get to finish on SIGTERM', fallback: String(DEFAULT_SHUTDOWN_GRACE) },
  { flag: 'keepalive', arg: 'SEC', about: 'SSE comment after this much upstream silence; 0: off', fallback: String(DEFAULT_KEEPALIVE) },
  { flag: 'mode', arg: 'MODE', about: `${MODES.join('|')}: link to files, or inline them`, fallback: DEFAULT_MODE },
  { flag: 'inline-max-bytes', arg: 'N', about: 'largest file inlined in data-uri mode', fallback: String(DEFAULT_INLINE_MAX_BYTES) },
  { flag: 'store-dir', arg: 'DIR', about: 'where decoded upstream data: images are kept', fallback: '<state-dir>/store' },
  { flag: 'data-image-max-bytes', arg: 'N', about: 'largest upstream data: image that is stored', fallback: String(DEFAULT_DATA_IMAGE_MAX_BYTES) },
  { flag: 'store-max-bytes', arg: 'N', about: 'bound on store-dir; least recently used out', fallback: `${DEFAULT_STORE_MAX_BYTES} (512 MiB)` },
  { flag: 'compact-images', arg: 'FORMAT', about: `${COMPACT_IMAGES.join('|')}: smaller images for browsers`, fallback: DEFAULT_COMPACT_IMAGES },
  { flag: 'compact-quality', arg: 'N', about: 'encoder quality of compact images, 1-100', fallback: String(DEFAULT_COMPACT_QUALITY) },
  { flag: 'compact-max-width', arg: 'PX', about: 'compact images no wider than this; 0: no limit', fallback: String(DEFAULT_COMPACT_MAX_WIDTH) },
  { flag: 'compact-max-bytes', arg: 'N', about: 'bound on <state-dir>/compact', fallback: `${DEFAULT_COMPACT_MAX_BYTES} (256 MiB)` },
  { flag: 'drop-named-events', arg: '', about: 'drop named SSE events from chat streams', fallback: 'off' }
]

const COLUMN = 26
const INDENT = `  ${''.padEnd(COLUMN)}`
const WIDTH = 80

/** `--help` output: every flag with its environment variable and default. */
export function helpText (): string {
  const rows = ROWS.flatMap(({ flag, arg, about, envNote = '', fallback }) => {
    const env = `${INDENT}env ${envName(flag)}${envNote}`
    const [first = '', ...more] = `default ${fallback}`.split('\n').map(line => INDENT + line)
    const oneLine = `${env}, ${first.trimStart()}`
    return [`  ${`--${flag} ${arg}`.trimEnd().padEnd(COLUMN)}${about}`, ...oneLine.length <= WIDTH ? [oneLine] : [env, first], ...more]
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
