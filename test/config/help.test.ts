import { readFileSync } from 'node:fs'
import t from 'tap'
import { helpText, versionText } from '../../src/config/help.js'
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

t.test('version comes from package.json', async t => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  t.equal(versionText(), `imagegate ${version}`, 'name and version')
})
