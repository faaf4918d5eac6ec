import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { fieldOf, KEYS, keyOf, OPTIONS, type Declaration, type Key } from '../../src/config/option-table.js'
import { envName } from '../../src/config/sources.js'

const ROOT = new URL('../../', import.meta.url).pathname

const sorted = (list: readonly string[]): string[] => [...list].sort()

t.test('the key names the flag, the variable, the YAML key and the property of Options', async t => {
  t.equal(fieldOf('store-max-bytes'), 'storeMaxBytes', 'camelCase')
  t.equal(fieldOf('upstream-api-key'), 'upstreamApiKey', 'several dashes')
  t.equal(fieldOf('port'), 'port', 'one word')
  t.equal(fieldOf('cache-dir'), 'cacheDirs', 'a row may name its property: plural for a list of folders')
  t.equal(envName('store-max-bytes'), 'IMAGEGATE_STORE_MAX_BYTES', 'the variable')
  t.equal(new Set(KEYS.map(fieldOf)).size, KEYS.length, 'no two keys name the same property')
  for (const key of KEYS) t.equal(keyOf(fieldOf(key)), key, `${fieldOf(key)} leads back to ${key}`)
  t.equal(keyOf('cache-dir'), undefined, 'a key is not a property name')
  t.equal(keyOf('__proto__'), undefined, 'nor is anything inherited')
})

// `| \`--port N\` | \`IMAGEGATE_PORT\` | \`port\` | \`8090\` | port to listen on |` → its five cells.
function readmeRows (): string[][] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.split(/^## /m).find(part => part.startsWith('Configuration\n'))
  if (section === undefined) throw new Error('README.md has no "## Configuration" section')
  return section.split('\n')
    .filter(line => line.startsWith('| `--'))
    .map(line => line.slice(1, -1).split(/(?<!\\)\|/).map(cell => cell.trim()))
}

// The first `code span` of a cell, or undefined.
const code = (cell: string | undefined): string | undefined => /`([^`]+)`/.exec(cell ?? '')?.[1]

t.test('README\'s configuration table has a row for exactly the table\'s keys, each as derived from it', async t => {
  const rows = readmeRows()
  // Rows with a YAML key are options; --config, --help and --version have none.
  const options = rows.filter(([, , yaml]) => code(yaml) !== undefined)
  const listed = options.map(([, , yaml]) => (code(yaml) as string).replace(/: true$/, ''))
  t.same(sorted(listed), sorted(KEYS), 'every key once, and nothing else')
  for (const [flag, env, yaml, fallback] of options) {
    const key = (code(yaml) as string).replace(/: true$/, '') as Key
    const row: Declaration | undefined = OPTIONS[key]
    if (row === undefined) continue // reported above
    const isSwitch = row.kind.shape === 'switch'
    t.equal(code(flag), [`--${key}`, row.kind.arg].filter(part => part !== '').join(' '), `${key}: flag and its argument`)
    t.equal(code(env), isSwitch ? `${envName(key)}=true` : envName(key), `${key}: variable`)
    t.equal(code(yaml), isSwitch ? `${key}: true` : key, `${key}: YAML key`)
    if ('default' in row && row.default !== undefined) {
      if (row.default === false) t.equal(fallback, 'off', `${key}: off by default`)
      else t.equal(code(fallback), String(row.default), `${key}: default`)
    }
  }
  const config = rows.find(([flag]) => code(flag) === '--config FILE')
  t.equal(code(config?.[1]), envName('config'), '--config and its variable are listed too')
})

t.test('config.example.yaml has a setting for exactly the table\'s keys', async t => {
  const text = readFileSync(join(ROOT, 'config.example.yaml'), 'utf8')
  // A line starting with a key and a colon, commented out or not, is a setting; prose
  // must not start that way, or a mistyped setting would pass for prose.
  const settings = text.split('\n').flatMap(line => /^(?:# )?([a-z][a-z0-9-]*):(?: |$)/.exec(line)?.[1] ?? [])
  t.same(sorted(settings), sorted(KEYS), 'every key once, and nothing else')
})
