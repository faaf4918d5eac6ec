import { symlinkSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadConfigFile, parseConfigText } from '../../src/config/config-file.js'
import { ConfigError } from '../../src/errors.js'

t.test('keys map to raw values with the line they are on', async t => {
  const text = [
    '# comment',
    'upstream: http://h:1',
    'cache-dir:',
    '  - a',
    '  - b',
    'port: 8091',
    'host: "::"',
    'public-url: http://p',
    'upstream-api-key: sk-1',
    'log-level: debug',
    ''
  ].join('\n')
  t.same(parseConfigText(text, 'c.yaml'), {
    upstream: { value: 'http://h:1', origin: { where: 'c.yaml: upstream', line: 2 } },
    'cache-dir': { value: ['a', 'b'], origin: { where: 'c.yaml: cache-dir', line: 3 } },
    port: { value: 8091, origin: { where: 'c.yaml: port', line: 6 } },
    host: { value: '::', origin: { where: 'c.yaml: host', line: 7 } },
    'public-url': { value: 'http://p', origin: { where: 'c.yaml: public-url', line: 8 } },
    'upstream-api-key': { value: 'sk-1', origin: { where: 'c.yaml: upstream-api-key', line: 9 } },
    'log-level': { value: 'debug', origin: { where: 'c.yaml: log-level', line: 10 } }
  }, 'every key is read')
  t.same(parseConfigText('', 'c.yaml'), {}, 'an empty file sets nothing')
  t.same(parseConfigText('# only comments\n', 'c.yaml'), {}, 'a file of comments sets nothing')
  t.same(parseConfigText('port:\nhost: ~\n', 'c.yaml'), {}, 'a key without a value is unset')
  t.equal(parseConfigText('port: &p 8091\n', 'c.yaml').port?.value, 8091, 'anchors are fine')
})

t.test('mistakes in the file name the file, the key and the line', async t => {
  const cases: Array<[string, string, string]> = [
    ['unknown key', 'port: 1\nhost: x\nportt: 2\n', 'config.yaml: unknown key "portt" (line 3)'],
    ['config in the config', 'config: other.yaml\n', 'config.yaml: unknown key "config" (line 1)'],
    ['a list as key', 'port: 1\n[a]: 1\n', 'config.yaml: keys must be plain names such as "port" (line 2)'],
    ['an empty key', 'port: 1\n: 1\n', 'config.yaml: unknown key "null" (line 2)'],
    ['bad escape', 'upstream-api-key: "a\\qb"\n', 'config.yaml: invalid YAML: invalid escape sequence in a double-quoted string (line 1)'],
    ['stray bracket', 'port: [1]]\n', 'config.yaml: invalid YAML: Unexpected flow-seq-end token in YAML stream (line 1)'],
    ['syntax error', 'port: 1\nhost: [x\n', 'config.yaml: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] (line 3)'],
    ['duplicate key', 'port: 1\nport: 2\n', 'config.yaml: invalid YAML: Map keys must be unique (line 2)'],
    ['tab indent', '\tport: 1\n', 'config.yaml: invalid YAML: Tabs are not allowed as indentation (line 1)'],
    ['missing anchor', 'port: *nope\n', 'config.yaml: invalid YAML: Unresolved alias (the anchor must be set before the alias)'],
    ['a list', '- port: 1\n', 'config.yaml: must be a mapping of keys to values, got a list (line 1)'],
    ['a scalar', 'port 8090\n', 'config.yaml: must be a mapping of keys to values, got a single value (line 1)']
  ]
  for (const [name, text, message] of cases) {
    t.throws(() => parseConfigText(text, 'config.yaml'), new ConfigError(message), name)
  }
})

t.test('YAML errors never quote the source, which may hold the API key', async t => {
  const texts = [
    'upstream-api-key: "hunter2\n',
    'upstream-api-key: hunter2: x\n',
    'upstream-api-key: hunter2\n  port: 1\n',
    'upstream-api-key: *hunter2\n',
    'upstream-api-key: "hunter2\\q"\n',
    'upstream-api-key: [hunter2]]\n',
    'upstream-api-key: >hunter2\n  x\n'
  ]
  for (const text of texts) {
    const err = t.throws(() => parseConfigText(text, 'c.yaml')) as Error
    t.notMatch(err.message, 'hunter2', `"${err.message}" does not show the key`)
    t.notMatch(err.message, '\n', 'one line')
  }
})

t.test('loadConfigFile reads the file relative to cwd', async t => {
  const dir = t.testdir({
    'c.yaml': 'port: 8091\n',
    folder: {},
    home: { 'h.yaml': 'host: h\n' }
  })
  symlinkSync('loop', join(dir, 'loop'))
  const given = (value: string): { value: string, origin: { where: string } } => ({ value, origin: { where: '--config' } })
  t.same(loadConfigFile(given('c.yaml'), dir, '/nowhere'), {
    port: { value: 8091, origin: { where: 'c.yaml: port', line: 1 } }
  }, 'relative path, labelled as given')
  t.equal(loadConfigFile(given('~/h.yaml'), '/', join(dir, 'home')).host?.value, 'h', '~ is the home folder')
  t.throws(() => loadConfigFile(given('nope.yaml'), dir, '/nowhere'),
    new ConfigError('--config: file "nope.yaml" does not exist'), 'missing file')
  t.throws(() => loadConfigFile(given('c.yaml/x'), dir, '/nowhere'),
    new ConfigError('--config: file "c.yaml/x" does not exist'), 'a file as a folder')
  t.throws(() => loadConfigFile(given('folder'), dir, '/nowhere'),
    new ConfigError('--config: "folder" is a directory, not a YAML file'), 'a folder')
  t.throws(() => loadConfigFile(given('loop'), dir, '/nowhere'),
    new ConfigError('--config: cannot read "loop": ELOOP'), 'a symlink loop')
})
