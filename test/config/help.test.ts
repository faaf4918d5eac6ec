import { readFileSync } from 'node:fs'
import t from 'tap'
import { helpText, versionText } from '../../src/config/help.js'
import { OPTIONS, type Declaration } from '../../src/config/option-table.js'
import { DEFAULT_HOST, DEFAULT_LOG_LEVEL, DEFAULT_PORT, DEFAULT_UPSTREAM } from '../../src/config/options.js'
import { envName, KEYS } from '../../src/config/sources.js'

t.test('help lists every flag with its variable and default', async t => {
  const text = helpText()
  for (const key of [...KEYS, 'config' as const]) {
    t.match(text, `--${key} `, `--${key} is listed`)
    t.match(text, `env ${envName(key)}`, `${envName(key)} is listed`)
  }
  for (const fallback of [DEFAULT_UPSTREAM, String(DEFAULT_PORT), DEFAULT_HOST, DEFAULT_LOG_LEVEL]) {
    t.match(text, `default ${fallback}`, `default ${fallback} is shown`)
  }
  t.match(text, 'cache/{images,screenshots,audio,documents} in\n', 'the cache folders looked for')
  t.match(text, '$HERMES_HOME (~/.hermes) and its profiles/*', 'where they are looked for')
  t.match(text, '-h, --help', 'help')
  t.match(text, '--version', 'version')
  for (const line of text.split('\n')) t.ok(line.length <= 80, `short line: ${line}`)
})

t.test('help lists exactly the flags there are, each with its row\'s argument, text and default', async t => {
  const text = helpText()
  const flags = [...text.matchAll(/^ {2}(?:-h, )?--([a-z-]+)/gm)].map(([, flag]) => flag)
  t.same([...flags].sort(), [...KEYS, 'config', 'help', 'version'].sort(), 'every option and command once, nothing else')
  // Each flag's lines: its own line and the indented ones below it.
  const blocks = text.split(/\n(?= {2}-)/)
  for (const key of KEYS) {
    const row: Declaration = OPTIONS[key]
    const block = blocks.find(lines => lines.startsWith(`  --${key} `)) ?? ''
    const usage = [`--${key}`, row.kind.arg].filter(part => part !== '').join(' ')
    t.same(block.split('\n')[0]?.trim().split(/ {2,}/), [usage, row.about], `${key}: ${usage} and its text`)
    t.match(block, `env ${envName(key)}`, `${key}: its variable`)
    if ('default' in row && (typeof row.default === 'number' || typeof row.default === 'string')) {
      t.match(block, `default ${row.default}`, `${key}: its default`)
    }
  }
})

t.test('version comes from package.json', async t => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  t.equal(versionText(), `imagegate ${version}`, 'name and version')
})
