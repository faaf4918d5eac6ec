import { symlinkSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { discoverCacheDirs, expandHome, findHermesCacheDirs, parseCacheDirList, resolveCacheDirs } from '../../src/config/cache-dirs.js'
import { ConfigError } from '../../src/errors.js'

t.test('expandHome', async t => {
  t.equal(expandHome('~', '/home/u'), '/home/u', 'alone')
  t.equal(expandHome('~/a/b', '/home/u'), '/home/u/a/b', 'as a prefix')
  t.equal(expandHome('~other/a', '/home/u'), '~other/a', 'other users are not looked up')
  t.equal(expandHome('a/~/b', '/home/u'), 'a/~/b', 'only at the start')
})

t.test('parseCacheDirList takes one folder or a list', async t => {
  const origin = { where: 'config.yaml: cache-dir', line: 2 }
  t.same(parseCacheDirList({ value: 'a', origin }), ['a'], 'a string')
  t.same(parseCacheDirList({ value: ['a', 'b'], origin }), ['a', 'b'], 'a list')
  const cases: Array<[unknown, string]> = [
    [[], 'config.yaml: cache-dir: must name at least one folder (line 2)'],
    [5, 'config.yaml: cache-dir: must be a string, got a number (line 2)'],
    [['a', { b: 1 }], 'config.yaml: cache-dir: must be a string, got a mapping (line 2)'],
    [[''], 'config.yaml: cache-dir: must be a folder path, got "" (line 2)']
  ]
  for (const [value, message] of cases) {
    t.throws(() => parseCacheDirList({ value, origin }), new ConfigError(message), JSON.stringify(value))
  }
})

t.test('explicit folders are made absolute and must exist', async t => {
  const dir = t.testdir({ images: {}, audio: {}, 'a-file': 'x', home: { shots: {} } })
  symlinkSync('loop', join(dir, 'loop'))
  const flag = (value: string[]): { value: string[], origin: { where: string } } => ({ value, origin: { where: '--cache-dir' } })
  t.same(resolveCacheDirs(flag(['images', join(dir, 'audio'), './images', '~/shots']), dir, join(dir, 'home')),
    [join(dir, 'images'), join(dir, 'audio'), join(dir, 'home', 'shots')], 'relative to cwd, ~ expanded, duplicates dropped')
  const nope = join(dir, 'nope')
  const cases: Array<[string, string]> = [
    [nope, `--cache-dir: ${JSON.stringify(nope)} does not exist`],
    ['nope', `--cache-dir: "nope" (${nope}) does not exist`],
    ['a-file', `--cache-dir: "a-file" (${join(dir, 'a-file')}) is not a directory`],
    ['a-file/x', `--cache-dir: "a-file/x" (${join(dir, 'a-file', 'x')}) does not exist`],
    ['loop', `--cache-dir: "loop" (${join(dir, 'loop')}) cannot be read: ELOOP`]
  ]
  for (const [given, message] of cases) {
    t.throws(() => resolveCacheDirs(flag(['images', given]), dir, '/nowhere'), new ConfigError(message), given)
  }
})

t.test('without explicit folders, hermes cache folders are discovered', async t => {
  const hermes = t.testdir({
    cache: { images: {}, screenshots: 'not a folder' },
    profiles: {
      work: { cache: { screenshots: {}, documents: {} } },
      empty: {},
      alpha: { cache: { audio: {}, images: {} } },
      'stray-file': 'x'
    }
  })
  const found = discoverCacheDirs({ HERMES_HOME: hermes }, '/', '/nowhere')
  t.same(found, {
    dirs: [
      join(hermes, 'cache', 'images'),
      join(hermes, 'profiles', 'alpha', 'cache', 'images'),
      join(hermes, 'profiles', 'alpha', 'cache', 'audio'),
      join(hermes, 'profiles', 'work', 'cache', 'screenshots'),
      join(hermes, 'profiles', 'work', 'cache', 'documents')
    ],
    warning: undefined
  }, 'existing folders only, home first, then profiles by name')
  t.same(findHermesCacheDirs(hermes), found.dirs, 'the same search, given the folder, for looking again later')
})

t.test('HERMES_HOME defaults to ~/.hermes and may be relative or use ~', async t => {
  const home = t.testdir({ '.hermes': { cache: { audio: {} } }, other: { cache: { images: {} } } })
  t.same(discoverCacheDirs({}, '/', home).dirs, [join(home, '.hermes', 'cache', 'audio')], 'unset')
  t.same(discoverCacheDirs({ HERMES_HOME: '' }, '/', home).dirs, [join(home, '.hermes', 'cache', 'audio')], 'empty')
  t.same(discoverCacheDirs({ HERMES_HOME: 'other' }, home, '/nowhere').dirs, [join(home, 'other', 'cache', 'images')], 'relative to cwd')
  t.same(discoverCacheDirs({ HERMES_HOME: '~/other' }, '/', home).dirs, [join(home, 'other', 'cache', 'images')], '~')
})

t.test('finding nothing is a warning, not an error', async t => {
  const home = t.testdir({})
  const found = discoverCacheDirs({}, '/', home)
  t.same(found.dirs, [], 'no folders')
  t.equal(found.warning,
    `no cache folder found in ${join(home, '.hermes')} (looked for cache/images, cache/screenshots, cache/audio, cache/documents, also under profiles/*): ` +
    'no images can be served until --cache-dir names one', 'the warning says where it looked and what to do')
})
