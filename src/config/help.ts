import { readFileSync } from 'node:fs'
import { delimiter } from 'node:path'
import { KEYS, OPTIONS, type Declaration, type Key } from './option-table.js'
import { envName } from './sources.js'

interface FlagHelp {
  flag: Key | 'config'
  arg: string
  about: string
  /** Said after the variable's name. */
  envNote?: string
  /** The default in words; `\n` continues it on the next line. */
  fallback: string
}

/** A written default in words: an option without one has none, a switch is off. */
function described (value: string | number | boolean | undefined): string {
  if (value === undefined) return 'none'
  if (value === false) return 'off'
  return String(value)
}

function optionHelp (key: Key): FlagHelp {
  const row: Declaration = OPTIONS[key]
  return {
    flag: key,
    arg: row.kind.arg,
    about: row.about,
    ...row.kind.shape === 'list' ? { envNote: ` ("${delimiter}"-separated)` } : {},
    fallback: 'derive' in row ? row.shown : row.shown ?? described(row.default)
  }
}

const CONFIG: FlagHelp = { flag: 'config', arg: 'FILE', about: 'YAML file with the same keys (config.example.yaml)', fallback: 'none' }

const COLUMN = 26
const INDENT = `  ${''.padEnd(COLUMN)}`
const WIDTH = 80

/** `--help` output: every flag with its environment variable and default. */
export function helpText (): string {
  const rows = [...KEYS.map(optionHelp), CONFIG].flatMap(({ flag, arg, about, envNote = '', fallback }) => {
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
