// Names across cache folders, with hermes' default discovery: two profiles' files of the
// same name get two links, each serving its own file, and a profile created after start
// is found when a reference to it misses.
import fs from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { findHermesCacheDirs } from '../../src/config/cache-dirs.js'
import { folderId } from '../../src/files/names.js'
import { contentOf, pathAndQuery, startGate } from '../fixtures/gate.js'
import { solidPng } from '../fixtures/png.js'
import { send } from '../fixtures/http.js'
import { DONE, FINISH, contentEvents } from '../fixtures/chat.js'
import { sse, startMockUpstream } from '../fixtures/mock-upstream.js'
import { startProxy } from '../fixtures/proxy.js'

const HOME_PNG = solidPng(3, 3)
const WORK_PNG = solidPng(5, 5)
const LATER_PNG = solidPng(7, 7)
const LINK = /\]\((http:\/\/127\.0\.0\.1:\d+(\/images\/[^)]+))\)/g

/** The links in an answer, as request targets. */
const linksIn = (text: string): string[] => [...text.matchAll(LINK)].map((match) => pathAndQuery(match[1] as string))

async function hermesGate (t: Test) {
  const home = t.testdir({
    cache: { images: { 'dup.png': HOME_PNG } },
    profiles: { work: { cache: { images: { 'dup.png': WORK_PNG } } } }
  })
  // What the CLI resolves when no --cache-dir is given.
  const { upstream, gate } = await startProxy(t, { options: { cacheDirs: findHermesCacheDirs(home), hermesHome: home } })
  const ask = async (text: string): Promise<string> => {
    upstream.handle(sse([...contentEvents([text]), FINISH, DONE]))
    return contentOf((await send(gate.url, { method: 'POST', path: '/v1/chat/completions', body: '{"stream": true}' })).text)
  }
  return { home, gate, ask }
}

t.test('two profiles\' files of the same name get two links, each serving its own file', async (t) => {
  const { home, gate, ask } = await hermesGate(t)
  const homeImages = path.join(home, 'cache/images')
  const workImages = path.join(home, 'profiles/work/cache/images')
  const answer = await ask(`![a](${homeImages}/dup.png) ![b](${workImages}/dup.png)`)
  const [first, second] = linksIn(answer)
  t.ok(first !== undefined && second !== undefined, 'both rewritten')
  t.not(first, second, 'two links')
  t.match(first, `/images/${folderId(homeImages)}/dup.png?sig=`, 'the home cache under its id')
  t.match(second, `/images/${folderId(workImages)}/dup.png?sig=`, 'the profile cache under its own')
  t.same((await send(gate.url, { path: first as string })).body, HOME_PNG, 'the first link serves the home file')
  t.same((await send(gate.url, { path: second as string })).body, WORK_PNG, 'the second link serves the profile\'s file')

  // The profile's folder id with the other folder's signature: not a way across.
  const crossed = (second as string).replace(/\?sig=.*/, (first as string).slice((first as string).indexOf('?')))
  const refused = await send(gate.url, { path: crossed })
  t.equal(refused.status, 404, 'a signature for one folder\'s name opens nothing in another')

  // An agent in a container writes its own paths: the name decides, in the folder whose
  // path ends like the agent's, so each profile keeps its own picture.
  const [inProfile, inHome] = linksIn(await ask('![c](/root/.hermes/profiles/work/cache/images/dup.png) ![d](/root/.hermes/cache/images/dup.png)'))
  t.equal(inProfile, second, 'the agent\'s profile path links the profile\'s file')
  t.equal(inHome, first, 'the agent\'s home path links the home\'s file')
  const [elsewhere] = linksIn(await ask('![e](/srv/pictures/dup.png)'))
  t.equal(elsewhere, first, 'a path like no folder\'s: the first folder found (HERMES_HOME before profiles)')
})

t.test('a profile cache created after start is found when a reference to it misses', async (t) => {
  const { home, gate, ask } = await hermesGate(t)
  const later = path.join(home, 'profiles/later/cache/screenshots')
  fs.mkdirSync(later, { recursive: true })
  fs.writeFileSync(path.join(later, 'new.png'), LATER_PNG)
  const [link] = linksIn(await ask(`![n](${later}/new.png)`))
  t.match(link, `/images/${folderId(later)}/new.png?sig=`, 'linked under the new folder\'s id')
  t.same((await send(gate.url, { path: link as string })).body, LATER_PNG, 'and served')
  const found = gate.logs.filter((line) => line.msg === 'cache folder found')
  t.same(found.map(({ level, dir }) => ({ level, dir })), [{ level: 30, dir: later }], 'the new folder is logged at info')
  t.same(gate.files.roots.slice(0, -1), [...findHermesCacheDirs(home).filter((dir) => dir !== later), later], 'added after the folders found at start')
})

t.test('explicit cache folders stay as given', async (t) => {
  const home = t.testdir({ cache: { images: {} } })
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  const images = path.join(home, 'cache/images')
  const gate = await startGate(t, { upstream: upstream.url, cacheDirs: [images] })
  const later = path.join(home, 'profiles/later/cache/images')
  fs.mkdirSync(later, { recursive: true })
  fs.writeFileSync(path.join(later, 'new.png'), LATER_PNG)
  upstream.handle(sse([...contentEvents([`![n](${later}/new.png)`]), FINISH, DONE]))
  const answer = contentOf((await send(gate.url, { method: 'POST', path: '/v1/chat/completions', body: '{"stream": true}' })).text)
  t.equal(answer, `![n](${later}/new.png)`, 'a folder outside the given ones is never served')
  t.equal(gate.logs.filter((line) => line.msg === 'cache folder found').length, 0, 'nothing is looked for')
})
