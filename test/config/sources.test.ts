import { delimiter } from 'node:path'
import t from 'tap'
import { envName, KEYS, readEnv, readFlags } from '../../src/config/sources.js'
import { ConfigError } from '../../src/errors.js'

t.test('envName is IMAGEGATE_ plus the key in upper snake case', async t => {
  t.equal(envName('cache-dir'), 'IMAGEGATE_CACHE_DIR', 'dashes become underscores')
  t.equal(envName('upstream-api-key'), 'IMAGEGATE_UPSTREAM_API_KEY', 'several dashes')
  t.equal(envName('config'), 'IMAGEGATE_CONFIG', 'config has a variable too')
})

t.test('readFlags collects values with the flag that gave them', async t => {
  const flags = readFlags([
    '--upstream', 'http://h', '--port=1', '--cache-dir', 'a', '--cache-dir=b', '--host', 'x',
    '--public-url', 'http://p', '--upstream-api-key=--key', '--log-level', 'debug', '--config', 'c.yaml', '--'
  ])
  t.same(flags, {
    help: false,
    version: false,
    config: { value: 'c.yaml', origin: { where: '--config' } },
    values: {
      upstream: { value: 'http://h', origin: { where: '--upstream' } },
      port: { value: '1', origin: { where: '--port' } },
      'cache-dir': { value: ['a', 'b'], origin: { where: '--cache-dir' } },
      host: { value: 'x', origin: { where: '--host' } },
      'public-url': { value: 'http://p', origin: { where: '--public-url' } },
      'upstream-api-key': { value: '--key', origin: { where: '--upstream-api-key' } },
      'log-level': { value: 'debug', origin: { where: '--log-level' } }
    }
  }, 'every flag lands under its key')
  t.equal(readFlags(['--port', '1', '--port', '2']).values.port?.value, '2', 'the last of a repeated flag wins')
  t.equal(readFlags(['--port', '-1']).values.port?.value, '-1', 'a value may start with one dash')
  t.match(readFlags(['-h']), { help: true, version: false }, '-h is --help')
  t.match(readFlags(['--version']), { help: false, version: true }, '--version')
  t.same(readFlags([]), { help: false, version: false, config: undefined, values: {} }, 'nothing given')
})

t.test('readFlags names the flag in every mistake', async t => {
  const cases: Array<[string[], string]> = [
    [['--portt', '1'], 'unknown flag "--portt" (see --help)'],
    [['-x'], 'unknown flag "-x" (see --help)'],
    [['--upstream-api-ky=hunter2'], 'unknown flag "--upstream-api-ky" (see --help)'],
    [['--__proto__'], 'unknown flag "--__proto__" (see --help)'],
    [['serve'], 'unexpected argument "serve" (every setting is a --flag, see --help)'],
    [['--', 'http://u:hunter2@h'], 'unexpected argument "http://***@h" (every setting is a --flag, see --help)'],
    [['--port'], '--port: needs a value'],
    [['--port='], '--port: needs a value'],
    [['--port', '--host', 'x'], '--port: needs a value'],
    [['--cache-dir'], '--cache-dir: needs a value'],
    [['--config'], '--config: needs a value'],
    [['--help=yes'], '--help: takes no value'],
    [['--version=1'], '--version: takes no value']
  ]
  for (const [argv, message] of cases) {
    t.throws(() => readFlags(argv), new ConfigError(message), argv.join(' '))
  }
})

t.test('readEnv reads IMAGEGATE_* variables', async t => {
  const env = {
    IMAGEGATE_UPSTREAM: 'http://h',
    IMAGEGATE_CACHE_DIR: ['a', '', 'b'].join(delimiter),
    IMAGEGATE_PORT: '1',
    IMAGEGATE_HOST: '',
    IMAGEGATE_CONFIG: 'c.yaml',
    IMAGEGATE_PROT: '2',
    IMAGEGATE_ZZZ: undefined,
    PATH: '/bin'
  }
  t.same(readEnv(env), {
    config: { value: 'c.yaml', origin: { where: 'IMAGEGATE_CONFIG' } },
    values: {
      upstream: { value: 'http://h', origin: { where: 'IMAGEGATE_UPSTREAM' } },
      'cache-dir': { value: ['a', 'b'], origin: { where: 'IMAGEGATE_CACHE_DIR' } },
      port: { value: '1', origin: { where: 'IMAGEGATE_PORT' } }
    },
    unknown: ['IMAGEGATE_PROT']
  }, 'empty variables are unset, cache dirs are split, typos are listed')
  t.same(readEnv({ IMAGEGATE_CACHE_DIR: delimiter, IMAGEGATE_CONFIG: '' }), { config: undefined, values: {}, unknown: [] },
    'a cache dir variable with only delimiters is unset')
  for (const key of KEYS) {
    t.ok(readEnv({ [envName(key)]: 'v' }).values[key], `${envName(key)} is read`)
  }
})

t.test('boolean flags take no value', async t => {
  t.same(readFlags(['--no-signing', '--allow-svg']).values, {
    'no-signing': { value: true, origin: { where: '--no-signing' } },
    'allow-svg': { value: true, origin: { where: '--allow-svg' } }
  }, 'present means true')
  t.throws(() => readFlags(['--no-signing=false']), { message: '--no-signing: takes no value' }, 'an inline value is refused')
})
